//! A HiFi-GAN-style generator (ConvTranspose1d upsampling + residual dilated Conv1d
//! blocks, every layer under `torch.nn.utils.weight_norm`) trained/saved in PyTorch,
//! loaded and run in Rust with the same output bits, then folded for inference.
//!
//! ```sh
//! # 1. PyTorch builds the model (data/hifigan_block.py), saves model.state_dict(), runs an
//! #    input, and with --fold also runs the model after remove_weight_norm:
//! .venv/bin/python data/hifigan_block.py --out /tmp/gen.pt --io /tmp/gen.json --fold
//! # 2. Rust builds the same architecture, loads the .pt, compares the output bits with
//! #    PyTorch's, folds every weight norm (norm_tch::layers::fold_all) and compares again:
//! cargo run --release -p norm-tch --example hifigan_generator -- --checkpoint /tmp/gen.pt --io /tmp/gen.json \
//!     [--save-folded /tmp/gen_folded.pt]
//! # Without PyTorch: the same model and input from a seed (the script's draws, in Rust):
//! cargo run --release -p norm-tch --example hifigan_generator -- [--seed 0]
//! ```
//!
//! The model is `norm_tch::models::hifigan` (also run by `tests/examples.rs`):
//! module prefixes are PyTorch's state-dict names (`conv_pre`, `ups.0`,
//! `resblocks.0.convs1.1`, ...), so `norm_tch::checkpoint::load_checkpoint` loads
//! `torch.save(model.state_dict())` with `strict=True` semantics and no conversion.
//!
//! Folding replaces each `weight_g`/`weight_v` pair by the plain `weight` PyTorch's
//! `remove_weight_norm` computes (`_weight_norm(v, g, 0)`), so the folded model's output is
//! compared both with the unfolded one and with PyTorch's after `remove_weight_norm`
//! (docs/checkpoints.md records the measured ULPs: 0, bit-equal, on the development
//! machine). A folded `.pt` (`--save-folded`) has PyTorch's keys after `remove_weight_norm`
//! (`conv_pre.weight`, ...). Unfolding again (`unfold_all`: `g = ‖w‖`, `v = w`) is not the
//! exact inverse; the example prints how far that output moves.
//!
//! Bits need one intra-op thread on both sides (the script pins it too) and the same
//! machine (ATen CPU capability).

use anyhow::{bail, Context, Result};
use norm_tch::checkpoint::{load_checkpoint, save_state_dict, LoadOptions};
use norm_tch::models::hifigan::{seeded, Config, Generator};
use norm_test_support::{describe_difference as describe, Bits, HifiganIo as TorchIo};
use std::path::PathBuf;
use tch::nn::VarStore;
use tch::{Device, Tensor};

struct Args {
    checkpoint: Option<PathBuf>,
    io: Option<PathBuf>,
    seed: u64,
    save_folded: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { checkpoint: None, io: None, seed: 0, save_folded: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--checkpoint" => args.checkpoint = Some(value()?.into()),
            "--io" => args.io = Some(value()?.into()),
            "--seed" => args.seed = value()?.parse().context("--seed: expected an integer in [0, 2^64)")?,
            "--save-folded" => args.save_folded = Some(value()?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: hifigan_generator [--checkpoint GEN.pt --io GEN.json] [--seed N] [--save-folded OUT.pt]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if args.checkpoint.is_some() != args.io.is_some() {
        bail!("--checkpoint and --io go together (both written by data/hifigan_block.py)");
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    norm_tch::backend::set_num_threads(1)?;
    let torch: Option<TorchIo> = match &args.io {
        Some(path) => {
            Some(serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)?)
        }
        None => None,
    };
    let config = torch.as_ref().map_or_else(Config::default, |t| t.config.clone());
    let mut vs = VarStore::new(Device::Cpu);
    let (model, x) = match (&torch, &args.checkpoint) {
        (Some(t), Some(path)) => {
            // Any init will do: the checkpoint overwrites every parameter.
            let model = {
                let _generator = norm_tch::backend::lock_global_generator();
                Generator::new(&vs, &config)?
            };
            let report = load_checkpoint(&mut vs, path, &LoadOptions::default())?;
            println!(
                "loaded {} ({} layers converted; made by torch {}, {})",
                path.display(),
                report.conversions.len(),
                t.torch,
                t.cpu_capability
            );
            (model, t.input.to_tensor()?)
        }
        _ => {
            println!("built from seed {0}: the model and input of `data/hifigan_block.py --seed {0}`", args.seed);
            seeded(&vs, &config, args.seed, 1, 16)?
        }
    };
    run(model, &vs, &x, torch.as_ref(), &args)
}

fn run(mut model: Generator, vs: &VarStore, x: &Tensor, torch: Option<&TorchIo>, args: &Args) -> Result<()> {
    println!(
        "model: {} weight-normed layers, {} variables; input {:?}",
        model.num_layers(),
        vs.variables().len(),
        x.size()
    );
    let y = Bits::of(&tch::no_grad(|| model.forward(x))?)?;
    println!("output          {}", y.summary());
    let mut ok = true;
    if let Some(t) = torch {
        println!("  {}", describe("vs PyTorch's output", &y, &t.output));
        ok &= y == t.output;
    }
    model.fold()?;
    let folded = Bits::of(&tch::no_grad(|| model.forward(x))?)?;
    println!("folded output   {}", folded.summary());
    println!("  {}", describe("folded vs unfolded (Rust)", &folded, &y));
    if let Some(removed) = torch.and_then(|t| t.removed_output.as_ref()) {
        println!("  {}", describe("folded vs PyTorch's remove_weight_norm", &folded, removed));
    }
    if let Some(path) = &args.save_folded {
        save_state_dict(vs, path)?;
        println!("saved the folded model to {} (keys `conv_pre.weight`, `ups.0.weight`, ...)", path.display());
    }
    // Unfolding is not the exact inverse: g = |w| and v = w, whose g * v / |v| is w up to
    // rounding, and the rounding travels through the network.
    model.unfold()?;
    let unfolded = Bits::of(&tch::no_grad(|| model.forward(x))?)?;
    println!("unfolded again  {}", unfolded.summary());
    println!("  {}", describe("fold -> unfold vs the original (Rust)", &unfolded, &y));
    if !ok {
        bail!("the output differs from PyTorch's (same machine, one thread, same torch version?)");
    }
    Ok(())
}
