//! Spectral norm's weight recycling (`norm_tch::weight_recycling`, `csrc/div_recycled.cpp`):
//! `weight_orig / σ` divided into the storage of the layer's previous weight once nothing
//! holds it. Checked here:
//!
//! - against live PyTorch (`tests/spectral_norm_reuse.py`, the hook API's pre-hook): a
//!   hook-API layer over several Adam steps, each weight recycled (counted), gives the loss,
//!   weight, u, v and weight_orig's gradient of every step and the final weight_orig bit for
//!   bit; seeds randomized (`NORM_PARITY_SEED=<n>` replays);
//! - twins, recycling on and off, both APIs, training and eval forwards, forward-backward
//!   and Adam steps through the layer's own forward: every output, gradient and entry
//!   bit-equal, and the recycling twin recycled every weight after the first;
//! - safety: a weight still held (the tensor, a view of it, or a graph not yet run) is never
//!   written: it keeps its bits while later weights are computed, and those go elsewhere.
//!
//! Mutations these catch: dropping the `DivBackward0` history (the gradient breaks: live
//! test and twins), saving `weight_orig` or σ wrongly (the gradient), writing into a storage
//! still referenced (`free_for` without the `use_count` checks: the safety test), dividing
//! by the wrong σ (the weight), and recycling silently turned off (the counts).
//!
//! Without `.venv/bin/python` the live test prints `SKIPPED` and passes, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

mod support;

use anyhow::{ensure, Context, Result};
use norm_core::optim::AdamConfig;
use norm_tch::layers::{
    linear, parametrizations, spectral_norm, LinearConfig, Normalized, SpectralNorm, SpectralNormOptions,
};
use norm_tch::layers::{Reparametrization, WeightedLayer};
use norm_tch::optim::Adam;
use norm_test_support::{parity_test_seed, run_python_json, seeded, Bits};
use serde::Deserialize;
use serde_json::json;
use support::python_or_skip;
use tch::nn::{Linear, VarStore};
use tch::{Device, Kind, Tensor};

const LR: f64 = 1e-2;
const STEPS: usize = 4;

