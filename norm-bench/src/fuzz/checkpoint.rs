//! Structured mutations of real checkpoints, fed to `norm-bench convert`: `.pt` files
//! (torch.save's zip of a pickle and raw storages) mutated through their zip entries and
//! their pickle opcodes, and `.safetensors` files (an 8-byte header length, a JSON header,
//! the data) mutated through their header's fields. Each mutation is named, so a finding
//! says what was done to which seed file.

use super::pickle::{self, Op};
use super::rng::Rng;
use super::zip::{self, Entry};
use serde_json::{json, Value};

/// Integers a file may declare that a reader must not trust.
const HOSTILE_INTS: [i64; 14] = [
    0,
    1,
    -1,
    3,
    i32::MAX as i64,
    1 << 31,
    1 << 32,
    -(1 << 31),
    1 << 40,
    1 << 53,
    1 << 62,
    i64::MAX,
    i64::MIN,
    -(1 << 40),
];

/// A mutated file and the names of the mutations, in order.
#[derive(Clone, Debug)]
pub struct Mutated {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// What was done (`dup-pair+truncate`).
    pub what: String,
}

/// The stale names a converted key could meet: a plain `weight` beside `weight_g`, and so on.
fn stale_name(key: &str, rng: &mut Rng) -> String {
    for suffix in [
        "weight_g",
        "weight_v",
        "weight_orig",
        "weight_u",
        "parametrizations.weight.original0",
        "parametrizations.weight.original1",
        "parametrizations.weight.original",
        "parametrizations.weight.0._u",
    ] {
        if let Some(stem) = key.strip_suffix(suffix) {
            return format!("{stem}weight");
        }
    }
    if let Some(stem) = key.strip_suffix("weight") {
        let suffix = rng.pick(&["weight_g", "weight_v", "weight_orig", "parametrizations.weight.original0"]);
        return format!("{stem}{suffix}");
    }
    key.to_string()
}

/// Deeply nested lists (`depth` levels) as pickle opcodes: `]` x (depth + 1), then `a` x depth.
fn nested_lists(depth: usize) -> Vec<u8> {
    let mut out = vec![b']'; depth + 1];
    out.extend(std::iter::repeat_n(b'a', depth));
    out
}

/// Deeply nested tuples: `(` x depth, `)`, then `t` x depth.
fn nested_tuples(depth: usize) -> Vec<u8> {
    let mut out = vec![b'('; depth];
    out.push(b')');
    out.extend(std::iter::repeat_n(b't', depth));
    out
}

