//! `torch.save`'s zip archive (`.pt`/`.pth`): read as `torch.load(path, weights_only=True)`
//! reads a state dict (`torch.serialization._load`: the records through libtorch's own
//! `PyTorchStreamReader`, `data.pkl` through [`super::pickle`], each tensor
//! `_rebuild_tensor_v2` over its storage record), and written as `torch.save(state_dict)`
//! writes one (`torch.serialization._save` through `PyTorchStreamWriter`).
//!
//! Linear in the file: records are found by name through a hash map, each storage is
//! copied into a tensor once however many tensors view it, and every declared size is
//! checked before use (records against the file's length, storages against their record,
//! each view's offset, sizes and strides with checked arithmetic against its storage, the
//! tensors' total size against [`max_total_bytes`]).

use super::io::{cpu_contiguous, StateDict};
use super::pickle::{self, PickleEntry, TensorRef, Value};
use crate::backend::tch_err;
use crate::ffi;
use norm_core::{CheckpointErrorKind, Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::Tensor;

/// `torch.load(path, weights_only=True)` of a state dict: the archive's records, checked,
/// then its pickle's tensors over their storages.
pub(super) fn read_pt(path: &Path) -> Result<StateDict> {
    let file_len = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?.len();
    let records = ffi::pt_read_records(path, file_len)?;
    let by_name: HashMap<&str, &[u8]> = records.iter().map(|(k, d)| (k.as_str(), d.as_slice())).collect();
    let record = |n: &str| by_name.get(n).copied();
    let pkl = record("data.pkl")
        .ok_or_else(|| Error::checkpoint(path, CheckpointErrorKind::MissingRecord { record: "data.pkl".into() }))?;
    if let Some(order) = record("byteorder") {
        if order != b"little" {
            let byteorder = String::from_utf8_lossy(order).into_owned();
            return Err(Error::checkpoint(path, CheckpointErrorKind::ByteOrder { byteorder }));
        }
    }
    if records.iter().any(|(k, _)| k == "constants.pkl" || k.starts_with("code/")) {
        return Err(Error::checkpoint(path, CheckpointErrorKind::TorchScript));
    }
    let root = pickle::unpickle(pkl).map_err(|e| Error::checkpoint(path, CheckpointErrorKind::Pickle(e)))?;
    let Value::Dict(dict) = &root else {
        return Err(Error::checkpoint(path, CheckpointErrorKind::NotAStateDict { found: root.describe() }));
    };
    let dict = dict.borrow();
    let entries = tensors(&dict.items, record, file_len).map_err(|e| e.in_file(path))?;
    let versions = spectral_norm_versions(&dict.attrs);
    drop(dict);
    drop(root);
    StateDict::from_parts(entries, versions).map_err(|e| e.in_file(path))
}

/// The most bytes the tensors of a file of `file_len` bytes may take together: 4 times
/// its length plus 64 MiB (a few tensors may share one storage, as tied weights do; many
/// views of one storage, or expanded ones, would copy without bound).
pub(super) fn max_total_bytes(file_len: u64) -> u64 {
    file_len.saturating_mul(4).saturating_add(64 << 20)
}

/// The top-level tensors of the state dict's `items`, in order, over the archive's storage
/// `record`s (non-tensor values, i.e. metadata, are skipped).
fn tensors<'a>(
    items: &[(Value, Value)],
    record: impl Fn(&str) -> Option<&'a [u8]>,
    file_len: u64,
) -> Result<Vec<(String, Tensor)>> {
    let max_bytes = max_total_bytes(file_len);
    let mut entries = Vec::new();
    let mut storages: HashMap<&str, Tensor> = HashMap::new();
    let mut total: u64 = 0;
    for (k, v) in items {
        let Value::Tensor(t) = v else { continue };
        let key = k.as_str().ok_or_else(|| CheckpointErrorKind::NonStringKey { found: k.describe() })?.to_string();
        let name = format!("data/{}", t.storage.key);
        let view_bytes = check_view(&key, t)?;
        total = total.saturating_add(view_bytes);
        if total > max_bytes {
            return Err(CheckpointErrorKind::TooLarge { key, bytes: total, file_len }.into());
        }
        let storage = match storages.get(t.storage.key.as_str()) {
            Some(s) => s.shallow_clone(),
            None => {
                let data = record(&name)
                    .ok_or_else(|| CheckpointErrorKind::MissingStorage { key: key.clone(), record: name.clone() })?;
                let s = storage_tensor(&key, &name, t, data)?;
                storages.insert(t.storage.key.as_str(), s.shallow_clone());
                s
            }
        };
        if storage.kind() != t.storage.kind || storage.numel() as i64 != t.storage.numel {
            // One storage key pickled with two dtypes or lengths: torch.load keeps the first.
            let (size, stride, offset, numel) = (t.size.clone(), t.stride.clone(), t.offset, t.storage.numel);
            return Err(CheckpointErrorKind::BadView { key, size, stride, offset, numel }.into());
        }
        let tensor = materialize(&key, t, &storage)?;
        entries.push((key, tensor));
    }
    if entries.is_empty() {
        let holds_tensors = |v: &Value| matches!(v, Value::Dict(d) if d.borrow().items.iter().any(|(_, t)| matches!(t, Value::Tensor(_))));
        let nested = items.iter().filter(|(_, v)| holds_tensors(v)).filter_map(|(k, _)| k.as_str().map(str::to_string));
        return Err(CheckpointErrorKind::NoTensors { nested: nested.collect() }.into());
    }
    Ok(entries)
}

