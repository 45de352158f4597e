//! Optimizers written once over [`crate::backend::AutodiffBackend`].

mod adam;

pub use adam::{Adam, AdamConfig, AdamState};