/// One mutation of a pickle stream; `None` when the stream offers nothing for it.
fn mutate_pickle(p: &[u8], rng: &mut Rng) -> Option<(Vec<u8>, &'static str)> {
    let ops = pickle::ops(p);
    let splice = |op: Op, with: &[u8]| -> Vec<u8> {
        let mut out = p[..op.at].to_vec();
        out.extend_from_slice(with);
        out.extend_from_slice(&p[op.at + op.len..]);
        out
    };
    let insert_at = |at: usize, with: &[u8]| -> Vec<u8> {
        let mut out = p[..at].to_vec();
        out.extend_from_slice(with);
        out.extend_from_slice(&p[at..]);
        out
    };
    match rng.below(10) {
        0 => {
            let mut out = p.to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(out.len());
                out[at] ^= 1 + rng.below(255) as u8;
            }
            Some((out, "pickle-flip"))
        }
        1 => {
            let ints: Vec<Op> = ops.iter().copied().filter(|o| matches!(o.code, b'K' | b'M' | b'J' | 0x8a)).collect();
            if ints.is_empty() {
                return None;
            }
            let op = *rng.pick(&ints);
            Some((splice(op, &pickle::long1(*rng.pick(&HOSTILE_INTS))), "pickle-int"))
        }
        2 => {
            let strings: Vec<Op> = ops.iter().copied().filter(|o| o.code == b'X').collect();
            if strings.is_empty() {
                return None;
            }
            let op = *rng.pick(&strings);
            let mut out = p.to_vec();
            let len = *rng.pick(&[u32::MAX, 1 << 31, (op.len as u32).saturating_add(7), 0]);
            out[op.at + 1..op.at + 5].copy_from_slice(&len.to_le_bytes());
            Some((out, "pickle-string-len"))
        }
        3 | 4 => {
            let stop = ops.iter().rev().find(|o| o.code == b'.')?;
            let depth = *rng.pick(&[1_000, 100_000, 300_000, 1_000_000]);
            let mut with = pickle::binunicode("fuzz.nested");
            let lists = rng.one_in(2);
            with.extend(if lists { nested_lists(depth) } else { nested_tuples(depth) });
            with.push(b's');
            let what = match (lists, depth) {
                (true, 1_000) => "pickle-nest-lists-1e3",
                (true, 100_000) => "pickle-nest-lists-1e5",
                (true, 300_000) => "pickle-nest-lists-3e5",
                (true, _) => "pickle-nest-lists-1e6",
                (false, 1_000) => "pickle-nest-tuples-1e3",
                (false, 100_000) => "pickle-nest-tuples-1e5",
                (false, 300_000) => "pickle-nest-tuples-3e5",
                (false, _) => "pickle-nest-tuples-1e6",
            };
            Some((insert_at(stop.at, &with), what))
        }
        8 => {
            // Many keys: one tensor pair copied under fresh names (a reader quadratic in
            // the number of keys or records shows up as a hang).
            let batches = pickle::pairs(&ops);
            let starts = batches.iter().max_by_key(|b| b.len())?;
            if starts.len() < 2 {
                return None;
            }
            let (first, end) = (ops[starts[0]], ops[starts[1]]);
            let value = &p[first.at + first.len..end.at];
            let count = *rng.pick(&[20_000, 100_000, 200_000]);
            let mut with = Vec::with_capacity(count * (value.len() + 24));
            for i in 0..count {
                with.extend(pickle::binunicode(&format!("fuzz.{i}.weight")));
                with.extend_from_slice(value);
            }
            let what = match count {
                20_000 => "pickle-many-keys-2e4",
                100_000 => "pickle-many-keys-1e5",
                _ => "pickle-many-keys-2e5",
            };
            Some((insert_at(end.at, &with), what))
        }
        5..=7 => {
            let batches = pickle::pairs(&ops);
            if batches.is_empty() {
                return None;
            }
            let starts = rng.pick(&batches).clone();
            if starts.len() < 2 {
                return None;
            }
            let k = rng.below(starts.len() - 1);
            let (first, end) = (ops[starts[k]], ops[starts[k + 1]]);
            let mut pair = p[first.at..end.at].to_vec();
            let mut what = "pickle-dup-key";
            if rng.one_in(2) {
                if let Some(key) = pickle::string_of(p, first) {
                    let stale = stale_name(key, rng);
                    pair = [pickle::binunicode(&stale), p[first.at + first.len..end.at].to_vec()].concat();
                    what = "pickle-stale-key";
                }
            }
            Some((insert_at(end.at, &pair), what))
        }
        _ => {
            let cut = rng.below(p.len());
            Some((p[..cut].to_vec(), "pickle-truncate"))
        }
    }
}

