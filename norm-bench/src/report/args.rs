//! `norm-bench report`'s flags ([`ReportArgs`]) and how they resolve into the
//! [`ReportOptions`]: the defaults, overridden by `--config FILE`, overridden by the flags
//! given. `--ops`'s help lists the ops of the table ([`Op::names`]).

use super::case::DeviceKind;
use super::ops::Op;
use super::options::ReportOptions;
use anyhow::{bail, Result};
use std::path::PathBuf;

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
    pub(crate) config: Option<PathBuf>,
    /// Folder that receives <run>/ and the `latest` link [default: reports].
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Name of the run folder [default: the UTC start time, 2026-11-28T19-05-00Z].
    #[arg(long = "run", value_name = "NAME")]
    pub(crate) run_name: Option<String>,
    // The help (set below) lists the ops of the table, in run order.
    #[arg(long, value_delimiter = ',', value_name = "OPS", help = ops_help())]
    pub(crate) ops: Option<Vec<Op>>,
    /// Sizes n of the square n x n weights [default: 64,256,512,1024,2048,4096].
    #[arg(long, value_delimiter = ',', value_parser = parse_size, value_name = "N,..")]
    pub(crate) sizes: Option<Vec<u64>>,
    /// Rectangular shapes ROWSxCOLS; pass `--rect-shapes ''` for none [default: 512x2048,2048x512].
    #[arg(long, value_delimiter = ',', value_name = "RxC,..")]
    pub(crate) rect_shapes: Option<Vec<String>>,
    /// Extra dtypes for the dtype subset; `''` for none [default: f64,bf16,f16].
    #[arg(long, value_delimiter = ',', value_name = "DTYPES")]
    pub(crate) dtypes: Option<Vec<String>>,
    /// Devices (`--device cuda` also works); a device named here must exist (exit 2 if not) [default: cpu,cuda; cuda only where available].
    #[arg(long, visible_alias = "device", value_delimiter = ',', value_name = "DEVICES")]
    pub(crate) devices: Option<Vec<DeviceKind>>,
    /// Power iterations per spectral-norm evaluation [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) n_power_iterations: Option<u64>,
    /// Intra-op threads of both sides [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) threads: Option<u64>,
    /// Exactly N warm-up iterations per case and side (no warm-up time).
    #[arg(long, value_name = "N")]
    pub(crate) warmup: Option<u64>,
    /// Exactly N timed samples per case and side, one iteration each (no time budget, one round, no batching, one burst).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub(crate) samples: Option<u64>,
    /// Batch iterations into samples of at least this many microseconds (cases without untimed work between iterations); 0: one iteration per sample [default: 1000].
    #[arg(long, value_name = "US")]
    pub(crate) min_sample_us: Option<u64>,
    /// Rounds per case, each a fresh setup of both sides; samples and budget are split among them [default: 2].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub(crate) rounds: Option<u64>,
    /// The sides take turns every this many milliseconds of samples within a round; 0: one burst per side and round [default: 50].
    #[arg(long, value_name = "MS")]
    pub(crate) burst_ms: Option<u64>,
    /// Time budget of each side's timed samples (all rounds), in milliseconds [default: 800].
    #[arg(long, value_name = "MS")]
    pub(crate) budget_ms: Option<u64>,
    /// At least this many samples per case and side [default: 30].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub(crate) min_samples: Option<u64>,
    /// At most this many samples per case and side [default: 300].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub(crate) max_samples: Option<u64>,
    /// Skip the σ study (convergence.csv keeps only its header).
    #[arg(long)]
    pub(crate) no_convergence: bool,
    /// Skip the loss curves (loss.csv keeps only its header).
    #[arg(long)]
    pub(crate) no_loss: bool,
    /// Skip operator_norm.csv (σ_operator / σ_reshaped of the example models' layers).
    #[arg(long)]
    pub(crate) no_operator_norm: bool,
    /// Skip the PNG plots.
    #[arg(long)]
    pub(crate) no_plots: bool,
    /// Python with torch for the PyTorch side and the plots [default: <exe dir>/../../.venv/bin/python, else python3].
    #[arg(long)]
    pub(crate) python: Option<PathBuf>,
    /// Skip the PyTorch side (its columns stay empty).
    #[arg(long)]
    pub(crate) no_pytorch: bool,
    /// A ratio is settled when its 95 % bootstrap interval is at most this wide relative to it, in (0, 10] [default: 0.10].
    #[arg(long, value_name = "W")]
    pub(crate) settle_width: Option<f64>,
    /// At most this many extra rounds for a case whose ratio is not settled, 0 to 100 [default: 4].
    #[arg(long, value_name = "N")]
    pub(crate) extra_rounds: Option<u64>,
    /// Seconds the whole run may spend on extra rounds, 0 to 86400 [default: 150].
    #[arg(long, value_name = "S")]
    pub(crate) extra_rounds_budget_s: Option<u64>,
}

/// A comma list where the empty string means "none" (`--rect-shapes ''`).
fn parse_list<T: std::str::FromStr<Err = String>>(flag: &str, items: &[String]) -> Result<Vec<T>> {
    items
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.parse::<T>().map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
        .collect()
}

/// `--ops`'s help: every op of the table, in run order.
fn ops_help() -> String {
    format!("Ops to time, comma-separated: {} [default: all]", Op::names())
}

impl ReportArgs {
    /// The options: the defaults, overridden by the config file (if any), overridden by
    /// the flags given; validated.
    pub(crate) fn resolve(&self) -> Result<ReportOptions> {
        let mut options = match &self.config {
            Some(path) => ReportOptions::from_config_file(path)?,
            None => ReportOptions::default(),
        };
        self.apply(&mut options)?;
        options.validate()?;
        Ok(options)
    }

