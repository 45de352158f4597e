//! `torch.nn.utils.spectral_norm` (the hook API) around a [`WeightedLayer`]:
//! `weight = weight_orig / σ`, with power iteration in training mode, and
//! [`SpectralNorm::remove`] as `remove_spectral_norm`. The algorithm is
//! [`norm_core::spectral_norm::hooks`].
//!
//! Registration mirrors `SpectralNorm.apply`: `weight` becomes the parameter
//! `weight_orig` (the same tensor, so an optimizer holding it keeps working), and the
//! buffers `weight_u` (length h) and `weight_v` (length w) are drawn from the global
//! generator, u first, and normalized — no power iteration yet.
//!
//! PyTorch's traps, reproduced: a layer put in eval mode before any training forward
//! uses the random `u` and `v` as drawn; the weight PyTorch stores as `module.weight` is
//! only refreshed by a forward (norm-tch has no stale attribute: [`SpectralNorm::weight`]
//! recomputes, without iterating).
//!
//! Beyond PyTorch: [`SpectralNorm::fold`]/[`SpectralNorm::unfold`] trade the
//! reparametrization for a plain `weight` and back keeping the tensors an optimizer holds,
//! and an eval-mode forward reuses the weight it computed last while `weight_orig`, `u` and
//! `v` are unchanged; see [`super::fold`].

use super::fold::{self, CacheStats, Foldable, WeightCache};
use super::WeightedLayer;
use crate::backend::{tch_err, TchBackend};
use crate::var_store::ModulePath;
use norm_core::spectral_norm::{check_n_power_iterations, hooks};
use norm_core::{Error, Result};
use tch::nn::VarStore;
use tch::Tensor;

/// Options of `spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralNormOptions {
    /// Power iterations per training forward (default 1; must be positive).
    pub n_power_iterations: i64,
    /// `eps` of the normalizations (default 1e-12).
    pub eps: f64,
    /// The dim of the output channels; `None`: 1 for ConvTranspose, else 0.
    pub dim: Option<i64>,
}

impl Default for SpectralNormOptions {
    fn default() -> Self {
        SpectralNormOptions { n_power_iterations: 1, eps: 1e-12, dim: None }
    }
}

/// A layer with spectral normalization on its `weight` (hook API).
///
/// Folded ([`SpectralNorm::fold`]), the layer is the plain layer with `<prefix>.weight`,
/// which is the tensor of `weight_orig`; the buffers are kept out of the store until
/// [`SpectralNorm::unfold`].
#[derive(Debug)]
pub struct SpectralNorm<L: WeightedLayer> {
    layer: L,
    path: ModulePath,
    weight_orig: Tensor,
    weight_u: Tensor,
    weight_v: Tensor,
    dim: usize,
    n_power_iterations: usize,
    eps: f64,
    folded: bool,
    cache: WeightCache,
}

impl<L: WeightedLayer> SpectralNorm<L> {
    /// `spectral_norm(module, "weight", n_power_iterations, eps, dim)` for the layer
    /// registered at `prefix` in `vs`. Draws `u` then `v` from the global generator.
    ///
    /// Errors (checked in PyTorch's order, nothing changed on error):
    /// `n_power_iterations <= 0`; a negative dim (PyTorch's permute rejects it) or one past
    /// the weight's rank; a second spectral norm on the same weight; `<prefix>.weight`
    /// missing or not the layer's weight.
    pub fn new(vs: &VarStore, prefix: &str, layer: L, options: SpectralNormOptions) -> Result<Self> {
        let path = ModulePath::new(prefix);
        let n_power_iterations = check_n_power_iterations(options.n_power_iterations)?;
        if path.get(vs, "weight_orig").is_some() {
            return Err(Error::AlreadyRegistered { norm: "spectral_norm", name: path.full_name("weight") });
        }
        let weight = super::weight_norm::layer_weight(vs, &path, &layer)?;
        let dim = hooks::check_dim(options.dim.unwrap_or(layer.default_spectral_norm_dim()), weight.dim())?;
        let (u, v) = hooks::initial_u_v::<TchBackend>(&weight, dim, options.eps)?;
        let weight_orig = path.rename(vs, "weight", "weight_orig")?;
        let weight_u = path.add_buffer(vs, "weight_u", &u)?;
        let weight_v = path.add_buffer(vs, "weight_v", &v)?;
        Ok(SpectralNorm {
            layer,
            path,
            weight_orig,
            weight_u,
            weight_v,
            dim,
            n_power_iterations,
            eps: options.eps,
            folded: false,
            cache: WeightCache::default(),
        })
    }

    /// `weight_orig`. While folded: the same tensor, which is then the plain `<prefix>.weight`.
    pub fn weight_orig(&self) -> &Tensor {
        &self.weight_orig
    }

    /// The `weight_u` buffer (while folded: kept out of the store, unchanged).
    pub fn weight_u(&self) -> &Tensor {
        &self.weight_u
    }

    /// The `weight_v` buffer.
    pub fn weight_v(&self) -> &Tensor {
        &self.weight_v
    }

    /// The normalized dim.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The wrapped layer.
    pub fn layer(&self) -> &L {
        &self.layer
    }

