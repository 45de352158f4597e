//! `torch.nn.Linear` as a `tch::nn::Linear`: `weight` `[out, in]` drawn by
//! `kaiming_uniform_(a=sqrt(5))`, then `bias` `[out]` by `uniform_(±1/sqrt(in))`, in that
//! order from the global generator, as `Linear.reset_parameters` does.

use crate::init;
use crate::var_store::add_parameter;
use norm_core::{Error, Result};
use tch::nn::{Linear, Path};

/// Options of [`linear`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearConfig {
    /// Whether the layer has a bias (PyTorch's default `True`).
    pub bias: bool,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig { bias: true }
    }
}

/// `nn.Linear(in_features, out_features, bias)` registered as `weight` and `bias` at `path`
/// (`vs.root() / "enc" / "fc"`: `enc.fc.weight`, `enc.fc.bias`), on the VarStore's device.
///
/// Errors (nothing drawn or registered): a negative size; `weight` or `bias` already
/// registered at `path` (tch's `Path::add` would silently rename it).
pub fn linear(path: &Path, in_features: i64, out_features: i64, config: LinearConfig) -> Result<Linear> {
    if in_features < 0 {
        return Err(Error::invalid("in_features", in_features, "a non-negative size"));
    }
    if out_features < 0 {
        return Err(Error::invalid("out_features", out_features, "a non-negative size"));
    }
    super::conv::check_free(path, if config.bias { &["weight", "bias"] } else { &["weight"] })?;
    let weight = init::kaiming_uniform_default(&[out_features, in_features])?;
    let bias = if config.bias { Some(init::bias_uniform(out_features, in_features)?) } else { None };
    let ws = add_parameter(path, "weight", weight)?;
    let bs = match bias {
        Some(b) => Some(add_parameter(path, "bias", b)?),
        None => None,
    };
    Ok(Linear { ws, bs })
}
