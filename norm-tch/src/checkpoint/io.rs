//! Reading and writing state dicts: `.pt`/`.pth` as `torch.save` writes them (a zip
//! archive read and written with libtorch's own `PyTorchStreamReader`/`Writer`, holding a
//! protocol-2 pickle, see [`super::pickle`]) and `.safetensors` (tch's reader and writer).

use super::pickle::{self, PickleEntry, Value};
use crate::backend::tch_err;
use crate::ffi;
use norm_core::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A checkpoint's file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `torch.save`'s zip archive (`.pt`, `.pth`, `.bin`, `.ckpt`).
    Pt,
    /// safetensors (`.safetensors`).
    SafeTensors,
}

impl Format {
    /// The format a path's extension names: `.safetensors`, or `.pt`/`.pth`/`.bin`/`.ckpt`.
    pub fn from_extension(path: &Path) -> Result<Format> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("safetensors") => Ok(Format::SafeTensors),
            Some("pt" | "pth" | "bin" | "ckpt") => Ok(Format::Pt),
            _ => Err(Error::invalid(
                "path",
                path.display(),
                "a file name ending in .safetensors, .pt, .pth, .bin or .ckpt (the format follows the extension)",
            )),
        }
    }
}

/// An ordered map of names to tensors, as PyTorch's `module.state_dict()`, plus the
/// spectral-norm versions its `_metadata` recorded (`.pt` files only).
#[derive(Debug, Default)]
pub struct StateDict {
    entries: Vec<(String, Tensor)>,
    spectral_norm_versions: BTreeMap<String, i64>,
}

/// PyTorch's name of a dtype (`torch.float32`), for messages.
pub fn dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Float => "torch.float32",
        Kind::Double => "torch.float64",
        Kind::Half => "torch.float16",
        Kind::BFloat16 => "torch.bfloat16",
        Kind::Int64 => "torch.int64",
        Kind::Int => "torch.int32",
        Kind::Int16 => "torch.int16",
        Kind::Int8 => "torch.int8",
        Kind::Uint8 => "torch.uint8",
        Kind::Bool => "torch.bool",
        Kind::ComplexFloat => "torch.complex64",
        Kind::ComplexDouble => "torch.complex128",
        _ => "an unsupported dtype",
    }
}

/// Orders dotted names with numeric components as numbers (`2.weight` < `10.weight`),
/// which is module order for `nn.Sequential`-style names.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let mut xs = a.split('.');
    let mut ys = b.split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(i), Ok(j)) => i.cmp(&j).then_with(|| x.cmp(y)),
                    _ => x.cmp(y),
                };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

fn file_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Unsupported { what: format!("checkpoint file `{}`", path.display()), reason: reason.into() }
}

