//! norm-tch on CUDA: the normalized layers' forward and backward bit for bit against live
//! PyTorch on the same device (`tests/cuda.py`), and against the CPU within a tolerance;
//! fold / unfold, checkpoints saved from CUDA and loaded on the CPU (and back), and
//! `weight_norm_out` on CUDA. Also, on every machine: `libtorch_cuda.so` is really linked
//! into this test binary when the libtorch has it (the linker's `--as-needed` used to drop
//! it, and then libtorch saw no GPU), and asking libtorch about CUDA does not crash.
//!
//! Without a CUDA device the CUDA tests print `SKIPPED` and pass, unless
//! `NORM_REQUIRE_CUDA=1` (set by `scripts/gpu-check.sh`) makes that a failure. The live
//! comparison runs on the CPU everywhere too (the same harness, PyTorch's CPU bits), so the
//! harness itself is checked on machines without a GPU. PyTorch's Python is `$NORM_PYTHON`
//! if set (the GPU machine's own `python3`), else the repo's `.venv/bin/python`.

mod support;

use anyhow::{bail, ensure, Context, Result};
use norm_core::weight_norm::WeightNormDim;
use norm_tch::checkpoint::{load_checkpoint, load_state_dict, save_state_dict, LoadOptions, StateDict};
use norm_tch::layers::reparam::Reparametrization;
use norm_tch::layers::{
    conv1d, conv_transpose1d, embedding, fold_all, linear, parametrizations, spectral_norm, unfold_all, weight_norm,
    ConvOptions, ConvTransposeOptions, EmbeddingOptions, Foldable, LinearConfig, Normalized, SpectralNormOptions,
    WeightedLayer,
};
use norm_test_support::{cuda_or_skip, one_thread, run_python_json, seeded, Bits};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// The cases of `tests/cuda.py`, by name.
const CASES: [&str; 7] = [
    "linear_weight_norm",
    "linear_weight_norm_param",
    "linear_spectral_norm",
    "linear_spectral_norm_param",
    "embedding_weight_norm",
    "conv1d_weight_norm",
    "conv_transpose1d_spectral_norm",
];

/// The seed both sides use before each case.
const SEED: i64 = 5;

/// The shared objects mapped into this process (`/proc/self/maps`), by path.
fn mapped_libraries() -> Result<Vec<PathBuf>> {
    let maps = std::fs::read_to_string("/proc/self/maps").context("reading /proc/self/maps")?;
    let mut paths: Vec<PathBuf> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains(".so"))
        .map(PathBuf::from)
        .collect();
    paths.dedup();
    Ok(paths)
}

#[test]
fn libtorch_cuda_is_linked_when_the_libtorch_has_it() -> Result<()> {
    // Asking is safe without a GPU: false and 0, no crash.
    let (available, count) = (tch::Cuda::is_available(), tch::Cuda::device_count());
    ensure!(available == (count > 0), "is_available {available} but device_count {count}");
    let libraries = mapped_libraries()?;
    let Some(cpu) = libraries.iter().find(|p| p.file_name().is_some_and(|n| n == "libtorch_cpu.so")) else {
        bail!("libtorch_cpu.so is not mapped into this test binary: {libraries:?}");
    };
    let cuda = cpu.with_file_name("libtorch_cuda.so");
    if !cuda.exists() {
        eprintln!("SKIPPED: {} has no libtorch_cuda.so (a CPU-only libtorch)", cpu.parent().unwrap().display());
        return Ok(());
    }
    let loaded = libraries.iter().any(|p| p.file_name().is_some_and(|n| n == "libtorch_cuda.so"));
    ensure!(
        loaded,
        "{} exists but is not loaded: the linker dropped -ltorch_cuda (see norm-tch/build.rs)",
        cuda.display()
    );
    Ok(())
}

#[test]
fn cuda_is_visible_where_required() {
    match cuda_or_skip("this check") {
        Some(device) => eprintln!("CUDA: {device:?}, {} device(s)", tch::Cuda::device_count()),
        None => assert!(norm_tch::backend::available_devices() == [Device::Cpu]),
    }
}

