//! norm-bench: the CLI's library — seed-document replays, exact tensor snapshots, and
//! timing reports against PyTorch eager.
#![warn(missing_docs)]

pub mod format;
pub mod golden;
pub mod parity;
pub mod report;
pub mod seed_loop;
pub mod seed_loop_cpp;
pub mod snapshot;
