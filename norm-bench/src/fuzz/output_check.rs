//! The check of a successful convert's output: a state dict never holds a key twice (the
//! `.pt`'s pickle repeats no key within a `SETITEMS` batch; the `.safetensors` header
//! repeats no key), and the file is readable as what its extension says.

use super::{pickle, zip};
use crate::parity::unique_keys::UniqueKeys;
use std::collections::HashSet;
use std::path::Path;

/// What is wrong with the output at `path`, or `None`.
pub fn problem(path: &Path) -> Option<String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return Some(format!("cannot read {}: {e}", path.display())),
    };
    if path.extension().is_some_and(|e| e == "safetensors") {
        let Some(n) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())) else {
            return Some("shorter than a safetensors header".into());
        };
        let Some(header) = usize::try_from(n).ok().and_then(|n| bytes.get(8..8usize.checked_add(n)?)) else {
            return Some(format!("declares a {n}-byte header in a {}-byte file", bytes.len()));
        };
        return serde_json::from_slice::<UniqueKeys>(header).err().map(|e| format!("header: {e}"));
    }
    let Some(entries) = zip::read(&bytes) else { return Some("not a stored zip archive".into()) };
    let Some(pkl) = entries.iter().find(|e| e.name.ends_with("data.pkl")) else {
        return Some("no data.pkl entry".into());
    };
    let ops = pickle::ops(&pkl.data);
    for batch in pickle::pairs(&ops) {
        let mut seen = HashSet::new();
        for &start in &batch[..batch.len().saturating_sub(1)] {
            if let Some(key) = pickle::string_of(&pkl.data, ops[start]) {
                if !seen.insert(key) {
                    return Some(format!("the key {key:?} is written twice"));
                }
            }
        }
    }
    None
}
