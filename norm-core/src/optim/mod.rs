//! Optimizers written once over [`crate::backend::AutodiffBackend`].

mod adam;

pub use adam::{bias_corrections, single_tensor_update, Adam, AdamConfig, AdamState, AdamUpdate};
