//! Which of PyTorch's three Adam implementations runs: `adam()`'s dispatch
//! (`torch/optim/adam.py`) with `_default_to_fused_or_foreach(params, differentiable=False,
//! use_fused=False)` and `_device_dtype_check_for_fused` (`torch/optim/optimizer.py`).
//!
//! ```text
//! if fused is None and foreach is None:
//!     foreach = all(p.device.type in _get_foreach_kernels_supported_devices() for p in params)
//! fused, foreach = bool(fused), bool(foreach)
//! fused -> _fused_adam ; foreach -> _multi_tensor_adam ; else -> _single_tensor_adam
//! ```
//! `params` are the parameters that have a gradient at this step, so the choice is made per
//! step (a step where no parameter has a gradient updates nothing on any path).

use super::AdamConfig;
use crate::backend::AutodiffBackend;
use crate::error::{Error, Result};

/// `torch.utils._foreach_utils._get_foreach_kernels_supported_devices()` (PyTorch 2.11; the
/// privateuse1 backend under its default name).
pub const FOREACH_DEVICE_TYPES: [&str; 4] = ["cuda", "xpu", "mtia", "privateuseone"];

/// `torch.utils._foreach_utils._get_fused_kernels_supported_devices()` (PyTorch 2.11, in its order).
pub const FUSED_DEVICE_TYPES: [&str; 7] = ["mps", "cuda", "xpu", "hpu", "cpu", "mtia", "privateuseone"];

/// One of `torch.optim.Adam`'s implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdamPath {
    /// `_single_tensor_adam`: a loop over the parameters (PyTorch's default on CPU).
    SingleTensor,
    /// `_multi_tensor_adam`: ATen's `_foreach_*` ops per (device, dtype) group (PyTorch's
    /// default when every parameter is on CUDA).
    ForEach,
    /// `_fused_adam`: `torch._fused_adam_` / `torch._fused_adamw_` per (device, dtype) group.
    Fused,
}

impl AdamPath {
    /// The path `adam()` takes for `config` and the device types (`"cpu"`, `"cuda"`, as
    /// `tensor.device.type` spells them) of the parameters that have a gradient.
    ///
    /// ```
    /// use norm_core::optim::{AdamConfig, AdamPath};
    /// let default = AdamConfig::default();
    /// assert_eq!(AdamPath::choose(&default, ["cpu", "cpu"]), AdamPath::SingleTensor);
    /// assert_eq!(AdamPath::choose(&default, ["cuda", "cuda"]), AdamPath::ForEach);
    /// assert_eq!(AdamPath::choose(&default, ["cuda", "cpu"]), AdamPath::SingleTensor);
    /// // An explicit `fused=False` also turns the default foreach off, as in PyTorch.
    /// let no_fused = AdamConfig { fused: Some(false), ..default };
    /// assert_eq!(AdamPath::choose(&no_fused, ["cuda"]), AdamPath::SingleTensor);
    /// ```
    pub fn choose<S: AsRef<str>>(config: &AdamConfig, device_types: impl IntoIterator<Item = S>) -> AdamPath {
        let foreach = match (config.fused, config.foreach) {
            (None, None) => device_types.into_iter().all(|d| FOREACH_DEVICE_TYPES.contains(&d.as_ref())),
            (_, foreach) => foreach.unwrap_or(false),
        };
        if config.fused.unwrap_or(false) {
            AdamPath::Fused
        } else if foreach {
            AdamPath::ForEach
        } else {
            AdamPath::SingleTensor
        }
    }

    /// PyTorch's name for the path's function (`_single_tensor_adam`, ...).
    pub fn torch_name(self) -> &'static str {
        match self {
            AdamPath::SingleTensor => "_single_tensor_adam",
            AdamPath::ForEach => "_multi_tensor_adam",
            AdamPath::Fused => "_fused_adam",
        }
    }
}

/// `_device_dtype_check_for_fused(p)`: with `fused=True`, each parameter must be a floating
/// point tensor on a device with fused kernels (PyTorch raises `RuntimeError` at the
/// parameter's first update, before its state is created).
pub fn check_fused_param<B: AutodiffBackend>(param: &B::Tensor) -> Result<()> {
    let device = B::device_type(param);
    if FUSED_DEVICE_TYPES.contains(&device.as_str()) && B::is_floating_point(param) {
        return Ok(());
    }
    Err(Error::Unsupported {
        what: format!("`fused=True` for a {} parameter on {device}", B::dtype_name(param)),
        reason: format!(
            "`fused=True` requires all the params to be floating point Tensors of supported devices: {:?}",
            FUSED_DEVICE_TYPES
        ),
    })
}
