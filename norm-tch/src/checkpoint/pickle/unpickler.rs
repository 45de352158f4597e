//! The opcode interpreter of the restricted unpickler: `pickle._Unpickler.load` (protocols
//! 0 to 5, as far as `torch.save` writes them) over the values of [`super::value`], with
//! the objects [`super::objects`] allows. Nothing is ever executed; an error says which
//! opcode, at which byte, found what.
//!
//! Bounded: containers nest at most [`MAX_NESTING`] deep (`PickleProblem::NestingTooDeep`),
//! every length is checked against the bytes left before anything is read or allocated,
//! and the work of the opcodes that copy or hash what the memo shares (`GET` of a long
//! string used as a key again and again, `BUILD` or `OrderedDict(list)` of a memoized
//! container) is charged to a budget linear in the pickle's length
//! (`PickleProblem::TooMuchWork`), so time and memory stay linear in the input.

use super::objects::{append, build, dict, pairs, persistent_load, reduce, reduce_cost, seq, set_items};
use super::value::{Seq, Value, MAX_NESTING};
use norm_core::error::{PickleError, PickleProblem};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

fn unexpected(expected: &str, found: &Value) -> PickleProblem {
    PickleProblem::Unexpected { expected: expected.into(), found: found.describe() }
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    metastack: Vec<Vec<Value>>,
    memo: HashMap<u64, Value>,
    /// Work units left (see the module docs).
    budget: u64,
}

/// The work budget of a pickle of `len` bytes: 16 units a byte plus 2^20. A pickle
/// `torch.save` writes spends fewer units than it has bytes.
pub(crate) fn work_budget(len: usize) -> u64 {
    (len as u64).saturating_mul(16).saturating_add(1 << 20)
}

type R<T> = Result<T, PickleProblem>;

