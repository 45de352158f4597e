//! What the opcodes that build objects may build: `REDUCE` of the allowed globals
//! (`collections.OrderedDict`, `dict`, `torch._utils._rebuild_tensor_v2`/`_rebuild_tensor`,
//! `_rebuild_parameter`), as `torch._weights_only_unpickler` allows them; `BUILD` of a
//! dict's attributes (`_metadata`); `SETITEMS`; and `BINPERSID`, the
//! `('storage', torch.XStorage, key, location, numel)` ids `torch.serialization`'s
//! `persistent_load` reads. Errors are [`PickleProblem`]s; the interpreter adds where.

use super::value::{DictObj, StorageRef, TensorRef, Value, STORAGE_TYPES};
use norm_core::error::PickleProblem;
use std::cell::RefCell;
use std::rc::Rc;

type R<T> = Result<T, PickleProblem>;

fn unexpected(expected: impl Into<String>, found: &Value) -> PickleProblem {
    PickleProblem::Unexpected { expected: expected.into(), found: found.describe() }
}

/// A `MARK`-delimited run of `k, v, k, v, ...` as pairs.
pub(super) fn pairs(items: Vec<Value>) -> R<Vec<(Value, Value)>> {
    if items.len() % 2 == 1 {
        return Err(PickleProblem::Unexpected {
            expected: "keys and values in pairs".into(),
            found: format!("{} items", items.len()),
        });
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// `SETITEM`/`SETITEMS` on the dict `target`.
pub(super) fn set_items(target: &mut Value, items: Vec<(Value, Value)>) -> R<()> {
    let Value::Dict(d) = target else { return Err(unexpected("a dict to set items on", target)) };
    let mut d = d.borrow_mut();
    for (k, v) in items {
        // A repeated key replaces the value in place, as in a Python dict.
        let same = |a: &Value| {
            matches!((a, &k), (Value::Str(x), Value::Str(y)) if x == y)
                || matches!((a, &k), (Value::Int(x), Value::Int(y)) if x == y)
        };
        match d.items.iter_mut().find(|(kk, _)| same(kk)) {
            Some(slot) => slot.1 = v,
            None => d.items.push((k, v)),
        }
    }
    Ok(())
}

/// `BUILD`: a dict's attributes, `(state, slotstate)` or a plain dict.
pub(super) fn build(target: &mut Value, state: Value) -> R<()> {
    let state = match state {
        Value::Tuple(t) if t.len() == 2 => t[0].clone(),
        s => s,
    };
    match (target, state) {
        (Value::Dict(d), Value::Dict(s)) => {
            d.borrow_mut().attrs.extend(s.borrow().items.iter().cloned());
            Ok(())
        }
        (Value::Dict(_), Value::None) => Ok(()),
        (Value::Dict(_), s) => Err(unexpected("a dict of attributes", &s)),
        (t, _) => Err(unexpected("a dict to set attributes on", t)),
    }
}

fn ints(v: &Value, what: &str) -> R<Vec<i64>> {
    let Value::Tuple(t) = v else { return Err(unexpected(format!("a tuple of ints as a tensor's {what}"), v)) };
    t.iter()
        .map(|x| match x {
            Value::Int(i) => Ok(*i),
            other => Err(unexpected(format!("an int in a tensor's {what}"), other)),
        })
        .collect()
}

/// `REDUCE`/`NEWOBJ`: `callable(*args)` for the allowed globals only.
pub(super) fn reduce(callable: Value, args: Value) -> R<Value> {
    let Value::Global(g) = &callable else { return Err(unexpected("a global to call", &callable)) };
    let Value::Tuple(args) = args else { return Err(unexpected("a tuple of arguments", &args)) };
    match (g.0.as_str(), g.1.as_str()) {
        ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => ordered_dict(&args),
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => rebuild_tensor(&g.1, &args),
        ("torch._utils", "_rebuild_parameter") | ("torch._utils", "_rebuild_parameter_with_state") => {
            match args.first() {
                Some(t @ Value::Tensor(_)) => Ok(t.clone()),
                Some(other) => Err(unexpected(format!("a tensor as {}'s argument", g.1), other)),
                None => Err(unexpected(format!("a tensor as {}'s argument", g.1), &Value::None)),
            }
        }
        (m, n) => Err(PickleProblem::UnsupportedGlobal { module: m.to_string(), name: n.to_string() }),
    }
}

/// `OrderedDict([(k, v), ...])` (or `OrderedDict()`).
fn ordered_dict(args: &[Value]) -> R<Value> {
    let mut dict = DictObj::default();
    if let Some(Value::List(items)) = args.first() {
        for item in items.borrow().iter() {
            match item {
                Value::Tuple(kv) if kv.len() == 2 => dict.items.push((kv[0].clone(), kv[1].clone())),
                other => return Err(unexpected("a (key, value) tuple as an OrderedDict item", other)),
            }
        }
    }
    Ok(Value::Dict(Rc::new(RefCell::new(dict))))
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`.
fn rebuild_tensor(name: &str, args: &[Value]) -> R<Value> {
    if args.len() < 4 {
        return Err(PickleProblem::Unexpected {
            expected: format!("at least 4 arguments to {name}"),
            found: args.len().to_string(),
        });
    }
    let Value::Storage(storage) = &args[0] else { return Err(unexpected(format!("a storage for {name}"), &args[0])) };
    let Value::Int(offset) = args[1] else { return Err(unexpected("an int as a tensor's storage offset", &args[1])) };
    let size = ints(&args[2], "size")?;
    let stride = ints(&args[3], "stride")?;
    if size.len() != stride.len() {
        return Err(PickleProblem::Unexpected {
            expected: "a tensor's size and stride of one length".into(),
            found: format!("size {size:?} and stride {stride:?}"),
        });
    }
    Ok(Value::Tensor(Rc::new(TensorRef { storage: storage.clone(), offset, size, stride })))
}

/// `BINPERSID`: `('storage', torch.XStorage, key, location, numel)`.
pub(super) fn persistent_load(pid: Value) -> R<Value> {
    let expected = "a persistent id ('storage', torch.XStorage, key, location, numel)";
    let bad = || unexpected(expected, &pid);
    let Value::Tuple(t) = &pid else { return Err(bad()) };
    if t.len() != 5 || t[0].as_str() != Some("storage") {
        return Err(bad());
    }
    let Value::Global(g) = &t[1] else { return Err(bad()) };
    let kind = STORAGE_TYPES
        .iter()
        .find(|(n, _)| g.0 == "torch" && g.1 == *n)
        .map(|(_, k)| *k)
        .ok_or_else(|| PickleProblem::UnsupportedStorage { module: g.0.clone(), name: g.1.clone() })?;
    let key = t[2].as_str().ok_or_else(bad)?.to_string();
    let Value::Int(numel) = t[4] else { return Err(bad()) };
    Ok(Value::Storage(Rc::new(StorageRef { key, kind, numel })))
}
