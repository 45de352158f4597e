//! The typed kinds of [`super::Error::Checkpoint`]: what is wrong with a PyTorch checkpoint
//! (`torch.save`'s zip archive and its `data.pkl` pickle, a safetensors file) or with a
//! conversion of its layers between the naming schemes of weight and spectral
//! normalization. Each kind keeps the key, the values and what was expected as fields, so a
//! caller can match on them (a CLI adds its flags to [`ConversionRefusal::AmbiguousDim`]).

use std::path::Path;

/// `checkpoint `PATH`: ` before a kind's text, or nothing for a state dict in memory.
pub(super) fn path_prefix(path: Option<&Path>) -> String {
    path.map_or(String::new(), |p| format!("checkpoint `{}`: ", p.display()))
}

/// What is wrong with a checkpoint.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointErrorKind {
    /// Fewer bytes than the smallest checkpoint.
    #[error("it is {len} bytes long, too short for a checkpoint")]
    TooShort {
        /// The file's length.
        len: usize,
    },
    /// Neither a zip archive nor a safetensors header.
    #[error("it is neither a torch.save zip archive (.pt/.pth) nor a safetensors file")]
    UnknownFormat,
    /// `torch.save`'s pre-1.6 format (`_use_new_zipfile_serialization=False`).
    #[error("it is in the legacy (pre-1.6, non-zip) torch.save format, which is not supported: load it with PyTorch and torch.save it again")]
    LegacyFormat,
    /// libtorch's zip reader (`PyTorchStreamReader`) refused the archive.
    #[error("it is not a readable torch.save archive (truncated or corrupted?): {message}")]
    Zip {
        /// libtorch's message (its first sentence).
        message: String,
    },
    /// The archive lacks a record `torch.save` always writes.
    #[error("the zip archive has no {record} record, so torch.save did not write it (a TorchScript archive?)")]
    MissingRecord {
        /// The record's name (`data.pkl`).
        record: String,
    },
    /// The archive's `byteorder` record is not `little`.
    #[error("it was written on a {byteorder} machine; only little-endian archives are read")]
    ByteOrder {
        /// The record's content.
        byteorder: String,
    },
    /// A `torch.jit.save` archive.
    #[error("it is a TorchScript archive (torch.jit.save), not a state dict: save model.state_dict() with torch.save instead")]
    TorchScript,
    /// The `data.pkl` record cannot be unpickled as `torch.load(weights_only=True)` would.
    #[error("its data.pkl cannot be read: {0}")]
    Pickle(PickleError),
    /// The pickle holds something other than a dict.
    #[error("it holds {found}, not a dict; a state dict (torch.save(model.state_dict())) was expected")]
    NotAStateDict {
        /// What it holds (`a list`, `a tensor`, ...).
        found: String,
    },
    /// A tensor's key in the state dict is not a string.
    #[error("a tensor's key is {found}, not a string")]
    NonStringKey {
        /// What the key is.
        found: String,
    },
    /// No tensor at the top level of the dict.
    #[error("it holds no tensors at the top level; a state dict (torch.save(model.state_dict())) was expected{}", nested_hint(.nested))]
    NoTensors {
        /// Keys of nested dicts that do hold tensors (`model` in `{"model": sd, "epoch": 3}`).
        nested: Vec<String>,
    },
    /// A tensor's storage record is absent from the archive.
    #[error("`{key}`'s storage {record} is missing from the archive")]
    MissingStorage {
        /// The tensor's key.
        key: String,
        /// The record (`data/0`).
        record: String,
    },
    /// A storage record is shorter than its element count needs.
    #[error("`{key}`'s storage {record} holds {bytes} bytes, {expected} expected (truncated?)")]
    StorageTooShort {
        /// The tensor's key.
        key: String,
        /// The record (`data/0`).
        record: String,
        /// Its length.
        bytes: usize,
        /// The length `numel * element size` needs.
        expected: usize,
    },
    /// A tensor's view (size, stride, offset) does not lie within its storage.
    #[error("`{key}` (size {size:?}, stride {stride:?}, offset {offset}) does not lie within its storage of {numel} elements")]
    BadView {
        /// The tensor's key.
        key: String,
        /// Its size.
        size: Vec<i64>,
        /// Its stride.
        stride: Vec<i64>,
        /// Its storage offset.
        offset: i64,
        /// The storage's element count.
        numel: i64,
    },
    /// The tensors would take more memory than the file can justify: their total size
    /// (`numel * element size`, each a copy of its view) is more than 4 times the file's
    /// length plus 64 MiB (many tensors viewing one storage, or expanded views).
    #[error("its tensors would take {bytes} bytes, more than its {file_len} bytes can hold (at most 4 x the file's length + 64 MiB); `{key}` passes the limit")]
    TooLarge {
        /// The key whose tensor passes the limit.
        key: String,
        /// The total size at that key (saturated at `u64::MAX`).
        bytes: u64,
        /// The file's length.
        file_len: u64,
    },
    /// A state dict that holds a key twice (a converted key meeting a stale entry, e.g. a
    /// leftover `weight` beside `weight_g`/`weight_v` converted to folded).
    #[error("it would hold {} twice: a state dict's keys must be unique (remove the stale entries first)", quoted(.keys))]
    DuplicateKey {
        /// The repeated keys, in order of first repetition.
        keys: Vec<String>,
    },
    /// libtorch could not build a tensor from its storage.
    #[error("`{key}` cannot be built from its storage: {message}")]
    Tensor {
        /// The tensor's key.
        key: String,
        /// libtorch's message.
        message: String,
    },
    /// The safetensors reader refused the file (header or data).
    #[error("it is not a readable safetensors file (truncated or corrupted?): {message}")]
    Safetensors {
        /// The safetensors reader's message.
        message: String,
    },
    /// A tensor of a dtype the format cannot store.
    #[error("`{key}` has dtype {dtype}, which torch.save has no storage type for")]
    UnsupportedDType {
        /// The tensor's key.
        key: String,
        /// Its dtype.
        dtype: String,
    },
    /// The writer (libtorch's `PyTorchStreamWriter`, or safetensors') failed.
    #[error("cannot write it: {message}")]
    Write {
        /// The writer's message.
        message: String,
    },
    /// A layer misses a key its scheme has.
    #[error("no key `{key}`, which layer `{prefix}` ({scheme}) needs")]
    MissingKey {
        /// The absent key.
        key: String,
        /// The layer's module prefix.
        prefix: String,
        /// The scheme the layer's other keys show.
        scheme: String,
    },
    /// A spectral-norm power-iteration vector that is not 1-D.
    #[error("`{key}` has shape {shape:?}, where a 1-D power-iteration vector was expected")]
    NotAVector {
        /// The key.
        key: String,
        /// Its shape.
        shape: Vec<i64>,
    },
    /// A layer's scheme cannot be converted to the one asked for.
    #[error("cannot convert layer `{prefix}` from {from} to {to}: {refusal}")]
    Conversion {
        /// The layer's module prefix.
        prefix: String,
        /// Its scheme.
        from: String,
        /// The scheme asked for.
        to: String,
        /// Why not.
        refusal: ConversionRefusal,
    },
    /// A strict load: a model variable with no entry in the checkpoint.
    #[error("no entry for the model's variable `{key}` (a missing key, refused by a strict load as by PyTorch's load_state_dict(strict=True); {count} missing in all)")]
    MissingEntry {
        /// The first missing key.
        key: String,
        /// How many are missing.
        count: usize,
    },
    /// A strict load: a checkpoint entry the model has no variable for.
    #[error("the model has no variable `{key}`{} (an unexpected key, refused by a strict load as by PyTorch's load_state_dict(strict=True); {count} unexpected in all)", converted_from(.origin))]
    UnexpectedEntry {
        /// The first unexpected key.
        key: String,
        /// The checkpoint key(s) it was converted from, if it was.
        origin: Option<String>,
        /// How many are unexpected.
        count: usize,
    },
}

