//! The one door into `tch::nn::VarStore`'s internals: the variables under PyTorch's dotted
//! state-dict names (`enc.fc.weight_g`), taken out, put back, renamed and found by identity.
//!
//! tch's public API can add a variable (`Path::add`, which silently renames a duplicate) and
//! read one, but not remove or rename it, which a reparametrization needs (PyTorch deletes
//! `weight` from `module._parameters`). [`Store`] is a handle on a VarStore's variables (the
//! same shared map the VarStore holds, so a layer can keep it) with a small API:
//!
//! | call | what it does |
//! | --- | --- |
//! | [`Store::contains`], [`Store::get`], [`Store::entries`] | read |
//! | [`Store::name_of`] | the name a tensor is registered under (Python's `is`, not equal values) |
//! | [`Store::add_copy`] | registers a detached copy of a value (an `nn.Parameter` or a buffer); refuses a taken name |
//! | [`Store::take`] | removes a variable, returning the tensor and its optimizer group |
//! | [`Store::put`] | registers a tensor itself (not a copy) in an optimizer group, or as a buffer |
//! | [`Store::rename`] | moves a variable to a new name, keeping the tensor (and so an optimizer's hold on it) |
//!
//! Nothing else in norm touches `VarStore::variables_`.

use crate::backend::tch_err;
use crate::ffi;
use norm_core::{Error, Result};
use std::sync::{Arc, Mutex, MutexGuard};
use tch::nn::{VarStore, Variables};
use tch::{Device, Tensor};

/// A handle on a [`VarStore`]'s variables (see the [module docs](self)). Cloning it is
/// cheap and every clone sees the same variables as the VarStore.
///
/// ```
/// use norm_tch::var_store::Store;
/// # fn main() -> norm_tch::Result<()> {
/// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
/// let w = vs.root().sub("fc").zeros("weight", &[2, 3]);
/// let store = Store::of(&vs);
/// assert_eq!(store.name_of(&w)?.as_deref(), Some("fc.weight"));
/// store.rename("fc.weight", "fc.weight_orig")?; // the same tensor under a new name
/// let taken = store.take("fc.weight_orig")?; // out of the store, with its optimizer group
/// assert_eq!(taken.group, Some(0));
/// store.put("fc.weight", &taken.tensor, taken.group)?; // back, as itself
/// assert!(vs.variables().contains_key("fc.weight"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Store {
    variables: Arc<Mutex<Variables>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("len", &self.lock().named_variables.len()).finish()
    }
}

/// A variable taken out of a store: the tensor and its optimizer group (`None` for a buffer).
#[derive(Debug)]
pub struct Taken {
    /// The tensor that was registered.
    pub tensor: Tensor,
    /// Its optimizer group if it was trainable, `None` for a buffer.
    pub group: Option<usize>,
}

fn name_taken(full: &str) -> Error {
    Error::invalid("name", full, "a parameter name not yet registered in the VarStore")
}

impl Store {
    /// The variables of `vs`.
    pub fn of(vs: &VarStore) -> Self {
        Store { variables: vs.variables_.clone() }
    }

