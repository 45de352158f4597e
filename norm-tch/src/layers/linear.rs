//! `torch.nn.Linear` as a `tch::nn::Linear`: `weight` `[out, in]` drawn by
//! `kaiming_uniform_(a=sqrt(5))`, then `bias` `[out]` by `uniform_(±1/sqrt(in))`, in that
//! order from the global generator, as `Linear.reset_parameters` does.

use crate::init;
use crate::var_store::ModulePath;
use norm_core::{Error, Result};
use tch::nn::{Linear, VarStore};

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

/// `nn.Linear(in_features, out_features, bias)` registered as `<prefix>.weight` and
/// `<prefix>.bias` in `vs`, on the VarStore's device.
pub fn linear(
    vs: &VarStore,
    prefix: &str,
    in_features: i64,
    out_features: i64,
    config: LinearConfig,
) -> Result<Linear> {
    if in_features < 0 {
        return Err(Error::invalid("in_features", in_features, "a non-negative size"));
    }
    if out_features < 0 {
        return Err(Error::invalid("out_features", out_features, "a non-negative size"));
    }
    let path = ModulePath::new(prefix);
    let weight = init::kaiming_uniform_default(&[out_features, in_features])?;
    let bias = if config.bias { Some(init::bias_uniform(out_features, in_features)?) } else { None };
    let ws = path.add_parameter(vs, "weight", &weight)?;
    let bs = match bias {
        Some(b) => Some(path.add_parameter(vs, "bias", &b)?),
        None => None,
    };
    Ok(Linear { ws, bs })
}
