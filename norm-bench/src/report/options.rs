//! The report's options: [`ReportOptions`] with the default sweep, a JSON config file
//! that overrides the defaults, and command-line flags ([`ReportArgs`]) that override
//! the config file. `docs/reports.md` lists every field.

use super::cases::{Case, DType, DeviceKind, Op, Shape};
use super::convergence::MatrixKind;
use super::sampling::Sampling;
use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything a report run does. [`Default`] is the embedded default sweep (about three
/// minutes on a 2-core machine, both sides included). The config file has the same field
/// names; fields it leaves out keep their defaults, unknown fields are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportOptions {
    /// The folder that receives `<run>/` and the `latest` link. Default `reports`.
    pub out: PathBuf,
    /// The run folder's name; `None`: the UTC start time, `2026-11-28T19-05-00Z`.
    pub run_name: Option<String>,
    /// The ops timed, in run order. Default: all of them.
    pub ops: Vec<Op>,
    /// Sizes `n` of the square `n x n` weights. Default 64, 256, 512, 1024, 2048, 4096.
    pub sizes: Vec<u64>,
    /// Rectangular weights `rows x cols`, timed for `rect_ops`. Default 512x2048, 2048x512.
    pub rect_shapes: Vec<Shape>,
    /// The ops also timed at `rect_shapes`. Default: every op but `copy` and `seed_loop_step`.
    pub rect_ops: Vec<Op>,
    /// Square sizes at which `copy` runs (the bandwidth reference); `None`: those of `sizes`. Default `None`.
    pub copy_sizes: Option<Vec<u64>>,
    /// Dtypes besides f32, timed for `dtype_ops` at `dtype_shapes`. Default f64, bf16, f16.
    pub extra_dtypes: Vec<DType>,
    /// The ops timed in `extra_dtypes`. Default `weight_norm_forward`, `weight_norm_forward_out`, `spectral_norm_forward_train`.
    pub dtype_ops: Vec<Op>,
    /// The shapes of the `extra_dtypes` rows. Default 512x512.
    pub dtype_shapes: Vec<Shape>,
    /// Devices; `cuda` rows run only where libtorch sees a CUDA device. Default cpu, cuda.
    pub devices: Vec<DeviceKind>,
    /// Power iterations per evaluation of the spectral-norm ops and the train step. Default 1 (PyTorch's).
    pub n_power_iterations: u64,
    /// Iteration counts of the `power_iteration` op. Default 1, 10.
    pub power_iteration_counts: Vec<u64>,
    /// Intra-op threads of both sides (at least 1). Default 1.
    pub threads: usize,
    /// Warm-up and sample counts per case and side.
    pub sampling: Sampling,
    /// Whether to run the σ study (`convergence.csv`). Default true.
    pub convergence: bool,
    /// Matrix shapes of the σ study. Default 64x64, 256x256, 1024x1024, 256x1024.
    pub convergence_shapes: Vec<Shape>,
    /// Iteration counts of the σ study. Default 1, 2, 5, 10, 20, 50.
    pub convergence_iterations: Vec<u64>,
    /// Matrix kinds of the σ study. Default random, ill_conditioned.
    pub matrix_kinds: Vec<MatrixKind>,
    /// Whether to record the loss curves (`loss.csv`). Default true.
    pub loss_curves: bool,
    /// K of the seed document's weight-norm program (3K steps in all). Default 100.
    pub seed_loop_steps: u64,
    /// Steps of the spectral-norm training run. Default 200.
    pub spectral_train_steps: u64,
    /// Whether to draw the PNG plots (needs matplotlib in the Python). Default true.
    pub plots: bool,
    /// The Python interpreter for the PyTorch side and the plots; `None`: the repository's `.venv/bin/python`, else `python3`.
    pub python: Option<PathBuf>,
    /// Whether to run the PyTorch side at all. Default true.
    pub pytorch: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        let all_but = |skip: &[Op]| Op::ALL.into_iter().filter(|op| !skip.contains(op)).collect::<Vec<_>>();
        ReportOptions {
            out: PathBuf::from("reports"),
            run_name: None,
            ops: Op::ALL.to_vec(),
            sizes: vec![64, 256, 512, 1024, 2048, 4096],
            rect_shapes: vec![Shape { rows: 512, cols: 2048 }, Shape { rows: 2048, cols: 512 }],
            rect_ops: all_but(&[Op::Copy, Op::SeedLoopStep, Op::SeedLoopStepCpp]),
            copy_sizes: None,
            extra_dtypes: vec![DType::F64, DType::Bf16, DType::F16],
            dtype_ops: vec![Op::WeightNormForward, Op::WeightNormForwardOut, Op::SpectralNormForwardTrain],
            dtype_shapes: vec![Shape::square(512)],
            devices: vec![DeviceKind::Cpu, DeviceKind::Cuda],
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
            seed_loop_steps: 100,
            spectral_train_steps: 200,
            plots: true,
            python: None,
            pytorch: true,
        }
    }
}

