//! Parameter initialization drawn exactly as PyTorch's `reset_parameters`, so a seeded
//! Rust model and a seeded PyTorch model start from the same bits and leave the global
//! generator in the same state.
//!
//! Bounds are computed in f64 as `torch.nn.init` computes them in Python; draws are
//! `Tensor.uniform_(-bound, bound)` on a CPU float32 tensor (PyTorch builds modules on
//! the CPU), one tensor after another in PyTorch's order.

use crate::backend::tch_err;
use norm_core::{Error, Result};
use tch::{Device, Kind, Tensor};

/// `torch.nn.init._calculate_fan_in_and_fan_out`: `(size(1) * receptive, size(0) * receptive)`.
pub fn fan_in_and_fan_out(shape: &[i64]) -> Result<(i64, i64)> {
    if shape.len() < 2 {
        return Err(Error::invalid(
            "tensor",
            format!("shape {shape:?}"),
            "at least 2 dimensions to compute fan in and fan out",
        ));
    }
    let receptive: i64 = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

/// `torch.nn.init.calculate_gain("leaky_relu", negative_slope)`.
pub fn leaky_relu_gain(negative_slope: f64) -> f64 {
    (2.0 / (1.0 + negative_slope.powf(2.0))).sqrt()
}

/// A CPU float32 tensor of `shape` filled by `uniform_(-bound, bound)`.
pub fn uniform(shape: &[i64], bound: f64) -> Result<Tensor> {
    let mut t = Tensor::f_empty(shape, (Kind::Float, Device::Cpu)).map_err(tch_err("empty"))?;
    if shape.iter().product::<i64>() > 0 {
        drop(tch::no_grad(|| t.f_uniform_(-bound, bound)).map_err(tch_err("uniform_"))?);
    }
    Ok(t)
}

/// `init.kaiming_uniform_(w, a=math.sqrt(5))`, the default weight init of Linear and Conv:
/// `bound = sqrt(3) * gain / sqrt(fan_in)`. A zero-element tensor draws nothing (PyTorch warns and returns).
pub fn kaiming_uniform_default(shape: &[i64]) -> Result<Tensor> {
    let (fan_in, _) = fan_in_and_fan_out(shape)?;
    if shape.iter().product::<i64>() == 0 {
        return uniform(shape, 0.0);
    }
    let gain = leaky_relu_gain(5f64.sqrt());
    let std = gain / (fan_in as f64).sqrt();
    uniform(shape, 3f64.sqrt() * std)
}

/// The bias init of Linear and Conv: `uniform_(-1/sqrt(fan_in), 1/sqrt(fan_in))`, 0 if `fan_in == 0`.
pub fn bias_uniform(size: i64, fan_in: i64) -> Result<Tensor> {
    let bound = if fan_in > 0 { 1.0 / (fan_in as f64).sqrt() } else { 0.0 };
    uniform(&[size], bound)
}

/// The bias init of `_ConvNd.reset_parameters`: `uniform_(-1/sqrt(fan_in), 1/sqrt(fan_in))`
/// only if `fan_in != 0`. Unlike Linear's, a conv with `fan_in == 0` draws nothing; PyTorch
/// then leaves the bias as `torch.empty` left it (unspecified memory), this returns zeros.
pub fn conv_bias_uniform(size: i64, fan_in: i64) -> Result<Tensor> {
    if fan_in != 0 {
        return uniform(&[size], 1.0 / (fan_in as f64).sqrt());
    }
    Tensor::f_zeros([size], (Kind::Float, Device::Cpu)).map_err(tch_err("zeros"))
}

/// `init.normal_(w, mean, std)` (`w.normal_(mean, std)`) on a CPU float32 tensor of `shape`,
/// the weight init of `nn.Embedding` (`mean = 0`, `std = 1`). A zero-element tensor draws nothing.
pub fn normal(shape: &[i64], mean: f64, std: f64) -> Result<Tensor> {
    if std < 0.0 || std.is_nan() {
        return Err(Error::invalid("std", std, "a standard deviation >= 0"));
    }
    let mut t = Tensor::f_empty(shape, (Kind::Float, Device::Cpu)).map_err(tch_err("empty"))?;
    if shape.iter().product::<i64>() > 0 {
        drop(tch::no_grad(|| t.f_normal_(mean, std)).map_err(tch_err("normal_"))?);
    }
    Ok(t)
}
