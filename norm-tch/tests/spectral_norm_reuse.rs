//! The hook API's training forward reuses the last power iteration's `mv(W_mat, v)` for
//! σ (`AutodiffBackend::mv_reusing`, ATen's own `MvBackward0` attached in
//! `csrc/mv_reused.cpp`). Checked here:
//!
//! - against live PyTorch (`tests/spectral_norm_reuse.py`, `torch.nn.utils.spectral_norm`'s
//!   pre-hook): over linear and conv weights (1024², non-square, conv 3-D/4-D/5-D with dim 0
//!   and 1), n_power_iterations 1..5 and several Adam steps, the loss, weight, u, v and
//!   weight_orig's gradient at every step and the final weight_orig are bit-equal. Seeds are
//!   randomized (printed; `NORM_PARITY_SEED=<n>` replays a run);
//! - that the comparison catches the mutations that matter: reusing the product of the
//!   wrong vector (the v before the last update) changes the weight, and reusing the right
//!   product without mv's history changes the gradient;
//! - `mv_reusing` alone: its gradients for mat and vec equal `mv`'s bit for bit, it records
//!   no history with grad mode off, and a product of the wrong shape or one requiring grad is
//!   an error.
//!
//! Without `.venv/bin/python` the live test prints `SKIPPED` and passes, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

mod support;

use anyhow::{ensure, Result};
use norm_core::functional::normalize;
use norm_core::optim::AdamConfig;
use norm_core::spectral_norm::hooks;
use norm_core::{AutodiffBackend, Backend};
use norm_tch::optim::Adam;
use norm_tch::TchBackend;
use norm_test_support::{parity_test_seed, run_python_json, seeded, Bits};
use serde::Deserialize;
use serde_json::json;
use support::python_or_skip;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const EPS: f64 = 1e-12;
const LR: f64 = 1e-2;
const STEPS: usize = 3;

#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    shape: Vec<i64>,
    dim: usize,
    k: usize,
}

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

/// How the Rust side computes the training-mode weight.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    /// norm's `hooks::compute_weight` (the code under test).
    Norm,
    /// Mutation: σ reuses `mv(W_mat, v)` of the v *before* the last update.
    ReuseWrongVector,
    /// Mutation: σ reuses the right product but without mv's history.
    ReuseWithoutHistory,
}

/// `compute_weight` with one mutation (the loop as norm runs it, then σ from the wrong
/// product or from the right one without history).
fn mutated_weight(
    weight_orig: &Tensor,
    u: &mut Tensor,
    v: &mut Tensor,
    case: &Case,
    variant: Variant,
) -> Result<Tensor> {
    let w_mat = hooks::weight_to_matrix::<TchBackend>(weight_orig, case.dim)?;
    let (u_used, v_used, right, wrong) = tch::no_grad(|| -> Result<_> {
        let w_mat_t = TchBackend::t(&w_mat)?;
        let mut last = (None, None);
        for _ in 0..case.k {
            let wrong = w_mat.f_mv(v)?;
            drop(normalize::<TchBackend>(&w_mat_t.f_mv(u)?, 0, EPS, Some(&mut *v))?);
            let right = w_mat.f_mv(v)?;
            drop(normalize::<TchBackend>(&right, 0, EPS, Some(&mut *u))?);
            last = (Some(right), Some(wrong));
        }
        Ok((TchBackend::clone_contiguous(u)?, TchBackend::clone_contiguous(v)?, last.0.unwrap(), last.1.unwrap()))
    })?;
    let w_v = match variant {
        Variant::ReuseWrongVector => TchBackend::mv_reusing(&w_mat, &v_used, wrong)?,
        Variant::ReuseWithoutHistory => right,
        Variant::Norm => unreachable!("norm's own code path is hooks::compute_weight"),
    };
    Ok(weight_orig.f_div(&u_used.f_dot(&w_v)?)?)
}

/// The Rust side of one case: the same draws, registration, steps and records as the script.
fn rust_run(case: &Case, variant: Variant) -> Result<Run> {
    seeded(case.seed as i64, || -> Result<Run> {
        let w = Tensor::f_randn(&case.shape, (Kind::Float, Device::Cpu))?;
        let g = Tensor::f_randn(&case.shape, (Kind::Float, Device::Cpu))?;
        let vs = VarStore::new(Device::Cpu);
        let weight_orig = vs.root().f_var_copy("weight_orig", &w)?;
        let (mut u, mut v) = hooks::initial_u_v::<TchBackend>(&weight_orig, case.dim, EPS)?;
        let mut adam = Adam::new(&vs, AdamConfig::with_lr(LR))?;
        let mut steps = Vec::new();
        for _ in 0..STEPS {
            let weight = match variant {
                Variant::Norm => {
                    hooks::compute_weight::<TchBackend>(&weight_orig, &mut u, &mut v, case.dim, case.k, EPS, true)?
                }
                _ => mutated_weight(&weight_orig, &mut u, &mut v, case, variant)?,
            };
            let loss = weight.f_mul(&g)?.f_sum(None::<Kind>)?;
            adam.zero_grad()?;
            loss.f_backward()?;
            let grad = TchBackend::grad(&weight_orig).ok_or_else(|| anyhow::anyhow!("weight_orig has no grad"))?;
            steps.push(Step {
                loss: Bits::of(&loss)?,
                weight: Bits::of(&weight)?,
                u: Bits::of(&u)?,
                v: Bits::of(&v)?,
                grad: Bits::of(&grad)?,
            });
            adam.step()?;
        }
        Ok(Run { steps, weight_orig: Bits::of(&weight_orig)? })
    })
}