fn nested_hint(nested: &[String]) -> String {
    if nested.is_empty() {
        return String::new();
    }
    let names: Vec<String> = nested.iter().map(|k| format!("`{k}`")).collect();
    format!(" (it has tensors under {}: save that state dict by itself)", names.join(", "))
}

fn quoted(keys: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut names: Vec<String> = keys.iter().take(SHOWN).map(|k| format!("`{k}`")).collect();
    if keys.len() > SHOWN {
        names.push(format!("and {} more", keys.len() - SHOWN));
    }
    names.join(", ")
}

fn converted_from(origin: &Option<String>) -> String {
    origin.as_ref().map_or(String::new(), |s| format!(" (converted from {s})"))
}

/// Where and why `data.pkl` cannot be unpickled.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}{problem}", at(*.offset, *.opcode))]
pub struct PickleError {
    /// Byte offset of the opcode being executed.
    pub offset: usize,
    /// That opcode, if it could be read.
    pub opcode: Option<u8>,
    /// What went wrong.
    pub problem: PickleProblem,
}

fn at(offset: usize, opcode: Option<u8>) -> String {
    match opcode {
        Some(op) => format!("opcode 0x{op:02x} at byte {offset}: "),
        None => format!("at byte {offset}: "),
    }
}

/// What went wrong in the pickle.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleProblem {
    /// The data ends inside an opcode's argument, or before `STOP`.
    #[error("the pickle ends early ({needed} more bytes needed, {left} left)")]
    UnexpectedEnd {
        /// Bytes the opcode needs (1 for a text line's end).
        needed: usize,
        /// Bytes left.
        left: usize,
    },
    /// An opcode this reader does not implement.
    #[error("unsupported pickle opcode")]
    UnsupportedOpcode,
    /// A global outside the weights-only allow list; nothing is ever executed.
    #[error("unsupported object `{module}.{name}` (only tensors and plain containers are read, as torch.load(weights_only=True) does)")]
    UnsupportedGlobal {
        /// The global's module.
        module: String,
        /// Its name.
        name: String,
    },
    /// A storage class torch.save does not write.
    #[error("unsupported storage type `{module}.{name}`")]
    UnsupportedStorage {
        /// The class's module.
        module: String,
        /// Its name.
        name: String,
    },
    /// A `LONG1`/`LONG4` integer wider than 64 bits.
    #[error("an integer of {bytes} bytes does not fit 64 bits")]
    IntegerTooWide {
        /// Its length in bytes.
        bytes: usize,
    },
    /// A text literal (`INT`, `FLOAT`, `PUT`, `GET`) that does not parse.
    #[error("bad literal `{text}`")]
    BadLiteral {
        /// The literal.
        text: String,
    },
    /// A `str` that is not UTF-8.
    #[error("a pickled str is not valid UTF-8")]
    InvalidUtf8,
    /// An opcode that pops or reads an empty stack.
    #[error("the stack is empty")]
    EmptyStack,
    /// A mark-closing opcode without a `MARK`.
    #[error("it closes a MARK it never opened")]
    NoMark,
    /// `GET` of a memo entry never stored.
    #[error("memo entry {index} was never stored")]
    MissingMemo {
        /// The memo index.
        index: u64,
    },
    /// Containers nested deeper than the limit (also: `MARK`s open at once).
    #[error("containers nest deeper than {limit} levels")]
    NestingTooDeep {
        /// The deepest nesting accepted.
        limit: usize,
    },
    /// A list or dict grows deeper after it was put into another container, which only a
    /// cyclic structure needs (a state dict never is one).
    #[error(
        "a list or dict grows deeper after it was put into another container (a cycle?), which no state dict does"
    )]
    GrowsAfterNesting,
    /// The opcodes copy or hash more than a budget linear in the pickle's length (a
    /// memoized container or string reused over and over).
    #[error("it copies or hashes more than {limit} values, beyond what a pickle of its length can need")]
    TooMuchWork {
        /// The budget, in values copied or bytes hashed.
        limit: u64,
    },
    /// An operand of the wrong type or shape.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the opcode or object needs.
        expected: String,
        /// What the stack held.
        found: String,
    },
}

