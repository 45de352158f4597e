//! The report's options: [`ReportOptions`] with the default sweep, and the JSON config
//! file that overrides the defaults (command-line flags override the config file, see
//! [`args`](super::args); the timing cases they make are [`sweep`](super::sweep)'s).
//! `docs/reports.md` lists every field.

use super::case::{DType, DeviceKind, Shape};
use super::convergence::MatrixKind;
use super::ops::{Op, OpShapes};
use super::sampling::Sampling;
use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything a report run does. [`Default`] is the embedded default sweep (about three
/// minutes on a 2-core machine, both sides included). The config file has the same field
/// names; fields it leaves out keep their defaults, unknown fields are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ReportOptions {
    /// The folder that receives `<run>/` and the `latest` link. Default `reports`.
    pub(crate) out: PathBuf,
    /// The run folder's name; `None`: the UTC start time, `2026-11-28T19-05-00Z`.
    pub(crate) run_name: Option<String>,
    /// The ops timed, in run order. Default: all of them.
    pub(crate) ops: Vec<Op>,
    /// Sizes `n` of the square `n x n` weights. Default 64, 256, 512, 1024, 2048, 4096.
    pub(crate) sizes: Vec<u64>,
    /// Rectangular weights `rows x cols`, timed for `rect_ops`. Default 512x2048, 2048x512.
    pub(crate) rect_shapes: Vec<Shape>,
    /// The ops also timed at `rect_shapes`. Default: every op but `copy` and `seed_loop_step`.
    pub(crate) rect_ops: Vec<Op>,
    /// Square sizes at which `copy` runs (the bandwidth reference); `None`: those of `sizes`. Default `None`.
    pub(crate) copy_sizes: Option<Vec<u64>>,
    /// Dtypes besides f32, timed for `dtype_ops` at `dtype_shapes`. Default f64, bf16, f16.
    pub(crate) extra_dtypes: Vec<DType>,
    /// The ops timed in `extra_dtypes`. Default `weight_norm_forward`, `weight_norm_forward_out`, `spectral_norm_forward_train`.
    pub(crate) dtype_ops: Vec<Op>,
    /// The shapes of the `extra_dtypes` rows. Default 512x512.
    pub(crate) dtype_shapes: Vec<Shape>,
    /// Devices; `cuda` rows run only where libtorch sees a CUDA device. Default cpu, cuda.
    pub(crate) devices: Vec<DeviceKind>,
    /// Whether `devices` was named (by `--device`/`--devices` or the config file's `devices`):
    /// then a device libtorch does not see is an error (exit 2), not a skipped row. Not a
    /// config field itself.
    #[serde(skip)]
    pub(crate) devices_required: bool,
    /// Power iterations per evaluation of the spectral-norm ops and the train step. Default 1 (PyTorch's).
    pub(crate) n_power_iterations: u64,
    /// Iteration counts of the `power_iteration` op. Default 1, 10.
    pub(crate) power_iteration_counts: Vec<u64>,
    /// Intra-op threads of both sides (at least 1). Default 1.
    pub(crate) threads: usize,
    /// Warm-up and sample counts per case and side.
    pub(crate) sampling: Sampling,
    /// Whether to run the σ study (`convergence.csv`). Default true.
    pub(crate) convergence: bool,
    /// Matrix shapes of the σ study. Default 64x64, 256x256, 1024x1024, 256x1024.
    pub(crate) convergence_shapes: Vec<Shape>,
    /// Iteration counts of the σ study. Default 1, 2, 5, 10, 20, 50.
    pub(crate) convergence_iterations: Vec<u64>,
    /// Matrix kinds of the σ study. Default random, ill_conditioned.
    pub(crate) matrix_kinds: Vec<MatrixKind>,
    /// Whether to record the loss curves (`loss.csv`). Default true.
    pub(crate) loss_curves: bool,
    /// K of the seed document's weight-norm program (3K steps in all). Default 100.
    pub(crate) seed_loop_steps: u64,
    /// Steps of the spectral-norm training run. Default 200.
    pub(crate) spectral_train_steps: u64,
    /// Whether to compute `operator_norm.csv` (σ_operator / σ_reshaped of the example models'
    /// layers, Rust only, a few seconds). Default true.
    pub(crate) operator_norm: bool,
    /// Whether to draw the PNG plots (needs matplotlib in the Python). Default true.
    pub(crate) plots: bool,
    /// The Python interpreter for the PyTorch side and the plots; `None`: the repository's `.venv/bin/python`, else `python3`.
    pub(crate) python: Option<PathBuf>,
    /// Whether to run the PyTorch side at all. Default true.
    pub(crate) pytorch: bool,
    /// A ratio is settled when its bootstrap interval's width over the ratio is at most
    /// this (`(high − low) / ratio`, in (0, 10]). Default 0.10.
    pub(crate) settle_width: f64,
    /// The most extra rounds a case whose ratio is not settled gets (0 to 100). Default 4.
    pub(crate) extra_rounds: u64,
    /// Seconds the whole run may spend on extra rounds (0 to 86400; 0: none). Default 120.
    pub(crate) extra_rounds_budget_s: u64,
}

