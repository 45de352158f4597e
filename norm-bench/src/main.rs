//! `norm-bench`: the command line of norm. See `norm-bench --help`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use norm_bench::limits::{self, UsageError};
use norm_bench::report;
use norm_bench::seed_loop::{self, Example};
use norm_bench::snapshot::Snapshot;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "norm-bench",
    version,
    about = "PyTorch-exact weight/spectral normalization for tch: replays, parity and timing reports"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay one of the seed document's training programs as PyTorch runs it.
    SeedLoop {
        /// Which program.
        #[arg(long, value_enum)]
        example: Example,
        /// Seed for both `torch.manual_seed` and `random.seed` (0 <= seed < 2^64).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = parse_seed)]
        seed: u64,
        /// Iterations of each training loop (1 to 1000000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        steps: u64,
        /// Print one JSON object with bit-exact snapshots instead of the document's printout.
        #[arg(long)]
        json: bool,
    },
    /// The main job: time weight norm and spectral norm in Rust and in PyTorch eager, side by side,
    /// plus σ convergence and loss curves, into <out>/<run>/ (docs/reports.md).
    Report(Box<report::ReportArgs>),
    /// Run a parity spec in Rust; print its output, or compare it bit for bit with PyTorch's.
    Parity {
        /// The spec file (docs/parity.md).
        #[arg(long)]
        spec: PathBuf,
        /// Print Rust's output JSON (the format data/parity.py writes).
        #[arg(long, conflicts_with_all = ["reference", "live"])]
        json: bool,
        /// Compare with a PyTorch output file written by data/parity.py.
        #[arg(long, conflicts_with = "live")]
        reference: Option<PathBuf>,
        /// Run data/parity.py on the spec with PyTorch now, and compare.
        #[arg(long)]
        live: bool,
        /// Python with torch for --live [default: <exe dir>/../../.venv/bin/python, else python3].
        #[arg(long)]
        python: Option<PathBuf>,
        /// Print only the rows that differ (the summary line is always printed).
        #[arg(long)]
        differences_only: bool,
    },
    /// Fuzz norm-bench itself: mutated checkpoints, parity specs and command lines, each run
    /// as a child process and classified (docs/fuzzing.md); exit 1 on any bad outcome.
    Fuzz(Box<norm_bench::fuzz::FuzzArgs>),
    /// Compare two report folders: how every ratio and time moved (compare.md, compare.csv, compare.png);
    /// exit 1 on a regression beyond --threshold, 2 on bad input (docs/reports.md).
    Compare(norm_bench::compare::CompareArgs),
    /// σ of PyTorch's spectral_norm (reshaped weight) beside the convolution's true operator
    /// norm, per case of a spec (docs/operator_norm.md); exit 2 for a malformed spec.
    OperatorNorm {
        /// The spec file: {"cases": [{"name", "seed", "layer", "input_size", "tolerance", "max_iterations"}]}.
        #[arg(long)]
        spec: PathBuf,
        /// Print one JSON object {"cases": [{"name", "sigma_reshaped", "sigma_operator", "iterations", "bound", "converged"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Rewrite a PyTorch checkpoint's normalized layers under one naming scheme (docs/checkpoints.md).
    Convert {
        /// The checkpoint to read: .pt/.pth written by torch.save, or .safetensors.
        input: PathBuf,
        /// Where to write; the format follows the extension (.safetensors, else .pt/.pth as torch.save writes it).
        output: PathBuf,
        /// hooks (weight_g/weight_v; weight_orig/weight_u/weight_v), parametrizations
        /// (parametrizations.weight.*), or folded (a plain weight, for inference).
        #[arg(long, value_parser = ["hooks", "parametrizations", "folded"])]
        to: String,
        /// Spectral norm's dim where a weight's shape cannot decide it (a square weight):
        /// N for every such layer, or PREFIX=N; repeatable.
        #[arg(long = "spectral-dim", allow_negative_numbers = true)]
        spectral_dim: Vec<String>,
        /// Weight norm's dim where g's shape cannot decide it (size-1 axes): N for every such
        /// layer, or PREFIX=N (-1: the whole tensor); repeatable.
        #[arg(long = "weight-norm-dim", allow_negative_numbers = true)]
        weight_norm_dim: Vec<String>,
    },
}

