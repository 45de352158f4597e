//! Pure conversions of a state dict's layers between naming schemes (see
//! [`crate::scheme`]), with PyTorch's arithmetic:
//!
//! - weight norm hooks ↔ parametrizations, spectral norm hooks ↔ parametrizations: renames
//!   (`weight_g` = `original0`, `weight_v` = `original1`; `weight_orig` = `original`,
//!   `weight_u` = `0._u`, `weight_v` = `0._v`), the tensors untouched;
//! - weight norm → folded: `torch._weight_norm(v, g, dim)`, the weight every forward computes;
//! - spectral norm → folded: `weight_orig / σ`, `σ = dot(u, W_mat v)` with the stored `u`, `v`
//!   and no power iteration (`remove_spectral_norm`; the parametrization's eval-mode
//!   evaluation, with `vdot`);
//! - legacy spectral norm → hooks/parametrizations/folded: `SpectralNormLoadStateDictPreHook`'s
//!   upgrade, `σ = (weight_orig / weight).mean()`, `v = _solve_v_and_rescale(W_mat, u, σ)`;
//! - folded → weight norm (loading into a model only): `g = norm_except_dim(w, 2, dim)`,
//!   `v = w`, as `weight_norm(module)` registers them;
//! - folded → spectral norm (loading into a model only, with a seed): `u`, `v` drawn as
//!   `torch.manual_seed(seed)` then `spectral_norm(module)` draws them (parametrizations
//!   then run 15 + `n_power_iterations` power iterations, as registration does).
//!
//! Operator norm ([`Scheme::OperatorNorm`], norm's own) stays as it is under hooks and
//! parametrizations; folding it needs the layer's convolution geometry and input size, which a
//! state dict does not record, so it is refused (fold the layer in the model instead).
//!
//! Refused: weight norm ↔ spectral norm (different reparametrizations; no stored tensor
//! can become the other's), folded → spectral norm without a seed (there are no `u`, `v`),
//! a setting the stored shapes cannot decide (a dim) without an explicit choice.

//!
//! Files: `dims` (a normalization's dim from the stored shapes), `layer` (one layer's
//! conversion), `spectral` (spectral norm's arithmetic, norm-core's functions).

mod dims;
mod layer;
mod spectral;

use super::io::StateDict;
use crate::ffi::CpuGenerator;
use crate::scheme::{detect, Layer, Norm, Scheme};
pub use dims::{spectral_dims, weight_norm_dims};
use norm_core::{CheckpointErrorKind, Error, Result};
use std::collections::BTreeMap;
use tch::Tensor;

/// The scheme family a checkpoint is converted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The hook API's names: `weight_g`/`weight_v`, `weight_orig`/`weight_u`/`weight_v`.
    Hooks,
    /// The parametrization API's names: `parametrizations.weight.*`.
    Parametrizations,
    /// Every normalization folded into a plain `weight` (for inference).
    Folded,
}

impl Target {
    /// The scheme a layer of scheme `from` becomes. Folded layers stay folded (nothing
    /// says which plain weights to normalize).
    pub fn scheme_for(self, from: Scheme) -> Scheme {
        match (self, from.norm()) {
            (_, None) | (Target::Folded, _) => Scheme::Folded,
            (Target::Hooks, Some(Norm::Weight)) => Scheme::WeightNormHooks,
            (Target::Hooks, Some(Norm::Spectral)) => Scheme::SpectralNormHooks,
            (Target::Parametrizations, Some(Norm::Weight)) => Scheme::WeightNormParametrizations,
            (Target::Parametrizations, Some(Norm::Spectral)) => Scheme::SpectralNormParametrizations,
            // norm's own scheme, with no hook/parametrization twin in PyTorch: kept as it is.
            (Target::Hooks | Target::Parametrizations, Some(Norm::Operator)) => Scheme::OperatorNorm,
        }
    }
}

impl std::str::FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Target> {
        match s {
            "hooks" => Ok(Target::Hooks),
            "parametrizations" => Ok(Target::Parametrizations),
            "folded" => Ok(Target::Folded),
            _ => Err(Error::invalid("to", s, "hooks, parametrizations or folded")),
        }
    }
}

/// A dim setting that the stored shapes may not decide: per layer prefix, or one value
/// for every layer the shapes leave ambiguous.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DimChoice {
    /// Used for a layer with no entry in `per_layer` when it fits the layer's shapes.
    pub default: Option<i64>,
    /// Per module prefix; must fit that layer's shapes.
    pub per_layer: BTreeMap<String, i64>,
}

impl DimChoice {
    /// Adds a choice written `N` (the default) or `PREFIX=N` (for the layer `PREFIX`).
    pub fn add_flag(&mut self, text: &str) -> Result<()> {
        let (prefix, value) = match text.rsplit_once('=') {
            Some((p, v)) => (Some(p), v),
            None => (None, text),
        };
        let value: i64 = value.trim().parse().map_err(|_| Error::invalid("dim", text, "an integer N or PREFIX=N"))?;
        match prefix {
            Some(p) => drop(self.per_layer.insert(p.to_string(), value)),
            None => self.default = Some(value),
        }
        Ok(())
    }
}

