//! The `data.pkl` record of a `torch.save` archive: a restricted unpickler and a pickler.
//!
//! Reading accepts what `torch.load(weights_only=True)` accepts for a state dict: plain
//! containers (dict, `collections.OrderedDict`, list, tuple, set), scalars, strings,
//! tensors (`torch._utils._rebuild_tensor_v2`/`_rebuild_tensor`, parameters through
//! `_rebuild_parameter`) whose storages are persistent ids `('storage', torch.XStorage, key,
//! location, numel)`. Any other global is refused by name, as the weights-only unpickler
//! does; nothing is ever executed. (libtorch's own C++ unpickler, `torch::pickle_load`,
//! turns every `OrderedDict` into `None`, so it cannot read `torch.save(model.state_dict())`.)
//!
//! Writing produces what `torch.save(state_dict)` produces for an `OrderedDict` of
//! tensors, at pickle protocol 2 (torch.save's default).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use tch::Kind;

/// A storage a tensor views: `data/<key>` in the archive.
#[derive(Debug)]
pub(crate) struct StorageRef {
    pub key: String,
    pub kind: Kind,
    pub numel: i64,
}

/// A tensor as `_rebuild_tensor_v2(storage, offset, size, stride, ...)` describes it.
#[derive(Debug)]
pub(crate) struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// A dict (plain or `OrderedDict`), with the attributes a `BUILD` set on it
/// (`state_dict()._metadata`).
#[derive(Debug, Default)]
pub(crate) struct DictObj {
    pub items: Vec<(Value, Value)>,
    pub attrs: Vec<(Value, Value)>,
}

/// An unpickled value (scalars keep their payload for `Debug`, though only tensors,
/// strings, ints and containers are read).
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<DictObj>>),
    Global(Rc<(String, String)>),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Str(_) => "a str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::List(_) => "a list".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Global(g) => format!("the global {}.{}", g.0, g.1),
            Value::Storage(_) => "a storage".into(),
            Value::Tensor(_) => "a tensor".into(),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The storage class names `torch.save` pickles, and their dtypes.
const STORAGE_TYPES: &[(&str, Kind)] = &[
    ("FloatStorage", Kind::Float),
    ("DoubleStorage", Kind::Double),
    ("HalfStorage", Kind::Half),
    ("BFloat16Storage", Kind::BFloat16),
    ("LongStorage", Kind::Int64),
    ("IntStorage", Kind::Int),
    ("ShortStorage", Kind::Int16),
    ("CharStorage", Kind::Int8),
    ("ByteStorage", Kind::Uint8),
    ("BoolStorage", Kind::Bool),
    ("ComplexFloatStorage", Kind::ComplexFloat),
    ("ComplexDoubleStorage", Kind::ComplexDouble),
    ("UntypedStorage", Kind::Uint8),
];

/// The storage class name of a dtype (`torch.FloatStorage` for float32).
pub(crate) fn storage_type_name(kind: Kind) -> Option<&'static str> {
    STORAGE_TYPES.iter().find(|(n, k)| *k == kind && *n != "UntypedStorage").map(|(n, _)| *n)
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    metastack: Vec<Vec<Value>>,
    memo: HashMap<u64, Value>,
}

type R<T> = std::result::Result<T, String>;

