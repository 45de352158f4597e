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
//! Refused: weight norm ↔ spectral norm (different reparametrizations; no stored tensor
//! can become the other's), folded → spectral norm without a seed (there are no `u`, `v`),
//! a setting the stored shapes cannot decide (a dim) without an explicit choice.

use super::io::StateDict;
use crate::backend::{tch_err, TchBackend};
use crate::ffi::CpuGenerator;
use crate::scheme::{detect, Layer, Norm, Scheme, Suffix};
use norm_core::functional::normalize;
use norm_core::spectral_norm::{check_n_power_iterations, hooks, parametrizations};
use norm_core::weight_norm::WeightNormDim;
use norm_core::{Error, Result};
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
    /// Adds a command-line value: `N` (the default) or `PREFIX=N`.
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
        StateDict::from_parts(entries.into_iter().map(|e| (e.key, e.tensor)).collect(), Default::default()),
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
        let entries = convert_layer(sd, layer, to, &model_shape, options, &mut generator)?;
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
    Ok((out, conversions))
}

fn get(sd: &StateDict, layer: &Layer, suffix: Suffix) -> Result<Tensor> {
    let key = suffix.key(&layer.prefix);
    sd.get(&key).map(Tensor::shallow_clone).ok_or_else(|| Error::MissingParameter {
        name: key,
        module: format!("the checkpoint (layer `{}` is {}, which needs it)", layer.prefix, layer.scheme),
    })
}

fn shape(t: &Tensor) -> Vec<i64> {
    t.size()
}

/// A layer's tensors in one canonical form.
enum Canon {
    Folded(Tensor),
    WeightNorm {
        g: Tensor,
        v: Tensor,
    },
    /// `u`, `v` absent only for a 1-D weight under the parametrization API.
    Spectral {
        orig: Tensor,
        u: Option<Tensor>,
        v: Option<Tensor>,
    },
}

fn refuse(layer: &Layer, to: Scheme, reason: impl Into<String>) -> Error {
    Error::Unsupported {
        what: format!("conversion of layer `{}` from {} to {}", layer.prefix, layer.scheme, to),
        reason: reason.into(),
    }
}

