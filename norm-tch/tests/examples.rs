//! The two model examples (`examples/hifigan_generator.rs`, `examples/sn_discriminator.rs`)
//! run at a small size against live PyTorch (`data/hifigan_block.py`,
//! `data/sn_discriminator.py`, run by the repo venv's python). The models and the training
//! loop are the examples' own code, the library's `norm_tch::models`, not a copy.
//!
//! - HiFi-GAN-style generator (weight norm, hook API, on all 20 convolutions): PyTorch
//!   builds it from a seed, saves `state_dict()` and runs an input; Rust's seeded build
//!   gives the same state dict and input bit for bit (init draws, `g *= rand + 0.5`,
//!   `randn`); a Rust model built from another seed loads the `.pt` (strict, no conversion)
//!   and its eval output is bit-equal to PyTorch's; `fold_all` then gives the state-dict
//!   keys of PyTorch's `remove_weight_norm` on every layer and an output bit-equal to both
//!   the unfolded output and PyTorch's `remove_weight_norm` output (max 0 ULP: the folded
//!   weight is the very `_weight_norm(v, g, 0)` the unfolded forward computes); unfolding
//!   again (`g = ‖w‖`, `v = w`) moves the output by rounding only (recorded, bounded).
//! - Spectrally normalized discriminator (hooks on three layers, parametrizations on one):
//!   4 Adam steps of hinge loss from the same seed in Rust and PyTorch, every step's loss,
//!   the final state dict (parameters and u/v buffers), the generator state after training
//!   and the eval output bit-equal; the Rust-saved `.pt` loads into PyTorch with
//!   `strict=True` (`torch.load(weights_only=True)` gives an `OrderedDict`) and PyTorch's eval
//!   output is bit-equal to Rust's.
//! - Without PyTorch: the same flows Rust against Rust (fold bit-equal, Rust → Rust
//!   checkpoint round trips, a rerun of the training bit-equal).
//!
//! Without `.venv/bin/python` the PyTorch tests print `SKIPPED` and pass, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

mod support;

use anyhow::{bail, ensure, Context, Result};
use norm_tch::checkpoint::{load_checkpoint, save_state_dict, state_dict, LoadOptions, StateDict};
use norm_tch::models::hifigan::{seeded, Config, Generator};
use norm_tch::models::sn_discriminator::{train, Discriminator};
use norm_test_support::{compare_sn_run as compare, Bits, HifiganIo as TorchIo, SnDiscriminatorRun as TorchRun};
use serde_json::{json, Value};
use std::path::Path;
use support::{fresh_dir, python_or_skip, repo};
use tch::nn::VarStore;
use tch::Device;

/// The generator's seed in the PyTorch test (the script's default is 0).
const GENERATOR_SEED: u64 = 3;
/// The discriminator's seed, steps and batch in the PyTorch test.
const DISCRIMINATOR: (u64, usize, i64) = (7, 4, 4);
/// |fold -> unfold output - original output| must stay below this (outputs are in [-1, 1]
/// after tanh; measured: at most 7.5e-8, a few ULPs, on the development machine).
const UNFOLD_MAX_ABS: f64 = 1e-6;

/// Runs `data/<script>` with the venv's python; its stdout.
fn run_python(python: &Path, script: &str, args: &[&str]) -> Result<Vec<u8>> {
    norm_test_support::run_python(python, &repo().join("data").join(script), args, None)
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("a non-UTF-8 temporary path")
}

fn sorted(keys: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let mut keys: Vec<String> = keys.into_iter().map(Into::into).collect();
    keys.sort();
    keys
}

fn forward(model: &Generator, x: &tch::Tensor) -> Result<Bits> {
    Bits::of(&tch::no_grad(|| model.forward(x))?)
}

