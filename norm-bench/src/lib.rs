//! norm-bench: the CLI's library — seed-document replays, exact tensor snapshots, and
//! timing reports against PyTorch eager.
#![warn(missing_docs)]
// The CLI crate's module docs are a map for maintainers: they link to its private modules.
#![allow(rustdoc::private_intra_doc_links)]
// Its clap doc comments are --help text, where `<run>` is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

pub mod compare;
pub mod format;
pub mod fuzz;
pub mod golden;
pub mod limits;
pub mod operator_norm;
pub mod parity;
pub mod report;
pub mod seed_loop;
pub mod seed_loop_cpp;
pub mod snapshot;
