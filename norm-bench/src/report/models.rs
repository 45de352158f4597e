//! The whole models of the report's model rows: the HiFi-GAN-style generator and the
//! SN-GAN discriminator that the examples `hifigan_generator` and `sn_discriminator`
//! build (PyTorch twins: `data/hifigan_block.py`, `data/sn_discriminator.py`). The code
//! is the examples' own, `norm-tch/examples/common/`, compiled in here by path (as
//! `norm-tch/tests/examples.rs` does), so the models exist once.
#![allow(dead_code)] // the report uses the models, not the examples' I/O helpers

#[path = "../../../norm-tch/examples/common/ops.rs"]
pub(crate) mod ops;

#[path = "../../../norm-tch/examples/common/hifigan.rs"]
pub(crate) mod hifigan;

#[path = "../../../norm-tch/examples/common/sn_discriminator.rs"]
pub(crate) mod sn_discriminator;