/// The first field of `ours` whose bits differ from `theirs`, as `step N field`.
fn first_difference(ours: &Run, theirs: &Run) -> Option<String> {
    for (i, (a, b)) in ours.steps.iter().zip(&theirs.steps).enumerate() {
        let fields = [("loss", &a.loss, &b.loss), ("weight", &a.weight, &b.weight), ("u", &a.u, &b.u)];
        let more = [("v", &a.v, &b.v), ("weight_orig.grad", &a.grad, &b.grad)];
        for (name, x, y) in fields.into_iter().chain(more) {
            if x != y {
                return Some(format!("step {i} {name}: {}", norm_test_support::describe_difference(name, x, y)));
            }
        }
    }
    (ours.weight_orig != theirs.weight_orig).then(|| "final weight_orig".to_string())
}

/// Shapes and dims: 1024², non-square both ways, tiny, conv1d/2d/3d weights with dim 0 and 1.
fn cases(base: u64) -> Vec<Case> {
    let specs: [(&[i64], usize); 14] = [
        (&[1024, 1024], 0),
        (&[1024, 384], 0),
        (&[200, 700], 0),
        (&[300, 90], 0),
        (&[3, 2], 0),
        (&[1, 9], 0),
        (&[9, 1], 0),
        (&[16, 8, 5], 0),
        (&[8, 16, 5], 1),
        (&[32, 16, 3, 3], 0),
        (&[16, 32, 4, 4], 1),
        (&[64, 64, 3, 3], 1),
        (&[6, 4, 3, 3, 3], 0),
        (&[4, 6, 2, 3, 3], 1),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, (shape, dim))| {
            let seed = base.wrapping_add(i as u64) % (1 << 62);
            Case { seed, shape: shape.to_vec(), dim: *dim, k: 1 + ((base as usize).wrapping_add(i)) % 5 }
        })
        .collect()
}

fn pytorch_runs(python: &std::path::Path, cases: &[Case]) -> Result<Vec<Run>> {
    let input: Vec<_> = cases
        .iter()
        .map(|c| json!({"seed": c.seed, "shape": c.shape, "dim": c.dim, "k": c.k, "steps": STEPS, "lr": LR}))
        .collect();
    let script = support::repo().join("norm-tch/tests/spectral_norm_reuse.py");
    run_python_json(python, &script, &[], Some(&json!(input)))
}

#[test]
fn hook_api_training_forward_matches_pytorch_bit_for_bit() -> Result<()> {
    let Some(python) = python_or_skip("compare spectral norm's reused product with live PyTorch")? else {
        return Ok(());
    };
    norm_test_support::one_thread();
    let base = parity_test_seed()?;
    eprintln!("spectral_norm_reuse: base seed {base} (replay with NORM_PARITY_SEED={base})");
    let cases = cases(base);
    let theirs = pytorch_runs(&python, &cases)?;
    ensure!(theirs.len() == cases.len(), "the script returned {} runs for {} cases", theirs.len(), cases.len());
    let mut failures = Vec::new();
    for (case, theirs) in cases.iter().zip(&theirs) {
        let ours = rust_run(case, Variant::Norm)?;
        if let Some(diff) = first_difference(&ours, theirs) {
            failures.push(format!("{case:?}: {diff}"));
        }
    }
    ensure!(failures.is_empty(), "NORM_PARITY_SEED={base}: {} cases differ:\n{}", failures.len(), failures.join("\n"));
    Ok(())
}

