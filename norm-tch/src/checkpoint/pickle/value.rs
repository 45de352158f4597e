//! The values the restricted unpickler builds (Python's objects as far as a state dict
//! needs them) and torch's storage class names (`torch.FloatStorage`, ... as
//! `torch.serialization` pickles them).

use std::cell::RefCell;
use std::rc::Rc;
use tch::Kind;

/// A storage a tensor views: `data/<key>` in the archive.
#[derive(Debug)]
pub(crate) struct StorageRef {
    pub key: String,
    pub kind: Kind,
    pub numel: i64,
}

/// A tensor as `_rebuild_tensor_v2(storage, offset, size, stride, ...)` describes it.
#[derive(Debug)]
pub(crate) struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// A dict (plain or `OrderedDict`), with the attributes a `BUILD` set on it
/// (`state_dict()._metadata`).
#[derive(Debug, Default)]
pub(crate) struct DictObj {
    pub items: Vec<(Value, Value)>,
    pub attrs: Vec<(Value, Value)>,
}

/// An unpickled value (scalars keep their payload for `Debug`, though only tensors,
/// strings, ints and containers are read).
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<DictObj>>),
    Global(Rc<(String, String)>),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// What the value is, for messages (`a dict`, `the global os.system`).
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Str(_) => "a str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::List(_) => "a list".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Global(g) => format!("the global {}.{}", g.0, g.1),
            Value::Storage(_) => "a storage".into(),
            Value::Tensor(_) => "a tensor".into(),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// The storage class names `torch.save` pickles, and their dtypes.
pub(crate) const STORAGE_TYPES: &[(&str, Kind)] = &[
    ("FloatStorage", Kind::Float),
    ("DoubleStorage", Kind::Double),
    ("HalfStorage", Kind::Half),
    ("BFloat16Storage", Kind::BFloat16),
    ("LongStorage", Kind::Int64),
    ("IntStorage", Kind::Int),
    ("ShortStorage", Kind::Int16),
    ("CharStorage", Kind::Int8),
    ("ByteStorage", Kind::Uint8),
    ("BoolStorage", Kind::Bool),
    ("ComplexFloatStorage", Kind::ComplexFloat),
    ("ComplexDoubleStorage", Kind::ComplexDouble),
    ("UntypedStorage", Kind::Uint8),
];

/// The storage class name of a dtype (`torch.FloatStorage` for float32).
pub(crate) fn storage_type_name(kind: Kind) -> Option<&'static str> {
    STORAGE_TYPES.iter().find(|(n, k)| *k == kind && *n != "UntypedStorage").map(|(n, _)| *n)
}