/// One mutation of a `.pt` file.
fn mutate_pt_once(bytes: &[u8], rng: &mut Rng) -> (Vec<u8>, &'static str) {
    let Some(mut entries) = zip::read(bytes) else { return (raw_flip(bytes, rng), "raw-flip") };
    let pkl = entries.iter().position(|e| e.name.ends_with("data.pkl"));
    let storages: Vec<usize> =
        entries.iter().enumerate().filter(|(_, e)| e.name.contains("/data/")).map(|(i, _)| i).collect();
    match rng.below(10) {
        0..=4 => {
            if let Some(i) = pkl {
                if let Some((p, what)) = mutate_pickle(&entries[i].data, rng) {
                    entries[i].data = p;
                    return (zip::write(&entries), what);
                }
            }
            (raw_flip(bytes, rng), "raw-flip")
        }
        5 => {
            let i = rng.below(entries.len());
            let mut copy: Entry = entries[i].clone();
            if rng.one_in(2) {
                copy.data.truncate(copy.data.len() / 2);
            }
            let at = if rng.one_in(2) { entries.len() } else { i };
            entries.insert(at, copy);
            (zip::write(&entries), "zip-dup-entry")
        }
        6 if !storages.is_empty() => {
            let i = *rng.pick(&storages);
            match rng.below(3) {
                0 => {
                    entries.remove(i);
                    (zip::write(&entries), "zip-drop-storage")
                }
                1 => {
                    let len = entries[i].data.len();
                    entries[i].data.truncate(rng.below(len.max(1)));
                    (zip::write(&entries), "zip-short-storage")
                }
                _ => {
                    entries[i].data.extend(std::iter::repeat_n(0x7f, 1 + rng.below(4096)));
                    (zip::write(&entries), "zip-long-storage")
                }
            }
        }
        7 => {
            let records = zip::central_records(bytes);
            let mut out = bytes.to_vec();
            if let Some(&at) = records.get(rng.below(records.len().max(1))) {
                let field = *rng.pick(&[10usize, 20, 24, 28, 30, 42]);
                let value = *rng.pick(&[u32::MAX, 0, 1 << 31, out.len() as u32, 0xFFFF]);
                let width = if matches!(field, 10 | 28 | 30) { 2 } else { 4 };
                if at + field + width <= out.len() {
                    out[at + field..at + field + width].copy_from_slice(&value.to_le_bytes()[..width]);
                }
            }
            (out, "zip-central-field")
        }
        8 => (bytes[..rng.below(bytes.len())].to_vec(), "truncate"),
        _ => (raw_flip(bytes, rng), "raw-flip"),
    }
}

fn raw_flip(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(out.len());
        if let Some(b) = out.get_mut(at) {
            *b ^= 1 + rng.below(255) as u8;
        }
    }
    out
}

/// A `.pt` seed mutated once or twice.
pub fn mutate_pt(seed: &[u8], rng: &mut Rng) -> Mutated {
    let (mut bytes, first) = mutate_pt_once(seed, rng);
    let mut what = first.to_string();
    if rng.one_in(4) {
        let (again, second) = mutate_pt_once(&bytes, rng);
        bytes = again;
        what = format!("{what}+{second}");
    }
    Mutated { bytes, what }
}

/// A safetensors file split into its header entries (in file order) and its data.
struct Safetensors {
    entries: Vec<(String, Value)>,
    data: Vec<u8>,
}

impl Safetensors {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
        let header: Value = serde_json::from_slice(bytes.get(8..8 + n)?).ok()?;
        let entries = header.as_object()?.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Some(Safetensors { entries, data: bytes[8 + n..].to_vec() })
    }

    /// The header text: the entries in order (duplicates kept), padded with spaces to 8 bytes.
    fn header_text(&self) -> String {
        let items: Vec<String> = self.entries.iter().map(|(k, v)| format!("{}:{v}", Value::from(k.as_str()))).collect();
        let mut text = format!("{{{}}}", items.join(","));
        while text.len() % 8 != 0 {
            text.push(' ');
        }
        text
    }

    fn bytes_with_header(&self, text: &str) -> Vec<u8> {
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(&self.data);
        out
    }

    fn tensor_keys(&self) -> Vec<usize> {
        (0..self.entries.len()).filter(|&i| self.entries[i].0 != "__metadata__").collect()
    }
}

/// Hostile shapes for a safetensors entry.
fn hostile_shape(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => json!([1u64 << 40]),
        1 => json!([-1]),
        2 => json!([1u64 << 31, 1u64 << 31, 1u64 << 31]),
        3 => json!([u64::MAX]),
        4 => Value::Array(vec![json!(2); 100]),
        5 => json!(["3"]),
        6 => json!([1.5]),
        _ => json!([]),
    }
}