    /// Overrides `options` with the flags that were given.
    pub(crate) fn apply(&self, options: &mut ReportOptions) -> Result<()> {
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
            options.devices_required = true;
        }
        if let Some(k) = self.n_power_iterations {
            options.n_power_iterations = k;
        }
        if let Some(threads) = self.threads {
            options.threads = usize::try_from(threads)?;
        }
        self.apply_sampling(options)?;
        if self.no_convergence {
            options.convergence = false;
        }
        if self.no_loss {
            options.loss_curves = false;
        }
        if self.no_operator_norm {
            options.operator_norm = false;
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
        self.apply_settling(options)
    }

    /// Overrides the settling options with the flags that were given (their ranges are
    /// checked with the others, `limits::check_ranges`).
    fn apply_settling(&self, options: &mut ReportOptions) -> Result<()> {
        if let Some(width) = self.settle_width {
            options.settle_width = width;
        }
        if let Some(rounds) = self.extra_rounds {
            options.extra_rounds = rounds;
        }
        if let Some(seconds) = self.extra_rounds_budget_s {
            options.extra_rounds_budget_s = seconds;
        }
        Ok(())
    }

    /// Overrides `options.sampling` with the sampling flags that were given.
    fn apply_sampling(&self, options: &mut ReportOptions) -> Result<()> {
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
            options.sampling.burst_ms = 0;
        }
        if let Some(us) = self.min_sample_us {
            options.sampling.min_sample_us = us;
        }
        if let Some(rounds) = self.rounds {
            options.sampling.rounds = rounds;
        }
        if let Some(burst) = self.burst_ms {
            options.sampling.burst_ms = burst;
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::case::Case;
    use crate::report::sampling::Sampling;
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
    fn flags_override_the_config() {
        let config = r#"{"sizes": [8, 16], "threads": 2, "sampling": {"budget_ms": 10}, "ops": ["copy", "weight_norm_forward"],
                         "rect_shapes": ["4x8"], "extra_dtypes": [], "plots": false, "copy_sizes": [16]}"#;
        let mut options = ReportOptions::from_json(config).unwrap();
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
    fn fixed_counts_turn_batching_off() {
        // A flag that does not fix the sample count keeps the config's batching; --samples turns it off.
        let mut options = ReportOptions::from_json(r#"{"sampling": {"min_sample_us": 250}}"#).unwrap();
        args(&["--budget-ms", "50"]).apply(&mut options).unwrap();
        assert_eq!(options.sampling.min_sample_us, 250);
        args(&["--samples", "4", "--warmup", "1"]).apply(&mut options).unwrap();
        assert_eq!(options.sampling, Sampling::fixed(1, 4));
        args(&["--min-sample-us", "80"]).apply(&mut options).unwrap();
        assert_eq!(options.sampling, Sampling { min_sample_us: 80, ..Sampling::fixed(1, 4) });
        args(&["--burst-ms", "20"]).apply(&mut options).unwrap();
        assert_eq!(options.sampling, Sampling { min_sample_us: 80, burst_ms: 20, ..Sampling::fixed(1, 4) });
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(Cli::try_parse_from(["report", "--sizes", "64,0"]).is_err());
        assert!(Cli::try_parse_from(["report", "--sizes", "64,abc"]).is_err());
        assert!(Cli::try_parse_from(["report", "--threads", "0"]).is_err());
        assert!(Cli::try_parse_from(["report", "--samples", "0"]).is_err());
        assert!(Cli::try_parse_from(["report", "--ops", "copy,nope"]).is_err());
        assert!(args(&["--samples", "3", "--budget-ms", "5"]).resolve().is_err());
        assert!(args(&["--dtypes", "f8"]).resolve().is_err());
        for (flag, value, range) in [
            ("--settle-width", "0", "(0, 10]"),
            ("--settle-width", "11", "(0, 10]"),
            ("--extra-rounds", "101", "[0, 100]"),
            ("--extra-rounds-budget-s", "86401", "[0, 86400]"),
        ] {
            let e = args(&[flag, value]).resolve().unwrap_err().to_string();
            assert!(e.contains(flag) && e.contains(value) && e.contains(range), "{e}");
        }
        let ok =
            args(&["--settle-width", "0.05", "--extra-rounds", "0", "--extra-rounds-budget-s", "5"]).resolve().unwrap();
        assert_eq!((ok.settle_width, ok.extra_rounds, ok.extra_rounds_budget_s), (0.05, 0, 5));
        assert!(args(&["--config", "/nonexistent/config.json"])
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/config.json"));
    }

    #[test]
    fn devices_named_by_a_flag_are_required() {
        let options = args(&["--device", "cuda"]).resolve().unwrap();
        assert_eq!(options.devices, [DeviceKind::Cuda]);
        assert!(options.devices_required, "--device cuda must fail where there is no GPU");
        assert_eq!(args(&["--devices", "cpu,cuda"]).resolve().unwrap().devices, [DeviceKind::Cpu, DeviceKind::Cuda]);
        assert!(!args(&[]).resolve().unwrap().devices_required, "the default runs cuda only where available");
        assert!(Cli::try_parse_from(["report", "--device", "tpu"]).is_err());
    }

    #[test]
    fn the_ops_help_lists_every_op() {
        let help = ops_help();
        assert!(Op::all().all(|op| help.contains(op.name())), "{help}");
    }
}
