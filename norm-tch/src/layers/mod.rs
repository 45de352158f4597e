//! Layers that drop into `tch::nn`, under PyTorch's parameter names.
//!
//! - [`linear`]: a `tch::nn::Linear` initialized as `torch.nn.Linear` (same draws).
//! - [`Conv`] ([`conv1d`], ...): `torch.nn.Conv1d`/`2d`/`3d`, per-dimension settings, PyTorch's forward.
//! - [`ConvTranspose`] ([`conv_transpose1d`], ...): `torch.nn.ConvTranspose1d`/`2d`/`3d`.
//! - [`Embedding`] ([`embedding`]): `torch.nn.Embedding`.
//! - [`WeightNorm`]: `torch.nn.utils.weight_norm` around any [`WeightedLayer`].
//! - [`SpectralNorm`]: `torch.nn.utils.spectral_norm` (hooks).
//! - [`Parametrized`]: `torch.nn.utils.parametrizations.weight_norm` / `.spectral_norm`.
//! - [`fold`]: [`Foldable`], [`fold_all`], [`unfold_all`] (plain weight and back, keeping
//!   optimizer identity) and the eval-mode weight cache ([`CacheStats`]).

mod conv;
mod embedding;
pub mod fold;
mod linear;
mod parametrizations;
mod spectral_norm;
mod weight_norm;

pub use conv::{
    conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, Conv, Conv1d, Conv2d, Conv3d,
    ConvOptions, ConvTranspose, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, ConvTransposeOptions,
};
pub use embedding::{embedding, Embedding, EmbeddingOptions};
pub use fold::{fold_all, unfold_all, CacheStats, Foldable};
pub use linear::{linear, LinearConfig};
pub use parametrizations::Parametrized;
pub use spectral_norm::{SpectralNorm, SpectralNormOptions};
pub use weight_norm::WeightNorm;

use norm_core::Result;
use tch::Tensor;

/// A layer whose `weight` a reparametrization can replace: it runs its forward with a
/// weight given from outside (the way PyTorch's forward reads `self.weight`, which a
/// hook or parametrization has replaced).
pub trait WeightedLayer {
    /// The layer's own `weight` parameter.
    fn weight(&self) -> &Tensor;
    /// Replaces the layer's `weight` handle (after a reparametrization is removed).
    fn set_weight(&mut self, weight: Tensor);
    /// The layer's forward pass with `weight` in place of its own.
    fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor>;
    /// The `dim` PyTorch's `spectral_norm` uses when none is given: 1 for ConvTranspose
    /// (whose weight is `[in, out/groups, ...]`), 0 for every other layer.
    fn default_spectral_norm_dim(&self) -> i64 {
        0
    }
}

impl WeightedLayer for tch::nn::Linear {
    fn weight(&self) -> &Tensor {
        &self.ws
    }
    fn set_weight(&mut self, weight: Tensor) {
        self.ws = weight;
    }
    /// `F.linear(xs, weight, bias)` (`at::linear`).
    fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
        xs.f_linear(weight, self.bs.as_ref()).map_err(crate::backend::tch_err("linear"))
    }
}
