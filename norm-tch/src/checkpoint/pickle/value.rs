//! The values the restricted unpickler builds (Python's objects as far as a state dict
//! needs them) and torch's storage class names (`torch.FloatStorage`, ... as
//! `torch.serialization` pickles them).
//!
//! Containers are bounded: each knows its nesting height (checked against
//! [`MAX_NESTING`] by the unpickler), a dict finds a key in O(1) (Python's `d[k] = v`:
//! a repeated key keeps its first position and takes the last value), and dropping a
//! value tree is iterative ([`Seq`] and [`DictObj`] implement `Drop` with an explicit
//! stack), so no value, however deep, is walked or dropped by recursion.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use tch::Kind;

/// The deepest nesting of containers the unpickler accepts (a state dict nests 4 or 5
/// levels; Python's pickler itself stops near its recursion limit of 1000).
pub(crate) const MAX_NESTING: usize = 1000;

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

/// The items of a tuple or list, with their nesting height (1 + the deepest item's).
#[derive(Default)]
pub(crate) struct Seq {
    pub items: Vec<Value>,
    pub height: usize,
    /// Whether it was put into another container (its height may then no longer grow, or
    /// the height recorded by its ancestors would be stale).
    pub contained: bool,
}

impl Seq {
    /// A sequence of `items`, its height computed from theirs.
    pub fn new(items: Vec<Value>) -> Seq {
        let height = 1 + items.iter().map(Value::height).max().unwrap_or(0);
        Seq { items, height, contained: false }
    }
}

/// A dict key as Python compares them, for the keys a state dict uses (`1 == True ==
/// 1.0`); other keys (tuples, NaN, ...) are never found equal to another.
#[derive(Clone, PartialEq, Eq, Hash)]
enum DictKey {
    Str(Rc<str>),
    Int(i64),
    Float(u64),
    None,
}

impl DictKey {
    fn of(v: &Value) -> Option<DictKey> {
        match v {
            Value::Str(s) => Some(DictKey::Str(Rc::clone(s))),
            Value::Int(i) => Some(DictKey::Int(*i)),
            Value::Bool(b) => Some(DictKey::Int(*b as i64)),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(DictKey::Int(*f as i64)),
            Value::Float(f) if !f.is_nan() => Some(DictKey::Float(f.to_bits())),
            Value::None => Some(DictKey::None),
            _ => None,
        }
    }
}

/// A dict (plain or `OrderedDict`), with the attributes a `BUILD` set on it
/// (`state_dict()._metadata`). Keys are unique as in Python.
#[derive(Default)]
pub(crate) struct DictObj {
    pub items: Vec<(Value, Value)>,
    pub attrs: Vec<(Value, Value)>,
    index: HashMap<DictKey, usize>,
    attr_index: HashMap<DictKey, usize>,
    pub height: usize,
    pub contained: bool,
}

impl DictObj {
    /// `d[k] = v`: a new key goes last, a repeated one keeps its place and takes `v`.
    /// (The caller, `objects::set_items`, keeps `height` up to date.)
    pub fn insert(&mut self, k: Value, v: Value) {
        match DictKey::of(&k) {
            Some(key) => match self.index.get(&key) {
                Some(&i) => self.items[i].1 = v,
                None => {
                    self.index.insert(key, self.items.len());
                    self.items.push((k, v));
                }
            },
            None => self.items.push((k, v)),
        }
    }

    /// `vars(obj).update(state)` as `BUILD` does: attributes by name, the last one kept.
    pub fn set_attr(&mut self, k: Value, v: Value) {
        match DictKey::of(&k) {
            Some(key) => match self.attr_index.get(&key) {
                Some(&i) => self.attrs[i].1 = v,
                None => {
                    self.attr_index.insert(key, self.attrs.len());
                    self.attrs.push((k, v));
                }
            },
            None => self.attrs.push((k, v)),
        }
    }
}

/// An unpickled value (scalars keep their payload for `Debug`, though only tensors,
/// strings, ints and containers are read).
#[derive(Clone)]
#[allow(dead_code)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Seq>),
    List(Rc<RefCell<Seq>>),
    Dict(Rc<RefCell<DictObj>>),
    Global(Rc<(String, String)>),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

/// Shallow: a container shows its kind and length, never its items (no recursion).
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "bytes({})", b.len()),
            Value::Tuple(t) => write!(f, "tuple({})", t.items.len()),
            Value::List(l) => write!(f, "list({})", l.borrow().items.len()),
            Value::Dict(d) => write!(f, "dict({})", d.borrow().items.len()),
            Value::Global(g) => write!(f, "{}.{}", g.0, g.1),
            Value::Storage(s) => write!(f, "{s:?}"),
            Value::Tensor(t) => write!(f, "{t:?}"),
        }
    }
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

    /// The nesting height: 0 for a scalar, 1 + the deepest item's for a container. A
    /// container being borrowed (it is being filled with itself) counts as `MAX_NESTING`.
    pub fn height(&self) -> usize {
        match self {
            Value::Tuple(t) => t.height,
            Value::List(l) => l.try_borrow().map_or(MAX_NESTING, |l| l.height),
            Value::Dict(d) => d.try_borrow().map_or(MAX_NESTING, |d| d.height),
            _ => 0,
        }
    }

    /// Records that the value was put into a container.
    pub fn mark_contained(&self) {
        match self {
            Value::List(l) => {
                if let Ok(mut l) = l.try_borrow_mut() {
                    l.contained = true;
                }
            }
            Value::Dict(d) => {
                if let Ok(mut d) = d.try_borrow_mut() {
                    d.contained = true;
                }
            }
            _ => {}
        }
    }
}

/// Drops `values` and everything only they own with an explicit stack: a container whose
/// last reference goes has its items moved onto the stack before it is freed, so no drop
/// recurses more than one level, however deep the tree.
fn drop_iteratively(mut stack: Vec<Value>) {
    while let Some(v) = stack.pop() {
        match v {
            Value::Tuple(t) => {
                if let Ok(mut seq) = Rc::try_unwrap(t) {
                    stack.append(&mut seq.items);
                }
            }
            Value::List(l) => {
                if let Ok(cell) = Rc::try_unwrap(l) {
                    stack.append(&mut cell.into_inner().items);
                }
            }
            Value::Dict(d) => {
                if let Ok(cell) = Rc::try_unwrap(d) {
                    let mut d = cell.into_inner();
                    for (k, v) in std::mem::take(&mut d.items).into_iter().chain(std::mem::take(&mut d.attrs)) {
                        stack.push(k);
                        stack.push(v);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Drop for Seq {
    fn drop(&mut self) {
        if !self.items.is_empty() {
            drop_iteratively(std::mem::take(&mut self.items));
        }
    }
}

impl Drop for DictObj {
    fn drop(&mut self) {
        if self.items.is_empty() && self.attrs.is_empty() {
            return;
        }
        let mut stack = Vec::with_capacity(2 * (self.items.len() + self.attrs.len()));
        for (k, v) in std::mem::take(&mut self.items).into_iter().chain(std::mem::take(&mut self.attrs)) {
            stack.push(k);
            stack.push(v);
        }
        drop_iteratively(stack);
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
