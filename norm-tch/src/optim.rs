//! [`Adam`]: norm-core's PyTorch-exact Adam and AdamW over a VarStore's trainable variables,
//! on each of `torch.optim.Adam`'s paths (single-tensor, foreach, fused), chosen as PyTorch
//! chooses them.

use crate::backend::TchBackend;
use norm_core::optim::{Adam as CoreAdam, AdamConfig, AdamPath, AdamState};
use norm_core::Result;
use tch::nn::VarStore;
use tch::Tensor;

/// `torch.optim.Adam(model.parameters(), ...)` on a VarStore, and `torch.optim.AdamW` with
/// [`AdamConfig::adamw`]: bit-exact with PyTorch on every path. tch's own `nn::Adam` uses
/// other ops and is not.
///
/// - `foreach: None, fused: None` (the default): PyTorch's choice per step, the
///   single-tensor loop on CPU, foreach when every parameter with a gradient is on CUDA
///   ([`AdamPath::choose`]). `Some(false)` for either turns the default foreach off.
/// - `foreach: Some(true)`: `_multi_tensor_adam`, ATen's `_foreach_*` ops per (device, dtype)
///   group, in one C++ call (`csrc/adam_foreach.cpp`).
/// - `fused: Some(true)`: `torch._fused_adam_` / `torch._fused_adamw_` per (device, dtype)
///   group (`csrc/adam_fused.cpp`); floating point parameters only, as in PyTorch.
///
/// On the single-tensor path a step is one C++ call; CPU parameters under 64 bytes are updated
/// with the arithmetic of ATen's scalar lambdas and one shared `sqrt_` call, or packed into
/// shared ATen calls, which gives the same bits (see [`crate::backend::adam_update_packed`] and
/// [`crate::backend::AdamScalarLambdas`]).
/// Parameters may live on any device.
///
/// ```
/// use norm_core::optim::AdamConfig;
/// use norm_tch::layers::{linear, spectral_norm, LinearConfig, SpectralNormOptions};
/// use norm_tch::optim::Adam;
/// use tch::nn::{ModuleT, VarStore};
/// # fn main() -> norm_tch::Result<()> {
/// let vs = VarStore::new(tch::Device::Cpu);
/// let fc = linear(&(vs.root() / "fc"), 3, 2, LinearConfig::default())?;
/// let fc = spectral_norm(&vs, fc, SpectralNormOptions::default())?;
/// // Adam(betas=(0.0, 0.9)), as SN-GANs train: over fc.weight_orig and fc.bias.
/// let mut opt = Adam::new(&vs, AdamConfig { betas: (0.0, 0.9), ..AdamConfig::with_lr(2e-4) })?;
/// let before = fc.weight_orig().copy();
/// let loss = fc.forward_t(&tch::Tensor::ones([4, 3], (tch::Kind::Float, tch::Device::Cpu)), true).sum(None);
/// opt.zero_grad()?;
/// loss.backward();
/// opt.step()?;
/// assert!(!fc.weight_orig().equal(&before));
///
/// // AdamW(lr=2e-4, betas=(0.8, 0.99), fused=True), as HiFi-GAN trains (fused opt-in).
/// let config = AdamConfig { betas: (0.8, 0.99), fused: Some(true), ..AdamConfig::adamw(2e-4) };
/// let mut opt = Adam::new(&vs, config)?;
/// assert_eq!(opt.path(), norm_core::optim::AdamPath::Fused);
/// let loss = fc.forward_t(&tch::Tensor::ones([4, 3], (tch::Kind::Float, tch::Device::Cpu)), true).sum(None);
/// opt.zero_grad()?;
/// loss.backward();
/// opt.step()?;
/// // `fused` and `foreach` together are refused, as PyTorch refuses them.
/// assert!(Adam::new(&vs, AdamConfig { foreach: Some(true), ..config }).is_err());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Adam {
    inner: CoreAdam<TchBackend>,
}

impl Adam {
    /// An optimizer over every trainable variable of `vs` (at the time of the call).
    pub fn new(vs: &VarStore, config: AdamConfig) -> Result<Self> {
        Self::from_params(vs.trainable_variables(), config)
    }

    /// An optimizer over the given parameters (handles sharing their storage).
    pub fn from_params(params: Vec<Tensor>, config: AdamConfig) -> Result<Self> {
        Ok(Adam { inner: CoreAdam::new(params, config)? })
    }

    /// `optimizer.zero_grad()` (gradients set to `None`, PyTorch's default).
    pub fn zero_grad(&mut self) -> Result<()> {
        self.inner.zero_grad()
    }

    /// `optimizer.step()`.
    pub fn step(&mut self) -> Result<()> {
        self.inner.step()
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        self.inner.config()
    }

    /// The path the next step takes if every parameter has a gradient.
    pub fn path(&self) -> AdamPath {
        self.inner.path()
    }

    /// The state of parameter `i` (in the order given), `None` before its first update.
    pub fn state(&self, i: usize) -> Option<&AdamState<TchBackend>> {
        self.inner.state(i)
    }
}