fn convert_layer(
    sd: &StateDict,
    layer: &Layer,
    to: Scheme,
    model_shape: &dyn Fn(&str) -> Option<Vec<i64>>,
    options: &ConvertOptions,
    generator: &mut Option<CpuGenerator>,
) -> Result<Vec<Entry>> {
    let prefix = layer.prefix.as_str();
    if let (Some(a), Some(b)) = (layer.scheme.norm(), to.norm()) {
        if a != b {
            return Err(refuse(layer, to, "weight norm and spectral norm are different reparametrizations: no stored tensor of one is a tensor of the other (fold it, load the folded weight and register the other normalization instead)"));
        }
    }
    let source = layer.keys().iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    let canon = match layer.scheme {
        Scheme::Folded => Canon::Folded(get(sd, layer, Suffix::Weight)?),
        Scheme::WeightNormHooks => {
            Canon::WeightNorm { g: get(sd, layer, Suffix::WeightG)?, v: get(sd, layer, Suffix::WeightV)? }
        }
        Scheme::WeightNormParametrizations => {
            Canon::WeightNorm { g: get(sd, layer, Suffix::Original0)?, v: get(sd, layer, Suffix::Original1)? }
        }
        Scheme::SpectralNormHooks => Canon::Spectral {
            orig: get(sd, layer, Suffix::WeightOrig)?,
            u: Some(get(sd, layer, Suffix::WeightU)?),
            v: Some(get(sd, layer, Suffix::WeightV)?),
        },
        Scheme::SpectralNormParametrizations => {
            let orig = get(sd, layer, Suffix::Original)?;
            if orig.dim() == 1 && !layer.present.contains(&Suffix::ParamU) && !layer.present.contains(&Suffix::ParamV) {
                Canon::Spectral { orig, u: None, v: None }
            } else {
                Canon::Spectral {
                    orig,
                    u: Some(get(sd, layer, Suffix::ParamU)?),
                    v: Some(get(sd, layer, Suffix::ParamV)?),
                }
            }
        }
        Scheme::SpectralNormLegacy => {
            let orig = get(sd, layer, Suffix::WeightOrig)?;
            let weight = get(sd, layer, Suffix::Weight)?;
            let u = get(sd, layer, Suffix::WeightU)?;
            check_vector(prefix, Suffix::WeightU, &u)?;
            let dim = resolve_spectral_dim(prefix, &shape(&orig), u.size()[0], None, &options.spectral_dim)?;
            let v = tch::no_grad(|| upgrade_legacy(&orig, &weight, &u, dim))?;
            Canon::Spectral { orig, u: Some(u), v: Some(v) }
        }
    };
    let entry =
        |suffix: Suffix, tensor: Tensor| Entry { key: suffix.key(prefix), tensor, source: Some(source.clone()) };
    let mut entries = match (canon, to) {
        (Canon::WeightNorm { g, v }, Scheme::WeightNormHooks) => {
            vec![entry(Suffix::WeightG, g), entry(Suffix::WeightV, v)]
        }
        (Canon::WeightNorm { g, v }, Scheme::WeightNormParametrizations) => {
            vec![entry(Suffix::Original0, g), entry(Suffix::Original1, v)]
        }
        (Canon::WeightNorm { g, v }, Scheme::Folded) => {
            let dim = resolve_weight_norm_dim(prefix, &shape(&g), &shape(&v), &options.weight_norm_dim)?;
            let w = tch::no_grad(|| Tensor::f_internal_weight_norm(&v, &g, dim)).map_err(tch_err("_weight_norm"))?;
            vec![entry(Suffix::Weight, w)]
        }
        (Canon::Spectral { orig, u: Some(u), v: Some(v) }, Scheme::SpectralNormHooks) => {
            vec![entry(Suffix::WeightOrig, orig), entry(Suffix::WeightU, u), entry(Suffix::WeightV, v)]
        }
        (Canon::Spectral { orig, u: Some(u), v: Some(v) }, Scheme::SpectralNormParametrizations) => {
            vec![entry(Suffix::Original, orig), entry(Suffix::ParamU, u), entry(Suffix::ParamV, v)]
        }
        (Canon::Spectral { orig, u: None, v: None }, Scheme::SpectralNormParametrizations) => {
            vec![entry(Suffix::Original, orig)]
        }
        (Canon::Spectral { u: None, .. }, _) => {
            return Err(refuse(layer, to, "a 1-D weight under the parametrization API has no u and v (PyTorch normalizes it with F.normalize and an eps the checkpoint does not record)"));
        }
        (Canon::Spectral { orig, u: Some(u), v: Some(v) }, Scheme::Folded) => {
            check_vector(prefix, layer_u_suffix(layer.scheme), &u)?;
            check_vector(prefix, layer_v_suffix(layer.scheme), &v)?;
            let dim =
                resolve_spectral_dim(prefix, &shape(&orig), u.size()[0], Some(v.size()[0]), &options.spectral_dim)?;
            let parametrized = layer.scheme == Scheme::SpectralNormParametrizations;
            let w = tch::no_grad(|| fold_spectral(&orig, &u, &v, dim, parametrized))?;
            vec![entry(Suffix::Weight, w)]
        }
        (Canon::Folded(w), Scheme::WeightNormHooks | Scheme::WeightNormParametrizations) => {
            let g_key = if to == Scheme::WeightNormHooks { Suffix::WeightG } else { Suffix::Original0 };
            let g_shape = model_shape(&g_key.key(prefix)).ok_or_else(|| {
                refuse(
                    layer,
                    to,
                    format!("there is no model variable `{}` to take weight norm's dim from", g_key.key(prefix)),
                )
            })?;
            let dim = resolve_weight_norm_dim(prefix, &g_shape, &shape(&w), &options.weight_norm_dim)?;
            let g = tch::no_grad(|| Tensor::f_norm_except_dim(&w, 2, dim)).map_err(tch_err("norm_except_dim"))?;
            let v = crate::var_store::detached_copy(&w)?;
            if to == Scheme::WeightNormHooks {
                vec![entry(Suffix::WeightG, g), entry(Suffix::WeightV, v)]
            } else {
                vec![entry(Suffix::Original0, g), entry(Suffix::Original1, v)]
            }
        }
        (Canon::Folded(w), Scheme::SpectralNormHooks | Scheme::SpectralNormParametrizations) => {
            let parametrized = to == Scheme::SpectralNormParametrizations;
            if parametrized && w.dim() == 1 {
                return Ok(vec![entry(Suffix::Original, w)]);
            }
            let Some(seed) = options.spectral_seed else {
                return Err(refuse(
                    layer,
                    to,
                    "a plain weight has no power-iteration vectors u and v, and PyTorch's registration draws them at random: pass a seed (LoadOptions.convert.spectral_seed) to draw them as torch.manual_seed(seed) followed by spectral_norm(...) on each layer in checkpoint order would",
                ));
            };
            let (u_suffix, v_suffix) =
                if parametrized { (Suffix::ParamU, Suffix::ParamV) } else { (Suffix::WeightU, Suffix::WeightV) };
            let u_len = model_shape(&u_suffix.key(prefix)).and_then(|s| s.first().copied());
            let v_len = model_shape(&v_suffix.key(prefix)).and_then(|s| s.first().copied());
            let u_len = u_len.ok_or_else(|| {
                refuse(
                    layer,
                    to,
                    format!("there is no model variable `{}` to take spectral norm's dim from", u_suffix.key(prefix)),
                )
            })?;
            let dim = resolve_spectral_dim(prefix, &shape(&w), u_len, v_len, &options.spectral_dim)?;
            if generator.is_none() {
                *generator = Some(CpuGenerator::new(seed)?);
            }
            let generator = generator.as_mut().expect("set above");
            let (u, v) = tch::no_grad(|| seeded_u_v(&w, dim, parametrized, options, generator))?;
            if parametrized {
                vec![entry(Suffix::Original, w), entry(Suffix::ParamU, u), entry(Suffix::ParamV, v)]
            } else {
                vec![entry(Suffix::WeightOrig, w), entry(Suffix::WeightU, u), entry(Suffix::WeightV, v)]
            }
        }
        (_, to) => return Err(refuse(layer, to, "no such conversion")),
    };
    // A rename: each entry comes from the key in the same position of the source scheme.
    let rename =
        layer.scheme.norm().is_some() && layer.scheme != Scheme::SpectralNormLegacy && to.norm() == layer.scheme.norm();
    if rename {
        for (e, s) in entries.iter_mut().zip(layer.scheme.suffixes()) {
            e.source = Some(format!("`{}`", s.key(prefix)));
        }
    }
    Ok(entries)
}

