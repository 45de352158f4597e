//! norm-tch: norm-core's backend traits on `tch::Tensor` (CPU and CUDA, real libtorch
//! autograd), PyTorch-exact layers and Adam that drop into `tch::nn`.
//!
//! - [`backend`]: [`TchBackend`], device helpers, thread pinning.
//! - [`layers`]: PyTorch's layers with PyTorch's init, built at a tch `Path`, and
//!   [`layers::Normalized`], one type for weight norm and spectral norm in both PyTorch APIs.
//! - [`optim`]: [`optim::Adam`] over a VarStore.
//! - [`init`]: PyTorch's `reset_parameters` draws.
//! - [`scheme`]: the state-dict names of every reparametrization, shared by layers and checkpoints.
//! - [`var_store`]: the one door into a VarStore's variables (take, put, rename, find by identity).
//! - [`checkpoint`]: PyTorch state dicts (`.pt`, `.safetensors`) in and out, every naming scheme.
//! - [`operator_norm`]: the true operator norm of a convolution (power iteration on the
//!   convolution and its exact adjoint), beside the reshaped kernel's σ (opt-in).
//! - [`weight_norm_init`]: Salimans & Kingma's data-dependent init of weight norm's g and bias (opt-in).
//! - [`models`]: the examples' whole models (a HiFi-GAN-style generator under weight norm, an
//!   SN-GAN discriminator under spectral norm), bit-equal to their PyTorch twins in `data/`.
//! - [`mod@weight_norm_out`]: `torch._weight_norm` into a reused tensor (same bits, no allocation).
//! - [`weight_recycling`]: spectral norm's `weight_orig / σ` into the storage of the layer's
//!   previous weight once nothing holds it (same bits and graph, no page faults per forward).
//!
//! Bit-exactness with PyTorch holds on the same machine with the same thread count
//! (pin with [`backend::set_num_threads`]); see the README.
#![warn(missing_docs)]

pub mod backend;
pub mod checkpoint;
mod ffi;
pub mod init;
pub mod layers;
pub mod models;
pub mod operator_norm;
pub mod optim;
pub mod scheme;
pub mod var_store;
pub mod weight_norm_init;
pub mod weight_norm_out;
pub mod weight_recycling;

pub use backend::TchBackend;
pub use norm_core::{self, Error, Result};
pub use tch;
pub use weight_norm_out::weight_norm_out;

/// The README's Rust example, compiled and run by `cargo test` (a doctest), so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExample;
