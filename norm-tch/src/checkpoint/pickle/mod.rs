//! The `data.pkl` record of a `torch.save` archive: a restricted unpickler and a pickler.
//!
//! Reading ([`unpickle`]) accepts what `torch.load(weights_only=True)` accepts for a state
//! dict: plain containers (dict, `collections.OrderedDict`, list, tuple, set), scalars,
//! strings, tensors (`torch._utils._rebuild_tensor_v2`/`_rebuild_tensor`, parameters through
//! `_rebuild_parameter`) whose storages are persistent ids `('storage', torch.XStorage, key,
//! location, numel)`. Any other global is refused by name, as the weights-only unpickler
//! does; nothing is ever executed. (libtorch's own C++ unpickler, `torch::pickle_load`,
//! turns every `OrderedDict` into `None`, so it cannot read `torch.save(model.state_dict())`.)
//!
//! Writing ([`pickle_state_dict`]) produces what `torch.save(state_dict)` produces for an
//! `OrderedDict` of tensors, at pickle protocol 2 (torch.save's default).
//!
//! - `value`: the unpickled values (`Value`, `DictObj`, `TensorRef`, `StorageRef`) and
//!   torch's storage class names;
//! - `unpickler`: the opcode interpreter (`pickle._Unpickler.load`);
//! - `objects`: what `REDUCE`, `BUILD`, `SETITEMS` and `BINPERSID` may build (the
//!   weights-only allow list, `_rebuild_tensor_v2`, `torch.serialization`'s `persistent_load`);
//! - `pickler`: the writer (`torch.save`'s `_save` at protocol 2).

mod objects;
mod pickler;
mod unpickler;
mod value;

#[cfg(test)]
pub(crate) use pickler::{pickle_raw, RawTensor};
pub(crate) use pickler::{pickle_state_dict, PickleEntry};
pub(crate) use unpickler::unpickle;
#[cfg(test)]
pub(crate) use value::{DictObj, Seq};
pub(crate) use value::{TensorRef, Value};