/// One case's result: the output, every variable's value and every parameter's grad, by
/// PyTorch's names.
#[derive(Debug, Deserialize)]
struct Outcome {
    out: Bits,
    values: BTreeMap<String, Bits>,
    grads: BTreeMap<String, Bits>,
}

/// `randn(dims)` drawn on the CPU, moved to `device` (`torch.randn(...).to(device)`).
fn randn(dims: &[i64], device: Device) -> Result<Tensor> {
    Ok(Tensor::f_randn(dims, (Kind::Float, Device::Cpu))?.f_to_device(device)?)
}

/// The training-mode forward of a normalized layer.
fn forward<L: WeightedLayer, R: Reparametrization>(n: &Normalized<L, R>, x: &Tensor) -> Result<Tensor> {
    Ok(n.f_forward_t(x, true)?)
}

/// Case `name` of `tests/cuda.py` in Rust on `device`: seeded, built, run forward and
/// backward as the Python side does.
fn run_case(name: &str, device: Device) -> Result<Outcome> {
    let vs = VarStore::new(device);
    let root = vs.root();
    let y = seeded(SEED, || -> Result<Tensor> {
        let lin = || linear(&root, 6, 4, LinearConfig::default());
        Ok(match name {
            "linear_weight_norm" => forward(&weight_norm(&vs, lin()?, Some(0))?, &randn(&[8, 6], device)?)?,
            "linear_weight_norm_param" => {
                forward(&parametrizations::weight_norm(&vs, lin()?, Some(0))?, &randn(&[8, 6], device)?)?
            }
            "linear_spectral_norm" => {
                forward(&spectral_norm(&vs, lin()?, SpectralNormOptions::default())?, &randn(&[8, 6], device)?)?
            }
            "linear_spectral_norm_param" => forward(
                &parametrizations::spectral_norm(&vs, lin()?, SpectralNormOptions::default())?,
                &randn(&[8, 6], device)?,
            )?,
            "embedding_weight_norm" => {
                let e = weight_norm(&vs, embedding(&root, 10, 5, EmbeddingOptions::default())?, Some(0))?;
                forward(&e, &Tensor::f_randint(10, [3, 4], (Kind::Int64, Device::Cpu))?.f_to_device(device)?)?
            }
            "conv1d_weight_norm" => {
                let c = weight_norm(&vs, conv1d(&root, 3, 4, [3], ConvOptions::default())?, Some(0))?;
                forward(&c, &randn(&[2, 3, 9], device)?)?
            }
            "conv_transpose1d_spectral_norm" => {
                let c = conv_transpose1d(&root, 4, 3, [3], ConvTransposeOptions::default())?;
                forward(&spectral_norm(&vs, c, SpectralNormOptions::default())?, &randn(&[2, 4, 5], device)?)?
            }
            other => bail!("unknown case {other}"),
        })
    })?;
    y.f_mul(&y)?.f_sum(None::<Kind>)?.f_backward()?;
    let mut values = BTreeMap::new();
    let mut grads = BTreeMap::new();
    for (k, t) in vs.variables() {
        ensure!(t.device() == device, "{name}: {k} is on {:?}, the VarStore on {device:?}", t.device());
        values.insert(k.clone(), Bits::of(&t)?);
        let grad = t.grad();
        if grad.defined() {
            grads.insert(k, Bits::of(&grad)?);
        }
    }
    ensure!(y.device() == device, "{name}: the output is on {:?}", y.device());
    Ok(Outcome { out: Bits::of(&y)?, values, grads })
}

/// Whether a case runs a cuDNN convolution, whose backward algorithms (chosen by cuDNN's
/// heuristics, not deterministic unless `torch.backends.cudnn.deterministic`) may sum in
/// another order from run to run: its grads are compared within a tolerance on CUDA.
fn is_conv(name: &str) -> bool {
    name.starts_with("conv")
}

