//! Layers that drop into `tch::nn`, under PyTorch's parameter names.
//!
//! Layers are built at a tch `Path`, like tch's own (`linear(&(vs.root() / "enc" / "fc"), ...)`),
//! and a normalization finds the layer's place from the layer's weight, so a place is named
//! once; tch's own `nn::Linear` works the same way.
//!
//! - [`linear`]: a `tch::nn::Linear` initialized as `torch.nn.Linear` (same draws).
//! - [`Conv`] ([`conv1d`], ...): `torch.nn.Conv1d`/`2d`/`3d`, per-dimension settings, PyTorch's forward.
//! - [`ConvTranspose`] ([`conv_transpose1d`], ...): `torch.nn.ConvTranspose1d`/`2d`/`3d`.
//! - [`Embedding`] ([`embedding`]): `torch.nn.Embedding`.
//! - [`Normalized`]: one type for every normalization of any [`WeightedLayer`]'s weight,
//!   with [`weight_norm`], [`spectral_norm`] and [`parametrizations`]`::{weight_norm,
//!   spectral_norm}` as PyTorch's functions, and the aliases [`WeightNorm`], [`SpectralNorm`],
//!   [`ParametrizedWeightNorm`], [`ParametrizedSpectralNorm`] ([`normalizations`]); the
//!   reparametrizations themselves are in [`reparam`]; [`operator_norm`] ([`OperatorNormalized`])
//!   normalizes by the operator norm of the layer's convolution (norm's own, opt-in).
//! - [`fold`]: [`Foldable`], [`fold_all`], [`unfold_all`] (plain weight and back, keeping
//!   optimizer identity) and `remove`; [`cache`]: the eval-mode weight cache ([`CacheStats`]).
//!
//! **Devices.** In a `VarStore` on CUDA a layer is built as PyTorch's `Model().to("cuda")`
//! builds it: its init is drawn by the CPU generator ([`crate::init`]) and moved to the
//! device, and a normalization registered there works on the device, as
//! `weight_norm(layer.to("cuda"))` does (weight norm's `g` from the device's norm kernel,
//! spectral norm's `u`, `v` from the device's generator). A PyTorch model built with
//! `device="cuda"` in its constructors draws its init on the GPU instead, other bits.

pub mod cache;
mod conv;
mod conv_transpose;
mod embedding;
pub mod fold;
mod linear;
pub mod normalizations;
mod normalized;
mod operator_normalized;
pub mod reparam;
pub mod sigma;

pub use cache::CacheStats;
pub use conv::{conv1d, conv2d, conv3d, Conv, Conv1d, Conv2d, Conv3d, ConvOptions};
pub use conv_transpose::{
    conv_transpose1d, conv_transpose2d, conv_transpose3d, ConvTranspose, ConvTranspose1d, ConvTranspose2d,
    ConvTranspose3d, ConvTransposeOptions,
};
pub use embedding::{embedding, Embedding, EmbeddingOptions};
pub use fold::{fold_all, unfold_all, Foldable};
pub use linear::{linear, LinearConfig};
pub use norm_core::power_iteration::PowerIterationTolerance;
pub use norm_core::spectral_norm::{SigmaEstimate, SpectralNormGuards};
pub use norm_core::weight_norm::WeightNormGuards;
pub use normalizations::{
    operator_norm, parametrizations, spectral_norm, weight_norm, OperatorNormalized, ParametrizedSpectralNorm,
    ParametrizedWeightNorm, SpectralNorm, WeightNorm,
};
pub use normalized::Normalized;
pub use reparam::{OperatorNormLayerOptions, Reparametrization, SpectralNormOptions};

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
    /// The training forward with the weight `torch._weight_norm(v, g, dim)`, when this layer
    /// can record it as one autograd node with PyTorch's bits: `Some((output, weight))`, the
    /// weight being the value used, without history. `None` (the default) when it cannot;
    /// the caller then computes the weight and calls [`WeightedLayer::forward_with_weight`].
    fn forward_weight_normed(
        &self,
        _xs: &Tensor,
        _v: &Tensor,
        _g: &Tensor,
        _dim: i64,
    ) -> Result<Option<(Tensor, Tensor)>> {
        Ok(None)
    }
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
    /// One `WeightNormLinearBackward` node in place of `WeightNormInterfaceBackward0`,
    /// `TBackward0` and `AddmmBackward0` (`csrc/weight_norm_linear.cpp`: the same ATen calls,
    /// same bits), for a layer with a bias and a 2-D input that does not require grad (a
    /// network's first layer), the path `at::linear` takes through `addmm`; `None` outside
    /// the rule given there.
    fn forward_weight_normed(&self, xs: &Tensor, v: &Tensor, g: &Tensor, dim: i64) -> Result<Option<(Tensor, Tensor)>> {
        match &self.bs {
            Some(bias) => crate::ffi::weight_norm_linear(xs, v, g, bias, dim),
            None => Ok(None),
        }
    }
}
