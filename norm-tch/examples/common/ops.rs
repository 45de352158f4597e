//! Activations with PyTorch's bits.
//!
//! `F.leaky_relu(x, negative_slope)` is `aten::leaky_relu` with its slope. tch 0.24 binds
//! that op without `negative_slope` (`Tensor::leaky_relu` always uses 0.01), so norm-tch
//! exposes the full call as [`norm_tch::backend::leaky_relu`].

use anyhow::Result;
use tch::Tensor;

/// `torch.nn.functional.leaky_relu(x, negative_slope)`: the same ATen op, bit for bit.
pub fn leaky_relu(x: &Tensor, negative_slope: f64) -> Result<Tensor> {
    Ok(norm_tch::backend::leaky_relu(x, negative_slope)?)
}
