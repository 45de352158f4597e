//! PyTorch checkpoints in and out, under every naming scheme of weight and spectral
//! normalization, with conversions between them.
//!
//! - [`StateDict`]: an ordered name → tensor map; [`StateDict::read`] reads `.pt`/`.pth`
//!   files written by `torch.save(model.state_dict())` and `.safetensors`;
//!   [`StateDict::write`] writes either (a `.pt` that `torch.load(path, weights_only=True)`
//!   reads); [`StateDict::to_device`] moves it (`map_location`).
//! - [`scheme`] (`norm_tch::scheme`, shared with the layers): which scheme a layer's keys use
//!   ([`Scheme`], [`detect`]).
//! - [`convert()`]: rewrites every normalized layer to hooks, parametrizations or folded
//!   (`norm-bench convert`).
//! - [`load_state_dict`] / [`load_checkpoint`]: into a `VarStore`, converting each layer
//!   to the scheme the model has, all or nothing; [`save_state_dict`] writes a VarStore.
//!
//! ```no_run
//! use norm_tch::checkpoint::{load_checkpoint, save_state_dict, LoadOptions};
//! # fn main() -> norm_tch::Result<()> {
//! let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
//! // ... build the model's layers in `vs` (any normalization, either API) ...
//! let report = load_checkpoint(&mut vs, "model.pt", &LoadOptions::default())?;
//! for c in &report.conversions {
//!     eprintln!("{c}"); // e.g. `0: weight_norm hooks -> weight_norm parametrizations`
//! }
//! save_state_dict(&vs, "model.safetensors")?;
//! # Ok(()) }
//! ```
//!
//! See `docs/checkpoints.md` for the schemes, the conversions and what is refused.

pub mod convert;
mod device;
#[cfg(test)]
mod hostile_tests;
mod io;
mod load;
mod pickle;
mod pt;

pub use crate::scheme::{self, detect, Layer, Scheme, Suffix};
pub use convert::{convert, Conversion, ConvertOptions, DimChoice, Target};
pub use io::{dtype_name, natural_cmp, Format, StateDict};
pub use load::{load_checkpoint, load_state_dict, save_state_dict, state_dict, LoadOptions, LoadReport};
