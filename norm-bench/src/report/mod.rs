//! `norm-bench report`, the main job: norm's weight norm and spectral norm timed in Rust
//! and the same programs in PyTorch eager, side by side in one run, plus the accuracy of
//! the power iteration and the loss curves of two training programs, written to
//! `<out>/<run>/` (`docs/reports.md` has the options and every schema):
//!
//! - `timing.csv` — one row per case ([`sweep`] of the ops of [`ops`], timed by
//!   [`rust_side`] and [`pytorch`]), both sides' statistics ([`stats`]) and their ratio,
//!   the ratio's bootstrap interval ([`interval`]) and whether it is settled,
//!   bandwidths for `copy`, `weight_norm_forward` and `weight_norm_forward_out`;
//! - `convergence.csv` — σ estimates after k power iterations vs the SVD ([`convergence`]);
//! - `loss.csv` — per-step losses, Rust and PyTorch;
//! - `operator_norm.csv` — σ_operator / σ_reshaped of the example models' layers ([`operator_norm_rows`]);
//! - `tolerance.csv` — power iteration to a tolerance vs fixed counts ([`tolerance_study`]);
//! - `run.json` ([`run_json`]), `summary.md` ([`summary`]); `plots/*.png` ([`plots`]).
//!
//! For each case both sides set up and warm up, then take turns in bursts, the PyTorch
//! script's ([`pytorch`]) first, one process at a time so they never compete for the CPU;
//! both follow the same adaptive [`sampling`] rule, and [`scheduler`] owns each case's
//! rounds and the extra rounds ([`run`] runs it all). Every file is rewritten (atomically,
//! [`export`]) after every finished piece of work, so an interrupted run keeps what it
//! measured; `<out>/latest` (a symlink) and `<out>/LATEST` (a text file) name the newest
//! run ([`run_folder`]). Progress, with an estimate of the time left, goes to stderr;
//! `summary.md` is printed on stdout at the end.
//!
//! Without a usable Python/torch (or with the `pytorch` option off) the PyTorch
//! columns stay empty, a warning goes to stderr, and the run still succeeds; so it does
//! without matplotlib (no plots).
//!
//! Where things are: the options ([`options`], [`args`] for the flags) make the cases
//! ([`sweep`], [`case`]) from the table of ops ([`ops`]); [`run`] times them
//! ([`scheduler`]) and keeps the [`state`] ([`results`] row by row), the run folder
//! ([`run_folder`]) and the progress lines ([`progress`]); [`export`], [`run_json`],
//! [`summary`], [`ratio_tables`] and [`bandwidth`] write the files. Only [`ReportArgs`], [`run_cli`] and
//! [`pytorch::default_python`] leave the crate.

mod args;
mod bandwidth;
mod case;
mod convergence;
mod export;
mod interval;
mod limits;
mod machine;
mod model_rows;
mod operator_norm_rows;
mod ops;
mod options;
mod plots;
mod progress;
pub mod pytorch;
mod ratio_tables;
mod results;
mod run;
mod run_folder;
mod run_json;
mod rust_side;
mod sampling;
mod scheduler;
mod state;
mod stats;
mod summary;
mod sweep;
mod tolerance_study;

pub use args::ReportArgs;
pub use run::run_cli;
pub(crate) use summary::duration_text;