/// Settings of the conversions that the stored tensors cannot decide.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvertOptions {
    /// weight norm's `dim` where `g`'s shape fits several (e.g. size-1 axes). A value is
    /// passed to `_weight_norm` as given, so `-2` takes ATen's path for `-2`.
    pub weight_norm_dim: DimChoice,
    /// spectral norm's `dim` where `u`'s length fits several axes (a square weight).
    pub spectral_dim: DimChoice,
    /// Folded → spectral norm: draw `u`, `v` from a CPU generator seeded with this, as
    /// `torch.manual_seed(seed)` then `spectral_norm(...)` on each layer in checkpoint
    /// order would. `None`: refuse.
    pub spectral_seed: Option<u64>,
    /// `eps` of those draws' normalization (PyTorch's default 1e-12).
    pub spectral_eps: f64,
    /// `n_power_iterations` of the registration being reproduced (default 1).
    pub spectral_n_power_iterations: i64,
    /// Whether that registration happened in training mode (a new module's default, true):
    /// the parametrization API then iterates `n_power_iterations` more times.
    pub spectral_registration_training: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            weight_norm_dim: DimChoice::default(),
            spectral_dim: DimChoice::default(),
            spectral_seed: None,
            spectral_eps: 1e-12,
            spectral_n_power_iterations: 1,
            spectral_registration_training: true,
        }
    }
}

/// One converted layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    /// The module prefix.
    pub prefix: String,
    /// The scheme it had.
    pub from: Scheme,
    /// The scheme it has now.
    pub to: Scheme,
}

impl std::fmt::Display for Conversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = if self.prefix.is_empty() { "(root)" } else { &self.prefix };
        write!(f, "{prefix}: {} -> {}", self.from, self.to)
    }
}

/// Converts every normalized layer of `sd` to `target`'s scheme; other keys pass through
/// untouched (same tensors, same dtype), in order. Returns the new state dict and one
/// [`Conversion`] per layer whose scheme changed.
pub fn convert(sd: &StateDict, target: Target, options: &ConvertOptions) -> Result<(StateDict, Vec<Conversion>)> {
    let (entries, conversions) = convert_layers(sd, |layer| Some(target.scheme_for(layer.scheme)), |_| None, options)?;
    Ok((
        StateDict::from_parts(entries.into_iter().map(|e| (e.key, e.tensor)).collect(), Default::default())?,
        conversions,
    ))
}

/// A converted entry and where it came from (for messages).
pub(crate) struct Entry {
    pub key: String,
    pub tensor: Tensor,
    /// The checkpoint key(s) it was computed from, when it was converted.
    pub source: Option<String>,
}

/// Converts each layer `plan` maps to a different scheme; `model_shape(key)` gives the
/// shape of a variable of the model being loaded, which decides dims for folded → normed.
pub(crate) fn convert_layers(
    sd: &StateDict,
    plan: impl Fn(&Layer) -> Option<Scheme>,
    model_shape: impl Fn(&str) -> Option<Vec<i64>>,
    options: &ConvertOptions,
) -> Result<(Vec<Entry>, Vec<Conversion>)> {
    let versions = sd.spectral_norm_versions();
    let layers = detect(sd.keys(), |p| versions.get(p).copied());
    let mut generator: Option<CpuGenerator> = None;
    // key -> index of the layer it belongs to, for layers that change.
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    let mut converted: Vec<Option<Vec<Entry>>> = Vec::new();
    let mut conversions = Vec::new();
    for layer in &layers {
        let to = match plan(layer) {
            Some(to) if to != layer.scheme => to,
            _ => continue,
        };
        let mut cx = layer::Context { model_shape: &model_shape, options, generator: &mut generator };
        let entries = layer::convert_layer(sd, layer, to, &mut cx)?;
        for key in layer.keys() {
            owner.insert(key, converted.len());
        }
        converted.push(Some(entries));
        conversions.push(Conversion { prefix: layer.prefix.clone(), from: layer.scheme, to });
    }
    let mut out = Vec::with_capacity(sd.len());
    for (key, tensor) in sd.entries() {
        match owner.get(key) {
            None => out.push(Entry { key: key.clone(), tensor: tensor.shallow_clone(), source: None }),
            Some(&i) => out.extend(converted[i].take().into_iter().flatten()),
        }
    }
    refuse_duplicates(&out)?;
    Ok((out, conversions))
}

/// A converted key that meets another entry (a stale `weight` left beside
/// `weight_g`/`weight_v` and the folded `weight`, say) is
/// [`CheckpointErrorKind::DuplicateKey`], naming every such key: the state dict must not
/// hold it twice, and which one is meant is not ours to guess.
fn refuse_duplicates(entries: &[Entry]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    let (mut repeated, mut reported) = (Vec::new(), std::collections::HashSet::new());
    for e in entries {
        if !seen.insert(e.key.as_str()) && reported.insert(e.key.as_str()) {
            repeated.push(e.key.clone());
        }
    }
    if repeated.is_empty() {
        Ok(())
    } else {
        Err(CheckpointErrorKind::DuplicateKey { keys: repeated }.into())
    }
}