impl<'a> Unpickler<'a> {
    fn take_u64(&mut self, n: u64) -> R<&'a [u8]> {
        let left = self.data.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= left => self.take(n),
            _ => Err(PickleProblem::UnexpectedEnd { needed: usize::try_from(n).unwrap_or(usize::MAX), left }),
        }
    }
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.data.len() - self.pos < n {
            return Err(PickleProblem::UnexpectedEnd { needed: n, left: self.data.len() - self.pos });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> R<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> R<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> R<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn line(&mut self) -> R<String> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleProblem::UnexpectedEnd { needed: 1, left: rest.len() })?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }
    fn utf8(&mut self, n: u64) -> R<Value> {
        let bytes = self.take_u64(n)?;
        let s = std::str::from_utf8(bytes).map_err(|_| PickleProblem::InvalidUtf8)?;
        Ok(Value::Str(Rc::from(s)))
    }
    /// Charges `units` of work to the budget.
    fn charge(&mut self, units: usize) -> R<()> {
        match self.budget.checked_sub(units as u64) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(PickleProblem::TooMuchWork { limit: work_budget(self.data.len()) }),
        }
    }
    fn pop(&mut self) -> R<Value> {
        self.stack.pop().ok_or(PickleProblem::EmptyStack)
    }
    fn top(&mut self) -> R<&mut Value> {
        self.stack.last_mut().ok_or(PickleProblem::EmptyStack)
    }
    /// Charges the hashing of dict keys (a str key's length, 1 for any other).
    fn charge_keys(&mut self, keys: &[Value]) -> R<()> {
        let units = keys.iter().map(|k| k.as_str().map_or(1, |s| s.len() + 1)).sum();
        self.charge(units)
    }
    fn pop_mark(&mut self) -> R<Vec<Value>> {
        let items = std::mem::take(&mut self.stack);
        self.stack = self.metastack.pop().ok_or(PickleProblem::NoMark)?;
        Ok(items)
    }
    fn memo_get(&mut self, i: u64) -> R<Value> {
        self.charge(1)?;
        self.memo.get(&i).cloned().ok_or(PickleProblem::MissingMemo { index: i })
    }
    fn memo_put(&mut self, i: u64) -> R<()> {
        let v = self.stack.last().cloned().ok_or(PickleProblem::EmptyStack)?;
        self.memo.insert(i, v);
        Ok(())
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let offset = self.pos;
            let op = self.u8().map_err(|problem| PickleError { offset, opcode: None, problem })?;
            match self.step(op) {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(problem) => return Err(PickleError { offset, opcode: Some(op), problem }),
            }
        }
    }

    /// Executes opcode `op`; `Some` at `STOP`. The interpreter is this one match, opcode by
    /// opcode as `pickle._Unpickler`'s dispatch table.
    fn step(&mut self, op: u8) -> R<Option<Value>> {
        match op {
            0x80 => drop(self.u8()?),            // PROTO
            0x95 => drop(self.u64()?),           // FRAME
            b'.' => return self.pop().map(Some), // STOP
            b'(' => {
                if self.metastack.len() >= MAX_NESTING {
                    return Err(PickleProblem::NestingTooDeep { limit: MAX_NESTING });
                }
                let stack = std::mem::take(&mut self.stack);
                self.metastack.push(stack);
            }
            b'0' => drop(self.pop()?),
            b'1' => drop(self.pop_mark()?),
            b'2' => {
                self.charge(1)?;
                let v = self.top()?.clone();
                self.stack.push(v);
            }
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'J' => {
                let v = self.u32()? as i32;
                self.stack.push(Value::Int(v as i64));
            }
            b'K' => {
                let v = self.u8()?;
                self.stack.push(Value::Int(v as i64));
            }
            b'M' => {
                let v = self.u16()?;
                self.stack.push(Value::Int(v as i64));
            }
            0x8a | 0x8b => {
                let n = if op == 0x8a { self.u8()? as u64 } else { self.u32()? as u64 };
                let bytes = self.take_u64(n)?;
                let n = bytes.len();
                if n > 8 {
                    return Err(PickleProblem::IntegerTooWide { bytes: n });
                }
                let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
                buf[..n].copy_from_slice(bytes);
                self.stack.push(Value::Int(i64::from_le_bytes(buf)));
            }
            b'I' | b'L' => {
                let text = self.line()?;
                let text = text.trim_end_matches('L');
                let v = match text {
                    "01" if op == b'I' => Value::Bool(true),
                    "00" if op == b'I' => Value::Bool(false),
                    t => Value::Int(t.parse().map_err(|_| PickleProblem::BadLiteral { text: t.to_string() })?),
                };
                self.stack.push(v);
            }
            b'G' => {
                let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                self.stack.push(Value::Float(v));
            }
            b'F' => {
                let t = self.line()?;
                self.stack.push(Value::Float(t.parse().map_err(|_| PickleProblem::BadLiteral { text: t })?));
            }
            b'X' => {
                let n = self.u32()? as u64;
                let s = self.utf8(n)?;
                self.stack.push(s);
            }
            0x8c => {
                let n = self.u8()? as u64;
                let s = self.utf8(n)?;
                self.stack.push(s);
            }
            0x8d => {
                let n = self.u64()?;
                let s = self.utf8(n)?;
                self.stack.push(s);
            }
            b'U' | b'T' => {
                // Python 2 str: latin-1 text.
                let n = if op == b'U' { self.u8()? as u64 } else { self.u32()? as u64 };
                let s: String = self.take_u64(n)?.iter().map(|&b| b as char).collect();
                self.stack.push(Value::Str(Rc::from(s)));
            }
            b'C' | b'B' | 0x8e => {
                let n = match op {
                    b'C' => self.u8()? as u64,
                    b'B' => self.u32()? as u64,
                    _ => self.u64()?,
                };
                let b = self.take_u64(n)?;
                self.stack.push(Value::Bytes(Rc::from(b)));
            }
            b')' => self.stack.push(Value::Tuple(Rc::new(Seq::default()))),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(Rc::new(seq(items)?)));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err(PickleProblem::EmptyStack);
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(Rc::new(seq(items)?)));
            }
            b']' | 0x8f => self.stack.push(Value::List(Rc::new(RefCell::new(Seq::default())))),
            b'l' | 0x91 => {
                let items = self.pop_mark()?;
                self.stack.push(Value::List(Rc::new(RefCell::new(seq(items)?))));
            }
            b'a' => {
                let v = self.pop()?;
                append(self.top()?, vec![v])?;
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                append(self.top()?, items)?;
            }
            b'}' => self.stack.push(dict(Vec::new())?),
            b'd' => {
                let items = self.pop_mark()?;
                self.charge_keys(&items)?;
                let d = dict(pairs(items)?)?;
                self.stack.push(d);
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.charge_keys(std::slice::from_ref(&k))?;
                set_items(self.top()?, vec![(k, v)])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.charge_keys(&items)?;
                let items = pairs(items)?;
                set_items(self.top()?, items)?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.stack.push(Value::Global(Rc::new((module, name))));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => {
                        self.stack.push(Value::Global(Rc::new((m.to_string(), n.to_string()))))
                    }
                    (m, _) => return Err(unexpected("a module and a name as two strs", &m)),
                }
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.charge(reduce_cost(&args))?;
                if let Value::Tuple(t) = &args {
                    if let Some(Value::List(l)) = t.items.first() {
                        let keys: Vec<Value> = l.try_borrow().map_or(Vec::new(), |l| {
                            l.items
                                .iter()
                                .filter_map(|kv| match kv {
                                    Value::Tuple(kv) => kv.items.first().cloned(),
                                    _ => None,
                                })
                                .collect()
                        });
                        self.charge_keys(&keys)?;
                    }
                }
                let v = reduce(callable, args)?;
                self.stack.push(v);
            }
            b'b' => {
                let state = self.pop()?;
                if let Value::Dict(d) = &state {
                    let keys: Vec<Value> = d.borrow().items.iter().map(|(k, _)| k.clone()).collect();
                    self.charge(keys.len())?;
                    self.charge_keys(&keys)?;
                }
                build(self.top()?, state)?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let v = persistent_load(pid)?;
                self.stack.push(v);
            }
            b'q' => {
                let i = self.u8()? as u64;
                self.memo_put(i)?;
            }
            b'r' => {
                let i = self.u32()? as u64;
                self.memo_put(i)?;
            }
            b'p' => {
                let t = self.line()?;
                self.memo_put(t.parse().map_err(|_| PickleProblem::BadLiteral { text: t.clone() })?)?;
            }
            0x94 => {
                let i = self.memo.len() as u64;
                self.memo_put(i)?;
            }
            b'h' => {
                let i = self.u8()? as u64;
                let v = self.memo_get(i)?;
                self.stack.push(v);
            }
            b'j' => {
                let i = self.u32()? as u64;
                let v = self.memo_get(i)?;
                self.stack.push(v);
            }
            b'g' => {
                let t = self.line()?;
                let v = self.memo_get(t.parse().map_err(|_| PickleProblem::BadLiteral { text: t.clone() })?)?;
                self.stack.push(v);
            }
            _ => return Err(PickleProblem::UnsupportedOpcode),
        }
        Ok(None)
    }
}