/// `norm-bench parity`: exit 0 when bit-equal (or with --json), 1 on any difference,
/// 2 for a malformed spec or a case whose device this machine lacks.
fn parity(
    spec_path: PathBuf,
    json: bool,
    reference: Option<PathBuf>,
    live: bool,
    python: Option<PathBuf>,
    differences_only: bool,
) -> Result<ExitCode> {
    use norm_bench::parity::{compare, run, spec};
    let text = limits::read_text_bounded(&spec_path, limits::MAX_SPEC_BYTES, "the spec")?;
    let spec = match spec::parse_spec(&text) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("error: {}: {e:#}", spec_path.display());
            return Ok(ExitCode::from(2));
        }
    };
    if !json && reference.is_none() && !live {
        anyhow::bail!("nothing to do: pass --json, --reference FILE or --live");
    }
    if let Err(e) = run::check_devices(&spec) {
        eprintln!("error: {}: {e}", spec_path.display());
        return Ok(ExitCode::from(2));
    }
    let total = spec.cases.len();
    let ours = run::run_spec(&spec, |i, case| {
        let status = match &case.error {
            Some(e) => format!("raised {}", e.kind),
            None => format!("{} steps", case.steps.as_ref().map_or(0, Vec::len)),
        };
        eprintln!("[{}/{total}] {} {status}", i + 1, case.name);
    })?;
    let mut stdout = std::io::stdout().lock();
    if json {
        writeln!(stdout, "{}", serde_json::to_string(&ours)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let theirs: run::ParityOutput = match reference {
        Some(path) => {
            let text = limits::read_text_bounded(&path, limits::MAX_REFERENCE_BYTES, "the reference output")?;
            serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not a parity output: {e}", path.display()))?
        }
        None => norm_bench::parity::run_pytorch(&python.unwrap_or_else(report::pytorch::default_python), &spec_path)?,
    };
    let rows = compare::compare(&ours, &theirs);
    write!(stdout, "{}", compare::render(&rows, differences_only))?;
    writeln!(stdout, "PyTorch side: {}", theirs.torch)?;
    Ok(if rows.iter().all(|r| r.equal) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `norm-bench operator-norm`: exit 0, or 2 for a malformed spec.
fn operator_norm(spec_path: PathBuf, json: bool) -> Result<ExitCode> {
    use norm_bench::operator_norm::{parse_spec, render, run_case};
    let text = limits::read_text_bounded(&spec_path, limits::MAX_SPEC_BYTES, "the spec")?;
    let cases = match parse_spec(&text) {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("error: {}: {e:#}", spec_path.display());
            return Ok(ExitCode::from(2));
        }
    };
    let results = cases
        .iter()
        .map(|case| run_case(case).map_err(|e| e.context(format!("case \"{}\"", case.name))))
        .collect::<Result<Vec<_>>>()?;
    let mut stdout = std::io::stdout().lock();
    if json {
        writeln!(stdout, "{}", serde_json::json!({ "cases": results }))?;
    } else {
        write!(stdout, "{}", render(&results))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A seed as `torch.manual_seed` and `random.seed` both take it here: an integer in [0, 2^64).
fn parse_seed(text: &str) -> std::result::Result<u64, String> {
    text.parse::<u64>().map_err(|_| format!("expected an integer seed in [0, 18446744073709551615], got '{text}'"))
}

#[derive(serde::Serialize)]
struct SeedLoopJson<'a> {
    example: &'static str,
    seed: u64,
    steps: u64,
    snapshots: &'a [Snapshot],
}

fn seed_loop(example: Example, seed: u64, steps: u64, json: bool) -> Result<()> {
    let replay = seed_loop::replay(example, seed, steps)?;
    let mut stdout = std::io::stdout().lock();
    if json {
        let out = SeedLoopJson { example: example.name(), seed, steps, snapshots: &replay.snapshots };
        writeln!(stdout, "{}", serde_json::to_string(&out)?)?;
        return Ok(());
    }
    let headers: &[(usize, &str)] = match example {
        Example::WeightNorm => &[
            (0, "################原始权重:################"),
            (4, "################规范化后的权重:#################"),
            (8, "################规范化后的权重:#################"),
        ],
        Example::SeedSpectral => &[
            (0, "\n################ 原始权重:################\n"),
            (2, "\n################ 规范化后的权重:################\n"),
        ],
    };
    for (i, (name, tensor)) in replay.printouts.iter().enumerate() {
        if let Some((_, header)) = headers.iter().find(|(at, _)| *at == i) {
            writeln!(stdout, "{header}")?;
        }
        let label =
            if example == Example::WeightNorm && i == 7 { "weight (effective)".to_string() } else { name.clone() };
        writeln!(stdout, "linear_layer.{label}:  {}", norm_bench::format::python_repr(tensor, name != "weight")?)?;
    }
    Ok(())
}

/// `norm-bench convert`: one stderr line per converted layer (`PREFIX: FROM -> TO`).
fn convert(
    input: PathBuf,
    output: PathBuf,
    to: &str,
    spectral_dim: &[String],
    weight_norm_dim: &[String],
) -> Result<()> {
    use norm_tch::checkpoint::{self, ConvertOptions, Format, StateDict, Target};
    let target: Target = to.parse()?;
    let mut options = ConvertOptions::default();
    for flag in spectral_dim {
        limits::check_dim_flag("--spectral-dim", flag)?;
    }
    for flag in weight_norm_dim {
        limits::check_dim_flag("--weight-norm-dim", flag)?;
    }
    for flag in spectral_dim {
        options.spectral_dim.add_flag(flag)?;
    }
    for flag in weight_norm_dim {
        options.weight_norm_dim.add_flag(flag)?;
    }
    Format::from_extension(&output)?;
    let sd = StateDict::read(&input)?;
    let (converted, conversions) =
        checkpoint::convert(&sd, target, &options).map_err(|e| with_flag_hint(e.in_file(&input)))?;
    for c in &conversions {
        eprintln!("{c}");
    }
    converted.write(&output)?;
    eprintln!("wrote {}: {} entries, {} layers converted", output.display(), converted.len(), conversions.len());
    Ok(())
}

/// A refusal the command line can settle gets its flag: an undecidable (or ill-fitting)
/// dim names `--spectral-dim`/`--weight-norm-dim` for the layer's prefix.
fn with_flag_hint(e: norm_core::Error) -> anyhow::Error {
    use norm_core::error::{CheckpointErrorKind, ConversionRefusal, NormKind};
    let Some(CheckpointErrorKind::Conversion {
        prefix,
        refusal: ConversionRefusal::AmbiguousDim { evidence, .. } | ConversionRefusal::DimDoesNotFit { evidence, .. },
        ..
    }) = e.checkpoint_kind()
    else {
        return e.into();
    };
    let flag = match evidence.norm() {
        NormKind::WeightNorm => "--weight-norm-dim",
        NormKind::SpectralNorm => "--spectral-dim",
    };
    anyhow::anyhow!("{e}\nhint: pass {flag} {prefix}=N for this layer (or {flag} N for every such layer)")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::SeedLoop { example, seed, steps, json } => seed_loop(example, seed, steps, json),
        Command::Report(args) => match report::run_cli(&args) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Compare(args) => match norm_bench::compare::run_cli(&args) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Parity { spec, json, reference, live, python, differences_only } => {
            match parity(spec, json, reference, live, python, differences_only) {
                Ok(code) => return code,
                Err(e) => Err(e),
            }
        }
        Command::Fuzz(args) => match norm_bench::fuzz::run_cli(&args) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::OperatorNorm { spec, json } => match operator_norm(spec, json) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Convert { input, output, to, spectral_dim, weight_norm_dim } => {
            convert(input, output, &to, &spectral_dim, &weight_norm_dim)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`norm-bench ... | head`) is not an error worth a message.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
