//! norm-core: PyTorch's weight normalization, spectral normalization and Adam, written
//! once over backend traits, plus a Python-compatible `random`.
//!
//! - [`backend`]: the [`Backend`]/[`AutodiffBackend`] traits, one method per ATen op.
//! - [`weight_norm`]: `w = g * v / ‖v‖` with PyTorch's `dim` contract.
//! - [`optim`]: [`optim::Adam`], op for op as `torch.optim.Adam` on CPU.
//! - [`random`]: CPython's `random.seed`/`random.random`.
//! - [`reference`]: a pure-Rust backend so this crate tests without libtorch.
//! - [`conformance`]: the checks every backend runs.
//!
//! No libtorch here; `norm-tch` implements the traits on `tch::Tensor`.
#![warn(missing_docs)]

pub mod backend;
pub mod conformance;
pub mod error;
pub mod optim;
pub mod random;
pub mod reference;
pub mod weight_norm;

pub use backend::{AutodiffBackend, Backend};
pub use error::{Error, Result};
