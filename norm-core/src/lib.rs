//! norm-core: PyTorch's weight normalization, spectral normalization and Adam, written
//! once over backend traits, plus a Python-compatible `random`.
//!
//! - [`backend`]: the [`Backend`]/[`AutodiffBackend`] traits, one method per ATen op.
//! - [`weight_norm`]: `w = g * v / ‖v‖` with PyTorch's `dim` contract.
//! - [`spectral_norm`]: `w / σ` with power iteration, both PyTorch APIs.
//! - [`guards`]: opt-in eps, σ floor and checked mode (no NaN weights).
//! - [`power_iteration`]: opt-in power iteration to a tolerance, both spectral-norm APIs.
//! - [`seeded_start`]: opt-in per-layer seeded draws of `u`, `v` (splitmix64, Box–Muller).
//! - [`functional`]: `F.normalize` and other compositions PyTorch writes in Python.
//! - [`optim`]: [`optim::Adam`], op for op as `torch.optim.Adam` on CPU.
//! - [`random`]: CPython's `random.seed`/`random.random`.
//! - [`mod@reference`]: a pure-Rust backend so this crate tests without libtorch.
//! - [`conformance`]: the checks every backend runs.
//!
//! No libtorch here; `norm-tch` implements the traits on `tch::Tensor`.
#![warn(missing_docs)]

pub mod backend;
pub mod conformance;
pub mod error;
pub mod functional;
pub mod guards;
pub mod optim;
pub mod power_iteration;
pub mod random;
pub mod reference;
pub mod seeded_start;
pub mod spectral_norm;
pub mod weight_norm;

pub use backend::{AutodiffBackend, Backend};
pub use error::{CheckpointErrorKind, Error, Result};
