//! Bit-for-bit comparison with the committed golden data (data/golden/, made by
//! data/gen_goldens.py with PyTorch). Skips, saying why, on a machine whose ATen CPU
//! capability differs from the one the data was made on.

use anyhow::{ensure, Context, Result};
use norm_bench::golden::{Golden, GoldenStatus};
use norm_bench::seed_loop::{self, Example};
use norm_bench::snapshot::{Snapshot, TensorBits};
use norm_core::weight_norm::{compute_weight, initial_g, WeightNormDim};
use norm_tch::TchBackend;
use norm_test_support::{ensure_f32_bits_eq, var_names};
use serde::Deserialize;
use std::collections::BTreeMap;

fn golden() -> Option<Golden> {
    match Golden::open().expect("data/golden/manifest.json must be readable") {
        GoldenStatus::Applies(g) => Some(g),
        GoldenStatus::OtherMachine { made_on, here } => {
            eprintln!("SKIPPED: golden data was made on ATen CPU capability {made_on}, this machine has {here}; bits are compared against live PyTorch by the parity tests instead");
            None
        }
    }
}

#[derive(Deserialize)]
struct SeedLoopFile {
    example: Example,
    seed: u64,
    steps: u64,
    snapshots: Vec<Snapshot>,
}

/// `got` against PyTorch's `expected`: the same shape and the same bits.
fn assert_bits_equal(what: &str, got: &TensorBits, expected: &TensorBits) -> Result<()> {
    ensure!(got.shape == expected.shape, "{what}: shape {:?}, PyTorch has {:?}", got.shape, expected.shape);
    ensure_f32_bits_eq(&format!("{what}: bits differ from PyTorch"), &got.f32_bits, &expected.f32_bits)
}

#[test]
fn seed_loop_matches_pytorch_bit_for_bit() -> Result<()> {
    let Some(golden) = golden() else { return Ok(()) };
    let files: Vec<&String> = golden.manifest.files.iter().filter(|f| f.starts_with("seed_loop/")).collect();
    ensure!(
        files.len() >= 18,
        "expected the seed-loop goldens for 2 examples x 3 seeds x 3 step counts, found {}",
        files.len()
    );
    for rel in files {
        let file: SeedLoopFile = golden.read(rel)?;
        let replay = seed_loop::replay(file.example, file.seed, file.steps).with_context(|| rel.clone())?;
        let labels: Vec<&str> = replay.snapshots.iter().map(|s| s.label.as_str()).collect();
        let expected_labels: Vec<&str> = file.snapshots.iter().map(|s| s.label.as_str()).collect();
        ensure!(labels == expected_labels, "{rel}: snapshots {labels:?}, PyTorch has {expected_labels:?}");
        for (got, expected) in replay.snapshots.iter().zip(&file.snapshots) {
            let names: Vec<&String> = got.tensors.keys().collect();
            ensure!(names == expected.tensors.keys().collect::<Vec<_>>(), "{rel} {}: tensors {names:?}", got.label);
            for (name, bits) in &expected.tensors {
                assert_bits_equal(&format!("{rel} {} {name}", got.label), &got.tensors[name], bits)?;
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct WeightNormCase {
    shape: Vec<usize>,
    dim: Option<i64>,
    tensors: BTreeMap<String, TensorBits>,
}

#[derive(Deserialize)]
struct WeightNormFile {
    cases: Vec<WeightNormCase>,
}

#[test]
fn weight_norm_forward_and_grads_match_pytorch_bit_for_bit() -> Result<()> {
    let Some(golden) = golden() else { return Ok(()) };
    norm_tch::backend::set_num_threads(1)?;
    let file: WeightNormFile = golden.read("weight_norm.json")?;
    let mut dims_seen = std::collections::BTreeSet::new();
    for case in &file.cases {
        let what = format!("shape {:?} dim {:?}", case.shape, case.dim);
        let dim = WeightNormDim::new(case.dim);
        dims_seen.insert(case.dim);
        let t = |name: &str| case.tensors[name].to_tensor();
        let v = t("v")?.set_requires_grad(true);
        let g = t("g")?.set_requires_grad(true);
        let g_init = tch::no_grad(|| initial_g::<TchBackend>(&v, dim))?;
        assert_bits_equal(&format!("{what} g_init"), &TensorBits::from_tensor(&g_init)?, &case.tensors["g_init"])?;
        let weight = compute_weight::<TchBackend>(&v, &g, dim)?;
        assert_bits_equal(&format!("{what} weight"), &TensorBits::from_tensor(&weight)?, &case.tensors["weight"])?;
        norm_tch::backend::backward_with_grad(&weight, &t("grad_out")?)?;
        assert_bits_equal(&format!("{what} grad_v"), &TensorBits::from_tensor(&v.grad())?, &case.tensors["grad_v"])?;
        assert_bits_equal(&format!("{what} grad_g"), &TensorBits::from_tensor(&g.grad())?, &case.tensors["grad_g"])?;
    }
    for form in [None, Some(-1), Some(0), Some(1), Some(-2)] {
        ensure!(dims_seen.contains(&form), "golden weight_norm cases lack dim {form:?}");
    }
    Ok(())
}

#[derive(Deserialize)]
struct LinearInitCase {
    seed: u64,
    in_features: i64,
    out_features: i64,
    bias: bool,
    tensors: BTreeMap<String, TensorBits>,
}

#[derive(Deserialize)]
struct LinearInitFile {
    cases: Vec<LinearInitCase>,
}

/// `norm_tch::layers::linear` draws what `nn.Linear` draws, in the same order.
#[test]
fn linear_init_draws_like_pytorch() -> Result<()> {
    let Some(golden) = golden() else { return Ok(()) };
    let file: LinearInitFile = golden.read("linear_init.json")?;
    ensure!(!file.cases.is_empty(), "no linear_init cases");
    for case in &file.cases {
        let what =
            format!("seed {} Linear({}, {}, bias={})", case.seed, case.in_features, case.out_features, case.bias);
        let _generator = norm_tch::backend::lock_global_generator();
        tch::manual_seed(case.seed as i64);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let layer = norm_tch::layers::linear(
            &(vs.root() / "fc"),
            case.in_features,
            case.out_features,
            norm_tch::layers::LinearConfig { bias: case.bias },
        )?;
        let next = tch::Tensor::f_randn([4], (tch::Kind::Float, tch::Device::Cpu))?;
        assert_bits_equal(&format!("{what} weight"), &TensorBits::from_tensor(&layer.ws)?, &case.tensors["weight"])?;
        assert_bits_equal(
            &format!("{what} next randn"),
            &TensorBits::from_tensor(&next)?,
            &case.tensors["next_randn"],
        )?;
        match (&layer.bs, case.tensors.get("bias")) {
            (Some(b), Some(expected)) => {
                assert_bits_equal(&format!("{what} bias"), &TensorBits::from_tensor(b)?, expected)?
            }
            (None, None) => {}
            _ => anyhow::bail!("{what}: bias presence differs"),
        }
        let names = var_names(&vs);
        let expected: Vec<&str> = if case.bias { vec!["fc.bias", "fc.weight"] } else { vec!["fc.weight"] };
        ensure!(names == expected, "{what}: VarStore names {names:?}");
    }
    Ok(())
}
