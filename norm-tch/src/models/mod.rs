//! The two whole models of norm's examples and report, as library code: a HiFi-GAN-style
//! generator under weight norm ([`hifigan`], PyTorch twin `data/hifigan_block.py`) and an
//! SN-GAN discriminator under spectral norm ([`sn_discriminator`], PyTorch twin
//! `data/sn_discriminator.py`); [`layer_operators`] gives every normalized layer of either as a
//! convolution operator, for `σ_operator / σ_reshaped` ([`crate::operator_norm`]).
//!
//! Each mirrors its PyTorch twin module by module, under PyTorch's state-dict names, with
//! PyTorch's init drawn in PyTorch's construction order and PyTorch's ops in PyTorch's order,
//! so from the same seed (or the same checkpoint) the outputs, losses and trained state are
//! bit-equal to PyTorch's on the same machine with one intra-op thread. The examples
//! `hifigan_generator` and `sn_discriminator`, `tests/examples.rs` (against live PyTorch),
//! `examples/operator_norm_figure.rs` and `norm-bench report` (the whole-model rows and
//! `operator_norm.csv`) all use these models.

pub mod hifigan;
pub mod layer_operators;
pub mod sn_discriminator;