/// The first line of a libtorch message (drops its hints and C++ backtrace).
fn first_sentence(message: &str) -> &str {
    let line = message.lines().next().unwrap_or(message);
    match line.find(". ") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// A CPU, contiguous copy-free view if possible (a copy otherwise) for serialization.
fn cpu_contiguous(t: &Tensor) -> Result<Tensor> {
    t.f_detach()
        .and_then(|t| t.f_to_device(Device::Cpu))
        .and_then(|t| t.f_contiguous())
        .map_err(tch_err("to cpu contiguous"))
}

impl StateDict {
    /// A state dict of these entries, in this order. Errors on a repeated name.
    pub fn new(entries: Vec<(String, Tensor)>) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        for (k, _) in &entries {
            if !seen.insert(k.as_str()) {
                return Err(Error::invalid("state dict", format!("the name `{k}` twice"), "unique names"));
            }
        }
        Ok(StateDict { entries, spectral_norm_versions: BTreeMap::new() })
    }

    pub(crate) fn from_parts(entries: Vec<(String, Tensor)>, spectral_norm_versions: BTreeMap<String, i64>) -> Self {
        StateDict { entries, spectral_norm_versions }
    }

    /// The entries, in order (`.pt`: the order `torch.save` wrote, i.e. module order;
    /// `.safetensors`, which keeps no order: [`natural_cmp`] order of the names).
    pub fn entries(&self) -> &[(String, Tensor)] {
        &self.entries
    }

    /// Consumes the state dict into its entries.
    pub fn into_entries(self) -> Vec<(String, Tensor)> {
        self.entries
    }

    /// The tensor named `key`.
    pub fn get(&self, key: &str) -> Option<&Tensor> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }

    /// The names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `weight.version` the `_metadata` of a `.pt` file recorded for the spectral norm
    /// (hook API) of module `prefix`; `None` when absent, which PyTorch reads as the
    /// legacy "version None".
    pub fn spectral_norm_version(&self, prefix: &str) -> Option<i64> {
        self.spectral_norm_versions.get(prefix).copied()
    }

    pub(crate) fn spectral_norm_versions(&self) -> &BTreeMap<String, i64> {
        &self.spectral_norm_versions
    }

    /// Reads a checkpoint, recognizing the format from the content (a zip archive is
    /// `torch.save`'s, a JSON header is safetensors). Errors name the file: unreadable,
    /// truncated, not a checkpoint, legacy non-zip `torch.save` format, an object other
    /// than tensors and plain containers in the pickle, or no tensors at all.
    pub fn read(path: impl AsRef<Path>) -> Result<StateDict> {
        let path = path.as_ref();
        let head = read_head(path)?;
        if head.starts_with(b"PK") {
            read_pt(path)
        } else if head.len() >= 9 && head[8] == b'{' {
            read_safetensors(path)
        } else if head.starts_with(&[0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]) {
            Err(file_error(path, "it is in the legacy (pre-1.6, non-zip) torch.save format, which is not supported: load it with PyTorch and torch.save it again"))
        } else {
            Err(file_error(path, "it is neither a torch.save zip archive (.pt/.pth) nor a safetensors file"))
        }
    }

    /// Writes the entries in the format `path`'s extension names (see
    /// [`Format::from_extension`]). A `.pt` file is what `torch.save(state_dict)` writes
    /// for an `OrderedDict` of tensors (no `_metadata`), readable by
    /// `torch.load(path, weights_only=True)`; tensors are written from a CPU copy, in
    /// their dtype.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        match Format::from_extension(path)? {
            Format::Pt => write_pt(path, &self.entries),
            Format::SafeTensors => {
                let tensors = self
                    .entries
                    .iter()
                    .map(|(k, t)| Ok((k.as_str(), cpu_contiguous(t)?)))
                    .collect::<Result<Vec<_>>>()?;
                Tensor::write_safetensors(&tensors, path).map_err(|e| file_error(path, format!("cannot write it: {e}")))
            }
        }
    }
}

fn read_head(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| file_error(path, format!("cannot open it: {e}")))?;
    let mut head = Vec::with_capacity(16);
    file.by_ref().take(16).read_to_end(&mut head).map_err(|e| file_error(path, format!("cannot read it: {e}")))?;
    if head.len() < 9 {
        return Err(file_error(path, format!("it is {} bytes long, too short for a checkpoint", head.len())));
    }
    Ok(head)
}

fn read_safetensors(path: &Path) -> Result<StateDict> {
    let mut entries = Tensor::read_safetensors(path).map_err(|e| {
        file_error(path, format!("it is not a readable safetensors file (truncated or corrupted?): {e}"))
    })?;
    entries.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    Ok(StateDict { entries, spectral_norm_versions: BTreeMap::new() })
}