/// One mutation of a `.safetensors` file.
fn mutate_safetensors_once(bytes: &[u8], rng: &mut Rng) -> (Vec<u8>, &'static str) {
    let Some(mut st) = Safetensors::parse(bytes) else { return (raw_flip(bytes, rng), "raw-flip") };
    let keys = st.tensor_keys();
    let Some(&k) = keys.get(rng.below(keys.len())) else { return (raw_flip(bytes, rng), "raw-flip") };
    let end = st.data.len() as u64;
    let what = match rng.below(12) {
        0 => {
            let text = st.header_text();
            let n = text.len() as u64;
            let declared = *rng.pick(&[0, n - 1, n + 1, u64::MAX, 1 << 40, 1 << 63, n + end + 1]);
            let mut out = st.bytes_with_header(&text);
            out[..8].copy_from_slice(&declared.to_le_bytes());
            return (out, "st-header-len");
        }
        1 => {
            st.entries[k].1["shape"] = hostile_shape(rng);
            "st-shape"
        }
        2 => {
            let offsets = st.entries[k].1["data_offsets"].clone();
            let (a, b) = (offsets[0].as_u64().unwrap_or(0), offsets[1].as_u64().unwrap_or(0));
            st.entries[k].1["data_offsets"] = match rng.below(6) {
                0 => json!([b, a]),
                1 => json!([0, 1u64 << 40]),
                2 => json!([a, end + 1]),
                3 => json!([-1, b]),
                4 => json!([u64::MAX - 1, u64::MAX]),
                _ => json!([0, b]),
            };
            "st-offsets"
        }
        3 => {
            st.entries[k].1["dtype"] =
                rng.pick(&[json!("F64"), json!("I8"), json!("BOOL"), json!("XX"), json!(3), json!("F8_E4M3")]).clone();
            "st-dtype"
        }
        4 | 5 => {
            // The stale entry gets its own copy of the bytes (safetensors refuses shared offsets).
            let (key, mut value) = st.entries[k].clone();
            let stale = stale_name(&key, rng);
            let offsets = &value["data_offsets"];
            let (a, b) = (offsets[0].as_u64().unwrap_or(0) as usize, offsets[1].as_u64().unwrap_or(0) as usize);
            if let Some(bytes) = st.data.get(a..b).map(<[u8]>::to_vec) {
                let start = st.data.len();
                st.data.extend_from_slice(&bytes);
                value["data_offsets"] = json!([start, st.data.len()]);
            }
            st.entries.push((stale, value));
            "st-stale-key"
        }
        6 => {
            let entry = st.entries[k].clone();
            st.entries.insert(rng.below(st.entries.len() + 1), entry);
            "st-dup-key"
        }
        7 => {
            let depth = *rng.pick(&[200, 10_000, 1_000_000]);
            let text = st.header_text();
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let text = format!("{{\"__metadata__\":{{\"fuzz\":{nested}}},{}", &text[1..]);
            return (st.bytes_with_header(&text), "st-nest");
        }
        8 => {
            let field = *rng.pick(&["dtype", "shape", "data_offsets"]);
            if let Some(obj) = st.entries[k].1.as_object_mut() {
                obj.remove(field);
            }
            "st-drop-field"
        }
        9 => {
            st.data.truncate(rng.below(st.data.len().max(1)));
            "st-short-data"
        }
        10 => return (bytes[..rng.below(bytes.len())].to_vec(), "truncate"),
        _ => return (raw_flip(bytes, rng), "raw-flip"),
    };
    let text = st.header_text();
    (st.bytes_with_header(&text), what)
}

/// A `.safetensors` seed mutated once or twice.
pub fn mutate_safetensors(seed: &[u8], rng: &mut Rng) -> Mutated {
    let (mut bytes, first) = mutate_safetensors_once(seed, rng);
    let mut what = first.to_string();
    if rng.one_in(4) {
        let (again, second) = mutate_safetensors_once(&bytes, rng);
        bytes = again;
        what = format!("{what}+{second}");
    }
    Mutated { bytes, what }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_names_meet_converted_keys() {
        let mut rng = Rng::new(1);
        assert_eq!(stale_name("0.weight_g", &mut rng), "0.weight");
        assert_eq!(stale_name("3.parametrizations.weight.original1", &mut rng), "3.weight");
        assert!(
            stale_name("1.weight", &mut rng).starts_with("1.weight") && stale_name("1.weight", &mut rng) != "1.weight"
        );
    }

    #[test]
    fn safetensors_round_trip_keeps_duplicates() {
        let st = Safetensors {
            entries: vec![("a".into(), json!({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}))],
            data: vec![0; 4],
        };
        let bytes = st.bytes_with_header(&st.header_text());
        let back = Safetensors::parse(&bytes).unwrap();
        assert_eq!(back.entries, st.entries);
        assert_eq!(back.data, st.data);
    }
}