/// `state_dict._metadata[prefix]["spectral_norm"]["weight.version"]` for every prefix.
fn spectral_norm_versions(attrs: &[(Value, Value)]) -> BTreeMap<String, i64> {
    let mut versions = BTreeMap::new();
    for (k, v) in attrs {
        let (Some("_metadata"), Value::Dict(meta)) = (k.as_str(), v) else { continue };
        for (prefix, local) in &meta.borrow().items {
            let (Some(prefix), Value::Dict(local)) = (prefix.as_str(), local) else { continue };
            for (name, sn) in &local.borrow().items {
                let (Some("spectral_norm"), Value::Dict(sn)) = (name.as_str(), sn) else { continue };
                for (n, version) in &sn.borrow().items {
                    if let (Some("weight.version"), Value::Int(version)) = (n.as_str(), version) {
                        versions.insert(prefix.to_string(), *version);
                    }
                }
            }
        }
    }
    versions
}

/// Checks that `t`'s view (offset, sizes, strides) lies within its storage, with checked
/// arithmetic, and returns the bytes a contiguous copy of it takes.
fn check_view(key: &str, t: &TensorRef) -> Result<u64> {
    let numel = t.storage.numel;
    let bad_view = || {
        let (size, stride) = (t.size.clone(), t.stride.clone());
        Error::from(CheckpointErrorKind::BadView { key: key.to_string(), size, stride, offset: t.offset, numel })
    };
    if numel < 0 || t.offset < 0 || t.offset > numel || t.size.iter().chain(&t.stride).any(|&s| s < 0) {
        return Err(bad_view());
    }
    let view_numel = t.size.iter().try_fold(1u64, |n, &s| n.checked_mul(s as u64)).ok_or_else(bad_view)?;
    if view_numel > 0 {
        // The last element's index: offset + sum (size - 1) * stride, below numel.
        let last = t
            .size
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |acc, (&s, &st)| (s - 1).checked_mul(st).and_then(|d| acc.checked_add(d)));
        if !matches!(last, Some(last) if last < numel) {
            return Err(bad_view());
        }
    }
    view_numel.checked_mul(t.storage.kind.elt_size_in_bytes() as u64).ok_or_else(bad_view)
}

/// The storage `record` as a 1-D tensor of its `numel` elements (checked against the
/// record's length).
fn storage_tensor(key: &str, record: &str, t: &TensorRef, data: &[u8]) -> Result<Tensor> {
    let (kind, numel) = (t.storage.kind, t.storage.numel);
    let bad_view = || {
        let (size, stride) = (t.size.clone(), t.stride.clone());
        Error::from(CheckpointErrorKind::BadView { key: key.to_string(), size, stride, offset: t.offset, numel })
    };
    let bytes =
        usize::try_from(numel).ok().and_then(|n| n.checked_mul(kind.elt_size_in_bytes())).ok_or_else(bad_view)?;
    if data.len() < bytes {
        let (key, record) = (key.to_string(), record.to_string());
        return Err(CheckpointErrorKind::StorageTooShort { key, record, bytes: data.len(), expected: bytes }.into());
    }
    Tensor::f_from_data_size(&data[..bytes], &[numel], kind)
        .map_err(|e| CheckpointErrorKind::Tensor { key: key.to_string(), message: e.to_string() }.into())
}

/// The tensor `_rebuild_tensor_v2` would build over `storage` (its view checked by
/// [`check_view`]), as a contiguous copy.
fn materialize(key: &str, t: &TensorRef, storage: &Tensor) -> Result<Tensor> {
    let tensor_error = |e: &dyn std::fmt::Display| {
        Error::from(CheckpointErrorKind::Tensor { key: key.to_string(), message: e.to_string() })
    };
    let view =
        storage.f_as_strided(t.size.as_slice(), t.stride.as_slice(), Some(t.offset)).map_err(|e| tensor_error(&e))?;
    ffi::clone_contiguous(&view).map_err(|e| tensor_error(&e))
}

pub(super) fn write_pt(path: &Path, entries: &[(String, Tensor)]) -> Result<()> {
    let mut pickled = Vec::with_capacity(entries.len());
    let mut records = vec![
        (String::new(), Vec::new()),
        (".format_version".to_string(), b"1".to_vec()),
        (".storage_alignment".to_string(), b"64".to_vec()),
    ];
    for (i, (key, t)) in entries.iter().enumerate() {
        let t = cpu_contiguous(t)?;
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        if numel > 0 {
            t.f_copy_data_u8(&mut bytes, numel).map_err(tch_err("copy_data"))?;
        }
        pickled.push(PickleEntry { key, kind: t.kind(), size: t.size() });
        records.push((format!("data/{i}"), bytes));
    }
    let pkl = pickle::pickle_state_dict(&pickled).map_err(|e| e.in_file(path))?;
    records[0] = ("data.pkl".to_string(), pkl);
    ffi::pt_write_records(path, &records)
}