fn read_pt(path: &Path) -> Result<StateDict> {
    let name = path.to_str().ok_or_else(|| file_error(path, "its path is not valid UTF-8"))?;
    let records = ffi::pt_read_records(name).map_err(|e| match e {
        Error::Backend { message, .. } => file_error(
            path,
            format!("it is not a readable torch.save archive (truncated or corrupted?): {}", first_sentence(&message)),
        ),
        e => e,
    })?;
    let record = |n: &str| records.iter().find(|(k, _)| k == n).map(|(_, d)| d.as_slice());
    let pkl = record("data.pkl").ok_or_else(|| {
        file_error(
            path,
            "the zip archive has no data.pkl record, so torch.save did not write it (a TorchScript archive?)",
        )
    })?;
    if let Some(order) = record("byteorder") {
        if order != b"little" {
            return Err(file_error(
                path,
                format!(
                    "it was written on a {} machine; only little-endian archives are read",
                    String::from_utf8_lossy(order)
                ),
            ));
        }
    }
    if records.iter().any(|(k, _)| k == "constants.pkl" || k.starts_with("code/")) {
        return Err(file_error(path, "it is a TorchScript archive (torch.jit.save), not a state dict: save model.state_dict() with torch.save instead"));
    }
    let root = pickle::unpickle(pkl).map_err(|e| file_error(path, format!("its data.pkl cannot be read: {e}")))?;
    let Value::Dict(dict) = &root else {
        return Err(file_error(
            path,
            "it holds a single object that is not a dict; a state dict (torch.save(model.state_dict())) was expected",
        ));
    };
    let dict = dict.borrow();
    let mut entries = Vec::new();
    for (k, v) in &dict.items {
        let Value::Tensor(t) = v else { continue }; // non-tensor values (metadata) are ignored
        let key = k.as_str().ok_or_else(|| file_error(path, "a tensor's key is not a string"))?.to_string();
        let storage = &t.storage;
        let data = record(&format!("data/{}", storage.key)).ok_or_else(|| {
            file_error(path, format!("`{key}`'s storage data/{} is missing from the archive", storage.key))
        })?;
        let tensor = materialize(&key, t, data).map_err(|reason| file_error(path, reason))?;
        entries.push((key, tensor));
    }
    if entries.is_empty() {
        let nested: Vec<String> = dict
            .items
            .iter()
            .filter(|(_, v)| matches!(v, Value::Dict(d) if d.borrow().items.iter().any(|(_, t)| matches!(t, Value::Tensor(_)))))
            .filter_map(|(k, _)| k.as_str().map(|k| format!("`{k}`")))
            .collect();
        let hint = if nested.is_empty() {
            String::new()
        } else {
            format!(" (it has tensors under {}: save that state dict by itself)", nested.join(", "))
        };
        return Err(file_error(path, format!("it holds no tensors at the top level; a state dict (torch.save(model.state_dict())) was expected{hint}")));
    }
    let mut versions = BTreeMap::new();
    for (k, v) in &dict.attrs {
        if k.as_str() != Some("_metadata") {
            continue;
        }
        let Value::Dict(meta) = v else { continue };
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
    Ok(StateDict { entries, spectral_norm_versions: versions })
}

/// The tensor `_rebuild_tensor_v2` would build over `data`, as a contiguous copy.
fn materialize(key: &str, t: &pickle::TensorRef, data: &[u8]) -> std::result::Result<Tensor, String> {
    let kind = t.storage.kind;
    let numel = t.storage.numel;
    let bytes = usize::try_from(numel)
        .ok()
        .and_then(|n| n.checked_mul(kind.elt_size_in_bytes()))
        .ok_or_else(|| format!("`{key}`'s storage has {numel} elements"))?;
    if data.len() < bytes {
        return Err(format!(
            "`{key}`'s storage data/{} holds {} bytes, {bytes} expected (truncated?)",
            t.storage.key,
            data.len()
        ));
    }
    if t.offset < 0 || t.size.iter().any(|&s| s < 0) || t.stride.iter().any(|&s| s < 0) {
        return Err(format!("`{key}` has a negative offset, size or stride"));
    }
    if t.size.iter().all(|&s| s > 0) {
        let last = t.size.iter().zip(&t.stride).map(|(&s, &st)| (s - 1) * st).sum::<i64>() + t.offset;
        if last >= numel {
            return Err(format!(
                "`{key}` (size {:?}, stride {:?}, offset {}) reaches past its storage of {numel} elements",
                t.size, t.stride, t.offset
            ));
        }
    }
    let storage = Tensor::f_from_data_size(&data[..bytes], &[numel], kind).map_err(|e| format!("`{key}`: {e}"))?;
    let view = storage
        .f_as_strided(t.size.as_slice(), t.stride.as_slice(), Some(t.offset))
        .map_err(|e| format!("`{key}`: {e}"))?;
    ffi::clone_contiguous(&view).map_err(|e| format!("`{key}`: {e}"))
}

fn write_pt(path: &Path, entries: &[(String, Tensor)]) -> Result<()> {
    let name = path.to_str().ok_or_else(|| file_error(path, "its path is not valid UTF-8"))?;
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
    let pkl =
        pickle::pickle_state_dict(&pickled).map_err(|reason| file_error(path, format!("cannot write it: {reason}")))?;
    records[0] = ("data.pkl".to_string(), pkl);
    ffi::pt_write_records(name, &records).map_err(|e| match e {
        Error::Backend { message, .. } => file_error(path, format!("cannot write it: {}", first_sentence(&message))),
        e => e,
    })
}