/// The largest `settle_width`.
pub(crate) const MAX_SETTLE_WIDTH: f64 = 10.0;
/// The largest `extra_rounds`.
pub(crate) const MAX_EXTRA_ROUNDS: u64 = 100;
/// The largest `extra_rounds_budget_s` (a day).
pub(crate) const MAX_EXTRA_ROUNDS_BUDGET_S: u64 = 86_400;

impl Default for ReportOptions {
    /// The default sweep; its ops and their `rect_ops` and `dtype_ops` membership come
    /// from the table of ops ([`OPS`](super::ops::OPS)).
    fn default() -> Self {
        ReportOptions {
            out: PathBuf::from("reports"),
            run_name: None,
            ops: Op::all().collect(),
            sizes: vec![64, 256, 512, 1024, 2048, 4096],
            rect_shapes: vec![Shape { rows: 512, cols: 2048 }, Shape { rows: 2048, cols: 512 }],
            rect_ops: Op::all().filter(|op| op.row().shapes == OpShapes::Sweep).collect(),
            copy_sizes: None,
            extra_dtypes: vec![DType::F64, DType::Bf16, DType::F16],
            dtype_ops: Op::all().filter(|op| op.row().in_dtype_subset).collect(),
            dtype_shapes: vec![Shape::square(512)],
            devices: vec![DeviceKind::Cpu, DeviceKind::Cuda],
            devices_required: false,
            n_power_iterations: 1,
            power_iteration_counts: vec![1, 10],
            threads: 1,
            sampling: Sampling::default(),
            convergence: true,
            convergence_shapes: vec![
                Shape::square(64),
                Shape::square(256),
                Shape::square(1024),
                Shape { rows: 256, cols: 1024 },
            ],
            convergence_iterations: vec![1, 2, 5, 10, 20, 50],
            matrix_kinds: MatrixKind::ALL.to_vec(),
            loss_curves: true,
            operator_norm: true,
            seed_loop_steps: 100,
            spectral_train_steps: 200,
            plots: true,
            python: None,
            pytorch: true,
            settle_width: 0.10,
            extra_rounds: 4,
            extra_rounds_budget_s: 150,
        }
    }
}

impl ReportOptions {
    /// The options of a config file: its fields over the defaults.
    ///
    /// Errors: not JSON, an unknown field, a value of the wrong type.
    pub(crate) fn from_json(text: &str) -> Result<Self> {
        let mut options: Self = serde_json::from_str(text)?;
        let value: serde_json::Value = serde_json::from_str(text)?;
        options.devices_required = value.get("devices").is_some();
        Ok(options)
    }