fn layer_u_suffix(scheme: Scheme) -> Suffix {
    if scheme == Scheme::SpectralNormParametrizations {
        Suffix::ParamU
    } else {
        Suffix::WeightU
    }
}

fn layer_v_suffix(scheme: Scheme) -> Suffix {
    if scheme == Scheme::SpectralNormParametrizations {
        Suffix::ParamV
    } else {
        Suffix::WeightV
    }
}

fn check_vector(prefix: &str, suffix: Suffix, t: &Tensor) -> Result<()> {
    if t.dim() != 1 {
        return Err(Error::invalid(
            "checkpoint",
            format!("`{}` of shape {:?}", suffix.key(prefix), t.size()),
            "a 1-D power-iteration vector",
        ));
    }
    Ok(())
}

/// The dims weight norm's `g` shape fits for a `v` of shape `v`: `[-1]` (whole tensor)
/// for a 0-dim `g`, else every axis `d` with `g.shape == [1, .., v.shape[d], .., 1]`.
pub fn weight_norm_dims(g: &[i64], v: &[i64]) -> Vec<i64> {
    (-1..v.len() as i64).filter(|&d| fits_weight_norm(d, g, v)).collect()
}

fn fits_weight_norm(dim: i64, g: &[i64], v: &[i64]) -> bool {
    let v_usize: Vec<usize> = v.iter().map(|&x| x.max(0) as usize).collect();
    match WeightNormDim::new(Some(dim)).g_shape(&v_usize) {
        Ok(expected) => expected.iter().map(|&x| x as i64).eq(g.iter().copied()),
        Err(_) => false,
    }
}

/// The axes `d` of a weight of shape `w` that spectral norm's `u` (length `u_len`) and `v`
/// (length `v_len`, when known) fit: `w[d] == u_len` and `numel / w[d] == v_len`.
pub fn spectral_dims(w: &[i64], u_len: i64, v_len: Option<i64>) -> Vec<i64> {
    let numel: i64 = w.iter().product();
    (0..w.len() as i64).filter(|&d| fits_spectral(d, w, numel, u_len, v_len)).collect()
}

fn fits_spectral(d: i64, w: &[i64], numel: i64, u_len: i64, v_len: Option<i64>) -> bool {
    let Ok(d) = usize::try_from(d) else { return false };
    d < w.len()
        && w[d] == u_len
        && match v_len {
            None => true,
            Some(v) => w[d] > 0 && numel / w[d] == v,
        }
}