/// Weight or spectral normalization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// `weight_norm`.
    WeightNorm,
    /// `spectral_norm`.
    SpectralNorm,
}

impl std::fmt::Display for NormKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NormKind::WeightNorm => "weight norm",
            NormKind::SpectralNorm => "spectral norm",
        })
    }
}

/// The stored shapes a normalization's `dim` is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DimEvidence {
    /// Weight norm: `g`'s shape for a `v` of shape `v`.
    WeightNorm {
        /// `g`'s shape.
        g: Vec<i64>,
        /// `v`'s shape.
        v: Vec<i64>,
    },
    /// Spectral norm: `u`'s (and `v`'s, when known) length for a weight of shape `weight`.
    SpectralNorm {
        /// The weight's shape.
        weight: Vec<i64>,
        /// `u`'s length.
        u_len: i64,
        /// `v`'s length, when stored.
        v_len: Option<i64>,
    },
}

impl DimEvidence {
    /// Which normalization's dim.
    pub fn norm(&self) -> NormKind {
        match self {
            DimEvidence::WeightNorm { .. } => NormKind::WeightNorm,
            DimEvidence::SpectralNorm { .. } => NormKind::SpectralNorm,
        }
    }

    /// The option that settles it (`ConvertOptions::spectral_dim`).
    pub fn option(&self) -> &'static str {
        match self {
            DimEvidence::WeightNorm { .. } => "ConvertOptions::weight_norm_dim",
            DimEvidence::SpectralNorm { .. } => "ConvertOptions::spectral_dim",
        }
    }
}

