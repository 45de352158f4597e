//! The one error type of the norm libraries.
//!
//! Every fallible operation returns [`Result`]. Errors caused by caller input name
//! the argument, the value that was given and what was expected, the way PyTorch's
//! own `ValueError`/`RuntimeError` messages do, so a caller never has to guess.
//!
//! File problems keep their [`std::io::Error`] and path ([`Error::Io`]); problems with a
//! checkpoint's content (its zip archive, pickle, safetensors header, or a scheme
//! conversion of its layers) are a typed [`CheckpointErrorKind`] ([`Error::Checkpoint`]).
//! Messages speak of arguments and values, never of a command line's flags: a CLI matches
//! on the kind to add its own hints.

mod checkpoint;

pub use checkpoint::{CheckpointErrorKind, ConversionRefusal, DimEvidence, NormKind, PickleError, PickleProblem};
use std::path::{Path, PathBuf};

/// Errors raised by norm's algorithms and backends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument had a value outside its domain (PyTorch raises `ValueError`).
    #[error("invalid argument `{name}`: got {value}, expected {expected}")]
    InvalidArgument {
        /// The argument's name as PyTorch spells it (`lr`, `betas[0]`, `dim`, ...).
        name: &'static str,
        /// The value that was passed, formatted.
        value: String,
        /// What the argument must be.
        expected: String,
    },

    /// A dimension index does not exist for a tensor of the given rank.
    #[error("dim {dim} is out of range for a tensor of rank {rank}: expected {expected}")]
    DimOutOfRange {
        /// The dimension that was asked for.
        dim: i64,
        /// The tensor's rank.
        rank: usize,
        /// The accepted range.
        expected: String,
    },

    /// Two tensors that must agree in shape do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Which tensor or operation.
        what: String,
        /// The required shape.
        expected: Vec<usize>,
        /// The shape that was found.
        got: Vec<usize>,
    },

    /// A tensor has a dtype the operation does not support.
    #[error("unsupported dtype for {what}: got {got}, expected {expected}")]
    UnsupportedDType {
        /// Which tensor or operation.
        what: String,
        /// The dtype found.
        got: String,
        /// The dtypes accepted.
        expected: String,
    },

    /// A normalization was registered twice on the same parameter (PyTorch: RuntimeError).
    #[error("cannot register two {norm} reparametrizations on the same parameter `{name}`")]
    AlreadyRegistered {
        /// `weight_norm` or `spectral_norm`.
        norm: &'static str,
        /// The parameter name.
        name: String,
    },

    /// A combination of arguments PyTorch accepts at the call but then fails on (it raises
    /// `RuntimeError` from deeper down); norm reports it up front.
    #[error("unsupported {what}: {reason}")]
    Unsupported {
        /// The argument or combination, with its value.
        what: String,
        /// Why it cannot work, and what to pass instead.
        reason: String,
    },

    /// A named parameter or state entry does not exist.
    #[error("no parameter `{name}` in {module}")]
    MissingParameter {
        /// The parameter name that was asked for.
        name: String,
        /// Where it was looked up.
        module: String,
    },

    /// An error raised by a backend (for the tch backend: libtorch's message).
    #[error("backend error in {op}: {message}")]
    Backend {
        /// The operation that failed.
        op: &'static str,
        /// The backend's message.
        message: String,
    },

    /// A normalization in checked mode ([`crate::guards`]) met a quantity that is zero or not
    /// finite (NaN, ±inf) where the forward would divide by it or carry it into the weight:
    /// instead of a NaN weight, this error names the layer, the quantity and its value.
    #[error("{layer}: {quantity} is {value}, expected {expected} (the normalized weight would not be finite)")]
    NonFinite {
        /// The layer, by its module path (`module `disc.0``).
        layer: String,
        /// What was checked: `weight`, `weight_g`, `‖v‖`, `σ`.
        quantity: &'static str,
        /// The first offending value (read as float32).
        value: f64,
        /// What it must be (`finite`, `finite and non-zero`).
        expected: &'static str,
    },

    /// A file could not be opened, read or written; `source` is the operating system's error.
    #[error("cannot {op} `{}`", .path.display())]
    Io {
        /// What was being done: `open`, `read`, `create`, `write`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint (a file, or a state dict in memory when `path` is `None`) that cannot be
    /// read, written, converted or loaded as asked; `kind` says what is wrong, naming the
    /// key, the value and what was expected.
    #[error("{}{kind}", checkpoint::path_prefix(.path.as_deref()))]
    Checkpoint {
        /// The checkpoint file, when the problem concerns one.
        path: Option<PathBuf>,
        /// What is wrong (boxed: it keeps shapes and names, and `Result<T>` stays small;
        /// match on it through [`Error::checkpoint_kind`]).
        kind: Box<CheckpointErrorKind>,
    },
}

/// `Result` with norm's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(name: &'static str, value: impl std::fmt::Display, expected: impl Into<String>) -> Self {
        Error::InvalidArgument { name, value: value.to_string(), expected: expected.into() }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// Shorthand for [`Error::Checkpoint`] about the file at `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, kind: CheckpointErrorKind) -> Self {
        Error::Checkpoint { path: Some(path.into()), kind: Box::new(kind) }
    }

    /// Names the file a [`Error::Checkpoint`] about a state dict in memory came from (other
    /// errors, and checkpoint errors that already name a file, are returned as they are).
    pub fn in_file(self, file: &Path) -> Self {
        match self {
            Error::Checkpoint { path: None, kind } => Error::Checkpoint { path: Some(file.to_path_buf()), kind },
            e => e,
        }
    }

    /// The checkpoint kind, if this is an [`Error::Checkpoint`].
    pub fn checkpoint_kind(&self) -> Option<&CheckpointErrorKind> {
        match self {
            Error::Checkpoint { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

impl From<CheckpointErrorKind> for Error {
    /// A checkpoint error about a state dict in memory (no file; see [`Error::in_file`]).
    fn from(kind: CheckpointErrorKind) -> Self {
        Error::Checkpoint { path: None, kind: Box::new(kind) }
    }
}