impl ReportOptions {
    /// The options of a config file: its fields over the defaults.
    ///
    /// Errors: not JSON, an unknown field, a value of the wrong type.
    pub fn from_json(text: &str) -> Result<Self> {
        Ok(serde_json::from_str(text)?)
    }

    /// [`ReportOptions::from_json`] on the file at `path`.
    pub fn from_config_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the config file {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("the config file {} is not valid", path.display()))
    }

    /// Checks the values that the types allow but the run does not.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.threads >= 1, "threads must be at least 1, got {}", self.threads);
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

    /// The timing cases in run order, for the devices in `available`: per device, op by
    /// op, the square sizes then the rectangular shapes, then the extra dtypes;
    /// `seed_loop_step` (3x2, CPU, f32) last. An op gets no cases where it does not run
    /// ([`Op::runs_on`]: `weight_norm_forward_out` is CPU-only, without f16).
    pub fn timing_cases(&self, available: &[DeviceKind]) -> Vec<Case> {
        let mut cases = Vec::new();
        let devices = self.devices.iter().copied().filter(|d| available.contains(d));
        let mut unique_devices: Vec<DeviceKind> = Vec::new();
        for device in devices {
            if !unique_devices.contains(&device) {
                unique_devices.push(device);
            }
        }
        for &device in &unique_devices {
            for &op in self.ops.iter().filter(|op| op.runs_on(device, DType::F32)) {
                let counts: Vec<Option<u64>> = match op {
                    Op::PowerIteration => self.power_iteration_counts.iter().map(|&k| Some(k)).collect(),
                    op if op.has_power_iterations() => vec![Some(self.n_power_iterations)],
                    _ => vec![None],
                };
                let mut shapes: Vec<Shape> = match op {
                    op if op.is_seed_loop() => vec![],
                    Op::Copy => {
                        self.copy_sizes.as_ref().unwrap_or(&self.sizes).iter().map(|&n| Shape::square(n)).collect()
                    }
                    _ => self.sizes.iter().map(|&n| Shape::square(n)).collect(),
                };
                if self.rect_ops.contains(&op) && !op.is_seed_loop() {
                    shapes.extend(self.rect_shapes.iter().copied());
                }
                for shape in shapes {
                    for &k in &counts {
                        cases.push(Case {
                            op,
                            rows: shape.rows,
                            cols: shape.cols,
                            dtype: DType::F32,
                            device,
                            n_power_iterations: k,
                        });
                    }
                }
            }
            for &op in self.dtype_ops.iter().filter(|op| self.ops.contains(op) && !op.is_seed_loop()) {
                for &shape in &self.dtype_shapes {
                    for &dtype in self.extra_dtypes.iter().filter(|&&d| d != DType::F32 && op.runs_on(device, d)) {
                        let k = match op {
                            Op::PowerIteration => self.power_iteration_counts.first().copied(),
                            op if op.has_power_iterations() => Some(self.n_power_iterations),
                            _ => None,
                        };
                        cases.push(Case {
                            op,
                            rows: shape.rows,
                            cols: shape.cols,
                            dtype,
                            device,
                            n_power_iterations: k,
                        });
                    }
                }
            }
        }
        if unique_devices.contains(&DeviceKind::Cpu) {
            for op in [Op::SeedLoopStep, Op::SeedLoopStepCpp].into_iter().filter(|op| self.ops.contains(op)) {
                cases.push(Case::cpu_f32(op, Shape { rows: 3, cols: 2 }));
            }
        }
        cases
    }
}