    /// The devices named in `devices` that libtorch does not see, when they are required
    /// ([`ReportOptions::devices_required`]); `cuda_available`: whether it sees CUDA device 0.
    pub(crate) fn missing_devices(&self, cuda_available: bool) -> Vec<DeviceKind> {
        let missing = |d: &&DeviceKind| **d == DeviceKind::Cuda && !cuda_available;
        if !self.devices_required {
            return Vec::new();
        }
        self.devices.iter().filter(missing).copied().collect()
    }

    /// [`ReportOptions::from_json`] on the file at `path`.
    pub(crate) fn from_config_file(path: &Path) -> Result<Self> {
        let text = crate::limits::read_text_bounded(path, crate::limits::MAX_CONFIG_BYTES, "the config file")?;
        Self::from_json(&text).with_context(|| format!("the config file {} is not valid", path.display()))
    }

    /// Checks the values that the types allow but the run does not.
    ///
    /// `threads` is bounded by [`max_threads`]: more intra-op threads than that only thrash,
    /// and libtorch takes the count as a 32-bit int.
    pub(crate) fn validate(&self) -> Result<()> {
        super::limits::check_ranges(self)?;
        let max_threads = max_threads();
        ensure!(
            (1..=max_threads).contains(&self.threads),
            "threads must be in [1, {max_threads}] (4 x this machine's logical CPUs), got {}",
            self.threads
        );
        self.sampling.validate()?;
        for (name, sizes) in [("sizes", &self.sizes), ("copy_sizes", self.copy_sizes.as_ref().unwrap_or(&self.sizes))] {
            ensure!(sizes.iter().all(|&n| n >= 1), "{name} must be at least 1, got {sizes:?}");
        }
        for (name, counts) in [
            ("power_iteration_counts", &self.power_iteration_counts),
            ("convergence_iterations", &self.convergence_iterations),
        ] {
            ensure!(counts.iter().all(|&k| k >= 1), "{name} must be at least 1 each, got {counts:?}");
        }
        ensure!(self.n_power_iterations >= 1, "n_power_iterations must be at least 1, got {}", self.n_power_iterations);
        ensure!(
            !self.loss_curves || (self.seed_loop_steps >= 1 && self.spectral_train_steps >= 1),
            "seed_loop_steps and spectral_train_steps must be at least 1"
        );
        if let Some(name) = &self.run_name {
            let bad = name.is_empty()
                || name.starts_with('.')
                || name.contains(['/', '\\'])
                || name == "latest"
                || name == "LATEST";
            ensure!(!bad, "run_name must be a plain folder name (not empty, no '/', not 'latest'), got {name:?}");
        }
        ensure!(!self.devices.is_empty(), "devices must name at least one device");
        Ok(())
    }
}