#[test]
fn hifigan_generator_loads_from_pytorch_bit_for_bit_and_folds() -> Result<()> {
    let Some(python) = python_or_skip("run the HiFi-GAN generator example against live PyTorch")? else {
        return Ok(());
    };
    norm_tch::backend::set_num_threads(1)?;
    let dir = fresh_dir("examples-hifigan")?;
    let (pt, io) = (dir.join("gen.pt"), dir.join("gen.json"));
    let seed = GENERATOR_SEED.to_string();
    run_python(
        &python,
        "hifigan_block.py",
        &["--out", path_str(&pt)?, "--io", path_str(&io)?, "--fold", "--seed", &seed],
    )?;
    let torch: TorchIo = serde_json::from_slice(&std::fs::read(&io)?)?;
    ensure!(torch.config == Config::default(), "the script's default sizes changed: {:?}", torch.config);
    let what = format!("torch {}, {}", torch.torch, torch.cpu_capability);

    // Rust's seeded build is PyTorch's model and input, bit for bit.
    let vs = VarStore::new(Device::Cpu);
    let [batch, _, length] = torch.input.shape[..] else { bail!("input shape {:?}", torch.input.shape) };
    let (_, x_rust) = seeded(&vs, &torch.config, torch.seed, batch, length)?;
    ensure!(Bits::of(&x_rust)? == torch.input, "seeded input differs from PyTorch's ({what})");
    let ours = state_dict(&vs)?;
    let theirs = StateDict::read(&pt)?;
    ensure!(
        sorted(ours.keys()) == sorted(torch.state_dict_keys.iter().map(String::as_str)),
        "state-dict keys: Rust {:?} vs PyTorch {:?}",
        sorted(ours.keys()),
        torch.state_dict_keys
    );
    for key in &torch.state_dict_keys {
        let (a, b) = (Bits::of(ours.get(key).context("key")?)?, Bits::of(theirs.get(key).context("key in gen.pt")?)?);
        ensure!(a == b, "seeded `{key}` differs from PyTorch's ({what}): max {:?} ULP", a.max_ulp(&b));
    }

    // A model built from another seed loads PyTorch's checkpoint: PyTorch's output bits.
    let mut vs = VarStore::new(Device::Cpu);
    let (mut model, _) = seeded(&vs, &torch.config, torch.seed + 1, batch, length)?;
    let x = torch.input.to_tensor()?;
    ensure!(forward(&model, &x)? != torch.output, "the unloaded model already gives PyTorch's output");
    let report = load_checkpoint(&mut vs, &pt, &LoadOptions::default())?;
    ensure!(report.conversions.is_empty(), "conversions {:?}", report.conversions);
    let y = forward(&model, &x)?;
    ensure!(
        y == torch.output,
        "output differs from PyTorch's ({what}): max {:?} ULP, {} of {} values",
        y.max_ulp(&torch.output),
        y.count_differing(&torch.output),
        y.f32_bits.len()
    );

    // Folded: PyTorch's remove_weight_norm keys, and the same output bits.
    model.fold()?;
    let removed_keys = torch.removed_state_dict_keys.clone().context("removed_state_dict_keys (--fold)")?;
    ensure!(
        sorted(state_dict(&vs)?.keys()) == sorted(removed_keys.iter().map(String::as_str)),
        "folded keys {:?} vs remove_weight_norm's {removed_keys:?}",
        sorted(state_dict(&vs)?.keys())
    );
    let folded = forward(&model, &x)?;
    let removed = torch.removed_output.as_ref().context("removed_output (--fold)")?;
    let (vs_unfolded, vs_removed) = (folded.max_ulp(&y).context("shape")?, folded.max_ulp(removed).context("shape")?);
    ensure!(removed == &torch.output, "PyTorch's own remove_weight_norm changed its output bits ({what})");
    // The folded weight is the `_weight_norm(v, g, 0)` the unfolded forward computes, so the
    // folded forward is the same computation: 0 ULP is the documented bound.
    ensure!(vs_unfolded == 0 && folded == y, "folded output is {vs_unfolded} ULP from the unfolded one");
    ensure!(
        vs_removed == 0 && &folded == removed,
        "folded output is {vs_removed} ULP from PyTorch's remove_weight_norm output"
    );

    // A folded checkpoint saved by Rust reads back as plain weights.
    let folded_pt = dir.join("folded.pt");
    save_state_dict(&vs, &folded_pt)?;
    ensure!(StateDict::read(&folded_pt)?.get("resblocks.0.convs1.1.weight").is_some(), "folded.pt lacks plain weights");

    // Unfolded again: g = |w|, v = w; the effective weight is w up to rounding.
    model.unfold()?;
    ensure!(
        sorted(state_dict(&vs)?.keys()) == sorted(torch.state_dict_keys.iter().map(String::as_str)),
        "unfolded keys differ"
    );
    let unfolded = forward(&model, &x)?;
    let (unfold_ulp, unfold_abs) = (unfolded.max_ulp(&y).context("shape")?, unfolded.max_abs_diff(&y));
    ensure!(unfold_abs <= UNFOLD_MAX_ABS, "fold -> unfold moved the output by {unfold_abs:e} (max {unfold_ulp} ULP)");
    eprintln!(
        "hifigan example ({what}): {} layers, output {:?} bit-equal to PyTorch; folded vs unfolded max {vs_unfolded} ULP, vs PyTorch's remove_weight_norm max {vs_removed} ULP; fold -> unfold max {unfold_ulp} ULP ({} of {} values differ, max abs {unfold_abs:.2e})",
        model.num_layers(),
        y.shape,
        unfolded.count_differing(&y),
        y.f32_bits.len()
    );
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

#[test]
fn sn_discriminator_trains_like_pytorch_and_pytorch_loads_it() -> Result<()> {
    let Some(python) = python_or_skip("run the spectral-norm discriminator example against live PyTorch")? else {
        return Ok(());
    };
    norm_tch::backend::set_num_threads(1)?;
    let dir = fresh_dir("examples-sn-discriminator")?;
    let (seed, steps, batch) = DISCRIMINATOR;
    let torch_json = dir.join("torch.json");
    run_python(
        &python,
        "sn_discriminator.py",
        &[
            "train",
            "--out",
            path_str(&torch_json)?,
            "--seed",
            &seed.to_string(),
            "--steps",
            &steps.to_string(),
            "--batch",
            &batch.to_string(),
        ],
    )?;
    let torch: TorchRun = serde_json::from_slice(&std::fs::read(&torch_json)?)?;
    let what = format!("torch {}, {}", torch.torch, torch.cpu_capability);

    let run = train(seed, steps, batch, |_, _| {})?;
    let (lines, differing) = compare(&run, &torch)?;
    ensure!(differing == 0, "Rust's training differs from PyTorch's ({what}):\n{}", lines.join("\n"));
    ensure!(lines.len() == steps + torch.state_dict_keys.len() + 2, "{} comparisons", lines.len());

    // Saved by Rust, loaded by PyTorch with strict=True: the same eval output.
    let rust_pt = dir.join("rust.pt");
    save_state_dict(&run.vs, &rust_pt)?;
    let input = dir.join("input.json");
    std::fs::write(&input, serde_json::to_vec(&json!({"input": Bits::of(&run.eval_input)?}))?)?;
    let checked: Value = serde_json::from_slice(&run_python(
        &python,
        "sn_discriminator.py",
        &["eval", "--checkpoint", path_str(&rust_pt)?, "--input", path_str(&input)?],
    )?)?;
    ensure!(checked["type"] == "OrderedDict", "torch.load gave a {}", checked["type"]);
    let keys: Vec<&str> = checked["keys"].as_array().context("keys")?.iter().filter_map(Value::as_str).collect();
    ensure!(
        sorted(keys.iter().copied()) == sorted(torch.state_dict_keys.iter().map(String::as_str)),
        "rust.pt keys {keys:?}"
    );
    let output: Bits = serde_json::from_value(checked["output"].clone())?;
    let eval_output = Bits::of(&run.eval_output)?;
    ensure!(
        output == eval_output,
        "PyTorch's eval output of rust.pt differs from Rust's ({what}): max {:?} ULP",
        output.max_ulp(&eval_output)
    );
    eprintln!(
        "sn_discriminator example ({what}): {steps} Adam steps, {} comparisons bit-equal (losses {:?}); rust.pt loaded by PyTorch strict, eval output bit-equal",
        lines.len(),
        run.losses
    );
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

#[test]
fn hifigan_generator_folds_and_round_trips_without_pytorch() -> Result<()> {
    norm_tch::backend::set_num_threads(1)?;
    let dir = fresh_dir("examples-hifigan-rust")?;
    let config = Config {
        in_channels: 4,
        channels: 8,
        upsample_rates: vec![2, 4],
        resblock_kernel_sizes: vec![3],
        dilations: vec![1, 2],
    };
    let vs = VarStore::new(Device::Cpu);
    let (mut model, x) = seeded(&vs, &config, 11, 2, 10)?;
    let y = forward(&model, &x)?;
    ensure!(y.shape == [2, 1, 80], "output shape {:?}", y.shape);
    let path = dir.join("gen.pt");
    save_state_dict(&vs, &path)?;
    let mut other = VarStore::new(Device::Cpu);
    let (loaded, _) = seeded(&other, &config, 12, 2, 10)?;
    load_checkpoint(&mut other, &path, &LoadOptions::default())?;
    ensure!(forward(&loaded, &x)? == y, "Rust -> Rust checkpoint round trip changed the output");
    model.fold()?;
    ensure!(forward(&model, &x)? == y, "folding changed the output bits");
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

#[test]
fn sn_discriminator_reruns_and_round_trips_without_pytorch() -> Result<()> {
    norm_tch::backend::set_num_threads(1)?;
    let dir = fresh_dir("examples-sn-rust")?;
    let first = train(5, 3, 2, |_, _| {})?;
    let second = train(5, 3, 2, |_, _| {})?;
    let bits = |losses: &[f32]| losses.iter().map(|l| l.to_bits()).collect::<Vec<_>>();
    let eval_output = Bits::of(&first.eval_output)?;
    ensure!(
        bits(&first.losses) == bits(&second.losses) && eval_output == Bits::of(&second.eval_output)?,
        "two seeded runs differ"
    );
    ensure!(first.losses.iter().all(|l| l.is_finite()), "non-finite loss");
    let path = dir.join("d.pt");
    save_state_dict(&first.vs, &path)?;
    let mut vs = VarStore::new(Device::Cpu);
    let model = {
        let _generator = norm_tch::backend::lock_global_generator();
        Discriminator::new(&vs)?
    };
    load_checkpoint(&mut vs, &path, &LoadOptions::default())?;
    let out = Bits::of(&tch::no_grad(|| model.forward_t(&first.eval_input, false))?)?;
    ensure!(out == eval_output, "Rust -> Rust checkpoint round trip changed the eval output");
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}
