//! The parametrization API, `torch.nn.utils.parametrizations.weight_norm` and
//! `.spectral_norm`, around a [`WeightedLayer`], under PyTorch's state-dict names:
//!
//! | norm | parameters | buffers |
//! | --- | --- | --- |
//! | weight_norm | `parametrizations.weight.original0` (g), `parametrizations.weight.original1` (v) | — |
//! | spectral_norm | `parametrizations.weight.original` | `parametrizations.weight.0._u`, `parametrizations.weight.0._v` |
//!
//! The weight is recomputed on every access (`_WeightNorm.forward` is
//! `torch._weight_norm(original1, original0, dim)`; `_SpectralNorm.forward` iterates
//! first in training mode, see [`norm_core::spectral_norm::parametrizations`]).
//! Registering spectral norm runs 15 power iterations plus, since
//! `register_parametrization` evaluates the weight once (in the module's mode, training for
//! a new module), `n_power_iterations` more. Weight norm is registered `unsafe=True`: no
//! evaluation. [`Parametrized::remove`] is `remove_parametrizations(module, "weight",
//! leave_parametrized=True)`, which evaluates the weight once more (iterating in training mode).
//!
//! Beyond PyTorch: [`Parametrized::fold`]/[`Parametrized::unfold`] trade the
//! parametrization for a plain `weight` and back keeping the tensors an optimizer holds,
//! and an eval-mode forward reuses the weight it computed last while the originals (and
//! spectral norm's `_u`, `_v`) are unchanged; see [`super::fold`].

use super::fold::{self, CacheStats, Foldable, WeightCache};
use super::WeightedLayer;
use crate::backend::{tch_err, TchBackend};
use crate::layers::spectral_norm::SpectralNormOptions;
use crate::var_store::{detached_copy, ModulePath};
use norm_core::spectral_norm::parametrizations::SpectralNormState;
use norm_core::weight_norm::{compute_weight, initial_g, WeightNormDim};
use norm_core::{Error, Result};
use tch::nn::VarStore;
use tch::Tensor;

/// Which parametrization, with its tensors (handles into the VarStore).
#[derive(Debug)]
enum Parametrization {
    WeightNorm { original0: Tensor, original1: Tensor, dim: WeightNormDim },
    SpectralNorm { original: Tensor, state: SpectralNormState<TchBackend> },
}

impl Parametrization {
    /// The tensor that becomes the plain weight when folded: v (`original1`) or `original`.
    fn plain(&self) -> &Tensor {
        match self {
            Parametrization::WeightNorm { original1, .. } => original1,
            Parametrization::SpectralNorm { original, .. } => original,
        }
    }

    /// Its name in the store while unfolded.
    fn plain_name(&self) -> &'static str {
        match self {
            Parametrization::WeightNorm { .. } => ORIGINAL1,
            Parametrization::SpectralNorm { .. } => ORIGINAL,
        }
    }

    /// The tensors kept out of the store while folded, with their names.
    fn kept(&self) -> Vec<(&'static str, &Tensor)> {
        match self {
            Parametrization::WeightNorm { original0, .. } => vec![(ORIGINAL0, original0)],
            Parametrization::SpectralNorm { state, .. } => match (state.u.as_ref(), state.v.as_ref()) {
                (Some(u), Some(v)) => vec![(U, u), (V, v)],
                _ => vec![],
            },
        }
    }
}

/// A layer whose `weight` is parametrized (`module.parametrizations.weight`).
///
/// Folded ([`Parametrized::fold`]), the layer is the plain layer with `<prefix>.weight`,
/// which is the tensor of `original1` (weight norm's v) or `original` (spectral norm); g,
/// resp. the `_u`, `_v` buffers, are kept out of the store until [`Parametrized::unfold`].
#[derive(Debug)]
pub struct Parametrized<L: WeightedLayer> {
    layer: L,
    path: ModulePath,
    parametrization: Parametrization,
    folded: bool,
    /// Weight norm's g: its optimizer group (`None`: a buffer) while folded.
    g_group: Option<usize>,
    cache: WeightCache,
}