/// Unpickles `data` (the `data.pkl` record).
pub(crate) fn unpickle(data: &[u8]) -> Result<Value, PickleError> {
    let budget = work_budget(data.len());
    Unpickler { data, pos: 0, stack: Vec::new(), metastack: Vec::new(), memo: HashMap::new(), budget }.run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::pickle::{pickle_state_dict, PickleEntry};
    use tch::Kind;

    #[test]
    fn round_trip_through_own_unpickler() {
        let entries = [
            PickleEntry { key: "a.weight", kind: Kind::Float, size: vec![2, 3] },
            PickleEntry { key: "n", kind: Kind::Int64, size: vec![] },
            PickleEntry { key: "big", kind: Kind::Double, size: vec![70000, 1, 2, 3] },
        ];
        let bytes = pickle_state_dict(&entries).unwrap();
        let Value::Dict(d) = unpickle(&bytes).unwrap() else { panic!("not a dict") };
        let d = d.borrow();
        assert_eq!(d.items.len(), 3);
        let Value::Tensor(t) = &d.items[2].1 else { panic!("not a tensor") };
        assert_eq!(t.size, vec![70000, 1, 2, 3]);
        assert_eq!(t.stride, vec![6, 6, 3, 1]);
        assert_eq!(t.storage.key, "2");
        assert_eq!(t.storage.kind, Kind::Double);
        assert_eq!(t.storage.numel, 420000);
        let Value::Tensor(n) = &d.items[1].1 else { panic!("not a tensor") };
        assert!(n.size.is_empty() && n.storage.kind == Kind::Int64 && n.storage.numel == 1);
    }

    #[test]
    fn refuses_unknown_globals_and_garbage_with_typed_problems() {
        let evil = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
        let e = unpickle(evil).unwrap_err();
        let want = PickleProblem::UnsupportedGlobal { module: "os".into(), name: "system".into() };
        assert_eq!((e.offset, e.opcode, &e.problem), (21, Some(b'R'), &want), "{e}");
        assert!(e.to_string().contains("os.system"), "{e}");
        let e = unpickle(b"\x80\x02(").unwrap_err();
        assert_eq!((e.offset, e.opcode, e.problem), (3, None, PickleProblem::UnexpectedEnd { needed: 1, left: 0 }));
        let e = unpickle(b"\x80\x02\x8c\x05ab").unwrap_err();
        assert_eq!(
            (e.offset, e.opcode, e.problem),
            (2, Some(0x8c), PickleProblem::UnexpectedEnd { needed: 5, left: 2 })
        );
        let e = unpickle(b"\xff").unwrap_err();
        assert_eq!((e.offset, e.opcode, &e.problem), (0, Some(0xff), &PickleProblem::UnsupportedOpcode));
        assert!(e.to_string().contains("opcode 0xff at byte 0"), "{e}");
        let e = unpickle(b"\x80\x02h\x07").unwrap_err();
        assert_eq!(e.problem, PickleProblem::MissingMemo { index: 7 });
    }
}