/// A comma-separated list of positive sizes (`64,256,1024`).
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("a size must be at least 1, got 0".to_string()),
        Ok(n) => Ok(n),
        Err(_) => {
            Err(format!("expected comma-separated sizes like 64,256,1024; '{}' is not a positive integer", text.trim()))
        }
    }
}

/// `norm-bench report`'s flags. Every flag is optional: what is not given comes from
/// `--config FILE`, and what that leaves out from the defaults.
#[derive(clap::Args, Clone, Debug, Default, PartialEq)]
pub struct ReportArgs {
    /// JSON config file with ReportOptions fields (docs/reports.md); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder that receives <run>/ and the `latest` link [default: reports].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Name of the run folder [default: the UTC start time, 2026-11-28T19-05-00Z].
    #[arg(long = "run", value_name = "NAME")]
    pub run_name: Option<String>,
    /// Ops to time, comma-separated: copy, weight_norm_forward, weight_norm_forward_out, weight_norm_forward_backward, spectral_norm_forward_train, spectral_norm_forward_eval, spectral_norm_forward_backward, power_iteration, spectral_norm_train_step, seed_loop_step [default: all].
    #[arg(long, value_delimiter = ',', value_name = "OPS")]
    pub ops: Option<Vec<Op>>,
    /// Sizes n of the square n x n weights [default: 64,256,512,1024,2048,4096].
    #[arg(long, value_delimiter = ',', value_parser = parse_size, value_name = "N,..")]
    pub sizes: Option<Vec<u64>>,
    /// Rectangular shapes ROWSxCOLS; pass `--rect-shapes ''` for none [default: 512x2048,2048x512].
    #[arg(long, value_delimiter = ',', value_name = "RxC,..")]
    pub rect_shapes: Option<Vec<String>>,
    /// Extra dtypes for the dtype subset; `''` for none [default: f64,bf16,f16].
    #[arg(long, value_delimiter = ',', value_name = "DTYPES")]
    pub dtypes: Option<Vec<String>>,
    /// Devices [default: cpu,cuda; cuda only where available].
    #[arg(long, value_delimiter = ',', value_name = "DEVICES")]
    pub devices: Option<Vec<DeviceKind>>,
    /// Power iterations per spectral-norm evaluation [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub n_power_iterations: Option<u64>,
    /// Intra-op threads of both sides [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub threads: Option<u64>,
    /// Exactly N warm-up iterations per case and side (no warm-up time).
    #[arg(long, value_name = "N")]
    pub warmup: Option<u64>,
    /// Exactly N timed samples per case and side, one iteration each (no time budget, one round, no batching).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub samples: Option<u64>,
    /// Batch iterations into samples of at least this many microseconds (cases without untimed work between iterations); 0: one iteration per sample [default: 1000].
    #[arg(long, value_name = "US")]
    pub min_sample_us: Option<u64>,
    /// Rounds per case, the sides alternating; samples and budget are split among them [default: 2].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub rounds: Option<u64>,
    /// Time budget of each side's timed samples (all rounds), in milliseconds [default: 800].
    #[arg(long, value_name = "MS")]
    pub budget_ms: Option<u64>,
    /// At least this many samples per case and side [default: 6].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub min_samples: Option<u64>,
    /// At most this many samples per case and side [default: 300].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub max_samples: Option<u64>,
    /// Skip the σ study (convergence.csv keeps only its header).
    #[arg(long)]
    pub no_convergence: bool,
    /// Skip the loss curves (loss.csv keeps only its header).
    #[arg(long)]
    pub no_loss: bool,
    /// Skip the PNG plots.
    #[arg(long)]
    pub no_plots: bool,
    /// Python with torch for the PyTorch side and the plots [default: <exe dir>/../../.venv/bin/python, else python3].
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Skip the PyTorch side (its columns stay empty).
    #[arg(long)]
    pub no_pytorch: bool,
}