const PREFIX: &str = "parametrizations.weight";
const ORIGINAL: &str = "parametrizations.weight.original";
const ORIGINAL0: &str = "parametrizations.weight.original0";
const ORIGINAL1: &str = "parametrizations.weight.original1";
const U: &str = "parametrizations.weight.0._u";
const V: &str = "parametrizations.weight.0._v";

fn check_not_parametrized(vs: &VarStore, path: &ModulePath, norm: &'static str) -> Result<()> {
    let taken = ["original", "original0", "original1"].iter().any(|n| path.get(vs, &format!("{PREFIX}.{n}")).is_some());
    if taken {
        return Err(Error::AlreadyRegistered { norm, name: path.full_name("weight") });
    }
    Ok(())
}

impl<L: WeightedLayer> Parametrized<L> {
    /// `parametrizations.weight_norm(module, "weight", dim)` for the layer at `prefix`:
    /// `original0 = norm_except_dim(weight, 2, dim)`, `original1 = weight` (new parameters;
    /// `weight` is removed). `dim = None` is stored as -1: the whole tensor.
    pub fn weight_norm(vs: &VarStore, prefix: &str, layer: L, dim: Option<i64>) -> Result<Self> {
        let path = ModulePath::new(prefix);
        check_not_parametrized(vs, &path, "weight_norm")?;
        let weight = super::weight_norm::layer_weight(vs, &path, &layer)?;
        let dim = WeightNormDim::new(dim);
        let g = tch::no_grad(|| initial_g::<TchBackend>(&weight, dim))?;
        let v = detached_copy(&weight)?;
        drop(path.remove(vs, "weight")?);
        let original0 = path.add_parameter(vs, &format!("{PREFIX}.original0"), &g)?;
        let original1 = path.add_parameter(vs, &format!("{PREFIX}.original1"), &v)?;
        Ok(Parametrized {
            layer,
            path,
            parametrization: Parametrization::WeightNorm { original0, original1, dim },
            folded: false,
            g_group: None,
            cache: WeightCache::default(),
        })
    }

    /// `parametrizations.spectral_norm(module, "weight", n_power_iterations, eps, dim)` for
    /// the layer at `prefix`, registered on a module in training mode (PyTorch's default
    /// for a new module). See [`Parametrized::spectral_norm_in_mode`].
    pub fn spectral_norm(vs: &VarStore, prefix: &str, layer: L, options: SpectralNormOptions) -> Result<Self> {
        Self::spectral_norm_in_mode(vs, prefix, layer, options, true)
    }

    /// As [`Parametrized::spectral_norm`], for a module whose training flag is `training`
    /// at registration (it decides whether registration's extra evaluation iterates).
    ///
    /// Errors, in PyTorch's order: a dim outside `[-ndim, ndim)`; `n_power_iterations <= 0`;
    /// the weight already parametrized; `<prefix>.weight` missing or not the layer's.
    pub fn spectral_norm_in_mode(
        vs: &VarStore,
        prefix: &str,
        layer: L,
        options: SpectralNormOptions,
        training: bool,
    ) -> Result<Self> {
        let path = ModulePath::new(prefix);
        check_not_parametrized(vs, &path, "spectral_norm")?;
        let weight = super::weight_norm::layer_weight(vs, &path, &layer)?;
        let dim = options.dim.unwrap_or(layer.default_spectral_norm_dim());
        let mut state = SpectralNormState::<TchBackend>::new(&weight, options.n_power_iterations, dim, options.eps)?;
        // register_parametrization(unsafe=False) evaluates the parametrization once.
        drop(tch::no_grad(|| state.forward(&weight, training))?);
        let original = path.rename(vs, "weight", &format!("{PREFIX}.original"))?;
        if let (Some(u), Some(v)) = (state.u.as_ref(), state.v.as_ref()) {
            // The buffers live in the VarStore; the state keeps handles to the same storage.
            let u = path.add_buffer(vs, &format!("{PREFIX}.0._u"), u)?;
            let v = path.add_buffer(vs, &format!("{PREFIX}.0._v"), v)?;
            state.u = Some(u);
            state.v = Some(v);
        }
        Ok(Parametrized {
            layer,
            path,
            parametrization: Parametrization::SpectralNorm { original, state },
            folded: false,
            g_group: None,
            cache: WeightCache::default(),
        })
    }