    /// `compute_weight(module, do_power_iteration=train)`: with `train`, runs the power
    /// iterations (updating `weight_u`/`weight_v` in place) first. This is what the forward
    /// pre-hook does before every forward. While folded: the plain weight itself.
    pub fn compute_weight(&self, train: bool) -> Result<Tensor> {
        if self.folded {
            return Ok(self.weight_orig.shallow_clone());
        }
        let (mut u, mut v) = (self.weight_u.shallow_clone(), self.weight_v.shallow_clone());
        hooks::compute_weight::<TchBackend>(
            &self.weight_orig,
            &mut u,
            &mut v,
            self.dim,
            self.n_power_iterations,
            self.eps,
            train,
        )
    }

    /// The normalized weight from the current `u` and `v`, without iterating.
    pub fn weight(&self) -> Result<Tensor> {
        self.compute_weight(false)
    }

    /// The forward pass in training (`train = true`, iterates) or eval mode. In eval mode,
    /// when the weight needs no graph (under `tch::no_grad`, or `weight_orig` not requiring
    /// grad), the weight computed by the last such forward is reused while `weight_orig`,
    /// `u` and `v` are unchanged (same bits); a training forward always recomputes and drops
    /// it. While folded: the plain layer's forward.
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        if self.folded {
            return self.layer.forward_with_weight(xs, &self.weight_orig);
        }
        let weight = if train {
            self.cache.bypass(|| self.compute_weight(true))?
        } else {
            self.cache
                .eval_weight(&[&self.weight_orig, &self.weight_u, &self.weight_v], || self.compute_weight(false))?
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

    /// Folds `weight_orig / σ`, σ from the stored `u`, `v` without iterating (as
    /// `remove_spectral_norm` computes it), into the tensor of `weight_orig`, in place, which
    /// becomes the plain `<prefix>.weight`; the buffers leave the store (kept for
    /// [`SpectralNorm::unfold`]). Nothing if folded. See [`super::fold`].
    pub fn fold(&mut self, vs: &VarStore) -> Result<()> {
        if self.folded {
            return Ok(());
        }
        let entries = [("weight_orig", &self.weight_orig), ("weight_u", &self.weight_u), ("weight_v", &self.weight_v)];
        fold::check_entries(vs, &self.path, &entries, &["weight"])?;
        let weight = tch::no_grad(|| self.compute_weight(false))?;
        fold::write_in_place(&self.weight_orig, &weight)?;
        let _ = fold::take_entry(vs, &self.path, "weight_u")?;
        let _ = fold::take_entry(vs, &self.path, "weight_v")?;
        drop(self.path.rename(vs, "weight_orig", "weight")?);
        fold::clear_grad(&self.weight_orig)?;
        self.layer.set_weight(self.weight_orig.shallow_clone());
        self.folded = true;
        self.cache.clear();
        Ok(())
    }

    /// Unfolds the plain weight: it becomes `weight_orig` again (the same tensor) and the
    /// kept `u`, `v` return as the buffers, unchanged (no draw, no iteration: they are the
    /// singular-vector estimates the folded weight was normalized with). Nothing if not
    /// folded.
    pub fn unfold(&mut self, vs: &VarStore) -> Result<()> {
        if !self.folded {
            return Ok(());
        }
        fold::check_entries(
            vs,
            &self.path,
            &[("weight", &self.weight_orig)],
            &["weight_orig", "weight_u", "weight_v"],
        )?;
        fold::match_device_and_kind(&self.weight_u, &self.weight_orig)?;
        fold::match_device_and_kind(&self.weight_v, &self.weight_orig)?;
        drop(self.path.rename(vs, "weight", "weight_orig")?);
        fold::put_entry(vs, &self.path, "weight_u", &self.weight_u, None)?;
        fold::put_entry(vs, &self.path, "weight_v", &self.weight_v, None)?;
        fold::clear_grad(&self.weight_orig)?;
        self.folded = false;
        self.cache.clear();
        Ok(())
    }

    /// `remove_spectral_norm`: folds `weight_orig / σ` (stored u, v, no iteration) into a
    /// new plain `<prefix>.weight` parameter, removes `weight_orig`, `weight_u`, `weight_v`,
    /// and returns the layer. A folded layer is returned as it is (its `weight` is the plain
    /// parameter already).
    pub fn remove(mut self, vs: &VarStore) -> Result<L> {
        if self.folded {
            fold::check_entries(vs, &self.path, &[("weight", &self.weight_orig)], &[])?;
            self.layer.set_weight(self.weight_orig);
            return Ok(self.layer);
        }
        let weight = tch::no_grad(|| self.weight())?.f_detach().map_err(tch_err("detach"))?;
        for name in ["weight_orig", "weight_u", "weight_v"] {
            drop(self.path.remove(vs, name)?);
        }
        let weight = self.path.add_parameter(vs, "weight", &weight)?;
        self.layer.set_weight(weight);
        Ok(self.layer)
    }
}

impl<L: WeightedLayer> Foldable for SpectralNorm<L> {
    fn is_folded(&self) -> bool {
        SpectralNorm::is_folded(self)
    }
    fn fold(&mut self, vs: &VarStore) -> Result<()> {
        SpectralNorm::fold(self, vs)
    }
    fn unfold(&mut self, vs: &VarStore) -> Result<()> {
        SpectralNorm::unfold(self, vs)
    }
}

impl<L: WeightedLayer + std::fmt::Debug + Send> tch::nn::ModuleT for SpectralNorm<L> {
    /// Panics on a libtorch error (as tch's own layers do); use
    /// [`SpectralNorm::f_forward_t`] to get a `Result`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self.f_forward_t(xs, train) {
            Ok(ys) => ys,
            Err(e) => panic!("SpectralNorm forward failed: {e}"),
        }
    }
}
