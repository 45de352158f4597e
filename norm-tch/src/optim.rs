//! [`Adam`]: norm-core's PyTorch-exact Adam over a VarStore's trainable variables.

use crate::backend::TchBackend;
use norm_core::optim::{Adam as CoreAdam, AdamConfig, AdamState};
use norm_core::Result;
use tch::nn::VarStore;
use tch::Tensor;

/// `torch.optim.Adam(model.parameters(), ...)` on a VarStore: bit-exact with PyTorch's
/// single-tensor path (its CPU default). tch's own `nn::Adam` uses other ops and is not.
/// A step is one C++ call; parameters under 64 bytes are packed into shared ATen calls,
/// which gives the same bits (see [`crate::backend::adam_update_packed`]).
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

    /// The state of parameter `i` (in the order given), `None` before its first update.
    pub fn state(&self, i: usize) -> Option<&AdamState<TchBackend>> {
        self.inner.state(i)
    }
}