impl<'a> Unpickler<'a> {
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.data.len() - self.pos < n {
            return Err(format!(
                "the pickle ends early (at byte {} of {}, {n} more needed)",
                self.pos,
                self.data.len()
            ));
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
        let end =
            rest.iter().position(|&b| b == b'\n').ok_or_else(|| "the pickle ends inside a text line".to_string())?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }
    fn utf8(&mut self, n: usize) -> R<String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a pickled str is not valid UTF-8".to_string())
    }
    fn pop(&mut self) -> R<Value> {
        self.stack.pop().ok_or_else(|| "the pickle pops an empty stack".to_string())
    }
    fn top(&mut self) -> R<&mut Value> {
        self.stack.last_mut().ok_or_else(|| "the pickle reads an empty stack".to_string())
    }
    fn pop_mark(&mut self) -> R<Vec<Value>> {
        let items = std::mem::take(&mut self.stack);
        self.stack = self.metastack.pop().ok_or_else(|| "the pickle closes a MARK it never opened".to_string())?;
        Ok(items)
    }
    fn memo_get(&self, i: u64) -> R<Value> {
        self.memo.get(&i).cloned().ok_or_else(|| format!("the pickle reads memo entry {i}, never stored"))
    }
    fn memo_put(&mut self, i: u64) -> R<()> {
        let v = self.stack.last().cloned().ok_or_else(|| "the pickle memoizes an empty stack".to_string())?;
        self.memo.insert(i, v);
        Ok(())
    }

    fn run(mut self) -> R<Value> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => drop(self.u8()?),  // PROTO
                0x95 => drop(self.u64()?), // FRAME
                b'.' => return self.pop(), // STOP
                b'(' => {
                    let stack = std::mem::take(&mut self.stack);
                    self.metastack.push(stack);
                }
                b'0' => drop(self.pop()?),
                b'1' => drop(self.pop_mark()?),
                b'2' => {
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
                    let n = if op == 0x8a { self.u8()? as usize } else { self.u32()? as usize };
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return Err(format!("an integer of {n} bytes at byte {at} does not fit 64 bits"));
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
                        t => Value::Int(t.parse().map_err(|_| format!("bad integer literal `{t}` at byte {at}"))?),
                    };
                    self.stack.push(v);
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                b'F' => {
                    let t = self.line()?;
                    self.stack
                        .push(Value::Float(t.parse().map_err(|_| format!("bad float literal `{t}` at byte {at}"))?));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.utf8(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.utf8(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8d => {
                    let n = self.u64()? as usize;
                    let s = self.utf8(n)?;
                    self.stack.push(Value::Str(s));
                }
                b'U' | b'T' => {
                    // Python 2 str: latin-1 text.
                    let n = if op == b'U' { self.u8()? as usize } else { self.u32()? as usize };
                    let s: String = self.take(n)?.iter().map(|&b| b as char).collect();
                    self.stack.push(Value::Str(s));
                }
                b'C' | b'B' | 0x8e => {
                    let n = match op {
                        b'C' => self.u8()? as usize,
                        b'B' => self.u32()? as usize,
                        _ => self.u64()? as usize,
                    };
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b')' => self.stack.push(Value::Tuple(Rc::new(Vec::new()))),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(format!("TUPLE{n} at byte {at} on a stack of {}", self.stack.len()));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(Rc::new(items)));
                }
                b']' | 0x8f => self.stack.push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b'l' | 0x91 => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.borrow_mut().push(v),
                        other => return Err(format!("APPEND at byte {at} to {}", other.describe())),
                    }
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.borrow_mut().extend(items),
                        other => return Err(format!("APPENDS at byte {at} to {}", other.describe())),
                    }
                }
                b'}' => self.stack.push(Value::Dict(Rc::new(RefCell::new(DictObj::default())))),
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict = DictObj { items: pairs(items, at)?, attrs: Vec::new() };
                    self.stack.push(Value::Dict(Rc::new(RefCell::new(dict))));
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    set_items(self.top()?, vec![(k, v)], at)?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let items = pairs(items, at)?;
                    set_items(self.top()?, items, at)?;
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
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(Rc::new((m, n)))),
                        _ => return Err(format!("STACK_GLOBAL at byte {at} without two strings")),
                    }
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = reduce(callable, args, at)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    build(self.top()?, state, at)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = persistent_load(pid, at)?;
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
                    self.memo_put(t.parse().map_err(|_| format!("bad PUT index `{t}`"))?)?;
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
                    let v = self.memo_get(t.parse().map_err(|_| format!("bad GET index `{t}`"))?)?;
                    self.stack.push(v);
                }
                other => return Err(format!("unsupported pickle opcode 0x{other:02x} at byte {at}")),
            }
        }
    }
}

