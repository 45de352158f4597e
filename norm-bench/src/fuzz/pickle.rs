//! The pickle stream of a `torch.save` file (`archive/data.pkl`, protocols 2 and 4), as
//! far as the fuzzer needs it: the opcodes and their byte ranges ([`ops`]), the key/value
//! pairs of each `SETITEMS` batch found by tracking the stack ([`pairs`]), and the
//! encodings of the few opcodes the mutations insert.

/// One opcode: where it starts, how long it is with its argument, and its code byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// Offset of the opcode byte.
    pub at: usize,
    /// Length of the opcode and its argument.
    pub len: usize,
    /// The opcode byte.
    pub code: u8,
}

/// Argument length of `code` at `at` in `b` (the opcode byte excluded), or `None` for an
/// opcode this table does not know.
fn arg_len(b: &[u8], at: usize, code: u8) -> Option<usize> {
    let u32_len =
        |from: usize| -> Option<usize> { Some(u32::from_le_bytes(b.get(from..from + 4)?.try_into().ok()?) as usize) };
    Some(match code {
        b'(' | b'}' | b']' | b')' | b't' | b'R' | b'Q' | b'N' | b's' | b'u' | b'a' | b'e' | b'b' | b'.' | b'l'
        | b'd' | b'0' | b'1' | b'2' | 0x85 | 0x86 | 0x87 | 0x88 | 0x89 | 0x81 | 0x94 => 0,
        0x80 | b'q' | b'h' | b'K' => 1,
        b'M' => 2,
        b'J' | b'r' | b'j' => 4,
        b'G' => 8,
        0x95 => 8,
        b'X' | b'B' | b'T' => 4 + u32_len(at + 1)?,
        b'U' | b'C' | 0x8c => 1 + usize::from(*b.get(at + 1)?),
        0x8a => 1 + usize::from(*b.get(at + 1)?),
        b'c' => {
            let first = b.get(at + 1..)?.iter().position(|&c| c == b'\n')?;
            let second = b.get(at + 2 + first..)?.iter().position(|&c| c == b'\n')?;
            first + second + 2
        }
        _ => return None,
    })
}

/// The opcodes of `b` up to `STOP` (or up to the first byte this table cannot read).
pub fn ops(b: &[u8]) -> Vec<Op> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(&code) = b.get(at) {
        let Some(len) = arg_len(b, at, code).map(|n| n + 1) else { break };
        if at + len > b.len() {
            break;
        }
        out.push(Op { at, len, code });
        at += len;
        if code == b'.' {
            break;
        }
    }
    out
}

/// Stack effect of `code` on the current mark level: (items popped, items pushed), for
/// the opcodes that neither set nor pop a mark.
fn effect(code: u8) -> (usize, usize) {
    match code {
        b'R' | 0x81 => (2, 1),
        b'b' => (1, 0),
        b's' => (2, 0),
        b'a' | b'0' => (1, 0),
        0x85 | b'Q' => (1, 1),
        0x86 => (2, 1),
        0x87 => (3, 1),
        b'q' | b'r' | 0x94 | 0x80 | 0x95 | b'.' => (0, 0),
        _ => (0, 1),
    }
}

/// Each `SETITEMS` batch's key/value pairs: for every batch, the op index of each key's
/// first op, followed by the op index of the `SETITEMS` itself (so pair `k` spans
/// `starts[k]..starts[k + 1]`).
pub fn pairs(ops: &[Op]) -> Vec<Vec<usize>> {
    // Per mark level: the item count, and the op indices where an item began at an even count.
    let mut levels: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new())];
    let mut batches = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op.code {
            b'(' => levels.push((0, Vec::new())),
            b't' | b'l' | b'd' | b'u' | b'e' | b'1' => {
                if levels.len() < 2 {
                    return batches;
                }
                let Some((_, mut starts)) = levels.pop() else { return batches };
                if op.code == b'u' {
                    starts.push(i);
                    batches.push(starts);
                }
                if matches!(op.code, b't' | b'l' | b'd') {
                    if let Some(level) = levels.last_mut() {
                        level.0 += 1;
                    }
                }
            }
            code => {
                let Some(level) = levels.last_mut() else { return batches };
                let (pop, push) = effect(code);
                // A state dict's keys are strings: a string op at an even count starts a pair.
                if level.0 % 2 == 0 && matches!(code, b'X' | 0x8c | b'U' | b'T') {
                    level.1.push(i);
                }
                level.0 = (level.0 + push).saturating_sub(pop);
            }
        }
    }
    batches
}

/// `BINUNICODE` of `text`.
pub fn binunicode(text: &str) -> Vec<u8> {
    let mut out = vec![b'X'];
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out
}

/// `LONG1` of `value` (8 bytes, two's complement, little-endian).
pub fn long1(value: i64) -> Vec<u8> {
    let mut out = vec![0x8a, 8];
    out.extend_from_slice(&value.to_le_bytes());
    out
}

/// The text of a string opcode (`BINUNICODE`, `SHORT_BINUNICODE`), if `op` is one.
pub fn string_of(b: &[u8], op: Op) -> Option<&str> {
    let body = match op.code {
        b'X' => b.get(op.at + 5..op.at + op.len)?,
        0x8c => b.get(op.at + 2..op.at + op.len)?,
        _ => return None,
    };
    std::str::from_utf8(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_of_a_dict_of_tuples() {
        // {"a": (1, 2), "b": 3} as protocol 2: } q0 ( X"a" K1 K2 \x86 q1 X"b" K3 u .
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend(binunicode("a"));
        p.extend([b'K', 1, b'K', 2, 0x86, b'q', 1]);
        p.extend(binunicode("b"));
        p.extend([b'K', 3, b'u', b'.']);
        let ops = ops(&p);
        assert_eq!(ops.last().unwrap().code, b'.');
        let batches = pairs(&ops);
        assert_eq!(batches.len(), 1);
        let starts = &batches[0];
        assert_eq!(starts.len(), 3, "two keys and the SETITEMS");
        assert_eq!(string_of(&p, ops[starts[0]]), Some("a"));
        assert_eq!(string_of(&p, ops[starts[1]]), Some("b"));
        assert_eq!(ops[starts[2]].code, b'u');
    }
}
