//! `norm-bench`: the command line of norm. See `norm-bench --help`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use norm_bench::report::{self, ReportOptions, SizeList};
use norm_bench::seed_loop::{self, Example};
use norm_bench::snapshot::Snapshot;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "norm-bench", version, about = "PyTorch-exact weight/spectral normalization for tch: replays, parity and timing reports")]
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
        /// Iterations of each training loop (at least 1).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        steps: u64,
        /// Print one JSON object with bit-exact snapshots instead of the document's printout.
        #[arg(long)]
        json: bool,
    },
    /// Time weight norm in Rust and in PyTorch eager, side by side, into <out>/timing.csv.
    Report {
        /// Folder for timing.csv (created if missing).
        #[arg(long, default_value_os_t = ReportOptions::default().out)]
        out: PathBuf,
        /// Sizes n of the square n x n weights, comma-separated (each at least 1).
        #[arg(long, default_value_t = SizeList(ReportOptions::default().sizes))]
        sizes: SizeList,
        /// Untimed iterations per case and side.
        #[arg(long, default_value_t = ReportOptions::default().warmup)]
        warmup: u64,
        /// Timed iterations per case and side (at least 1).
        #[arg(long, default_value_t = ReportOptions::default().samples, value_parser = clap::value_parser!(u64).range(1..))]
        samples: u64,
        /// Intra-op threads for both libtorch and PyTorch (at least 1).
        #[arg(long, default_value_t = ReportOptions::default().threads as u64, value_parser = clap::value_parser!(u64).range(1..))]
        threads: u64,
        /// Python with torch for the PyTorch side [default: <exe dir>/../../.venv/bin/python, else python3].
        #[arg(long)]
        python: Option<PathBuf>,
        /// Skip the PyTorch side (its columns stay empty).
        #[arg(long)]
        no_pytorch: bool,
    },
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
        Example::WeightNorm => &[(0, "################原始权重:################"), (4, "################规范化后的权重:#################"), (8, "################规范化后的权重:#################")],
        Example::SeedSpectral => &[(0, "\n################ 原始权重:################\n"), (2, "\n################ 规范化后的权重:################\n")],
    };
    for (i, (name, tensor)) in replay.printouts.iter().enumerate() {
        if let Some((_, header)) = headers.iter().find(|(at, _)| *at == i) {
            writeln!(stdout, "{header}")?;
        }
        let label = if example == Example::WeightNorm && i == 7 { "weight (effective)".to_string() } else { name.clone() };
        writeln!(stdout, "linear_layer.{label}:  {}", norm_bench::format::python_repr(tensor, name != "weight")?)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::SeedLoop { example, seed, steps, json } => seed_loop(example, seed, steps, json),
        Command::Report { out, sizes, warmup, samples, threads, python, no_pytorch } => {
            let options = ReportOptions { out, sizes: sizes.0, warmup, samples, threads: threads as usize, python, pytorch: !no_pytorch };
            report::run(&options).map(drop)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`norm-bench ... | head`) is not an error worth a message.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
