//! `torch.save`'s zip archive (`.pt`/`.pth`): read as `torch.load(path, weights_only=True)`
//! reads a state dict (`torch.serialization._load`: the records through libtorch's own
//! `PyTorchStreamReader`, `data.pkl` through [`super::pickle`], each tensor
//! `_rebuild_tensor_v2` over its storage record), and written as `torch.save(state_dict)`
//! writes one (`torch.serialization._save` through `PyTorchStreamWriter`).

use super::io::{cpu_contiguous, StateDict};
use super::pickle::{self, PickleEntry, TensorRef, Value};
use crate::backend::tch_err;
use crate::ffi;
use norm_core::{CheckpointErrorKind, Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Tensor;

/// `torch.load(path, weights_only=True)` of a state dict: the archive's records, checked,
/// then its pickle's tensors over their storages.
pub(super) fn read_pt(path: &Path) -> Result<StateDict> {
    let records = ffi::pt_read_records(path)?;
    let record = |n: &str| records.iter().find(|(k, _)| k == n).map(|(_, d)| d.as_slice());
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
    let entries = tensors(&dict.items, record).map_err(|e| e.in_file(path))?;
    Ok(StateDict::from_parts(entries, spectral_norm_versions(&dict.attrs)))
}

/// The top-level tensors of the state dict's `items`, in order, over the archive's storage
/// `record`s (non-tensor values, i.e. metadata, are skipped).
fn tensors<'a>(items: &[(Value, Value)], record: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Vec<(String, Tensor)>> {
    let mut entries = Vec::new();
    for (k, v) in items {
        let Value::Tensor(t) = v else { continue };
        let key = k.as_str().ok_or_else(|| CheckpointErrorKind::NonStringKey { found: k.describe() })?.to_string();
        let name = format!("data/{}", t.storage.key);
        let data = record(&name)
            .ok_or_else(|| CheckpointErrorKind::MissingStorage { key: key.clone(), record: name.clone() })?;
        let tensor = materialize(&key, &name, t, data)?;
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

/// The tensor `_rebuild_tensor_v2` would build over `data` (the storage `record`), as a
/// contiguous copy.
fn materialize(key: &str, record: &str, t: &TensorRef, data: &[u8]) -> Result<Tensor> {
    let kind = t.storage.kind;
    let numel = t.storage.numel;
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
    if t.offset < 0 || t.size.iter().any(|&s| s < 0) || t.stride.iter().any(|&s| s < 0) {
        return Err(bad_view());
    }
    if t.size.iter().all(|&s| s > 0) {
        let last = t.size.iter().zip(&t.stride).map(|(&s, &st)| (s - 1) * st).sum::<i64>() + t.offset;
        if last >= numel {
            return Err(bad_view());
        }
    }
    let tensor_error = |e: &dyn std::fmt::Display| {
        Error::from(CheckpointErrorKind::Tensor { key: key.to_string(), message: e.to_string() })
    };
    let storage = Tensor::f_from_data_size(&data[..bytes], &[numel], kind).map_err(|e| tensor_error(&e))?;
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
