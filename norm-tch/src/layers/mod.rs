//! Layers that drop into `tch::nn`, under PyTorch's parameter names.
//!
//! - [`linear`]: a `tch::nn::Linear` initialized as `torch.nn.Linear` (same draws).
//! - [`WeightNorm`]: `torch.nn.utils.weight_norm` around any [`WeightedLayer`].

mod linear;
mod weight_norm;

pub use linear::{linear, LinearConfig};
pub use weight_norm::WeightNorm;

use norm_core::Result;
use tch::Tensor;

/// A layer whose `weight` a reparametrization can replace: it runs its forward with a
/// weight given from outside. Implemented for `tch::nn::Linear`; convolutions follow.
pub trait WeightedLayer {
    /// The layer's own `weight` parameter.
    fn weight(&self) -> &Tensor;
    /// Replaces the layer's `weight` handle (after a reparametrization is removed).
    fn set_weight(&mut self, weight: Tensor);
    /// The layer's forward pass with `weight` in place of its own.
    fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor>;
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
