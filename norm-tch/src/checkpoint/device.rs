//! A state dict moved to a device: `{k: t.to(device) for k, t in sd.items()}`, what
//! `torch.load(path, map_location=device)` returns. [`StateDict::read`] gives CPU tensors;
//! [`StateDict::write`] takes tensors on any device (it copies them to the CPU).
//! [`load_state_dict`](super::load_state_dict) needs neither: it puts each value on its
//! variable's device (the VarStore's).

use super::io::StateDict;
use crate::backend::tch_err;
use norm_core::Result;
use tch::Device;

impl StateDict {
    /// The same entries, in the same order, on `device` (`Tensor.to(device)`: an entry
    /// already there is shared, not copied; dtypes are kept).
    ///
    /// Errors: libtorch cannot reach the device (no CUDA device), with libtorch's message.
    pub fn to_device(&self, device: Device) -> Result<StateDict> {
        let entries = self
            .entries()
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.f_to_device(device).map_err(tch_err("to_device"))?)))
            .collect::<Result<Vec<_>>>()?;
        StateDict::new(entries)
    }
}
