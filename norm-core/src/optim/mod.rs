//! Optimizers written once over [`crate::backend::AutodiffBackend`].

mod adam;
mod foreach;
mod path;

pub use adam::{bias_corrections, single_tensor_update, Adam, AdamConfig, AdamState, AdamUpdate};
pub use foreach::{foreach_scalars, group_by_device_and_dtype, multi_tensor_update, AdamGroup};
pub use path::{check_fused_param, AdamPath, FOREACH_DEVICE_TYPES, FUSED_DEVICE_TYPES};