/// Every case on `device` against live PyTorch on `device`: output, values and grads bit
/// for bit (conv grads on CUDA within 1e-5 relative, see [`is_conv`]).
fn compare_with_pytorch(device: Device) -> Result<()> {
    let device_name = if device == Device::Cpu { "cpu" } else { "cuda" };
    let Some(python) = support::python_or_skip(&format!("compare the layers on {device_name} with PyTorch"))? else {
        return Ok(());
    };
    one_thread();
    let script = support::repo().join("norm-tch/tests/cuda.py");
    let request = json!({ "device": device_name, "seed": SEED, "cases": CASES });
    #[derive(Deserialize)]
    struct Answer {
        torch: String,
        results: BTreeMap<String, Outcome>,
    }
    let answer: Answer = run_python_json(&python, &script, &[], Some(&request))?;
    eprintln!("PyTorch {} on {device_name}", answer.torch);
    let mut failures = Vec::new();
    for name in CASES {
        let theirs = answer.results.get(name).with_context(|| format!("cuda.py has no result for {name}"))?;
        let ours = run_case(name, device)?;
        let mut check = |what: String, a: &Bits, b: &Bits, tolerant: bool| {
            let result = if tolerant { ensure_close(&what, a, b, 1e-5, 1e-6) } else { a.ensure_eq(&what, b) };
            if let Err(e) = result {
                failures.push(format!("{e:#}"));
            }
        };
        check(format!("{name} out"), &ours.out, &theirs.out, false);
        if ours.values.keys().ne(theirs.values.keys()) || ours.grads.keys().ne(theirs.grads.keys()) {
            failures.push(format!(
                "{name}: names {:?} / grads {:?}, PyTorch {:?} / {:?}",
                ours.values.keys(),
                ours.grads.keys(),
                theirs.values.keys(),
                theirs.grads.keys()
            ));
            continue;
        }
        for (k, v) in &ours.values {
            check(format!("{name} {k}"), v, &theirs.values[k], false);
        }
        for (k, g) in &ours.grads {
            check(format!("{name} grad of {k}"), g, &theirs.grads[k], is_conv(name) && device != Device::Cpu);
        }
    }
    ensure!(failures.is_empty(), "{} mismatch(es) on {device_name}:\n{}", failures.len(), failures.join("\n"));
    Ok(())
}

/// `|a - b| <= atol + rtol * |b|` elementwise, same shapes.
fn ensure_close(what: &str, a: &Bits, b: &Bits, rtol: f64, atol: f64) -> Result<()> {
    ensure!(a.shape == b.shape, "{what}: shape {:?}, expected {:?}", a.shape, b.shape);
    for (i, (&x, &y)) in a.f32_bits.iter().zip(&b.f32_bits).enumerate() {
        let (x, y) = (f32::from_bits(x) as f64, f32::from_bits(y) as f64);
        ensure!((x - y).abs() <= atol + rtol * y.abs(), "{what}: value {i} is {x:e}, expected {y:e} (rtol {rtol:e})");
    }
    Ok(())
}

#[test]
fn layers_on_cpu_match_live_pytorch_on_cpu() -> Result<()> {
    // The harness of the CUDA comparison, checked where every machine can run it.
    compare_with_pytorch(Device::Cpu)
}

#[test]
fn layers_on_cuda_match_live_pytorch_on_cuda() -> Result<()> {
    match cuda_or_skip("comparing the layers with PyTorch on CUDA") {
        Some(device) => compare_with_pytorch(device),
        None => Ok(()),
    }
}

