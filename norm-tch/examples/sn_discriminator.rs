//! A small GAN discriminator under spectral normalization (hook API on three layers, the
//! parametrization API on one), trained a few Adam steps in Rust with the same bits as in
//! PyTorch from the same seed, then saved as a `.pt` that PyTorch loads with `strict=True`.
//!
//! ```sh
//! # Rust: train K steps from a seed, print every loss, save the trained state dict:
//! cargo run --release -p norm-tch --example sn_discriminator -- --steps 4 --seed 0 --save /tmp/d_rust.pt
//! # PyTorch: the same program (data/sn_discriminator.py), to compare bit for bit:
//! .venv/bin/python data/sn_discriminator.py train --steps 4 --seed 0 --out /tmp/d_torch.json
//! cargo run --release -p norm-tch --example sn_discriminator -- --steps 4 --seed 0 --save /tmp/d_rust.pt \
//!     --reference /tmp/d_torch.json --write-input /tmp/d_input.json
//! # PyTorch loads Rust's checkpoint (strict) and prints its eval output on the same input:
//! .venv/bin/python data/sn_discriminator.py eval --checkpoint /tmp/d_rust.pt --input /tmp/d_input.json
//! ```
//!
//! The model and the loop are `norm_tch::models::sn_discriminator` (also run by
//! `tests/examples.rs`):
//!
//! ```python
//! torch.manual_seed(seed)
//! D = Discriminator()        # convs.0/2, fc: spectral_norm; convs.1: parametrizations.spectral_norm
//! opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
//! for step in range(K):
//!     real, fake = torch.randn(B, 1, 16, 16), torch.randn(B, 1, 16, 16)
//!     loss = F.relu(1.0 - D(real)).mean() + F.relu(1.0 + D(fake)).mean()
//!     opt.zero_grad(); loss.backward(); opt.step()
//! ```
//!
//! What makes the bits equal: the same generator draws in the same order (each layer's
//! init, then its u and v; `norm_tch::backend::lock_global_generator()` held for the whole
//! run), spectral norm's power iterations exactly when PyTorch runs them (one per training
//! forward per layer, plus 15 + 1 at the parametrization's registration), PyTorch's Adam
//! single-tensor arithmetic (`norm_tch::optim::Adam`), `leaky_relu(x, 0.2)` with PyTorch's
//! bits (`norm_tch::backend::leaky_relu`), and one intra-op thread on both sides.

use anyhow::{bail, Context, Result};
use norm_tch::checkpoint::save_state_dict;
use norm_tch::models::sn_discriminator::train;
use norm_test_support::{compare_sn_run as compare, Bits, SnDiscriminatorRun as TorchRun};
use serde_json::json;
use std::path::PathBuf;

struct Args {
    seed: u64,
    steps: usize,
    batch: i64,
    save: Option<PathBuf>,
    reference: Option<PathBuf>,
    write_input: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { seed: 0, steps: 4, batch: 4, save: None, reference: None, write_input: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => args.seed = value()?.parse().context("--seed: expected an integer in [0, 2^64)")?,
            "--steps" => args.steps = value()?.parse().context("--steps: expected a non-negative integer")?,
            "--batch" => args.batch = value()?.parse().context("--batch: expected a positive integer")?,
            "--save" => args.save = Some(value()?.into()),
            "--reference" => args.reference = Some(value()?.into()),
            "--write-input" => args.write_input = Some(value()?.into()),
            "-h" | "--help" => {
                println!("usage: sn_discriminator [--seed N] [--steps K] [--batch B] [--save OUT.pt] [--reference TORCH.json] [--write-input INPUT.json]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if args.batch <= 0 {
        bail!("--batch must be positive");
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    norm_tch::backend::set_num_threads(1)?;
    println!(
        "training the discriminator: seed {}, {} Adam steps, batch {} (cpu capability {})",
        args.seed,
        args.steps,
        args.batch,
        norm_tch::backend::cpu_capability()
    );
    let run = train(args.seed, args.steps, args.batch, |step, loss| {
        let v = loss.double_value(&[]) as f32;
        println!("step {step}: loss {v:.9} (bits {:#010x})", v.to_bits());
    })?;
    let eval_output = Bits::of(&run.eval_output)?;
    println!("eval output     {}", eval_output.summary());
    if let Some(path) = &args.save {
        save_state_dict(&run.vs, path)?;
        println!("saved the trained state dict to {}", path.display());
    }
    if let Some(path) = &args.write_input {
        let request = json!({"input": Bits::of(&run.eval_input)?, "rust_output": eval_output});
        std::fs::write(path, serde_json::to_vec(&request)?)?;
        println!("wrote the eval input (and Rust's output) to {}", path.display());
    }
    if let Some(path) = &args.reference {
        let torch: TorchRun =
            serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)?;
        if (torch.seed, torch.steps, torch.batch) != (args.seed, args.steps, args.batch) {
            bail!(
                "{} is a run with seed {}, {} steps, batch {}: pass the same here",
                path.display(),
                torch.seed,
                torch.steps,
                torch.batch
            );
        }
        println!("against PyTorch's run in {} (torch {}, {}):", path.display(), torch.torch, torch.cpu_capability);
        let (lines, differing) = compare(&run, &torch)?;
        for line in &lines {
            println!("  {line}");
        }
        if differing > 0 {
            bail!("{differing} of {} comparisons differ (same machine, one thread, same torch version?)", lines.len());
        }
        println!("all {} comparisons bit-equal", lines.len());
    }
    Ok(())
}
