//! Adding, finding and removing named variables in a `tch::nn::VarStore`, under
//! PyTorch's dotted parameter names (`fc.weight_g`).
//!
//! tch's `Path::add` silently renames a duplicate; these helpers refuse instead, and can
//! remove a variable, which a reparametrization needs (PyTorch deletes `weight` from
//! `module._parameters`).

use crate::backend::tch_err;
use norm_core::{Error, Result};
use tch::nn::{VarStore, Variables};
use tch::Tensor;

/// A module's dotted prefix in a VarStore (`""` for the root, `"encoder.0"`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModulePath {
    prefix: String,
}

fn same_tensor(a: &Tensor, b: &Tensor) -> bool {
    a.data_ptr() == b.data_ptr() && a.size() == b.size() && a.kind() == b.kind()
}

fn lock(vs: &VarStore) -> std::sync::MutexGuard<'_, Variables> {
    // A poisoned lock only means another thread panicked mid-update; the map is still usable.
    vs.variables_.lock().unwrap_or_else(|e| e.into_inner())
}

/// A detached deep copy (`t.detach().clone()`).
pub fn detached_copy(t: &Tensor) -> Result<Tensor> {
    let mut copy = t.f_empty_like().map_err(tch_err("empty_like"))?;
    tch::no_grad(|| copy.f_copy_(t)).map_err(tch_err("copy_"))?;
    Ok(copy)
}

impl ModulePath {
    /// The module at dotted path `prefix`.
    pub fn new(prefix: &str) -> Self {
        ModulePath { prefix: prefix.to_string() }
    }

    /// The module's dotted prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full name of parameter `name` of this module (`fc.weight`).
    pub fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }

    /// The variable `name` of this module, if registered.
    pub fn get(&self, vs: &VarStore, name: &str) -> Option<Tensor> {
        lock(vs).named_variables.get(&self.full_name(name)).map(Tensor::shallow_clone)
    }

    /// Registers a detached copy of `value` as trainable variable `name` (an
    /// `nn.Parameter`) on the VarStore's device. Errors if the name is taken.
    pub fn add_parameter(&self, vs: &VarStore, name: &str, value: &Tensor) -> Result<Tensor> {
        self.add(vs, name, value, true)
    }

    fn add(&self, vs: &VarStore, name: &str, value: &Tensor, trainable: bool) -> Result<Tensor> {
        let full = self.full_name(name);
        if lock(vs).named_variables.contains_key(&full) {
            return Err(Error::invalid("name", &full, "a parameter name not yet registered in the VarStore"));
        }
        let copy = detached_copy(&value.f_to_device(vs.device()).map_err(tch_err("to_device"))?)?;
        // tch paths take one component at a time: descend through every dot of the full name.
        let mut components: Vec<&str> = full.split('.').collect();
        let leaf = components.pop().unwrap_or_default();
        let path = components.into_iter().fold(vs.root(), |p, c| p.sub(c));
        Ok(path.add(leaf, copy, trainable))
    }

    /// Registers a detached copy of `value` as non-trainable variable `name` (a buffer,
    /// like `module.register_buffer`). Errors if the name is taken.
    pub fn add_buffer(&self, vs: &VarStore, name: &str, value: &Tensor) -> Result<Tensor> {
        self.add(vs, name, value, false)
    }

    /// Moves variable `from` to the name `to`, keeping the same tensor (and so the
    /// identity an optimizer holds). Errors if `from` is absent or `to` is taken.
    pub fn rename(&self, vs: &VarStore, from: &str, to: &str) -> Result<Tensor> {
        let (from, to) = (self.full_name(from), self.full_name(to));
        let mut vars = lock(vs);
        if vars.named_variables.contains_key(&to) {
            return Err(Error::invalid("name", &to, "a parameter name not yet registered in the VarStore"));
        }
        let tensor = vars.named_variables.remove(&from).ok_or_else(|| Error::MissingParameter {
            name: from.clone(),
            module: format!("module `{}`", self.prefix),
        })?;
        vars.named_variables.insert(to, tensor.shallow_clone());
        Ok(tensor)
    }

    /// Removes variable `name` and returns it; errors naming the module if it is absent.
    pub fn remove(&self, vs: &VarStore, name: &str) -> Result<Tensor> {
        let full = self.full_name(name);
        let mut vars = lock(vs);
        let tensor = vars.named_variables.remove(&full).ok_or_else(|| Error::MissingParameter {
            name: full.clone(),
            module: format!("module `{}`", self.prefix),
        })?;
        vars.trainable_variables.retain(|v| !same_tensor(&v.tensor, &tensor));
        Ok(tensor)
    }
}
