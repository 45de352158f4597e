//! Code shared by the examples `hifigan_generator` and `sn_discriminator` and by
//! `tests/examples.rs`, which runs both flows at a small size against live PyTorch. The
//! examples include this folder with `mod common;`, the test with
//! `#[path = "../examples/common/mod.rs"] mod common;`, so the models exist once.
//!
//! - [`ops`]: the activations, spelled with ATen ops that give PyTorch's bits.
//! - [`hifigan`]: the HiFi-GAN-style generator of `data/hifigan_block.py`.
//! - [`sn_discriminator`]: the spectrally normalized discriminator of
//!   `data/sn_discriminator.py`, and its training loop.
//!
//! Float32 bit patterns as the Python scripts write them and ULP distances come from
//! `norm_test_support` (`Bits`).
#![allow(dead_code)] // each example uses only part of this folder

pub mod hifigan;
pub mod ops;
pub mod sn_discriminator;