fn resolve_weight_norm_dim(prefix: &str, g: &[i64], v: &[i64], choice: &DimChoice) -> Result<i64> {
    let candidates = weight_norm_dims(g, v);
    if let Some(&dim) = choice.per_layer.get(prefix) {
        if fits_weight_norm(dim, g, v) {
            return Ok(dim);
        }
        return Err(Error::Unsupported {
            what: format!("weight-norm dim {dim} for layer `{prefix}`"),
            reason: format!("g of shape {g:?} does not fit it for v of shape {v:?} (it fits {candidates:?})"),
        });
    }
    if let Some(dim) = choice.default.filter(|&d| fits_weight_norm(d, g, v)) {
        return Ok(dim);
    }
    match candidates.as_slice() {
        [dim] => Ok(*dim),
        [] => Err(Error::Unsupported {
            what: format!("weight norm's g of layer `{prefix}`"),
            reason: format!("g of shape {g:?} fits no dim for v of shape {v:?} (g is 0-dim for the whole tensor, else v's size on one axis and 1 elsewhere)"),
        }),
        many => Err(Error::Unsupported {
            what: format!("weight-norm dim of layer `{prefix}`"),
            reason: format!(
                "g of shape {g:?} and v of shape {v:?} fit dims {many:?} (-1: whole tensor), whose _weight_norm kernels may round differently; the stored tensors cannot decide, so pass it: --weight-norm-dim {prefix}=N (or --weight-norm-dim N), ConvertOptions::weight_norm_dim in Rust"
            ),
        }),
    }
}

fn resolve_spectral_dim(prefix: &str, w: &[i64], u_len: i64, v_len: Option<i64>, choice: &DimChoice) -> Result<usize> {
    let candidates = spectral_dims(w, u_len, v_len);
    let numel: i64 = w.iter().product();
    let normalize = |d: i64| if d < 0 { d + w.len() as i64 } else { d };
    let stored = match v_len {
        Some(v) => format!("u (length {u_len}) and v (length {v})"),
        None => format!("u (length {u_len})"),
    };
    if let Some(&dim) = choice.per_layer.get(prefix) {
        if fits_spectral(normalize(dim), w, numel, u_len, v_len) {
            return Ok(normalize(dim) as usize);
        }
        return Err(Error::Unsupported {
            what: format!("spectral-norm dim {dim} for layer `{prefix}`"),
            reason: format!("{stored} do not fit it for a weight of shape {w:?} (they fit {candidates:?})"),
        });
    }
    if let Some(dim) = choice.default.map(normalize).filter(|&d| fits_spectral(d, w, numel, u_len, v_len)) {
        return Ok(dim as usize);
    }
    match candidates.as_slice() {
        [dim] => Ok(*dim as usize),
        [] => Err(Error::Unsupported {
            what: format!("spectral-norm vectors of layer `{prefix}`"),
            reason: format!("{stored} fit no axis of a weight of shape {w:?}"),
        }),
        many => Err(Error::Unsupported {
            what: format!("spectral-norm dim of layer `{prefix}`"),
            reason: format!(
                "{stored} fit dims {many:?} of a weight of shape {w:?}; the stored tensors cannot decide, so pass it: --spectral-dim {prefix}=N (or --spectral-dim N), ConvertOptions::spectral_dim in Rust"
            ),
        }),
    }
}

/// `remove_spectral_norm` (hooks: `dot`) or the parametrization's eval-mode evaluation
/// (`vdot`): `weight_orig / σ`, `σ` from the stored `u`, `v`.
fn fold_spectral(orig: &Tensor, u: &Tensor, v: &Tensor, dim: usize, parametrized: bool) -> Result<Tensor> {
    if parametrized {
        let w_mat = parametrizations::weight_to_matrix::<TchBackend>(orig, dim)?;
        let u = crate::ffi::clone_contiguous(u)?;
        let v = crate::ffi::clone_contiguous(v)?;
        let sigma = u.f_vdot(&w_mat.f_mv(&v).map_err(tch_err("mv"))?).map_err(tch_err("vdot"))?;
        orig.f_div(&sigma).map_err(tch_err("div"))
    } else {
        let w_mat = hooks::weight_to_matrix::<TchBackend>(orig, dim)?;
        let sigma = u.f_dot(&w_mat.f_mv(v).map_err(tch_err("mv"))?).map_err(tch_err("dot"))?;
        orig.f_div(&sigma).map_err(tch_err("div"))
    }
}

