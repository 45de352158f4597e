//! Loading a state dict into a `VarStore`, converting each layer to the scheme the store
//! has for it, all or nothing; and saving a `VarStore` as a PyTorch state dict.

use super::convert::{convert_layers, Conversion, ConvertOptions};
use super::io::{dtype_name, natural_cmp, StateDict};
use crate::backend::tch_err;
use crate::scheme::{detect, Scheme};
use crate::var_store::Store;
use norm_core::{CheckpointErrorKind, Error, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tch::nn::VarStore;
use tch::Tensor;

/// Options of [`load_state_dict`].
#[derive(Clone, Debug, PartialEq)]
pub struct LoadOptions {
    /// Refuse a missing or an unexpected key (PyTorch's `strict=True`, the default). With
    /// `false` they are listed in the [`LoadReport`] and the matching keys are loaded.
    /// Wrong shapes and dtypes are errors either way.
    pub strict: bool,
    /// Settings for conversions the stored tensors cannot decide (dims, folded → spectral
    /// norm's seed).
    pub convert: ConvertOptions,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { strict: true, convert: ConvertOptions::default() }
    }
}

/// What a load did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Layers whose checkpoint scheme was converted to the model's.
    pub conversions: Vec<Conversion>,
    /// Model variables the checkpoint has no entry for (non-strict loads only).
    pub missing_keys: Vec<String>,
    /// Checkpoint entries the model has no variable for (non-strict loads only).
    pub unexpected_keys: Vec<String>,
}

/// Loads `sd` into `vs`: each layer of the checkpoint is first converted to the scheme the
/// VarStore's own variable names show for that module prefix (weight norm hooks ↔
/// parametrizations, either → folded, legacy spectral norm upgraded, ..., see
/// [`mod@super::convert`]); then every key is checked (missing, unexpected), every shape and
/// dtype, and only then are all values copied in place into the existing variables (so
/// layers holding them see the new values). On any error nothing in `vs` has changed.
///
/// Errors name the key and both shapes (or dtypes), and the checkpoint key a converted
/// entry came from. Unlike PyTorch, a dtype mismatch is an error rather than a silent cast.
pub fn load_state_dict(vs: &mut VarStore, sd: &StateDict, options: &LoadOptions) -> Result<LoadReport> {
    load_into(vs, sd, options, "the checkpoint")
}

/// Reads the checkpoint at `path` (`.pt`/`.pth` written by `torch.save`, or
/// `.safetensors`) and loads it as [`load_state_dict`]; errors name the file.
pub fn load_checkpoint(vs: &mut VarStore, path: impl AsRef<Path>, options: &LoadOptions) -> Result<LoadReport> {
    let path = path.as_ref();
    let sd = StateDict::read(path)?;
    load_into(vs, &sd, options, &format!("checkpoint `{}`", path.display())).map_err(|e| e.in_file(path))
}

/// The VarStore's variables (parameters and buffers) under their names, which are
/// PyTorch's state-dict names, in [`natural_cmp`] order. The tensors are shallow (they
/// share storage with the variables).
pub fn state_dict(vs: &VarStore) -> Result<StateDict> {
    let mut entries = Store::of(vs).entries();
    entries.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    StateDict::new(entries)
}

/// Saves the VarStore's variables as a PyTorch state dict, in the format `path`'s
/// extension names (`.safetensors`, or `.pt`/`.pth` as `torch.save` writes it), ready for
/// `model.load_state_dict(..., strict=True)` of a PyTorch model of the same schemes.
pub fn save_state_dict(vs: &VarStore, path: impl AsRef<Path>) -> Result<()> {
    state_dict(vs)?.write(path)
}

fn load_into(vs: &mut VarStore, sd: &StateDict, options: &LoadOptions, origin: &str) -> Result<LoadReport> {
    let model: HashMap<String, Tensor> = Store::of(vs).entries().into_iter().collect();
    let mut model_keys: Vec<&String> = model.keys().collect();
    model_keys.sort_by(|a, b| natural_cmp(a, b));
    // A model never holds the legacy layout: read its `weight_orig` + `weight` as version 1.
    let model_schemes: HashMap<String, Scheme> =
        detect(model_keys.iter().map(|k| k.as_str()), |_| Some(1)).into_iter().map(|l| (l.prefix, l.scheme)).collect();
    let (entries, conversions) = convert_layers(
        sd,
        |layer| model_schemes.get(&layer.prefix).copied(),
        |key| model.get(key).map(Tensor::size),
        &options.convert,
    )?;

    let given: HashSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let missing_keys: Vec<String> =
        model_keys.iter().filter(|k| !given.contains(k.as_str())).map(|k| k.to_string()).collect();
    let unexpected_keys: Vec<String> =
        entries.iter().filter(|e| !model.contains_key(&e.key)).map(|e| e.key.clone()).collect();
    let from = |source: &Option<String>| source.as_ref().map_or(String::new(), |s| format!(" (converted from {s})"));
    if options.strict {
        if let Some(key) = missing_keys.first() {
            return Err(CheckpointErrorKind::MissingEntry { key: key.clone(), count: missing_keys.len() }.into());
        }
        if let Some(e) = entries.iter().find(|e| !model.contains_key(&e.key)) {
            let (key, origin, count) = (e.key.clone(), e.source.clone(), unexpected_keys.len());
            return Err(CheckpointErrorKind::UnexpectedEntry { key, origin, count }.into());
        }
    }
    let mut updates: Vec<(Tensor, &Tensor)> = Vec::new();
    for e in &entries {
        let Some(var) = model.get(&e.key) else { continue };
        if var.size() != e.tensor.size() {
            return Err(Error::ShapeMismatch {
                what: format!(
                    "`{}` in {origin}{} (expected: the model's shape, got: the checkpoint's)",
                    e.key,
                    from(&e.source)
                ),
                expected: var.size().iter().map(|&d| d as usize).collect(),
                got: e.tensor.size().iter().map(|&d| d as usize).collect(),
            });
        }
        if var.kind() != e.tensor.kind() {
            return Err(Error::UnsupportedDType {
                what: format!("`{}` in {origin}{}", e.key, from(&e.source)),
                got: dtype_name(e.tensor.kind()).to_string(),
                expected: format!(
                    "{}, the model's dtype (norm does not cast checkpoints; PyTorch's load_state_dict would, silently)",
                    dtype_name(var.kind())
                ),
            });
        }
        updates.push((var.shallow_clone(), &e.tensor));
    }
    // Stage every value on its variable's device, detached from any variable it aliases,
    // before the first write: after this point nothing can fail but the copies themselves.
    let aliased: HashSet<usize> = model.values().map(|t| t.data_ptr() as usize).collect();
    let mut staged = Vec::with_capacity(updates.len());
    for (var, value) in updates {
        let mut value = value.f_to_device(var.device()).map_err(tch_err("to_device"))?;
        if aliased.contains(&(value.data_ptr() as usize)) {
            value = crate::var_store::detached_copy(&value)?;
        }
        staged.push((var, value));
    }
    tch::no_grad(|| -> Result<()> {
        for (mut var, value) in staged {
            var.f_copy_(&value).map_err(tch_err("copy_"))?;
        }
        Ok(())
    })?;
    Ok(LoadReport { conversions, missing_keys, unexpected_keys })
}
