//! `norm-bench`: the command line of norm. See `norm-bench --help`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use norm_bench::seed_loop::{self, Example};
use norm_bench::snapshot::Snapshot;
use std::io::Write;
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
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Iterations of each training loop (at least 1).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        steps: u64,
        /// Print one JSON object with bit-exact snapshots instead of the document's printout.
        #[arg(long)]
        json: bool,
    },
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
