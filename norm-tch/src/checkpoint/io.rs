//! Reading and writing state dicts: `.pt`/`.pth` as `torch.save` writes them (a zip
//! archive read and written with libtorch's own `PyTorchStreamReader`/`Writer`, holding a
//! protocol-2 pickle, see [`super::pickle`]) and `.safetensors` (tch's reader and writer).

use super::pt::{read_pt, write_pt};
use crate::backend::tch_err;
use norm_core::{CheckpointErrorKind, Error, Result};
use std::collections::{BTreeMap, HashMap};
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
/// spectral-norm versions its `_metadata` recorded (`.pt` files only). Its names are
/// unique: every constructor refuses a repeated one
/// ([`CheckpointErrorKind::DuplicateKey`]), so no writer ever sees one twice.
#[derive(Debug, Default)]
pub struct StateDict {
    entries: Vec<(String, Tensor)>,
    index: HashMap<String, usize>,
    spectral_norm_versions: BTreeMap<String, i64>,
}

/// The keys `entries` repeats (each once, in order of first repetition), or their index.
fn unique_index(entries: &[(String, Tensor)]) -> Result<HashMap<String, usize>> {
    let mut index = HashMap::with_capacity(entries.len());
    let (mut repeated, mut reported) = (Vec::new(), std::collections::HashSet::new());
    for (i, (k, _)) in entries.iter().enumerate() {
        if index.insert(k.clone(), i).is_some() && reported.insert(k.as_str()) {
            repeated.push(k.clone());
        }
    }
    if repeated.is_empty() {
        Ok(index)
    } else {
        Err(CheckpointErrorKind::DuplicateKey { keys: repeated }.into())
    }
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

/// A CPU, contiguous copy-free view if possible (a copy otherwise) for serialization.
pub(super) fn cpu_contiguous(t: &Tensor) -> Result<Tensor> {
    t.f_detach()
        .and_then(|t| t.f_to_device(Device::Cpu))
        .and_then(|t| t.f_contiguous())
        .map_err(tch_err("to cpu contiguous"))
}

impl StateDict {
    /// A state dict of these entries, in this order. A repeated name is
    /// [`CheckpointErrorKind::DuplicateKey`] (naming every repeated one).
    pub fn new(entries: Vec<(String, Tensor)>) -> Result<Self> {
        Self::from_parts(entries, BTreeMap::new())
    }

    pub(crate) fn from_parts(
        entries: Vec<(String, Tensor)>,
        spectral_norm_versions: BTreeMap<String, i64>,
    ) -> Result<Self> {
        let index = unique_index(&entries)?;
        Ok(StateDict { entries, index, spectral_norm_versions })
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
        self.index.get(key).map(|&i| &self.entries[i].1)
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
            Err(Error::checkpoint(path, CheckpointErrorKind::LegacyFormat))
        } else {
            Err(Error::checkpoint(path, CheckpointErrorKind::UnknownFormat))
        }
    }

    /// Writes the entries in the format `path`'s extension names (see
    /// [`Format::from_extension`]). A `.pt` file is what `torch.save(state_dict)` writes
    /// for an `OrderedDict` of tensors (no `_metadata`), readable by
    /// `torch.load(path, weights_only=True)`; tensors are written from a CPU copy, in
    /// their dtype.
    ///
    /// Nothing of the caller's changes on failure: the file is written under a temporary
    /// name in `path`'s folder (`.norm-tmp-<pid>-<n>/<file name>`, so a `.pt` archive gets
    /// the same inner folder name) and renamed over `path` only once complete; on any
    /// error the temporary is removed and a previous file at `path` is untouched.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let format = Format::from_extension(path)?;
        write_atomically(path, |tmp| self.write_to(tmp, path, format))
    }

    /// Writes the entries to `tmp` in `format`; errors name `path`, the file asked for.
    fn write_to(&self, tmp: &Path, path: &Path, format: Format) -> Result<()> {
        let rename = |e: Error| match e {
            Error::Checkpoint { kind, .. } => Error::Checkpoint { path: Some(path.to_path_buf()), kind },
            Error::Io { op, source, .. } => Error::Io { op, path: path.to_path_buf(), source },
            e => e,
        };
        self.write_format(tmp, format).map_err(rename)
    }

    fn write_format(&self, path: &Path, format: Format) -> Result<()> {
        match format {
            Format::Pt => write_pt(path, &self.entries),
            Format::SafeTensors => {
                let tensors = self
                    .entries
                    .iter()
                    .map(|(k, t)| Ok((k.as_str(), cpu_contiguous(t)?)))
                    .collect::<Result<Vec<_>>>()?;
                Tensor::write_safetensors(&tensors, path).map_err(|e| match e {
                    tch::TchError::Io(source) => Error::io("write", path, source),
                    tch::TchError::SafeTensorError { err, .. } => {
                        Error::checkpoint(path, CheckpointErrorKind::Write { message: err.to_string() })
                    }
                    e => Error::checkpoint(path, CheckpointErrorKind::Write { message: e.to_string() }),
                })
            }
        }
    }
}