/// `SpectralNormLoadStateDictPreHook` for a version-None state dict: the `v` that makes
/// `u = normalize(W v)` and `u·W v = σ`, `σ = (weight_orig / weight).mean()`, op for op.
fn upgrade_legacy(orig: &Tensor, weight: &Tensor, u: &Tensor, dim: usize) -> Result<Tensor> {
    let e = |op| tch_err(op);
    let sigma = orig.f_div(weight).map_err(e("div"))?.f_mean(None).map_err(e("mean"))?;
    let w_mat = hooks::weight_to_matrix::<TchBackend>(orig, dim)?;
    // _solve_v_and_rescale: multi_dot([W.t().mm(W).pinverse(), W.t(), u.unsqueeze(1)]).squeeze(1)
    let pinv = w_mat.f_tr().map_err(e("t"))?.f_mm(&w_mat).map_err(e("mm"))?.f_pinverse(1e-15).map_err(e("pinverse"))?;
    let w_t = w_mat.f_tr().map_err(e("t"))?;
    let u_col = u.f_unsqueeze(1).map_err(e("unsqueeze"))?;
    let mut v = Tensor::f_linalg_multi_dot(&[pinv, w_t, u_col])
        .map_err(e("linalg_multi_dot"))?
        .f_squeeze_dim(1)
        .map_err(e("squeeze"))?;
    // v.mul_(target_sigma / torch.dot(u, torch.mv(weight_mat, v)))
    let denom = u.f_dot(&w_mat.f_mv(&v).map_err(e("mv"))?).map_err(e("dot"))?;
    let factor = sigma.f_div(&denom).map_err(e("div"))?;
    drop(v.f_mul_(&factor).map_err(e("mul_"))?);
    Ok(v)
}

/// `u`, `v` as registration leaves them after `torch.manual_seed(seed)` (the generator
/// is shared by the layers of one conversion, in order): hooks draw u then v, normalized;
/// parametrizations draw the same way, then iterate 15 times, then `n_power_iterations`
/// more when registered in training mode.
fn seeded_u_v(
    w: &Tensor,
    dim: usize,
    parametrized: bool,
    options: &ConvertOptions,
    generator: &mut CpuGenerator,
) -> Result<(Tensor, Tensor)> {
    let n = check_n_power_iterations(options.spectral_n_power_iterations)?;
    let eps = options.spectral_eps;
    let w_cpu = w.f_to_device(tch::Device::Cpu).map_err(tch_err("to_device"))?;
    let w_mat = if parametrized {
        parametrizations::weight_to_matrix::<TchBackend>(&w_cpu, dim)?
    } else {
        hooks::weight_to_matrix::<TchBackend>(&w_cpu, dim)?
    };
    let (h, width) = (w_mat.size()[0], w_mat.size()[1]);
    let u = normalize::<TchBackend>(&generator.normal(&w_cpu, h)?, 0, eps, None)?;
    let v = normalize::<TchBackend>(&generator.normal(&w_cpu, width)?, 0, eps, None)?;
    if !parametrized {
        return Ok((u, v));
    }
    let mut state =
        parametrizations::SpectralNormState::<TchBackend> { dim, eps, n_power_iterations: n, u: Some(u), v: Some(v) };
    state.power_method(&w_mat, parametrizations::REGISTRATION_ITERATIONS)?;
    if options.spectral_registration_training {
        drop(state.forward(&w_cpu, true)?);
    }
    match (state.u, state.v) {
        (Some(u), Some(v)) => Ok((u, v)),
        _ => unreachable!("a 2-D matrix has u and v"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_from_shapes() {
        assert_eq!(weight_norm_dims(&[4, 1, 1], &[4, 3, 3]), vec![0]);
        assert_eq!(weight_norm_dims(&[], &[4, 3]), vec![-1]);
        assert_eq!(weight_norm_dims(&[1, 5, 1], &[4, 5, 2]), vec![1]);
        assert_eq!(weight_norm_dims(&[1, 1], &[1, 1]), vec![0, 1]);
        assert_eq!(spectral_dims(&[6, 7], 6, Some(7)), vec![0]);
        assert_eq!(spectral_dims(&[5, 5], 5, Some(5)), vec![0, 1]);
        assert_eq!(spectral_dims(&[4, 5, 2], 5, None), vec![1]);
    }

    #[test]
    fn dim_flags() {
        let mut c = DimChoice::default();
        c.add_flag("1").unwrap();
        c.add_flag("enc.0=0").unwrap();
        assert_eq!(c.default, Some(1));
        assert_eq!(c.per_layer.get("enc.0"), Some(&0));
        assert!(c.add_flag("x=y").is_err());
        assert_eq!(resolve_spectral_dim("a", &[5, 5], 5, Some(5), &c).unwrap(), 1);
        assert_eq!(resolve_spectral_dim("enc.0", &[5, 5], 5, Some(5), &c).unwrap(), 0);
        assert!(resolve_spectral_dim("a", &[5, 5], 5, Some(5), &DimChoice::default()).is_err());
    }
}