#[test]
fn layers_on_cuda_start_from_the_cpu_bits_and_stay_close_to_the_cpu() -> Result<()> {
    let Some(cuda) = cuda_or_skip("comparing CUDA with the CPU") else { return Ok(()) };
    one_thread();
    for name in CASES {
        let (on_cpu, on_cuda) = (run_case(name, Device::Cpu)?, run_case(name, cuda)?);
        // The init draws are the CPU's on both (PyTorch builds modules on the CPU, then `.to`):
        // bit for bit. Spectral norm's u and v are drawn by the device's own generator (another
        // weight: nothing more to compare), and weight norm's g = ‖v‖ is computed by the
        // device's norm kernel (another summation order: within a tolerance).
        let spectral = name.contains("spectral");
        let drawn_on_device = |k: &str| ["weight_u", "weight_v", "._u", "._v"].iter().any(|s| k.ends_with(s));
        let computed_on_device = |k: &str| ["weight_g", ".original0"].iter().any(|s| k.ends_with(s));
        for k in on_cpu.values.keys().filter(|k| !(spectral && drawn_on_device(k))) {
            let what = format!("{name} {k} on CUDA vs CPU");
            if !spectral && computed_on_device(k) {
                ensure_close(&what, &on_cuda.values[k], &on_cpu.values[k], 1e-6, 0.0)?;
            } else {
                on_cuda.values[k].ensure_eq(&what, &on_cpu.values[k])?;
            }
        }
        if spectral {
            continue; // u and v come from another generator: another weight
        }
        // cuDNN convolutions may use TF32 (PyTorch's default for cuDNN): looser there.
        let (rtol, atol) = if is_conv(name) { (1e-2, 1e-3) } else { (1e-4, 1e-5) };
        ensure_close(&format!("{name} out on CUDA vs CPU"), &on_cuda.out, &on_cpu.out, rtol, atol)?;
        for (k, g) in &on_cpu.grads {
            ensure_close(&format!("{name} grad of {k} on CUDA vs CPU"), &on_cuda.grads[k], g, rtol, atol)?;
        }
    }
    Ok(())
}

/// A weight-normed and a spectral-normed Linear in one VarStore on `device`, seeded, run
/// forward once in training mode (so spectral norm's u, v have moved).
fn two_layer_model(device: Device) -> Result<(VarStore, Vec<Box<dyn Foldable>>)> {
    let vs = VarStore::new(device);
    let layers = seeded(SEED, || -> Result<Vec<Box<dyn Foldable>>> {
        let a = weight_norm(&vs, linear(&(vs.root() / "a"), 6, 5, LinearConfig::default())?, Some(0))?;
        let b = spectral_norm(&vs, linear(&(vs.root() / "b"), 5, 4, LinearConfig::default())?, Default::default())?;
        let x = randn(&[3, 6], device)?;
        drop(b.f_forward_t(&a.f_forward_t(&x, true)?, true)?);
        Ok(vec![Box::new(a), Box::new(b)])
    })?;
    Ok((vs, layers))
}

/// Every variable of `vs` by name, as bits, checking it is on `device`.
fn values_on(vs: &VarStore, device: Device) -> Result<BTreeMap<String, Bits>> {
    vs.variables()
        .into_iter()
        .map(|(k, t)| {
            ensure!(t.device() == device, "{k} is on {:?}, expected {device:?}", t.device());
            Ok((k, Bits::of(&t)?))
        })
        .collect()
}

/// Fold then unfold on `device`: every variable stays there, the names are the folded ones
/// and then the original ones again, u, v and the biases come back unchanged.
fn fold_and_unfold_on(device: Device) -> Result<()> {
    let (vs, mut layers) = two_layer_model(device)?;
    let before = values_on(&vs, device)?;
    fold_all(layers.iter_mut().map(|l| &mut **l as &mut dyn Foldable))?;
    let folded = values_on(&vs, device)?;
    ensure!(folded.keys().eq(["a.bias", "a.weight", "b.bias", "b.weight"].iter()), "folded: {:?}", folded.keys());
    unfold_all(layers.iter_mut().map(|l| &mut **l as &mut dyn Foldable))?;
    let unfolded = values_on(&vs, device)?;
    ensure!(unfolded.keys().eq(before.keys()), "unfolded names {:?}, before {:?}", unfolded.keys(), before.keys());
    for k in ["b.weight_u", "b.weight_v", "a.bias", "b.bias"] {
        unfolded[k].ensure_eq(&format!("{k} after fold and unfold on {device:?}"), &before[k])?;
    }
    Ok(())
}