fn pairs(items: Vec<Value>, at: usize) -> R<Vec<(Value, Value)>> {
    if items.len() % 2 == 1 {
        return Err(format!("SETITEMS at byte {at} with an odd number of items"));
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn set_items(target: &mut Value, items: Vec<(Value, Value)>, at: usize) -> R<()> {
    match target {
        Value::Dict(d) => {
            let mut d = d.borrow_mut();
            for (k, v) in items {
                // A repeated key replaces the value in place, as in a Python dict.
                let same = |a: &Value| {
                    matches!((a, &k), (Value::Str(x), Value::Str(y)) if x == y)
                        || matches!((a, &k), (Value::Int(x), Value::Int(y)) if x == y)
                };
                match d.items.iter_mut().find(|(kk, _)| same(kk)) {
                    Some(slot) => slot.1 = v,
                    None => d.items.push((k, v)),
                }
            }
            Ok(())
        }
        other => Err(format!("SETITEMS at byte {at} on {}", other.describe())),
    }
}

fn build(target: &mut Value, state: Value, at: usize) -> R<()> {
    // (state, slotstate) or a plain dict of attributes.
    let state = match state {
        Value::Tuple(t) if t.len() == 2 => t[0].clone(),
        s => s,
    };
    match (target, state) {
        (Value::Dict(d), Value::Dict(s)) => {
            d.borrow_mut().attrs.extend(s.borrow().items.iter().cloned());
            Ok(())
        }
        (Value::Dict(_), Value::None) => Ok(()),
        (t, s) => Err(format!("BUILD at byte {at} sets {} on {}", s.describe(), t.describe())),
    }
}

fn ints(v: &Value, what: &str, at: usize) -> R<Vec<i64>> {
    match v {
        Value::Tuple(t) => t
            .iter()
            .map(|x| {
                if let Value::Int(i) = x {
                    Ok(*i)
                } else {
                    Err(format!("a tensor's {what} holds {} at byte {at}", x.describe()))
                }
            })
            .collect(),
        other => Err(format!("a tensor's {what} is {} at byte {at}", other.describe())),
    }
}

fn reduce(callable: Value, args: Value, at: usize) -> R<Value> {
    let Value::Global(g) = &callable else { return Err(format!("REDUCE at byte {at} calls {}", callable.describe())) };
    let Value::Tuple(args) = args else {
        return Err(format!("REDUCE at byte {at} with arguments that are {}", args.describe()));
    };
    match (g.0.as_str(), g.1.as_str()) {
        ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => {
            let mut dict = DictObj::default();
            if let Some(Value::List(items)) = args.first() {
                for item in items.borrow().iter() {
                    match item {
                        Value::Tuple(kv) if kv.len() == 2 => dict.items.push((kv[0].clone(), kv[1].clone())),
                        other => return Err(format!("an OrderedDict item at byte {at} is {}", other.describe())),
                    }
                }
            }
            Ok(Value::Dict(Rc::new(RefCell::new(dict))))
        }
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
            if args.len() < 4 {
                return Err(format!("{} at byte {at} with {} arguments", g.1, args.len()));
            }
            let Value::Storage(storage) = &args[0] else { return Err(format!("{} at byte {at} on {}", g.1, args[0].describe())) };
            let Value::Int(offset) = args[1] else { return Err(format!("a tensor's storage offset is {} at byte {at}", args[1].describe())) };
            let size = ints(&args[2], "size", at)?;
            let stride = ints(&args[3], "stride", at)?;
            if size.len() != stride.len() {
                return Err(format!("a tensor with size {size:?} and stride {stride:?} at byte {at}"));
            }
            Ok(Value::Tensor(Rc::new(TensorRef { storage: storage.clone(), offset, size, stride })))
        }
        ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") => match args.first() {
            Some(t @ Value::Tensor(_)) => Ok(t.clone()),
            other => Err(format!("{} at byte {at} on {}", g.1, other.map_or("nothing".into(), Value::describe))),
        },
        (m, n) => Err(format!("unsupported object `{m}.{n}` (only tensors and plain containers are read, as torch.load(weights_only=True) does)")),
    }
}

