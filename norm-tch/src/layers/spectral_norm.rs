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
        Ok(SpectralNorm { layer, path, weight_orig, weight_u, weight_v, dim, n_power_iterations, eps: options.eps })
    }

    /// `weight_orig`.
    pub fn weight_orig(&self) -> &Tensor {
        &self.weight_orig
    }

    /// The `weight_u` buffer.
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
    /// pre-hook does before every forward.
    pub fn compute_weight(&self, train: bool) -> Result<Tensor> {
        let (mut u, mut v) = (self.weight_u.shallow_clone(), self.weight_v.shallow_clone());
        hooks::compute_weight::<TchBackend>(&self.weight_orig, &mut u, &mut v, self.dim, self.n_power_iterations, self.eps, train)
    }

    /// The normalized weight from the current `u` and `v`, without iterating.
    pub fn weight(&self) -> Result<Tensor> {
        self.compute_weight(false)
    }

    /// The forward pass in training (`train = true`, iterates) or eval mode.
    pub fn f_forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.layer.forward_with_weight(xs, &self.compute_weight(train)?)
    }

    /// `remove_spectral_norm`: folds `weight_orig / σ` (stored u, v, no iteration) into a
    /// new plain `<prefix>.weight` parameter, removes `weight_orig`, `weight_u`, `weight_v`,
    /// and returns the layer.
    pub fn remove(mut self, vs: &VarStore) -> Result<L> {
        let weight = tch::no_grad(|| self.weight())?.f_detach().map_err(tch_err("detach"))?;
        for name in ["weight_orig", "weight_u", "weight_v"] {
            drop(self.path.remove(vs, name)?);
        }
        let weight = self.path.add_parameter(vs, "weight", &weight)?;
        self.layer.set_weight(weight);
        Ok(self.layer)
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