impl std::fmt::Display for DimEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DimEvidence::WeightNorm { g, v } => write!(f, "g of shape {g:?} and v of shape {v:?}"),
            DimEvidence::SpectralNorm { weight, u_len, v_len: Some(v) } => {
                write!(f, "u (length {u_len}) and v (length {v}) for a weight of shape {weight:?}")
            }
            DimEvidence::SpectralNorm { weight, u_len, v_len: None } => {
                write!(f, "u (length {u_len}) for a weight of shape {weight:?}")
            }
        }
    }
}

/// Why a layer's conversion is refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConversionRefusal {
    /// Weight norm ↔ spectral norm.
    #[error("weight norm and spectral norm are different reparametrizations: no stored tensor of one is a tensor of the other (fold it, load the folded weight and register the other normalization instead)")]
    DifferentNorms,
    /// Folded → spectral norm without a seed for `u`, `v`.
    #[error("a plain weight has no power-iteration vectors u and v, and PyTorch's registration draws them at random: pass a seed (ConvertOptions::spectral_seed) to draw them as torch.manual_seed(seed) followed by spectral_norm(...) on each layer in checkpoint order would")]
    NeedsSeed,
    /// A 1-D weight under the parametrization API, to a scheme that needs `u`, `v`.
    #[error("a 1-D weight under the parametrization API has no u and v (PyTorch normalizes it with F.normalize and an eps the checkpoint does not record)")]
    NoVectors,
    /// Folded → normalized, and the model has no variable whose shape gives the dim.
    #[error("there is no model variable `{key}` to take {norm}'s dim from")]
    NoModelVariable {
        /// The variable looked for.
        key: String,
        /// Whose dim.
        norm: NormKind,
    },
    /// The stored shapes fit several dims, which may round differently.
    #[error("{evidence} fit dims {fits:?}{}; the stored tensors cannot decide, so choose it with {} (N for every such layer, or per layer prefix)", rounding_note(.evidence), .evidence.option())]
    AmbiguousDim {
        /// The shapes.
        evidence: DimEvidence,
        /// The dims they fit.
        fits: Vec<i64>,
    },
    /// The dim chosen for this layer does not fit its shapes.
    #[error("{} dim {dim} does not fit {evidence} (it fits {fits:?})", .evidence.norm())]
    DimDoesNotFit {
        /// The dim chosen.
        dim: i64,
        /// The shapes.
        evidence: DimEvidence,
        /// The dims they fit.
        fits: Vec<i64>,
    },
    /// The stored shapes fit no dim.
    #[error("{evidence} fit no {} dim{}", .evidence.norm(), fit_rule(.evidence))]
    NoDimFits {
        /// The shapes.
        evidence: DimEvidence,
    },
    /// Operator norm → another scheme: its σ is the operator norm of the layer's
    /// convolution, whose geometry and input size a state dict does not record.
    #[error("operator norm's σ is the norm of the layer's convolution on its input size, which a state dict does not record: fold the layer in the model (Normalized::fold or remove) and save that instead")]
    NeedsGeometry,
    /// A pair of schemes with no conversion.
    #[error("no such conversion")]
    NoSuchConversion,
}

fn rounding_note(evidence: &DimEvidence) -> &'static str {
    match evidence {
        DimEvidence::WeightNorm { .. } => " (-1: whole tensor), whose _weight_norm kernels may round differently",
        DimEvidence::SpectralNorm { .. } => "",
    }
}

fn fit_rule(evidence: &DimEvidence) -> &'static str {
    match evidence {
        DimEvidence::WeightNorm { .. } => {
            " (g is 0-dim for the whole tensor, else v's size on one axis and 1 elsewhere)"
        }
        DimEvidence::SpectralNorm { .. } => {
            " (u's length is the weight's size on the dim, v's the product of the rest)"
        }
    }
}