fn persistent_load(pid: Value, at: usize) -> R<Value> {
    let Value::Tuple(t) = &pid else { return Err(format!("a persistent id at byte {at} is {}", pid.describe())) };
    let bad = || format!("a persistent id at byte {at} is not ('storage', torch.XStorage, key, location, numel)");
    if t.len() != 5 || t[0].as_str() != Some("storage") {
        return Err(bad());
    }
    let Value::Global(g) = &t[1] else { return Err(bad()) };
    let kind = STORAGE_TYPES
        .iter()
        .find(|(n, _)| g.0 == "torch" && g.1 == *n)
        .map(|(_, k)| *k)
        .ok_or_else(|| format!("unsupported storage type `{}.{}`", g.0, g.1))?;
    let key = t[2].as_str().ok_or_else(bad)?.to_string();
    let Value::Int(numel) = t[4] else { return Err(bad()) };
    Ok(Value::Storage(Rc::new(StorageRef { key, kind, numel })))
}

/// Unpickles `data` (the `data.pkl` record).
pub(crate) fn unpickle(data: &[u8]) -> R<Value> {
    Unpickler { data, pos: 0, stack: Vec::new(), metastack: Vec::new(), memo: HashMap::new() }.run()
}

/// One tensor entry to pickle: its key, dtype and shape; its storage is `data/<index>`.
pub(crate) struct PickleEntry<'a> {
    pub key: &'a str,
    pub kind: Kind,
    pub size: Vec<i64>,
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    if (0..256).contains(&v) {
        out.extend_from_slice(&[b'K', v as u8]);
    } else if (0..65536).contains(&v) {
        out.push(b'M');
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if i32::try_from(v).is_ok() {
        out.push(b'J');
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        out.extend_from_slice(&[0x8a, 8]);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_int_tuple(out: &mut Vec<u8>, values: &[i64]) {
    match values.len() {
        0 => out.push(b')'),
        n @ 1..=3 => {
            values.iter().for_each(|&v| put_int(out, v));
            out.push(0x84 + n as u8);
        }
        _ => {
            out.push(b'(');
            values.iter().for_each(|&v| put_int(out, v));
            out.push(b't');
        }
    }
}

/// `pickle.dumps(OrderedDict(entries), protocol=2)` with torch.save's persistent ids:
/// each tensor is `_rebuild_tensor_v2(storage i, 0, size, contiguous stride, False,
/// OrderedDict())` over its own storage `data/<i>` (contiguous, offset 0).
pub(crate) fn pickle_state_dict(entries: &[PickleEntry<'_>]) -> std::result::Result<Vec<u8>, String> {
    let mut out = vec![0x80, 2];
    out.extend_from_slice(b"ccollections\nOrderedDict\n)R");
    out.push(b'(');
    for (i, e) in entries.iter().enumerate() {
        let storage = storage_type_name(e.kind)
            .ok_or_else(|| format!("`{}` has dtype {:?}, which torch.save has no storage type for", e.key, e.kind))?;
        put_str(&mut out, e.key);
        out.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n");
        out.push(b'(');
        out.push(b'(');
        put_str(&mut out, "storage");
        out.extend_from_slice(format!("ctorch\n{storage}\n").as_bytes());
        put_str(&mut out, &i.to_string());
        put_str(&mut out, "cpu");
        put_int(&mut out, e.size.iter().product());
        out.push(b't');
        out.push(b'Q');
        put_int(&mut out, 0);
        put_int_tuple(&mut out, &e.size);
        let mut stride = vec![1i64; e.size.len()];
        for d in (0..e.size.len().saturating_sub(1)).rev() {
            stride[d] = stride[d + 1] * e.size[d + 1].max(1);
        }
        put_int_tuple(&mut out, &stride);
        out.push(0x89);
        out.extend_from_slice(b"ccollections\nOrderedDict\n)R");
        out.push(b't');
        out.push(b'R');
    }
    out.push(b'u');
    out.push(b'.');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn refuses_unknown_globals_and_garbage() {
        let evil = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
        assert!(unpickle(evil).unwrap_err().contains("os.system"));
        assert!(unpickle(b"\x80\x02(").unwrap_err().contains("ends early"));
        assert!(unpickle(b"\xff").unwrap_err().contains("opcode 0xff"));
    }
}