#[test]
fn fold_and_unfold_keep_every_variable_on_its_device() -> Result<()> {
    fold_and_unfold_on(Device::Cpu)?;
    match cuda_or_skip("fold / unfold on CUDA") {
        Some(cuda) => fold_and_unfold_on(cuda),
        None => Ok(()),
    }
}

/// A model saved from `from` (`.pt` and `.safetensors`), loaded into the same architecture
/// built on the CPU, then read back, moved to `from` with [`StateDict::to_device`] and
/// loaded there: the same bits everywhere, every variable on its VarStore's device.
fn checkpoint_round_trip(from: Device, name: &str) -> Result<()> {
    // Under the system temp folder: a prebuilt binary may run where its build's target/ is not.
    let dir = std::env::temp_dir().join(format!("norm-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (vs_from, _layers) = two_layer_model(from)?;
    let saved = values_on(&vs_from, from)?;
    for file in ["model.pt", "model.safetensors"] {
        let path = dir.join(file);
        save_state_dict(&vs_from, &path)?;
        let (mut vs_cpu, _cpu_layers) = two_layer_model(Device::Cpu)?;
        load_checkpoint(&mut vs_cpu, &path, &LoadOptions::default())?;
        let loaded = values_on(&vs_cpu, Device::Cpu)?;
        ensure!(loaded.keys().eq(saved.keys()), "{file}: names {:?}, saved {:?}", loaded.keys(), saved.keys());
        for (k, v) in &loaded {
            v.ensure_eq(&format!("{file}: {k} saved on {from:?}, loaded on the CPU"), &saved[k])?;
        }
        let sd = StateDict::read(&path)?.to_device(from)?;
        ensure!(sd.entries().iter().all(|(_, t)| t.device() == from), "{file}: to_device left a tensor behind");
        let (mut vs_back, _back_layers) = two_layer_model(from)?;
        load_state_dict(&mut vs_back, &sd, &LoadOptions::default())?;
        for (k, v) in values_on(&vs_back, from)? {
            v.ensure_eq(&format!("{file}: {k} back on {from:?}"), &saved[&k])?;
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn a_checkpoint_saved_on_cuda_loads_on_the_cpu_and_back() -> Result<()> {
    checkpoint_round_trip(Device::Cpu, "cpu-checkpoint")?;
    match cuda_or_skip("checkpoints saved on CUDA") {
        Some(cuda) => checkpoint_round_trip(cuda, "cuda-checkpoint"),
        None => Ok(()),
    }
}

/// `weight_norm_out` on `device` for dims 0 and 1: `torch._weight_norm`'s bits.
fn weight_norm_out_on(device: Device) -> Result<Tensor> {
    let v = seeded(SEED, || randn(&[7, 5], device))?;
    for dim in [0, 1] {
        let g = Tensor::f_norm_except_dim(&v, 2, dim)?.f_mul_scalar(1.5)?;
        let mut out = v.f_empty_like()?;
        norm_tch::weight_norm_out(&v, &g, WeightNormDim::new(Some(dim)), &mut out)?;
        let expected = Tensor::f_internal_weight_norm(&v, &g, dim)?;
        Bits::of(&out)?.ensure_eq(&format!("weight_norm_out dim {dim} on {device:?}"), &Bits::of(&expected)?)?;
    }
    Ok(v)
}

#[test]
fn weight_norm_out_on_cuda_is_weight_norm_bit_for_bit() -> Result<()> {
    drop(weight_norm_out_on(Device::Cpu)?);
    let Some(cuda) = cuda_or_skip("weight_norm_out on CUDA") else { return Ok(()) };
    let v = weight_norm_out_on(cuda)?;
    let g = Tensor::f_norm_except_dim(&v, 2, 0)?;
    let mut out_cpu = Tensor::f_empty([7, 5], (Kind::Float, Device::Cpu))?;
    let err = norm_tch::weight_norm_out(&v, &g, WeightNormDim::new(Some(0)), &mut out_cpu).unwrap_err().to_string();
    ensure!(err.contains("one device"), "a CPU out for CUDA v: {err}");
    Ok(())
}