    fn lock(&self) -> MutexGuard<'_, Variables> {
        // A poisoned lock only means another thread panicked mid-update; the map is still usable.
        self.variables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a variable is registered under `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.lock().named_variables.contains_key(name)
    }

    /// The variable `name` (a shallow handle), if registered.
    pub fn get(&self, name: &str) -> Option<Tensor> {
        self.lock().named_variables.get(name).map(Tensor::shallow_clone)
    }

    /// Every variable (parameters and buffers) under its name, as shallow handles, sorted
    /// by name.
    pub fn entries(&self) -> Vec<(String, Tensor)> {
        let mut entries: Vec<(String, Tensor)> =
            self.lock().named_variables.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// The name `tensor` itself is registered under (`None` if it is not a variable of the
    /// store). Errors if two names hold it.
    pub fn name_of(&self, tensor: &Tensor) -> Result<Option<String>> {
        let vars = self.lock();
        let mut names = vars.named_variables.iter().filter(|(_, t)| ffi::same_tensor(t, tensor)).map(|(k, _)| k);
        match (names.next(), names.next()) {
            (None, _) => Ok(None),
            (Some(name), None) => Ok(Some(name.clone())),
            (Some(a), Some(b)) => Err(Error::invalid(
                "tensor",
                format!("a tensor registered twice, as `{a}` and `{b}`"),
                "a tensor registered under one name",
            )),
        }
    }

    /// Registers a detached copy of `value` (on `value`'s device) as `name`: trainable in
    /// optimizer group `group` (an `nn.Parameter`), or a buffer for `None`. Returns the
    /// registered tensor. Errors if the name is taken; nothing is registered then.
    pub fn add_copy(&self, name: &str, value: &Tensor, group: Option<usize>) -> Result<Tensor> {
        if self.contains(name) {
            return Err(name_taken(name));
        }
        let copy = detached_copy(value)?;
        self.put(name, &copy, group)?;
        Ok(copy)
    }

    /// Registers `tensor` itself (not a copy) as `name`: trainable in optimizer group
    /// `group` (its `requires_grad` is set), or a buffer for `None`. Errors if the name is
    /// taken.
    pub fn put(&self, name: &str, tensor: &Tensor, group: Option<usize>) -> Result<()> {
        // tch does not export its `Var` type: a scratch store's `Path::add` makes the entry,
        // which moves over. `requires_grad` is set first (as tch's registration does), where
        // an error (a non-float tensor) is returned, not panicked on inside tch.
        let trainable = match group {
            Some(group) => {
                let tensor = tensor.f_set_requires_grad(true).map_err(tch_err("requires_grad_"))?;
                let scratch = VarStore::new(Device::Cpu);
                drop(scratch.root().set_group(group).add("tensor", tensor, true));
                let var = scratch.variables_.lock().unwrap_or_else(|e| e.into_inner()).trainable_variables.pop();
                Some(var)
            }
            None => None,
        };
        let mut vars = self.lock();
        if vars.named_variables.contains_key(name) {
            return Err(name_taken(name));
        }
        vars.trainable_variables.extend(trainable.flatten());
        vars.named_variables.insert(name.to_string(), tensor.shallow_clone());
        Ok(())
    }

    /// Removes variable `name` (from the named variables and, if trainable, from the
    /// optimizer's list) and returns it with its group. Errors if it is absent.
    pub fn take(&self, name: &str) -> Result<Taken> {
        let mut vars = self.lock();
        let tensor = vars.named_variables.remove(name).ok_or_else(|| missing(name))?;
        let position = vars.trainable_variables.iter().position(|v| ffi::same_tensor(&v.tensor, &tensor));
        let group = position.map(|i| vars.trainable_variables.remove(i).group);
        Ok(Taken { tensor, group })
    }

    /// Moves variable `from` to the name `to`, keeping the same tensor (and its place in the
    /// optimizer's list). Errors if `from` is absent or `to` is taken; nothing changes then.
    pub fn rename(&self, from: &str, to: &str) -> Result<Tensor> {
        let mut vars = self.lock();
        if vars.named_variables.contains_key(to) {
            return Err(name_taken(to));
        }
        let tensor = vars.named_variables.remove(from).ok_or_else(|| missing(from))?;
        vars.named_variables.insert(to.to_string(), tensor.shallow_clone());
        Ok(tensor)
    }
}

fn missing(name: &str) -> Error {
    let module = ModulePath::of_variable(name);
    Error::MissingParameter { name: name.to_string(), module: format!("the VarStore ({module})") }
}

/// A module's dotted prefix in a VarStore (`""` for the root, `"encoder.0"`, ...), as tch's
/// `Path` components joined by dots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModulePath {
    prefix: String,
}

impl ModulePath {
    /// The module at dotted path `prefix`.
    pub fn new(prefix: &str) -> Self {
        ModulePath { prefix: prefix.to_string() }
    }

    /// The module a tch `Path` names (`vs.root() / "enc" / "fc"` is `enc.fc`).
    pub fn of(path: &tch::nn::Path) -> Self {
        ModulePath { prefix: path.components().collect::<Vec<_>>().join(".") }
    }

    /// The module of the variable named `full`: the prefix before a state-dict suffix of
    /// [`crate::scheme`] (`enc.fc` for `enc.fc.weight` and for
    /// `enc.fc.parametrizations.weight.original`), else the prefix before the last dot.
    pub fn of_variable(full: &str) -> Self {
        match crate::scheme::split_key(full) {
            Some((prefix, _)) => ModulePath::new(prefix),
            None => ModulePath::new(full.rsplit_once('.').map_or("", |(prefix, _)| prefix)),
        }
    }

    /// The module's dotted prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full name of variable `name` of this module (`fc.weight`).
    pub fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }
}

impl std::fmt::Display for ModulePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            f.write_str("the root module")
        } else {
            write!(f, "module `{}`", self.prefix)
        }
    }
}

/// A detached deep copy (`t.detach().clone()`).
pub fn detached_copy(t: &Tensor) -> Result<Tensor> {
    let mut copy = t.f_empty_like().map_err(tch_err("empty_like"))?;
    tch::no_grad(|| copy.f_copy_(t)).map_err(tch_err("copy_"))?;
    Ok(copy)
}

/// Registers `value` (a detached copy) as trainable variable `name` under `path`, refusing a
/// name already taken (tch's `Path::add` would silently rename it `name__N`).
pub fn add_parameter(path: &tch::nn::Path, name: &str, value: Tensor) -> Result<Tensor> {
    if path.get(name).is_some() {
        return Err(name_taken(&path.path(name)));
    }
    let value = value.f_to_device(path.device()).map_err(tch_err("to_device"))?;
    Ok(path.add(name, detached_copy(&value)?, true))
}

/// The tch `Path` of the module at dotted prefix `prefix` in `vs` (`""`: the root;
/// `"enc.0"`: `vs.root() / "enc" / "0"`), for prefixes that come as data (a checkpoint's
/// keys, a spec file). Code that names a module itself writes the tch path directly.
pub fn path_at<'a>(vs: &'a VarStore, prefix: &str) -> tch::nn::Path<'a> {
    prefix.split('.').filter(|c| !c.is_empty()).fold(vs.root(), |path, component| path.sub(component))
}