/// Runs `write` on a temporary path in `path`'s folder, then renames the file over
/// `path`; on error (or a failed rename) removes the temporary, leaving `path` as it was.
pub(crate) fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let file_name = path.file_name().ok_or_else(|| Error::invalid("path", path.display(), "a path naming a file"))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp_dir = folder.join(format!(".norm-tmp-{}-{n}", std::process::id()));
    // The error names the file asked for (its folder missing or read-only), not the temporary.
    std::fs::create_dir(&tmp_dir).map_err(|e| Error::io("write", path, e))?;
    let tmp = tmp_dir.join(file_name);
    let result = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e)));
    // The temporary (if the rename did not take it) and its folder go either way.
    std::fs::remove_file(&tmp).ok();
    std::fs::remove_dir(&tmp_dir).ok();
    result
}

fn read_head(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut head = Vec::with_capacity(16);
    file.by_ref().take(16).read_to_end(&mut head).map_err(|e| Error::io("read", path, e))?;
    if head.len() < 9 {
        return Err(Error::checkpoint(path, CheckpointErrorKind::TooShort { len: head.len() }));
    }
    Ok(head)
}

/// A safetensors file, read with the `safetensors` crate (which checks the header's length
/// against the file's and every tensor's offsets and `numel * element size` against the
/// data, with checked arithmetic); each dimension is checked to fit an `i64` before a
/// tensor is built.
fn read_safetensors(path: &Path) -> Result<StateDict> {
    use safetensors::SafeTensors;
    let bad = |message: String| Error::checkpoint(path, CheckpointErrorKind::Safetensors { message });
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("{e:?}")))?;
    let mut entries = Vec::with_capacity(file.len());
    for (name, view) in file.tensors() {
        let kind = Kind::try_from(view.dtype()).map_err(|e| bad(format!("`{name}`: {e}")))?;
        let size = view
            .shape()
            .iter()
            .map(|&d| i64::try_from(d))
            .collect::<std::result::Result<Vec<i64>, _>>()
            .map_err(|_| bad(format!("`{name}` has shape {:?}, a dimension beyond i64", view.shape())))?;
        let tensor = Tensor::f_from_data_size(view.data(), &size, kind).map_err(|e| bad(format!("`{name}`: {e}")))?;
        entries.push((name, tensor));
    }
    entries.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    StateDict::new(entries).map_err(|e| e.in_file(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::pickle::{self, PickleEntry};
    use crate::ffi;
    use norm_core::error::{PickleError, PickleProblem};

    fn dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("norm-io-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A torch.save-style archive at `path` holding these records besides the version ones.
    fn archive(path: &Path, records: &[(&str, &[u8])]) {
        let mut all = vec![(".format_version".to_string(), b"1".to_vec())];
        all.extend(records.iter().map(|(n, d)| (n.to_string(), d.to_vec())));
        ffi::pt_write_records(path, &all).unwrap();
    }

    /// The kind of the error reading `path` gives, checking that it names the file.
    fn kind_of(path: &Path) -> CheckpointErrorKind {
        let e = StateDict::read(path).expect_err("an unreadable checkpoint was read");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        match e {
            Error::Checkpoint { path: Some(p), kind } if p == path => *kind,
            other => panic!("{}: {other:?}", path.display()),
        }
    }

    #[test]
    fn file_problems_keep_the_io_error_and_the_path() {
        let path = dir("io").join("absent.pt");
        match StateDict::read(&path) {
            Err(Error::Io { op: "open", path: p, source }) => {
                assert_eq!(p, path);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        let e = StateDict::read(&path).unwrap_err();
        assert!(e.to_string().contains("absent.pt"), "{e}");
        assert!(std::error::Error::source(&e).is_some(), "the io::Error is the source");
    }

    #[test]
    fn format_problems_are_typed_kinds_naming_the_file() {
        let dir = dir("kinds");
        let good = dir.join("good.pt");
        let t = Tensor::f_from_slice(&[1.0f32, 2.0, 3.0, 4.0]).unwrap();
        StateDict::new(vec![("w".into(), t)]).unwrap().write(&good).unwrap();
        assert_eq!(StateDict::read(&good).unwrap().len(), 1);

        // A truncated zip: libtorch's reader refuses it.
        let bytes = std::fs::read(&good).unwrap();
        let truncated = dir.join("truncated.pt");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(kind_of(&truncated), CheckpointErrorKind::Zip { .. }));

        // A pickle with an opcode no pickle protocol has.
        let bad = dir.join("bad_opcode.pt");
        archive(&bad, &[("data.pkl", b"\x80\x02\xff")]);
        let want = PickleError { offset: 2, opcode: Some(0xff), problem: PickleProblem::UnsupportedOpcode };
        assert_eq!(kind_of(&bad), CheckpointErrorKind::Pickle(want));

        // A malformed safetensors header (its length, then no JSON).
        let st = dir.join("bad_header.safetensors");
        let mut header = 10u64.to_le_bytes().to_vec();
        header.extend_from_slice(b"{not json}");
        std::fs::write(&st, &header).unwrap();
        assert!(matches!(kind_of(&st), CheckpointErrorKind::Safetensors { .. }));

        let short = dir.join("short.pt");
        std::fs::write(&short, b"PK\x03").unwrap();
        assert_eq!(kind_of(&short), CheckpointErrorKind::TooShort { len: 3 });
        let text = dir.join("notes.pt");
        std::fs::write(&text, "not a checkpoint at all\n").unwrap();
        assert_eq!(kind_of(&text), CheckpointErrorKind::UnknownFormat);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn content_problems_name_the_key_and_record() {
        let dir = dir("content");
        let pkl = pickle::pickle_state_dict(&[PickleEntry { key: "w", kind: Kind::Float, size: vec![4] }]).unwrap();
        let short = dir.join("short_storage.pt");
        archive(&short, &[("data.pkl", &pkl), ("data/0", &[0u8; 8])]);
        let want =
            CheckpointErrorKind::StorageTooShort { key: "w".into(), record: "data/0".into(), bytes: 8, expected: 16 };
        assert_eq!(kind_of(&short), want);
        let missing = dir.join("missing_storage.pt");
        archive(&missing, &[("data.pkl", &pkl)]);
        assert_eq!(kind_of(&missing), CheckpointErrorKind::MissingStorage { key: "w".into(), record: "data/0".into() });
        let list = dir.join("list.pt");
        archive(&list, &[("data.pkl", b"\x80\x02].")]);
        assert_eq!(kind_of(&list), CheckpointErrorKind::NotAStateDict { found: "a list".into() });
        let no_pkl = dir.join("no_pkl.pt");
        archive(&no_pkl, &[("data/0", &[0u8; 4])]);
        assert_eq!(kind_of(&no_pkl), CheckpointErrorKind::MissingRecord { record: "data.pkl".into() });
        std::fs::remove_dir_all(&dir).ok();
    }
}