/// A comma list where the empty string means "none" (`--rect-shapes ''`).
fn parse_list<T: std::str::FromStr<Err = String>>(flag: &str, items: &[String]) -> Result<Vec<T>> {
    items
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.parse::<T>().map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
        .collect()
}

impl ReportArgs {
    /// The options: the defaults, overridden by the config file (if any), overridden by
    /// the flags given; validated.
    pub fn resolve(&self) -> Result<ReportOptions> {
        let mut options = match &self.config {
            Some(path) => ReportOptions::from_config_file(path)?,
            None => ReportOptions::default(),
        };
        self.apply(&mut options)?;
        options.validate()?;
        Ok(options)
    }

    /// Overrides `options` with the flags that were given.
    pub fn apply(&self, options: &mut ReportOptions) -> Result<()> {
        if let Some(out) = &self.out {
            options.out = out.clone();
        }
        if let Some(name) = &self.run_name {
            options.run_name = Some(name.clone());
        }
        if let Some(ops) = &self.ops {
            options.ops = ops.clone();
        }
        if let Some(sizes) = &self.sizes {
            options.sizes = sizes.clone();
        }
        if let Some(shapes) = &self.rect_shapes {
            options.rect_shapes = parse_list("rect-shapes", shapes)?;
        }
        if let Some(dtypes) = &self.dtypes {
            options.extra_dtypes = parse_list("dtypes", dtypes)?;
        }
        if let Some(devices) = &self.devices {
            options.devices = devices.clone();
        }
        if let Some(k) = self.n_power_iterations {
            options.n_power_iterations = k;
        }
        if let Some(threads) = self.threads {
            options.threads = usize::try_from(threads)?;
        }
        if let Some(warmup) = self.warmup {
            options.sampling.warmup_min = warmup;
            options.sampling.warmup_ms = 0;
        }
        if let Some(samples) = self.samples {
            if self.min_samples.is_some() || self.max_samples.is_some() || self.budget_ms.is_some() {
                bail!("--samples N fixes the sample count: it cannot be combined with --min-samples, --max-samples or --budget-ms");
            }
            options.sampling.min_samples = samples;
            options.sampling.max_samples = samples;
            options.sampling.budget_ms = 0;
            options.sampling.rounds = 1;
            options.sampling.min_sample_us = 0;
        }
        if let Some(us) = self.min_sample_us {
            options.sampling.min_sample_us = us;
        }
        if let Some(rounds) = self.rounds {
            options.sampling.rounds = rounds;
        }
        if let Some(budget) = self.budget_ms {
            options.sampling.budget_ms = budget;
        }
        if let Some(min) = self.min_samples {
            options.sampling.min_samples = min;
        }
        if let Some(max) = self.max_samples {
            options.sampling.max_samples = max;
        }
        if self.no_convergence {
            options.convergence = false;
        }
        if self.no_loss {
            options.loss_curves = false;
        }
        if self.no_plots {
            options.plots = false;
        }
        if let Some(python) = &self.python {
            options.python = Some(python.clone());
        }
        if self.no_pytorch {
            options.pytorch = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReportArgs,
    }

    fn args(flags: &[&str]) -> ReportArgs {
        Cli::try_parse_from(std::iter::once("report").chain(flags.iter().copied())).unwrap().args
    }

    #[test]
    fn the_default_sweep_has_every_op_at_the_summary_sizes() {
        let options = ReportOptions::default();
        options.validate().unwrap();
        let cases = options.timing_cases(&[DeviceKind::Cpu]);
        for op in Op::ALL.into_iter().filter(|&op| !op.is_seed_loop() && op != Op::Copy) {
            for n in [64, 512, 2048, 4096] {
                assert!(
                    cases.iter().any(|c| c.op == op && c.rows == n && c.cols == n && c.dtype == DType::F32),
                    "{op} {n}"
                );
            }
        }
        assert!(cases.iter().any(|c| c.op == Op::Copy && c.rows == 4096));
        let last: Vec<Op> = cases[cases.len() - 2..].iter().map(|c| c.op).collect();
        assert_eq!(last, [Op::SeedLoopStep, Op::SeedLoopStepCpp]);
        assert!(cases.iter().all(|c| c.device == DeviceKind::Cpu));
        assert!(cases.iter().any(|c| c.dtype == DType::Bf16 && c.op == Op::WeightNormForward));
        let k: Vec<Option<u64>> = cases
            .iter()
            .filter(|c| c.op == Op::PowerIteration && c.rows == 64 && c.cols == 64)
            .map(|c| c.n_power_iterations)
            .collect();
        assert_eq!(k, [Some(1), Some(10)]);
        assert!(cases.iter().filter(|c| c.op == Op::WeightNormForward).all(|c| c.n_power_iterations.is_none()));
        // weight_norm_forward_out: every f32 shape weight_norm_forward has, and its f64 and bf16 rows (no f16).
        let shapes = |op: Op, dtype: DType| {
            cases.iter().filter(|c| c.op == op && c.dtype == dtype).map(Case::shape).collect::<Vec<_>>()
        };
        for dtype in [DType::F32, DType::F64, DType::Bf16] {
            assert_eq!(shapes(Op::WeightNormForwardOut, dtype), shapes(Op::WeightNormForward, dtype), "{dtype}");
            assert!(!shapes(Op::WeightNormForwardOut, dtype).is_empty(), "{dtype}");
        }
        assert!(shapes(Op::WeightNormForwardOut, DType::F16).is_empty());
        assert_eq!(
            cases.iter().position(|c| c.op == Op::WeightNormForwardOut),
            Some(cases.iter().rposition(|c| c.op == Op::WeightNormForward && c.dtype == DType::F32).unwrap() + 1)
        );
        // CUDA rows only when a CUDA device is available; not for the CPU-only ops.
        let with_cuda = options.timing_cases(&[DeviceKind::Cpu, DeviceKind::Cuda]);
        let cpu_only = cases.iter().filter(|c| c.op.is_seed_loop() || c.op == Op::WeightNormForwardOut).count();
        assert_eq!(with_cuda.iter().filter(|c| c.device == DeviceKind::Cuda).count(), cases.len() - cpu_only);
        assert!(with_cuda.iter().all(|c| c.device == DeviceKind::Cpu || c.op.runs_on(DeviceKind::Cuda, c.dtype)));
    }

    #[test]
    fn the_config_file_overrides_the_defaults_and_flags_override_the_config() {
        let config = r#"{"sizes": [8, 16], "threads": 2, "sampling": {"budget_ms": 10}, "ops": ["copy", "weight_norm_forward"],
                         "rect_shapes": ["4x8"], "extra_dtypes": [], "plots": false, "copy_sizes": [16]}"#;
        let mut options = ReportOptions::from_json(config).unwrap();
        assert_eq!(options.sizes, [8, 16]);
        assert_eq!(options.threads, 2);
        assert_eq!(options.sampling, Sampling { budget_ms: 10, ..Sampling::default() });
        assert_eq!(options.sampling.min_sample_us, 1000, "batching into 1 ms samples by default");
        assert_eq!(options.rect_shapes, [Shape { rows: 4, cols: 8 }]);
        assert!(!options.plots);
        assert_eq!(options.out, PathBuf::from("reports"), "fields left out keep their defaults");

        args(&["--sizes", "32", "--samples", "5", "--warmup", "2", "--no-pytorch", "--rect-shapes", "", "--run", "x"])
            .apply(&mut options)
            .unwrap();
        assert_eq!(options.sizes, [32]);
        assert_eq!(options.threads, 2, "a flag not given leaves the config's value");
        assert_eq!(options.sampling, Sampling::fixed(2, 5));
        assert_eq!(options.sampling.rounds, 1, "--samples fixes the counts in one round");
        assert_eq!(options.sampling.min_sample_us, 0, "--warmup N --samples N: one iteration per sample");
        assert!(options.rect_shapes.is_empty());
        assert!(!options.pytorch);
        assert_eq!(options.run_name.as_deref(), Some("x"));
        options.validate().unwrap();

        let cases = options.timing_cases(&[DeviceKind::Cpu]);
        let labels: Vec<String> = cases.iter().map(Case::label).collect();
        assert_eq!(
            labels,
            ["copy 16x16 f32 cpu", "weight_norm_forward 32x32 f32 cpu"],
            "copy runs at copy_sizes, not at sizes"
        );
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
        // A flag that does not fix the sample count keeps the config's batching; --samples turns it off.
        let mut options = ReportOptions::from_json(r#"{"sampling": {"min_sample_us": 250}}"#).unwrap();
        args(&["--budget-ms", "50"]).apply(&mut options).unwrap();
        assert_eq!(options.sampling.min_sample_us, 250);
        args(&["--samples", "4", "--warmup", "1"]).apply(&mut options).unwrap();
        assert_eq!(options.sampling, Sampling::fixed(1, 4));
        args(&["--min-sample-us", "80"]).apply(&mut options).unwrap();
        assert_eq!(options.sampling, Sampling { min_sample_us: 80, ..Sampling::fixed(1, 4) });
    }

    #[test]
    fn bad_configs_and_flags_are_errors() {
        assert!(ReportOptions::from_json(r#"{"sizez": [8]}"#).unwrap_err().to_string().contains("unknown field"));
        assert!(ReportOptions::from_json(r#"{"ops": ["nope"]}"#).is_err());
        assert!(ReportOptions::from_json(r#"{"rect_shapes": ["0x3"]}"#).is_err());
        assert!(ReportOptions { threads: 0, ..Default::default() }.validate().is_err());
        assert!(ReportOptions { sizes: vec![8, 0], ..Default::default() }.validate().is_err());
        assert!(ReportOptions { convergence_iterations: vec![0], ..Default::default() }.validate().is_err());
        assert!(ReportOptions { run_name: Some("a/b".into()), ..Default::default() }.validate().is_err());
        assert!(ReportOptions {
            sampling: Sampling { min_samples: 9, max_samples: 3, ..Default::default() },
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(Cli::try_parse_from(["report", "--sizes", "64,0"]).is_err());
        assert!(Cli::try_parse_from(["report", "--sizes", "64,abc"]).is_err());
        assert!(Cli::try_parse_from(["report", "--threads", "0"]).is_err());
        assert!(Cli::try_parse_from(["report", "--samples", "0"]).is_err());
        assert!(Cli::try_parse_from(["report", "--ops", "copy,nope"]).is_err());
        assert!(args(&["--samples", "3", "--budget-ms", "5"]).resolve().is_err());
        assert!(args(&["--dtypes", "f8"]).resolve().is_err());
        assert!(args(&["--config", "/nonexistent/config.json"])
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/config.json"));
    }

    #[test]
    fn options_round_trip_through_json() {
        let options = ReportOptions::default();
        let text = serde_json::to_string(&options).unwrap();
        assert_eq!(ReportOptions::from_json(&text).unwrap(), options);
    }
}