#[derive(Debug, Deserialize, PartialEq)]
struct Step {
    loss: Bits,
    weight: Bits,
    u: Bits,
    v: Bits,
    grad: Bits,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Run {
    steps: Vec<Step>,
    weight_orig: Bits,
}

/// A hook-API spectral norm on a bias-free Linear whose weight is `w` (no draw besides
/// registration's u, v, as the script's `Parameter(w)` module).
fn hook_layer(vs: &VarStore, w: &Tensor, k: i64, dim: i64) -> Result<SpectralNorm<Linear>> {
    let layer = Linear { ws: vs.root().f_var_copy("weight", w)?, bs: None };
    let options = SpectralNormOptions { n_power_iterations: k, eps: 1e-12, dim: Some(dim), ..Default::default() };
    Ok(spectral_norm(vs, layer, options)?)
}

/// The Rust side of one case of `spectral_norm_reuse.py`, through the layer; also returns
/// how many weights it recycled.
fn rust_run(seed: u64, shape: &[i64], dim: i64, k: i64) -> Result<(Run, u64)> {
    seeded(seed as i64, || -> Result<_> {
        let w = Tensor::f_randn(shape, (Kind::Float, Device::Cpu))?;
        let g = Tensor::f_randn(shape, (Kind::Float, Device::Cpu))?;
        let vs = VarStore::new(Device::Cpu);
        let layer = hook_layer(&vs, &w, k, dim)?;
        let mut adam = Adam::new(&vs, AdamConfig::with_lr(LR))?;
        let mut steps = Vec::new();
        for _ in 0..STEPS {
            let weight = layer.weight_t(true)?;
            let loss = weight.f_mul(&g)?.f_sum(None::<Kind>)?;
            adam.zero_grad()?;
            loss.f_backward()?;
            let grad = layer.weight_orig().grad();
            let entry = |name: &str| vs.variables().get(name).map(Bits::of).context("entry")?;
            steps.push(Step {
                loss: Bits::of(&loss)?,
                weight: Bits::of(&weight)?,
                u: entry("weight_u")?,
                v: entry("weight_v")?,
                grad: Bits::of(&grad)?,
            });
            adam.step()?;
        }
        Ok((Run { steps, weight_orig: Bits::of(layer.weight_orig())? }, layer.recycled_weights()))
    })
}

#[test]
fn recycled_hook_weights_match_pytorch_bit_for_bit() -> Result<()> {
    let Some(python) = python_or_skip("compare spectral norm's recycled weights with live PyTorch")? else {
        return Ok(());
    };
    norm_test_support::one_thread();
    let base = parity_test_seed()?;
    eprintln!("spectral_norm_recycling: base seed {base} (replay with NORM_PARITY_SEED={base})");
    let specs: [(&[i64], i64); 6] =
        [(&[1024, 1024], 0), (&[512, 1536], 0), (&[700, 200], 1), (&[64, 48], 0), (&[3, 2], 0), (&[1, 9], 1)];
    let cases: Vec<(u64, &[i64], i64, i64)> = specs
        .iter()
        .enumerate()
        .map(|(i, (shape, dim))| {
            (base.wrapping_add(i as u64) % (1 << 62), *shape, *dim, 1 + ((base as i64) + i as i64) % 4)
        })
        .collect();
    let input: Vec<_> = cases
        .iter()
        .map(
            |(seed, shape, dim, k)| json!({"seed": seed, "shape": shape, "dim": dim, "k": k, "steps": STEPS, "lr": LR}),
        )
        .collect();
    let script = support::repo().join("norm-tch/tests/spectral_norm_reuse.py");
    let theirs: Vec<Run> = run_python_json(&python, &script, &[], Some(&json!(input)))?;
    ensure!(theirs.len() == cases.len(), "the script returned {} runs for {} cases", theirs.len(), cases.len());
    for ((seed, shape, dim, k), theirs) in cases.iter().zip(&theirs) {
        let (ours, recycled) = rust_run(*seed, shape, *dim, *k)?;
        for (i, (a, b)) in ours.steps.iter().zip(&theirs.steps).enumerate() {
            ensure!(a == b, "NORM_PARITY_SEED={base}: {shape:?} dim {dim} k {k}: step {i} differs");
        }
        ensure!(ours.weight_orig == theirs.weight_orig, "{shape:?}: final weight_orig differs");
        ensure!(recycled == STEPS as u64 - 1, "{shape:?}: {recycled} weights recycled, expected {}", STEPS - 1);
    }
    Ok(())
}

/// Everything a twin run records, as bits: per step the weights, loss, gradient and every
/// variable of the store.
fn twin_run<L: WeightedLayer, R: Reparametrization>(
    build: impl Fn(&VarStore) -> Result<Normalized<L, R>>,
    recycling: bool,
) -> Result<(Vec<Bits>, u64)> {
    seeded(7, || -> Result<_> {
        let vs = VarStore::new(Device::Cpu);
        let mut layer = build(&vs)?;
        layer.set_weight_recycling(recycling);
        let x = Tensor::f_randn([5, 24], (Kind::Float, Device::Cpu))?;
        let mut adam = Adam::new(&vs, AdamConfig::with_lr(LR))?;
        let mut record = Vec::new();
        for step in 0..STEPS {
            // A training forward through the layer, a backward and an Adam step.
            let loss = layer.f_forward_t(&x, true)?.f_pow_tensor_scalar(2)?.f_mean(None::<Kind>)?;
            adam.zero_grad()?;
            loss.f_backward()?;
            record.push(Bits::of(&loss)?);
            adam.step()?;
            // The weight alone, training and eval (eval also under no_grad), forward-backward.
            record.push(Bits::of(&layer.weight_t(step % 2 == 0)?)?);
            record.push(Bits::of(&tch::no_grad(|| layer.weight_t(false))?)?);
            adam.zero_grad()?;
            layer.weight_t(true)?.f_sum(None::<Kind>)?.f_backward()?;
            let mut names: Vec<_> = vs.variables().into_keys().collect();
            names.sort();
            for name in names {
                let t = &vs.variables()[&name];
                record.push(Bits::of(t)?);
                if t.requires_grad() && t.grad().defined() {
                    record.push(Bits::of(&t.grad())?);
                }
            }
        }
        Ok((record, layer.recycled_weights()))
    })
}

#[test]
fn recycling_changes_no_bit_in_either_api() -> Result<()> {
    norm_test_support::one_thread();
    let options = SpectralNormOptions { n_power_iterations: 2, eps: 1e-12, dim: None, ..Default::default() };
    let fc = |vs: &VarStore| linear(&(vs.root() / "fc"), 24, 16, LinearConfig::default());
    let hooks = |vs: &VarStore| Ok(spectral_norm(vs, fc(vs)?, options)?);
    let params = |vs: &VarStore| Ok(parametrizations::spectral_norm(vs, fc(vs)?, options)?);
    let (on, recycled) = twin_run(hooks, true)?;
    let (off, none) = twin_run(hooks, false)?;
    ensure!(on == off, "hook API: recycling changed a bit");
    // Per step: training forward, weight_t, eval under no_grad, forward-backward (4 weights);
    // the first has nothing to recycle.
    ensure!((recycled, none) == (4 * STEPS as u64 - 1, 0), "hook API: {recycled} recycled with, {none} without");
    let (on, recycled) = twin_run(params, true)?;
    let (off, none) = twin_run(params, false)?;
    ensure!(on == off, "parametrization API: recycling changed a bit");
    ensure!(
        (recycled, none) == (4 * STEPS as u64 - 1, 0),
        "parametrizations: {recycled} recycled with, {none} without"
    );
    Ok(())
}

/// Weights held while later ones are computed (and `weight_orig` changes between them):
/// the bits each holder sees at the end, and the layer's recycled count.
fn held_run(recycling: bool) -> Result<(Vec<Bits>, u64)> {
    let (vs, mut layer) = seeded(3, || -> Result<_> {
        let vs = VarStore::new(Device::Cpu);
        let fc = linear(&(vs.root() / "fc"), 32, 20, LinearConfig::default())?;
        let layer = spectral_norm(&vs, fc, SpectralNormOptions::default())?;
        Ok((vs, layer))
    })?;
    layer.set_weight_recycling(recycling);
    let change = |layer: &SpectralNorm<Linear>| -> Result<()> {
        tch::no_grad(|| layer.weight_orig().shallow_clone().f_add_scalar_(0.25).map(drop))?;
        Ok(())
    };
    let mut record = Vec::new();
    // 1. The weight itself, held while three more are computed (and dropped: recycled).
    let held = layer.weight_t(true)?;
    for _ in 0..3 {
        change(&layer)?;
        let next = layer.weight_t(true)?;
        ensure!(next.data_ptr() != held.data_ptr(), "a later weight took a held weight's storage");
    }
    record.push(Bits::of(&held)?);
    drop(held);
    // 2. Only a view of it.
    let view = layer.weight_t(true)?.f_narrow(0, 1, 5)?;
    change(&layer)?;
    drop(layer.weight_t(true)?);
    drop(layer.weight_t(false)?);
    record.push(Bits::of(&view)?);
    drop(view);
    // 3. A graph not yet run, which saved the weight (the input's gradient reads it). The
    // graph saved weight_orig too, so here `u` changes instead (the graph saved a clone).
    let x = Tensor::f_ones([2, 32], (Kind::Float, Device::Cpu))?.set_requires_grad(true);
    let out = layer.f_forward_t(&x, true)?;
    let u = vs.variables().get("fc.weight_u").context("fc.weight_u")?.shallow_clone();
    tch::no_grad(|| u.shallow_clone().f_add_scalar_(0.5).map(drop))?;
    drop(layer.weight_t(true)?);
    drop(layer.weight_t(true)?);
    out.f_sum(None::<Kind>)?.f_backward()?;
    record.push(Bits::of(&x.grad())?);
    Ok((record, layer.recycled_weights()))
}

#[test]
fn a_weight_still_held_is_never_written() -> Result<()> {
    norm_test_support::one_thread();
    let (on, recycled) = held_run(true)?;
    let (off, _) = held_run(false)?;
    ensure!(on == off, "a held weight, view or saved weight was overwritten");
    ensure!(recycled >= 3, "the dropped weights were recycled meanwhile ({recycled})");
    Ok(())
}