    /// The wrapped layer.
    pub fn layer(&self) -> &L {
        &self.layer
    }

    /// The parametrized weight, as `module.weight` evaluates it: in training mode
    /// (`train = true`) spectral norm iterates first, updating its buffers in place. While
    /// folded: the plain weight itself.
    pub fn weight_t(&self, train: bool) -> Result<Tensor> {
        if self.folded {
            return Ok(self.parametrization.plain().shallow_clone());
        }
        match &self.parametrization {
            Parametrization::WeightNorm { original0, original1, dim } => {
                compute_weight::<TchBackend>(original1, original0, *dim)
            }
            Parametrization::SpectralNorm { original, state } => {
                let mut state = SpectralNormState::<TchBackend> {
                    dim: state.dim,
                    eps: state.eps,
                    n_power_iterations: state.n_power_iterations,
                    u: state.u.as_ref().map(Tensor::shallow_clone),
                    v: state.v.as_ref().map(Tensor::shallow_clone),
                };
                state.forward(original, train)
            }
        }
    }

    /// The forward pass: one access of the weight (iterating in training mode), then the
    /// layer. In eval mode, when the weight needs no graph (under `tch::no_grad`, or the
    /// originals not requiring grad), the weight computed by the last such forward is reused
    /// while the originals and buffers are unchanged (same bits); a training forward always
    /// recomputes and drops it. While folded: the plain layer's forward.
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if self.folded {
            return self.layer.forward_with_weight(xs, self.parametrization.plain());
        }
        let weight = if train {
            self.cache.bypass(|| self.weight_t(true))?
        } else {
            match &self.parametrization {
                Parametrization::WeightNorm { original0, original1, .. } => {
                    self.cache.eval_weight(&[original0, original1], || self.weight_t(false))?
                }
                Parametrization::SpectralNorm { original, state } => match (state.u.as_ref(), state.v.as_ref()) {
                    (Some(u), Some(v)) => self.cache.eval_weight(&[original, u, v], || self.weight_t(false))?,
                    _ => self.cache.eval_weight(&[original], || self.weight_t(false))?,
                },
            }
        };
        self.layer.forward_with_weight(xs, &weight)
    }

    /// The counters of the eval-mode weight cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Drops the cached eval-mode weight (only needed after writes the cache cannot see:
    /// through raw data pointers).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// Whether the layer is folded into a plain `weight`.
    pub fn is_folded(&self) -> bool {
        self.folded
    }

    /// Folds the parametrized weight, evaluated once in eval mode (spectral norm: stored
    /// `_u`, `_v`, no iteration) under `no_grad`, into the tensor of `original1` (weight
    /// norm's v) or `original` (spectral norm), in place, which becomes the plain
    /// `<prefix>.weight`; `original0` (g), resp. the buffers, leave the store (kept for
    /// [`Parametrized::unfold`]). Nothing if folded. See [`super::fold`].
    pub fn fold(&mut self, vs: &VarStore) -> Result<()> {
        if self.folded {
            return Ok(());
        }
        let plain = self.parametrization.plain();
        let kept = self.parametrization.kept();
        let mut present = vec![(self.parametrization.plain_name(), plain)];
        present.extend(kept.iter().copied());
        fold::check_entries(vs, &self.path, &present, &["weight"])?;
        let weight = tch::no_grad(|| self.weight_t(false))?;
        fold::write_in_place(plain, &weight)?;
        let mut g_group = None;
        for (name, t) in &kept {
            let group = fold::take_entry(vs, &self.path, name)?;
            if *name == ORIGINAL0 {
                g_group = group;
                fold::clear_grad(t)?;
            }
        }
        drop(self.path.rename(vs, self.parametrization.plain_name(), "weight")?);
        fold::clear_grad(plain)?;
        self.layer.set_weight(plain.shallow_clone());
        self.g_group = g_group;
        self.folded = true;
        self.cache.clear();
        Ok(())
    }

    /// Unfolds the plain weight `w`, which becomes `original1` (weight norm's v; then
    /// `original0 = norm_except_dim(w, 2, dim)` is written in place into the kept g, as
    /// `_WeightNorm.right_inverse` computes it) or `original` (spectral norm; the kept `_u`,
    /// `_v` return unchanged: no draw, no iteration), the same tensor either way. Nothing if
    /// not folded.
    pub fn unfold(&mut self, vs: &VarStore) -> Result<()> {
        if !self.folded {
            return Ok(());
        }
        let plain = self.parametrization.plain();
        let kept = self.parametrization.kept();
        let mut absent = vec![self.parametrization.plain_name()];
        absent.extend(kept.iter().map(|(name, _)| *name));
        fold::check_entries(vs, &self.path, &[("weight", plain)], &absent)?;
        for (_, t) in &kept {
            fold::match_device_and_kind(t, plain)?;
        }
        if let Parametrization::WeightNorm { original0, dim, .. } = &self.parametrization {
            let g = tch::no_grad(|| initial_g::<TchBackend>(plain, *dim))?;
            fold::write_in_place(original0, &g)?;
            fold::clear_grad(original0)?;
        }
        drop(self.path.rename(vs, "weight", self.parametrization.plain_name())?);
        for (name, t) in &kept {
            let group = if *name == ORIGINAL0 { self.g_group } else { None };
            fold::put_entry(vs, &self.path, name, t, group)?;
        }
        fold::clear_grad(plain)?;
        self.folded = false;
        self.cache.clear();
        Ok(())
    }

    /// `remove_parametrizations(module, "weight", leave_parametrized=True)` for a module in
    /// mode `train`: the weight is evaluated once more (spectral norm iterates when
    /// training) and becomes the plain `<prefix>.weight`. Spectral norm keeps the
    /// `original` tensor itself (PyTorch `set_`s it, so an optimizer holding it keeps
    /// working); weight norm gets a new parameter, as in PyTorch. A folded layer is returned
    /// as it is (its `weight` is the plain parameter already; `train` does not matter).
    pub fn remove(mut self, vs: &VarStore, train: bool) -> Result<L> {
        if self.folded {
            let plain = self.parametrization.plain().shallow_clone();
            fold::check_entries(vs, &self.path, &[("weight", &plain)], &[])?;
            self.layer.set_weight(plain);
            return Ok(self.layer);
        }
        let value = tch::no_grad(|| self.weight_t(train))?;
        let weight = match &self.parametrization {
            Parametrization::WeightNorm { .. } => {
                drop(self.path.remove(vs, &format!("{PREFIX}.original0"))?);
                drop(self.path.remove(vs, &format!("{PREFIX}.original1"))?);
                self.path.add_parameter(vs, "weight", &value)?
            }
            Parametrization::SpectralNorm { state, .. } => {
                let mut original = self.path.rename(vs, &format!("{PREFIX}.original"), "weight")?;
                if state.u.is_some() {
                    drop(self.path.remove(vs, &format!("{PREFIX}.0._u"))?);
                    drop(self.path.remove(vs, &format!("{PREFIX}.0._v"))?);
                }
                tch::no_grad(|| original.f_copy_(&value)).map_err(tch_err("copy_"))?;
                original
            }
        };
        self.layer.set_weight(weight);
        Ok(self.layer)
    }
}

impl<L: WeightedLayer> Foldable for Parametrized<L> {
    fn is_folded(&self) -> bool {
        Parametrized::is_folded(self)
    }
    fn fold(&mut self, vs: &VarStore) -> Result<()> {
        Parametrized::fold(self, vs)
    }
    fn unfold(&mut self, vs: &VarStore) -> Result<()> {
        Parametrized::unfold(self, vs)
    }
}

impl<L: WeightedLayer + std::fmt::Debug + Send> tch::nn::ModuleT for Parametrized<L> {
    /// Panics on a libtorch error (as tch's own layers do); use
    /// [`Parametrized::f_forward_t`] to get a `Result`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self.f_forward_t(xs, train) {
            Ok(ys) => ys,
            Err(e) => panic!("Parametrized forward failed: {e}"),
        }
    }
}
