//! What the opcodes that build objects may build: `REDUCE` of the allowed globals
//! (`collections.OrderedDict`, `dict`, `torch._utils._rebuild_tensor_v2`/`_rebuild_tensor`,
//! `_rebuild_parameter`), as `torch._weights_only_unpickler` allows them; `BUILD` of a
//! dict's attributes (`_metadata`); `SETITEMS`; and `BINPERSID`, the
//! `('storage', torch.XStorage, key, location, numel)` ids `torch.serialization`'s
//! `persistent_load` reads. Errors are [`PickleProblem`]s; the interpreter adds where.
//!
//! Every function here is linear in what it is given; what it copies out of shared
//! (memoized) containers is charged to the unpickler's work budget by the caller through
//! the counts it returns.

use super::value::{DictObj, Seq, StorageRef, TensorRef, Value, MAX_NESTING, STORAGE_TYPES};
use norm_core::error::PickleProblem;
use std::cell::RefCell;
use std::rc::Rc;

type R<T> = Result<T, PickleProblem>;

/// 1 + the deepest child's height (0 for none).
fn children_height<'a>(children: impl IntoIterator<Item = &'a Value>) -> usize {
    children.into_iter().map(|c| c.height() + 1).max().unwrap_or(0)
}

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

/// The height a container reaches when `children` are put into it, checked against
/// [`MAX_NESTING`]; a container already put into another may not grow deeper (the
/// heights its ancestors recorded would be stale: only a cycle needs that).
///
/// `children`'s heights are read before the container is borrowed for the change, so a
/// container put into itself counts its own height (and is refused as grown after nesting).
pub(super) fn grown_height(current: usize, contained: bool, children: usize) -> R<usize> {
    let height = current.max(children);
    if height > MAX_NESTING {
        return Err(PickleProblem::NestingTooDeep { limit: MAX_NESTING });
    }
    if contained && height > current {
        return Err(PickleProblem::GrowsAfterNesting);
    }
    Ok(height)
}

/// `SETITEM`/`SETITEMS` on the dict `target`: Python's `d[k] = v` for each pair (a
/// repeated key keeps its first position and takes the last value, as `torch.load` gives).
pub(super) fn set_items(target: &Value, items: Vec<(Value, Value)>) -> R<()> {
    let Value::Dict(d) = target else { return Err(unexpected("a dict to set items on", target)) };
    let children = children_height(items.iter().flat_map(|(k, v)| [k, v]));
    items.iter().for_each(|(k, v)| {
        k.mark_contained();
        v.mark_contained();
    });
    let mut d = d.try_borrow_mut().map_err(|_| PickleProblem::GrowsAfterNesting)?;
    d.height = grown_height(d.height, d.contained, children)?;
    for (k, v) in items {
        d.insert(k, v);
    }
    Ok(())
}

/// `APPEND`/`APPENDS` on the list `target`.
pub(super) fn append(target: &Value, items: Vec<Value>) -> R<()> {
    let Value::List(l) = target else { return Err(unexpected("a list to append to", target)) };
    let children = children_height(&items);
    items.iter().for_each(Value::mark_contained);
    let mut l = l.try_borrow_mut().map_err(|_| PickleProblem::GrowsAfterNesting)?;
    l.height = grown_height(l.height, l.contained, children)?;
    l.items.extend(items);
    Ok(())
}

/// A new tuple or list of `items` (checked nesting).
pub(super) fn seq(items: Vec<Value>) -> R<Seq> {
    grown_height(0, false, children_height(&items))?;
    items.iter().for_each(Value::mark_contained);
    Ok(Seq::new(items))
}

/// A new dict of `items` (`DICT`), keys unique as in Python.
pub(super) fn dict(items: Vec<(Value, Value)>) -> R<Value> {
    let target = Value::Dict(Rc::new(RefCell::new(DictObj::default())));
    set_items(&target, items)?;
    Ok(target)
}

/// `BUILD`: a dict's attributes, `(state, slotstate)` or a plain dict. Returns the number
/// of attributes copied.
pub(super) fn build(target: &Value, state: Value) -> R<usize> {
    let state = match state {
        Value::Tuple(t) if t.items.len() == 2 => t.items[0].clone(),
        s => s,
    };
    match (target, state) {
        (Value::Dict(d), Value::Dict(s)) => {
            let attrs: Vec<(Value, Value)> = s.borrow().items.clone();
            let children = children_height(attrs.iter().flat_map(|(k, v)| [k, v]));
            attrs.iter().for_each(|(k, v)| {
                k.mark_contained();
                v.mark_contained();
            });
            let mut d = d.try_borrow_mut().map_err(|_| PickleProblem::GrowsAfterNesting)?;
            d.height = grown_height(d.height, d.contained, children)?;
            let n = attrs.len();
            for (k, v) in attrs {
                d.set_attr(k, v);
            }
            Ok(n)
        }
        (Value::Dict(_), Value::None) => Ok(0),
        (Value::Dict(_), s) => Err(unexpected("a dict of attributes", &s)),
        (t, _) => Err(unexpected("a dict to set attributes on", t)),
    }
}

fn ints(v: &Value, what: &str) -> R<Vec<i64>> {
    let Value::Tuple(t) = v else { return Err(unexpected(format!("a tuple of ints as a tensor's {what}"), v)) };
    t.items
        .iter()
        .map(|x| match x {
            Value::Int(i) => Ok(*i),
            other => Err(unexpected(format!("an int in a tensor's {what}"), other)),
        })
        .collect()
}

/// How many values `REDUCE` of `callable(*args)` copies (charged before it runs).
pub(super) fn reduce_cost(args: &Value) -> usize {
    let Value::Tuple(args) = args else { return 1 };
    1 + args
        .items
        .iter()
        .map(|a| match a {
            Value::Tuple(t) => t.items.len(),
            Value::List(l) => l.try_borrow().map_or(0, |l| l.items.len()),
            _ => 1,
        })
        .sum::<usize>()
}

/// `REDUCE`/`NEWOBJ`: `callable(*args)` for the allowed globals only.
pub(super) fn reduce(callable: Value, args: Value) -> R<Value> {
    let Value::Global(g) = &callable else { return Err(unexpected("a global to call", &callable)) };
    let Value::Tuple(args) = args else { return Err(unexpected("a tuple of arguments", &args)) };
    let args = &args.items;
    match (g.0.as_str(), g.1.as_str()) {
        ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => ordered_dict(args),
        ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => rebuild_tensor(&g.1, args),
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

/// `OrderedDict([(k, v), ...])` (or `OrderedDict()`), keys unique as in Python.
fn ordered_dict(args: &[Value]) -> R<Value> {
    let mut items = Vec::new();
    if let Some(Value::List(list)) = args.first() {
        let list = list.try_borrow().map_err(|_| PickleProblem::GrowsAfterNesting)?;
        items.reserve(list.items.len());
        for item in &list.items {
            match item {
                Value::Tuple(kv) if kv.items.len() == 2 => items.push((kv.items[0].clone(), kv.items[1].clone())),
                other => return Err(unexpected("a (key, value) tuple as an OrderedDict item", other)),
            }
        }
    }
    dict(items)
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
    let t = &t.items;
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