/// The most intra-op threads a report runs with: 4 x the machine's logical CPUs.
pub(crate) fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_overrides_the_defaults_and_flags_override_the_config() {
        let config = r#"{"sizes": [8, 16], "threads": 2, "sampling": {"budget_ms": 10}, "ops": ["copy", "weight_norm_forward"],
                         "rect_shapes": ["4x8"], "extra_dtypes": [], "plots": false, "copy_sizes": [16]}"#;
        let options = ReportOptions::from_json(config).unwrap();
        assert_eq!(options.sizes, [8, 16]);
        assert_eq!(options.threads, 2);
        assert_eq!(options.sampling, Sampling { budget_ms: 10, ..Sampling::default() });
        assert_eq!(options.sampling.min_sample_us, 1000, "batching into 1 ms samples by default");
        assert_eq!(options.rect_shapes, [Shape { rows: 4, cols: 8 }]);
        assert!(!options.plots);
        assert_eq!(options.out, PathBuf::from("reports"), "fields left out keep their defaults");
    }

    #[test]
    fn the_default_sweep_lists_the_ops_of_the_table() {
        let options = ReportOptions::default();
        assert_eq!(options.ops, Op::all().collect::<Vec<_>>());
        let all_but = |skip: &[Op]| Op::all().filter(|op| !skip.contains(op)).collect::<Vec<_>>();
        let models: Vec<Op> = Op::all().filter(|op| op.is_model()).collect();
        assert_eq!(models.len(), 6);
        assert_eq!(
            options.rect_ops,
            all_but(&[&[Op::Copy, Op::SeedLoopStep, Op::SeedLoopStepCpp], &models[..]].concat())
        );
        assert_eq!(options.dtype_ops, [Op::WeightNormForward, Op::WeightNormForwardOut, Op::SpectralNormForwardTrain]);
    }

    #[test]
    fn min_sample_us_comes_from_the_config_and_fixed_counts_turn_it_off() {
        let options = ReportOptions::from_json(r#"{"sampling": {"min_sample_us": 250, "rounds": 3}}"#).unwrap();
        assert_eq!(options.sampling, Sampling { min_sample_us: 250, rounds: 3, ..Sampling::default() });
        assert_eq!(options.sampling.per_round().min_sample_us, 250);
        let off = ReportOptions::from_json(r#"{"sampling": {"min_sample_us": 0}}"#).unwrap();
        assert_eq!(off.sampling.min_sample_us, 0);
        assert!(ReportOptions::from_json(r#"{"sampling": {"min_sample_ms": 1}}"#)
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
    }

    #[test]
    fn bad_configs_are_errors() {
        assert!(ReportOptions::from_json(r#"{"sizez": [8]}"#).unwrap_err().to_string().contains("unknown field"));
        assert!(ReportOptions::from_json(r#"{"ops": ["nope"]}"#).is_err());
        assert!(ReportOptions::from_json(r#"{"rect_shapes": ["0x3"]}"#).is_err());
        assert!(ReportOptions { threads: 0, ..Default::default() }.validate().is_err());
        assert!(ReportOptions { threads: max_threads(), ..Default::default() }.validate().is_ok());
        for threads in [max_threads() + 1, 100_000, 1 << 31, usize::MAX] {
            let e = ReportOptions { threads, ..Default::default() }.validate().unwrap_err().to_string();
            assert!(e.contains("threads must be in [1, ") && e.contains(&threads.to_string()), "{e}");
        }
        assert!(ReportOptions { sizes: vec![8, 0], ..Default::default() }.validate().is_err());
        for bad in [0.0, -0.1, 10.5, f64::NAN] {
            let e = ReportOptions { settle_width: bad, ..Default::default() }.validate().unwrap_err().to_string();
            assert!(e.contains("settle_width (--settle-width) must be in (0, 10]"), "{e}");
        }
        assert!(ReportOptions { extra_rounds: 101, ..Default::default() }.validate().is_err());
        assert!(ReportOptions { extra_rounds_budget_s: 86_401, ..Default::default() }.validate().is_err());
        assert!(ReportOptions { convergence_iterations: vec![0], ..Default::default() }.validate().is_err());
        assert!(ReportOptions { run_name: Some("a/b".into()), ..Default::default() }.validate().is_err());
        assert!(ReportOptions {
            sampling: Sampling { min_samples: 9, max_samples: 3, ..Default::default() },
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn named_devices_are_required() {
        let named = ReportOptions::from_json(r#"{"devices": ["cpu", "cuda"]}"#).unwrap();
        assert!(named.devices_required);
        assert_eq!(named.missing_devices(false), [DeviceKind::Cuda]);
        assert!(named.missing_devices(true).is_empty());
        let default = ReportOptions::from_json("{}").unwrap();
        assert!(!default.devices_required);
        assert!(default.missing_devices(false).is_empty(), "the default sweep skips cuda where there is none");
    }

    #[test]
    fn options_round_trip_through_json() {
        let options = ReportOptions::default();
        let text = serde_json::to_string(&options).unwrap();
        // The written config names its devices, so read back they are required.
        assert_eq!(ReportOptions::from_json(&text).unwrap(), ReportOptions { devices_required: true, ..options });
    }
}