#[test]
fn the_comparison_catches_a_wrong_reuse() -> Result<()> {
    let Some(python) = python_or_skip("check that the reuse comparison catches mutations")? else {
        return Ok(());
    };
    norm_test_support::one_thread();
    let base = parity_test_seed()?;
    eprintln!("spectral_norm_reuse mutations: base seed {base} (replay with NORM_PARITY_SEED={base})");
    // Matrices with a side under 4 can reach the power iteration's fixed point exactly,
    // where the product of the old v has the new v's bits and nothing could tell them apart.
    let nondegenerate = |c: &Case| {
        let h = c.shape[c.dim];
        let w = c.shape.iter().product::<i64>() / h;
        h >= 4 && w >= 4 && h * w <= 65536
    };
    let cases: Vec<Case> = cases(base).into_iter().filter(nondegenerate).collect();
    ensure!(cases.len() >= 6, "expected at least 6 non-degenerate cases, got {}", cases.len());
    let theirs = pytorch_runs(&python, &cases)?;
    for (case, theirs) in cases.iter().zip(&theirs) {
        for variant in [Variant::ReuseWrongVector, Variant::ReuseWithoutHistory] {
            let diff = first_difference(&rust_run(case, variant)?, theirs);
            ensure!(diff.is_some(), "seed {base}: {variant:?} went unnoticed on {case:?}");
            if variant == Variant::ReuseWithoutHistory {
                // Forward bits are right; the gradient is what breaks.
                let diff = diff.unwrap_or_default();
                ensure!(
                    diff.contains("weight_orig.grad"),
                    "{variant:?} on {case:?}: expected a gradient difference, got {diff}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn mv_reusing_has_mv_gradients_bit_for_bit() -> Result<()> {
    norm_test_support::one_thread();
    let base = parity_test_seed()?;
    eprintln!("mv_reusing: seed {base} (replay with NORM_PARITY_SEED={base})");
    for (i, (rows, cols)) in [(1, 1), (3, 2), (17, 33), (256, 64), (64, 512)].into_iter().enumerate() {
        for vec_requires_grad in [false, true] {
            let seed = (base.wrapping_add(i as u64) % (1 << 62)) as i64;
            let (mat, vec, grad_out) = seeded(seed, || -> Result<_> {
                let opts = (Kind::Float, Device::Cpu);
                Ok((
                    Tensor::f_randn([rows, cols], opts)?,
                    Tensor::f_randn([cols], opts)?,
                    Tensor::f_randn([rows], opts)?,
                ))
            })?;
            let leaves = || -> Result<(Tensor, Tensor)> {
                Ok((mat.f_detach()?.set_requires_grad(true), vec.f_detach()?.set_requires_grad(vec_requires_grad)))
            };
            let (m1, v1) = leaves()?;
            let plain = m1.f_mv(&v1)?;
            plain.f_dot(&grad_out)?.f_backward()?;
            let (m2, v2) = leaves()?;
            let product = tch::no_grad(|| m2.f_mv(&v2))?;
            let reused = TchBackend::mv_reusing(&m2, &v2, product)?;
            ensure!(reused.requires_grad(), "the reused product carries mv's history");
            reused.f_dot(&grad_out)?.f_backward()?;
            ensure!(Bits::of(&plain)? == Bits::of(&reused)?, "{rows}x{cols}: values differ");
            ensure!(Bits::of(&m1.grad())? == Bits::of(&m2.grad())?, "{rows}x{cols} seed {seed}: mat grads differ");
            if vec_requires_grad {
                ensure!(Bits::of(&v1.grad())? == Bits::of(&v2.grad())?, "{rows}x{cols} seed {seed}: vec grads differ");
            } else {
                ensure!(!v2.grad().defined(), "vec does not require grad and gets none");
            }
        }
    }
    Ok(())
}

#[test]
fn mv_reusing_without_grad_and_its_errors() -> Result<()> {
    // Unseeded draws, under the lock so they never land inside another test's seeded run.
    let _generator = norm_tch::backend::lock_global_generator();
    let mat = Tensor::f_randn([4, 3], (Kind::Float, Device::Cpu))?.set_requires_grad(true);
    let vec = Tensor::f_randn([3], (Kind::Float, Device::Cpu))?;
    let product = tch::no_grad(|| mat.f_mv(&vec))?;
    let out = tch::no_grad(|| TchBackend::mv_reusing(&mat, &vec, product.shallow_clone()))?;
    ensure!(!out.requires_grad(), "no history under no_grad");
    let wrong_shape = tch::no_grad(|| Tensor::f_zeros([5], (Kind::Float, Device::Cpu)))?;
    let err = TchBackend::mv_reusing(&mat, &vec, wrong_shape).unwrap_err().to_string();
    ensure!(err.contains("mv_reused") && err.contains("[4]"), "names the expected shape: {err}");
    let tracked = mat.f_mv(&vec)?;
    let err = TchBackend::mv_reusing(&mat, &vec, tracked).unwrap_err().to_string();
    ensure!(err.contains("must not require grad"), "{err}");
    let err = TchBackend::mv_reusing(&vec, &vec, TchBackend::deep_clone(&vec)?).unwrap_err().to_string();
    ensure!(err.contains("matrix and a vector"), "{err}");
    Ok(())
}
