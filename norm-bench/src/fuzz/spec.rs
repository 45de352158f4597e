//! Mutations of real parity specs (cases of `data/parity_spec.json`), fed to
//! `norm-bench parity --spec FILE --json`: values of the wrong type, huge, negative and
//! NaN-like numbers, extreme sizes, unknown and missing fields, repeated keys, deep
//! nesting and broken text. A mutation of a leaf may write raw JSON text (`1e999`, `NaN`,
//! `[[[...]]]`) that no `serde_json::Value` holds: the leaf becomes a marker string, and
//! the marker is replaced in the serialized text.

use super::rng::Rng;
use serde_json::{json, Value};

const MARKER: &str = "@@fuzz-raw@@";

/// Raw JSON texts for a leaf.
const RAW_LEAVES: [&str; 12] = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "18446744073709551616",
    "-9223372036854775809",
    "340282366920938463463374607431768211456",
    "1e39",
    "-0",
    "0.0",
    "5e-324",
];

/// Sizes a field of a layer or a shape might be given.
const HOSTILE_SIZES: [i64; 10] = [0, -1, 65_536, 100_000, 1 << 20, 1 << 31, 1 << 40, 1 << 62, i64::MAX, i64::MIN];

/// The fields that size tensors or loops.
const SIZE_FIELDS: [&str; 12] = [
    "in_features",
    "out_features",
    "in_channels",
    "out_channels",
    "num_embeddings",
    "embedding_dim",
    "kernel_size",
    "stride",
    "padding",
    "input_shape",
    "steps",
    "n_power_iterations",
];

/// A JSON value a field does not expect.
fn hostile_value(rng: &mut Rng) -> Value {
    match rng.below(16) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(""),
        3 => json!("NaN"),
        4 => json!(-1),
        5 => json!(1.5),
        6 => json!(1e39),
        7 => json!(-1e308),
        8 => json!(u64::MAX),
        9 => json!(i64::MIN),
        10 => json!([]),
        11 => json!({}),
        12 => json!([1, [2, [3]]]),
        13 => json!("x".repeat(100_000)),
        14 => json!(*rng.pick(&HOSTILE_SIZES)),
        _ => Value::String(MARKER.into()),
    }
}

/// Paths (object keys and array indices) of every value under `v`.
fn paths(v: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                prefix.push(json!(k));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(json!(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at_path<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    let mut here = v;
    for step in path {
        here = match step {
            Value::String(k) => here.get_mut(k.as_str())?,
            Value::Number(i) => here.get_mut(i.as_u64()? as usize)?,
            _ => return None,
        };
    }
    Some(here)
}

/// The spec text of `cases`, after one to three mutations; and their names.
pub fn mutate(seed_cases: &[Value], rng: &mut Rng) -> (Vec<u8>, String) {
    let small: Vec<&Value> = seed_cases.iter().filter(|c| c["steps"].as_u64().is_some_and(|s| s <= 3)).collect();
    let mut cases: Vec<Value> = (0..1 + rng.below(2)).map(|_| (*rng.pick(&small)).clone()).collect();
    for (i, case) in cases.iter_mut().enumerate() {
        case["name"] = json!(format!("fuzz-{i}"));
    }
    let mut root = json!({ "cases": cases });
    let mut what = Vec::new();
    let mut raw: Option<String> = None;
    for _ in 0..1 + rng.below(3) {
        let mut all = Vec::new();
        paths(&root, &mut Vec::new(), &mut all);
        let path = rng.pick(&all).clone();
        match rng.below(8) {
            0 | 1 => {
                let sized: Vec<&Vec<Value>> = all
                    .iter()
                    .filter(|p| p.iter().any(|s| s.as_str().is_some_and(|k| SIZE_FIELDS.contains(&k))))
                    .filter(|p| {
                        p.last().is_some_and(|s| s.is_number() || s.as_str().is_some_and(|k| SIZE_FIELDS.contains(&k)))
                    })
                    .collect();
                if let Some(p) = sized.get(rng.below(sized.len())).map(|p| (*p).clone()) {
                    if let Some(v) = at_path(&mut root, &p) {
                        *v = if v.is_array() {
                            Value::Array(vec![json!(*rng.pick(&HOSTILE_SIZES)); v.as_array().map_or(1, Vec::len)])
                        } else {
                            json!(*rng.pick(&HOSTILE_SIZES))
                        };
                        what.push("size");
                    }
                }
            }
            2 | 3 => {
                if let Some(v) = at_path(&mut root, &path) {
                    *v = hostile_value(rng);
                    what.push("value");
                }
            }
            4 => {
                if let Some(Value::Object(map)) = at_path(&mut root, &path) {
                    if rng.one_in(2) && !map.is_empty() {
                        let key = map.keys().nth(rng.below(map.len())).cloned().unwrap_or_default();
                        map.remove(&key);
                        what.push("drop-field");
                    } else {
                        map.insert("fuzz_unknown".into(), hostile_value(rng));
                        what.push("unknown-field");
                    }
                }
            }
            5 => {
                if let Some(v) = at_path(&mut root, &path) {
                    let depth = *rng.pick(&[64, 127, 128, 129, 10_000, 1_000_000]);
                    raw = Some(format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
                    *v = Value::String(MARKER.into());
                    what.push("nest");
                }
            }
            6 => {
                if let Some(v) = at_path(&mut root, &path) {
                    raw = Some(rng.pick(&RAW_LEAVES).to_string());
                    *v = Value::String(MARKER.into());
                    what.push("raw-number");
                }
            }
            _ => {
                if let Some(Value::Object(map)) = at_path(&mut root, &path) {
                    if let Some((k, v)) = map.iter().nth(rng.below(map.len())).map(|(k, v)| (k.clone(), v.clone())) {
                        // A repeated key: the first copy differs, the second is the original.
                        let key = json!(k);
                        raw = Some(format!("{key}: {}, {key}: {v}", hostile_value(rng)));
                        map.remove(&k);
                        map.insert(MARKER.into(), Value::Null);
                        what.push("repeated-key");
                    }
                }
            }
        }
    }
    let mut text = root.to_string();
    let raw_text = raw.unwrap_or_else(|| rng.pick(&RAW_LEAVES).to_string());
    text = text.replace(&format!("\"{MARKER}\":null"), &raw_text).replace(&format!("\"{MARKER}\""), &raw_text);
    let mut bytes = text.into_bytes();
    match rng.below(12) {
        0 => {
            bytes.truncate(rng.below(bytes.len()));
            what.push("truncate");
        }
        1 => {
            let at = rng.below(bytes.len());
            bytes.insert(at, 0xff);
            what.push("bad-utf8");
        }
        2 => {
            bytes.splice(0..0, [0xef, 0xbb, 0xbf]);
            what.push("bom");
        }
        _ => {}
    }
    if what.is_empty() {
        what.push("none");
    }
    (bytes, what.join("+"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_keep_the_seed_recognizable_and_are_replayable() {
        let seed = vec![
            json!({"name": "a", "seed": 1, "layer": {"kind": "linear", "in_features": 2, "out_features": 3, "bias": true},
                               "norm": {"kind": "weight_norm", "api": "hooks"}, "mode": "train", "input_shape": [1, 2], "steps": 1}),
        ];
        for i in 0..200 {
            let (a, what) = mutate(&seed, &mut Rng::for_case(3, i));
            let (b, _) = mutate(&seed, &mut Rng::for_case(3, i));
            assert_eq!(a, b, "case {i} replays");
            assert!(!what.is_empty());
            assert!(!String::from_utf8_lossy(&a).contains(MARKER), "case {i}: {what}");
        }
    }
}
