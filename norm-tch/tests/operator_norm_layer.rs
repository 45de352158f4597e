//! The operator-norm layer (`norm_tch::layers::operator_norm`) against independent
//! references (`tests/operator_norm_layer.py`, the venv's PyTorch and NumPy):
//!
//! - the σ the layer divides by matches the largest singular value of the dense operator
//!   matrix (float64 SVD) for Conv1d/2d/3d, ConvTranspose1d/2d and Linear with strides,
//!   paddings, dilations, groups, output paddings and circular padding, both from the
//!   registration's warm start (float32 and float64 layers) and after training forwards from a
//!   one-iteration start (the per-forward `A`/`Aᵀ` steps in the weight's dtype);
//! - the normalized layer's operator norm is 1 within σ's bound, where PyTorch's own
//!   `spectral_norm` on the same convolution leaves it well above 1;
//! - the gradient through σ matches PyTorch autograd of the same formula and central finite
//!   differences;
//! - the seed makes registration reproducible and leaves the global generator alone; errors are
//!   typed and name the argument; fold, remove and checkpoints round-trip.
//!
//! Without `.venv/bin/python` the reference tests print `SKIPPED` and pass, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

mod support;

use anyhow::{ensure, Result};
use norm_core::error::{CheckpointErrorKind, ConversionRefusal};
use norm_core::Error;
use norm_tch::checkpoint::{
    convert, load_checkpoint, save_state_dict, state_dict, ConvertOptions, LoadOptions, Target,
};
use norm_tch::layers::{
    conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, linear, operator_norm, ConvOptions,
    ConvTransposeOptions, LinearConfig, OperatorNormLayerOptions, OperatorNormalized, SpectralNormGuards,
};
use norm_tch::operator_norm::{operator_norm as float64_operator_norm, AsOperator, OperatorNormOptions};
use norm_tch::scheme::{detect, Scheme};
use norm_test_support::{one_thread, run_python_json, seeded};
use serde::Deserialize;
use serde_json::{json, Value};
use support::{fresh_dir, python_or_skip};
use tch::nn::{ModuleT, PaddingMode, Path, VarStore};
use tch::{Device, Kind, Tensor};

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/operator_norm_layer.py")
}

fn flat(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).expect("a float tensor")
}

/// The reference script's view of a registered layer's operator: its float64 weight (as the
/// convolution reads it) and geometry.
fn describe<L: AsOperator>(layer: &OperatorNormalized<L>) -> Value {
    let map = layer.reparametrization().operator();
    let weight = layer.weight_orig().reshape(map.weight_shape());
    let g = map.geometry();
    json!({
        "weight": flat(&weight),
        "shape": map.weight_shape(),
        "transposed": g.transposed,
        "stride": g.stride, "padding": g.padding, "dilation": g.dilation,
        "output_padding": g.output_padding, "groups": g.groups, "circular": g.circular,
        "input_size": map.input_shape()[2..].to_vec(),
    })
}

/// σ of the layer's last weight computation (an eval-mode weight now).
fn eval_sigma<L: AsOperator>(layer: &OperatorNormalized<L>) -> Result<(f64, f64)> {
    drop(tch::no_grad(|| layer.weight_t(false))?);
    let est = layer.sigma()?.expect("a weight was computed");
    Ok((est.sigma, est.bound))
}

/// One geometry, registered three ways on the same initial weight: float32 and float64 with
/// the warm start to 1e-10, and float64 from a one-iteration start followed by training
/// forwards of 25 steps each until the bound certifies convergence.
struct Case {
    label: String,
    reference: Value,
    /// (way, σ, bound)
    sigmas: Vec<(&'static str, f64, f64)>,
}

fn run_case<L, F>(label: &str, seed: i64, input_size: &[i64], build: F) -> Result<Case>
where
    L: AsOperator + std::fmt::Debug + Send,
    F: Fn(&Path) -> Result<L>,
{
    let warm = |tolerance: f64, max_iterations: u64| OperatorNormLayerOptions {
        registration: OperatorNormOptions { tolerance, max_iterations, seed: 5 },
        ..OperatorNormLayerOptions::new(input_size.to_vec())
    };
    let mut sigmas = Vec::new();
    let vs32 = VarStore::new(Device::Cpu);
    let layer = seeded(seed, || build(&(vs32.root() / "m")))?;
    let layer32 = operator_norm(&vs32, layer, warm(1e-10, 100_000))?;
    ensure!(layer32.weight_op_u().kind() == Kind::Float && layer32.weight_op_v().kind() == Kind::Float);
    let (s, b) = eval_sigma(&layer32)?;
    sigmas.push(("float32 warm start", s, b));
    let reference = describe(&layer32);

    let mut vs64 = VarStore::new(Device::Cpu);
    let layer = seeded(seed, || build(&(vs64.root() / "m")))?;
    vs64.double();
    let layer64 = operator_norm(&vs64, layer, warm(1e-10, 100_000))?;
    ensure!(layer64.reparametrization().registration().converged, "{label}: registration did not converge");
    let (s, b) = eval_sigma(&layer64)?;
    sigmas.push(("float64 warm start", s, b));

    let mut vs_train = VarStore::new(Device::Cpu);
    let layer = seeded(seed, || build(&(vs_train.root() / "m")))?;
    vs_train.double();
    let cold = OperatorNormLayerOptions { n_power_iterations: 25, ..warm(0.0, 1) };
    let layer_train = operator_norm(&vs_train, layer, cold)?;
    let x = Tensor::zeros(
        [&[2, layer_train.weight_op_v().size()[1]][..], input_size].concat(),
        (Kind::Double, Device::Cpu),
    );
    let x = if input_size.is_empty() { x.view([2, -1]) } else { x };
    // Training forwards until the bound certifies 1e-12 (at most 400 forwards).
    let mut forwards = 0;
    let est = loop {
        drop(layer_train.f_forward_t(&x, true)?);
        forwards += 1;
        let est = layer_train.sigma()?.expect("a forward ran");
        if est.bound <= 1e-12 * est.sigma || forwards == 400 {
            break est;
        }
    };
    eprintln!("{label}: {forwards} training forwards of 25 steps");
    sigmas.push(("float64 trained", est.sigma, est.bound));
    Ok(Case { label: label.to_string(), reference, sigmas })
}

fn cases() -> Result<Vec<Case>> {
    Ok(vec![
        run_case("conv1d", 11, &[9], |p| Ok(conv1d(&(p / "a"), 3, 4, [3], ConvOptions::default())?))?,
        run_case("conv1d s2 p2 d2 g2", 12, &[11], |p| {
            let o = ConvOptions { stride: [2], padding: [2], dilation: [2], groups: 2, ..Default::default() };
            Ok(conv1d(&(p / "b"), 4, 6, [3], o)?)
        })?,
        run_case("conv2d s(2,1) p(1,0)", 13, &[6, 5], |p| {
            let o = ConvOptions { stride: [2, 1], padding: [1, 0], ..Default::default() };
            Ok(conv2d(&(p / "c"), 2, 3, [3, 2], o)?)
        })?,
        run_case("conv2d s2 p1 on 7x7", 14, &[7, 7], |p| {
            let o = ConvOptions { stride: [2, 2], padding: [1, 1], ..Default::default() };
            Ok(conv2d(&(p / "c2"), 3, 4, [3, 3], o)?)
        })?,
        run_case("conv2d circular", 15, &[5, 4], |p| {
            let o = ConvOptions { padding: [1, 1], padding_mode: PaddingMode::Circular, ..Default::default() };
            Ok(conv2d(&(p / "d"), 2, 4, [3, 3], o)?)
        })?,
        run_case("conv3d", 16, &[3, 4, 3], |p| {
            let o = ConvOptions { stride: [1, 2, 1], padding: [1, 0, 1], ..Default::default() };
            Ok(conv3d(&(p / "e"), 2, 2, [2, 2, 2], o)?)
        })?,
        run_case("conv_transpose1d s2 p1", 17, &[7], |p| {
            let o = ConvTransposeOptions { stride: [2], padding: [1], ..Default::default() };
            Ok(conv_transpose1d(&(p / "f"), 4, 2, [4], o)?)
        })?,
        run_case("conv_transpose1d s3 op2 g2 d2", 18, &[5], |p| {
            let o = ConvTransposeOptions {
                stride: [3],
                padding: [1],
                output_padding: [2],
                groups: 2,
                dilation: [2],
                ..Default::default()
            };
            Ok(conv_transpose1d(&(p / "g"), 4, 6, [3], o)?)
        })?,
        run_case("conv_transpose2d", 19, &[3, 4], |p| {
            let o = ConvTransposeOptions { stride: [2, 1], output_padding: [1, 0], ..Default::default() };
            Ok(conv_transpose2d(&(p / "h"), 3, 2, [2, 3], o)?)
        })?,
        run_case("linear", 20, &[], |p| Ok(linear(&(p / "j"), 7, 5, LinearConfig::default())?))?,
    ])
}

#[derive(Deserialize)]
struct Sigmas {
    sigma: Vec<f64>,
}

#[test]
fn layer_sigma_matches_the_dense_svd() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let Some(python) = python_or_skip("check the operator-norm layer's sigma against the dense SVD")? else {
        return Ok(());
    };
    let cases = cases()?;
    let request = json!({"mode": "dense", "cases": cases.iter().map(|c| c.reference.clone()).collect::<Vec<_>>()});
    let reference: Sigmas = run_python_json(&python, &script(), &[], Some(&request))?;
    let mut worst: std::collections::BTreeMap<&str, f64> = Default::default();
    for (case, dense) in cases.iter().zip(&reference.sigma) {
        for &(way, sigma, bound) in &case.sigmas {
            let rel = (sigma - dense).abs() / dense;
            eprintln!("{} / {way}: sigma {sigma} dense {dense} rel {rel:.2e} bound {bound:.2e}", case.label);
            let w = worst.entry(way).or_default();
            *w = w.max(rel);
            // float32: σ is a float32 dot product of float32 vectors.
            let tol = if way.starts_with("float32") { 2e-6 } else { 1e-9 };
            ensure!(rel <= tol, "{} / {way}: sigma {sigma} vs dense {dense} (rel {rel:e})", case.label);
            ensure!((sigma - dense).abs() <= bound + tol * dense, "{} / {way}: bound {bound} too small", case.label);
        }
    }
    for (way, rel) in worst {
        eprintln!("largest relative error of the layer's sigma against the dense SVD ({way}): {rel:.3e}");
    }
    Ok(())
}

#[test]
fn warm_start_is_the_float64_operator_norm_from_the_same_seed() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let mut vs = VarStore::new(Device::Cpu);
    let conv =
        seeded(3, || conv2d(&(vs.root() / "c"), 3, 5, [3, 3], ConvOptions { padding: [1, 1], ..Default::default() }))?;
    vs.double();
    let options = OperatorNormOptions { tolerance: 1e-8, max_iterations: 5000, seed: 9 };
    let reference = float64_operator_norm(&conv.operator(&[6, 6])?, options)?;
    let conv = operator_norm(
        &vs,
        conv,
        OperatorNormLayerOptions { registration: options, ..OperatorNormLayerOptions::new([6, 6]) },
    )?;
    let registration = *conv.reparametrization().registration();
    ensure!(registration == reference, "{registration:?} vs {reference:?}");
    let (sigma, _) = eval_sigma(&conv)?;
    ensure!((sigma - reference.sigma).abs() <= 1e-14 * reference.sigma, "{sigma} vs {}", reference.sigma);
    Ok(())
}

#[derive(Deserialize)]
struct PytorchSn {
    sigma_normalized: Vec<f64>,
    sigma_reshaped: Vec<f64>,
}

#[test]
fn normalized_operator_norm_is_one_where_pytorchs_spectral_norm_is_above_one() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let Some(python) = python_or_skip("compare with PyTorch's spectral_norm")? else { return Ok(()) };
    let vs = VarStore::new(Device::Cpu);
    let input_size = [6i64, 6];
    let mut layers = Vec::new();
    for (i, (c_in, c_out)) in [(3, 8), (8, 8), (16, 4)].into_iter().enumerate() {
        let conv = seeded(30 + i as i64, || {
            conv2d(
                &(vs.root() / format!("c{i}")),
                c_in,
                c_out,
                [3, 3],
                ConvOptions { padding: [1, 1], ..Default::default() },
            )
        })?;
        let registration = OperatorNormOptions { tolerance: 1e-6, max_iterations: 3000, seed: i as u64 };
        layers.push(operator_norm(
            &vs,
            conv,
            OperatorNormLayerOptions { registration, ..OperatorNormLayerOptions::new(input_size) },
        )?);
    }
    let mut ours = Vec::new();
    let mut sn_cases = Vec::new();
    for layer in &layers {
        let (sigma, bound) = eval_sigma(layer)?;
        let normalized = tch::no_grad(|| layer.weight_t(false))?;
        let mut description = describe(layer);
        description["weight"] = json!(flat(&normalized));
        ours.push((description, bound / sigma));
        let mut sn = describe(layer);
        sn.as_object_mut()
            .expect("an object")
            .extend([("seed".to_string(), json!(0)), ("iterations".to_string(), json!(500))]);
        sn_cases.push(sn);
    }
    let request = json!({"mode": "dense", "cases": ours.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>()});
    let dense: Sigmas = run_python_json(&python, &script(), &[], Some(&request))?;
    let pytorch: PytorchSn =
        run_python_json(&python, &script(), &[], Some(&json!({"mode": "pytorch_sn", "cases": sn_cases})))?;
    for (i, ((_, rel_bound), ours)) in ours.iter().zip(&dense.sigma).enumerate() {
        let (theirs, reshaped) = (pytorch.sigma_normalized[i], pytorch.sigma_reshaped[i]);
        eprintln!(
            "conv {i}: operator norm after norm's operator_norm {ours:.9} (bound/σ {rel_bound:.1e}); \
             after PyTorch's spectral_norm {theirs:.4} (its reshaped σ {reshaped:.6})"
        );
        // σ ≤ σ_op, so ours ≥ 1 (up to float32 rounding); above 1 by σ's relative error.
        ensure!(*ours <= 1.0 + rel_bound + 2e-6 && *ours <= 1.0 + 1e-4 && *ours >= 1.0 - 2e-6, "conv {i}: {ours}");
        ensure!((reshaped - 1.0).abs() < 1e-6, "PyTorch's spectral norm converged: {reshaped}");
        ensure!(theirs > 1.1, "conv {i}: PyTorch's spectral_norm gives operator norm {theirs}");
    }
    Ok(())
}

/// A fixed cotangent (no generator).
fn cotangent(shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    (Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.37).sin().reshape(shape)
}

#[derive(Deserialize)]
struct Grad {
    grad: Vec<f64>,
    sigma: f64,
}

#[test]
fn gradient_matches_pytorch_autograd_of_the_same_formula() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let Some(python) = python_or_skip("check the gradient against PyTorch autograd")? else { return Ok(()) };
    let mut vs = VarStore::new(Device::Cpu);
    let opts = ConvOptions { stride: [2, 2], padding: [1, 1], dilation: [1, 2], groups: 2, ..Default::default() };
    let conv = seeded(41, || conv2d(&(vs.root() / "c"), 4, 6, [3, 3], opts))?;
    vs.double();
    let options = OperatorNormLayerOptions {
        registration: OperatorNormOptions { tolerance: 0.0, max_iterations: 3, seed: 1 },
        n_power_iterations: 2,
        ..OperatorNormLayerOptions::new([7, 8])
    };
    let conv = operator_norm(&vs, conv, options)?;
    let c = cotangent(&conv.weight_orig().size());
    let x = Tensor::ones([1, 4, 7, 8], (Kind::Double, Device::Cpu));
    // A training forward: two steps on the buffers, then σ with autograd.
    let weight = conv.weight_t(true)?;
    drop(conv.f_forward_t(&x, false)?); // eval: no step
    (&weight * &c).sum(Kind::Double).backward();
    let ours = conv.weight_orig().grad();
    let (u, v) = (conv.weight_op_u(), conv.weight_op_v());
    let request = json!({"mode": "grad", "case": {
        "weight": flat(conv.weight_orig()), "shape": conv.weight_orig().size(), "cotangent": flat(&c),
        "u": flat(u), "u_shape": u.size(), "v": flat(v), "v_shape": v.size(),
        "stride": [2, 2], "padding": [1, 1], "dilation": [1, 2], "groups": 2,
    }});
    let reference: Grad = run_python_json(&python, &script(), &[], Some(&request))?;
    let sigma = conv.sigma()?.expect("computed").sigma;
    ensure!((sigma - reference.sigma).abs() <= 1e-14 * sigma, "{sigma} vs {}", reference.sigma);
    let ours = flat(&ours);
    let scale = reference.grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let err = ours.iter().zip(&reference.grad).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("gradient: max |ours - PyTorch autograd| = {err:.2e} (max |grad| {scale:.2e})");
    ensure!(err <= 1e-12 * scale, "gradient differs from PyTorch's autograd by {err}");
    Ok(())
}

/// `sum(weight_t(false) * c)` as a function of `weight_orig`, in float64.
fn loss<L: AsOperator>(layer: &OperatorNormalized<L>, c: &Tensor) -> Result<f64> {
    Ok(tch::no_grad(|| layer.weight_t(false))?.f_mul(c)?.sum(Kind::Double).double_value(&[]))
}

fn finite_difference_check<L: AsOperator>(label: &str, layer: &OperatorNormalized<L>) -> Result<()> {
    let w = layer.weight_orig();
    let c = cotangent(&w.size());
    w.shallow_clone().zero_grad();
    layer.weight_t(false)?.f_mul(&c)?.sum(Kind::Double).backward();
    let grad = flat(&w.grad());
    let n = w.numel();
    let h = 1e-6;
    let mut worst = 0.0f64;
    for i in (0..n).step_by((n / 12).max(1)) {
        let at = |delta: f64| -> Result<f64> {
            let _ = tch::no_grad(|| w.view([-1]).get(i as i64).f_add_(&Tensor::from(delta)))?;
            loss(layer, &c)
        };
        let plus = at(h)?;
        let minus = at(-2.0 * h)?;
        at(h)?; // back to the original entry
        let fd = (plus - minus) / (2.0 * h);
        let err = (fd - grad[i]).abs() / grad[i].abs().max(1e-3);
        worst = worst.max(err);
        ensure!(err <= 1e-6, "{label}: entry {i}: autograd {} vs central difference {fd}", grad[i]);
    }
    eprintln!("{label}: worst relative gradient error against central differences {worst:.1e}");
    Ok(())
}

#[test]
fn gradient_matches_finite_differences() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let mut vs = VarStore::new(Device::Cpu);
    let (t, c) = seeded(43, || -> Result<_> {
        let t = conv_transpose1d(
            &(vs.root() / "t"),
            4,
            6,
            [3],
            ConvTransposeOptions { stride: [3], padding: [1], output_padding: [2], groups: 2, ..Default::default() },
        )?;
        let o = ConvOptions { padding: [1, 2], padding_mode: PaddingMode::Circular, ..Default::default() };
        let c = conv2d(&(vs.root() / "c"), 2, 3, [3, 5], o)?;
        Ok((t, c))
    })?;
    vs.double();
    let t = operator_norm(&vs, t, OperatorNormLayerOptions::new([5]))?;
    let c = operator_norm(&vs, c, OperatorNormLayerOptions::new([4, 6]))?;
    finite_difference_check("conv_transpose1d s3 op2 g2", &t)?;
    finite_difference_check("conv2d circular", &c)?;
    Ok(())
}

#[test]
fn training_steps_update_the_buffers_and_eval_does_not() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let vs = VarStore::new(Device::Cpu);
    let conv = seeded(50, || conv1d(&(vs.root() / "c"), 2, 3, [3], ConvOptions { stride: [2], ..Default::default() }))?;
    let cold = OperatorNormLayerOptions {
        registration: OperatorNormOptions { tolerance: 0.0, max_iterations: 1, seed: 2 },
        ..OperatorNormLayerOptions::new([10])
    };
    let conv = operator_norm(&vs, conv, cold)?;
    let x = Tensor::ones([1, 2, 10], (Kind::Float, Device::Cpu));
    let (u0, v0) = (conv.weight_op_u().copy(), conv.weight_op_v().copy());
    drop(conv.forward_t(&x, false));
    ensure!(conv.weight_op_u().equal(&u0) && conv.weight_op_v().equal(&v0), "eval changed the buffers");
    let first = conv.sigma()?.expect("computed");
    drop(conv.forward_t(&x, true));
    ensure!(!conv.weight_op_v().equal(&v0), "a training forward left v unchanged");
    for _ in 0..200 {
        drop(conv.forward_t(&x, true));
    }
    let last = conv.sigma()?.expect("computed");
    eprintln!(
        "one-iteration start: sigma {} bound {:.1e}; after 201 forwards {} bound {:.1e}",
        first.sigma, first.bound, last.sigma, last.bound
    );
    ensure!(last.sigma >= first.sigma && last.bound < 1e-4 * last.sigma && last.bound < first.bound);
    Ok(())
}

#[test]
fn the_seed_reproduces_registration_and_leaves_the_global_generator_alone() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let register = |seed: u64| -> Result<(Tensor, Tensor, Tensor)> {
        seeded(60, || -> Result<_> {
            let vs = VarStore::new(Device::Cpu);
            let conv = conv2d(&(vs.root() / "c"), 2, 3, [3, 3], ConvOptions::default())?;
            let conv = operator_norm(&vs, conv, OperatorNormLayerOptions::new([6, 6]).with_seed(seed))?;
            let next_draw = Tensor::randn([8], (Kind::Float, Device::Cpu));
            Ok((conv.weight_op_u().copy(), conv.weight_op_v().copy(), next_draw))
        })
    };
    let without = seeded(60, || -> Result<Tensor> {
        let vs = VarStore::new(Device::Cpu);
        drop(conv2d(&(vs.root() / "c"), 2, 3, [3, 3], ConvOptions::default())?);
        Ok(Tensor::randn([8], (Kind::Float, Device::Cpu)))
    })?;
    let (u1, v1, draw1) = register(4)?;
    let (u2, v2, draw2) = register(4)?;
    let (_, v3, draw3) = register(5)?;
    ensure!(u1.equal(&u2) && v1.equal(&v2), "same seed, different buffers");
    ensure!(!v1.equal(&v3), "different seeds, same v");
    ensure!(
        draw1.equal(&without) && draw2.equal(&without) && draw3.equal(&without),
        "registration drew from the global generator"
    );
    Ok(())
}

fn invalid_name(e: &Error) -> Option<&'static str> {
    match e {
        Error::InvalidArgument { name, .. } => Some(name),
        _ => None,
    }
}

#[test]
fn errors_are_typed_and_name_the_argument() -> Result<()> {
    // Its convolutions' inits draw from the global generator: under the lock, so they never
    // land between another test's `manual_seed` and its draws.
    let _generator = norm_tch::backend::lock_global_generator();
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let vs = VarStore::new(Device::Cpu);
    let attempts: Vec<(&str, OperatorNormLayerOptions)> = vec![
        ("input_size", OperatorNormLayerOptions::new([6])),
        ("input_size", OperatorNormLayerOptions::new([6, 0])),
        ("input_size", OperatorNormLayerOptions::new([2, 2])), // an empty output for a 3x3 kernel
        (
            "n_power_iterations",
            OperatorNormLayerOptions { n_power_iterations: 0, ..OperatorNormLayerOptions::new([6, 6]) },
        ),
        ("eps", OperatorNormLayerOptions { eps: 0.0, ..OperatorNormLayerOptions::new([6, 6]) }),
        (
            "tolerance",
            OperatorNormLayerOptions {
                registration: OperatorNormOptions { tolerance: f64::NAN, ..Default::default() },
                ..OperatorNormLayerOptions::new([6, 6])
            },
        ),
        (
            "max_iterations",
            OperatorNormLayerOptions {
                registration: OperatorNormOptions { max_iterations: 0, ..Default::default() },
                ..OperatorNormLayerOptions::new([6, 6])
            },
        ),
    ];
    for (i, (name, options)) in attempts.into_iter().enumerate() {
        let conv = conv2d(&(vs.root() / format!("c{i}")), 2, 3, [3, 3], ConvOptions::default())?;
        let e = operator_norm(&vs, conv, options.clone()).expect_err("invalid options");
        eprintln!("{name}: {e}");
        ensure!(invalid_name(&e) == Some(name), "{options:?}: {e:?}");
        ensure!(e.to_string().contains(name), "{e}");
    }
    let reflect_options = ConvOptions { padding_mode: PaddingMode::Reflect, padding: [1, 1], ..Default::default() };
    let reflect = conv2d(&(vs.root() / "r"), 2, 3, [3, 3], reflect_options)?;
    let e = operator_norm(&vs, reflect, OperatorNormLayerOptions::new([6, 6])).expect_err("reflect padding");
    ensure!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    // Nothing was registered or renamed: every layer still has its plain weight and bias.
    let keys: Vec<String> = vs.variables().into_keys().collect();
    ensure!(keys.len() == 16 && keys.iter().all(|k| k.ends_with(".weight") || k.ends_with(".bias")), "{keys:?}");
    Ok(())
}

#[test]
fn fold_and_remove_give_the_plain_layer_with_weight_orig_over_sigma() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let vs = VarStore::new(Device::Cpu);
    let o = ConvTransposeOptions { stride: [2, 2], padding: [1, 1], output_padding: [1, 0], ..Default::default() };
    let t = seeded(70, || conv_transpose2d(&(vs.root() / "t"), 3, 2, [3, 3], o))?;
    let mut t = operator_norm(&vs, t, OperatorNormLayerOptions::new([5, 4]))?;
    let x = seeded(71, || Tensor::randn([2, 3, 5, 4], (Kind::Float, Device::Cpu)));
    let weight = tch::no_grad(|| t.weight_t(false))?;
    let sigma = t.sigma()?.expect("computed").sigma;
    let expected = tch::no_grad(|| t.weight_orig() / sigma);
    ensure!(weight.allclose(&expected, 1e-6, 1e-7, false));
    let before = tch::no_grad(|| t.forward_t(&x, false));
    t.fold()?;
    let vars = vs.variables();
    ensure!(
        vars.contains_key("t.weight") && !vars.contains_key("t.weight_orig") && !vars.contains_key("t.weight_op_u")
    );
    ensure!(vars["t.weight"].equal(&weight), "folded weight is not weight_orig / σ");
    ensure!(tch::no_grad(|| t.forward_t(&x, false)).equal(&before));
    // Unfold: the folded weight becomes weight_orig (as spectral norm's), u and v return as they were.
    let (u, v) = (t.weight_op_u().copy(), t.weight_op_v().copy());
    t.unfold()?;
    let vars = vs.variables();
    ensure!(
        vars.contains_key("t.weight_orig") && vars.contains_key("t.weight_op_u") && vars.contains_key("t.weight_op_v")
    );
    ensure!(t.weight_orig().equal(&weight) && t.weight_op_u().equal(&u) && t.weight_op_v().equal(&v));
    let weight = tch::no_grad(|| t.weight_t(false))?;
    let sigma = t.sigma()?.expect("computed").sigma;
    ensure!((sigma - 1.0).abs() < 1e-5, "the folded weight's operator norm is 1: {sigma}");
    let plain = t.remove(true)?; // no iteration even in training mode
    let vars = vs.variables();
    ensure!(vars.keys().filter(|k| k.starts_with("t.")).count() == 2, "{:?}", vars.keys());
    ensure!(plain.weight.equal(&weight), "removed weight is not weight_orig / σ");
    Ok(())
}

#[test]
fn checkpoints_round_trip_and_folding_one_is_refused() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let dir = fresh_dir("operator-norm-layer")?;
    let build = |vs: &VarStore, init: i64, seed: u64| -> Result<OperatorNormalized<norm_tch::layers::Conv2d>> {
        let conv = seeded(init, || {
            conv2d(&(vs.root() / "enc" / "0"), 3, 4, [3, 3], ConvOptions { padding: [1, 1], ..Default::default() })
        })?;
        Ok(operator_norm(vs, conv, OperatorNormLayerOptions::new([6, 6]).with_seed(seed))?)
    };
    let vs = VarStore::new(Device::Cpu);
    let layer = build(&vs, 80, 1)?;
    let x = seeded(81, || Tensor::randn([1, 3, 6, 6], (Kind::Float, Device::Cpu)));
    for _ in 0..3 {
        drop(layer.forward_t(&x, true));
    }
    let sd = state_dict(&vs)?;
    let keys: Vec<&str> = sd.keys().collect();
    ensure!(keys == ["enc.0.bias", "enc.0.weight_op_u", "enc.0.weight_op_v", "enc.0.weight_orig"], "{keys:?}");
    let layers = detect(sd.keys(), |_| None);
    ensure!(layers.len() == 1 && layers[0].scheme == Scheme::OperatorNorm, "{layers:?}");
    let expected = tch::no_grad(|| layer.forward_t(&x, false));
    for name in ["model.safetensors", "model.pt"] {
        let path = dir.join(name);
        save_state_dict(&vs, &path)?;
        let mut other = VarStore::new(Device::Cpu);
        let loaded = build(&other, 82, 2)?;
        let report = load_checkpoint(&mut other, &path, &LoadOptions::default())?;
        ensure!(report.conversions.is_empty(), "{report:?}");
        for (key, value) in vs.variables() {
            ensure!(other.variables()[&key].equal(&value), "{name}: {key} differs after the round trip");
        }
        ensure!(tch::no_grad(|| loaded.forward_t(&x, false)).equal(&expected), "{name}: eval output differs");
    }
    let (same, conversions) = convert(&sd, Target::Hooks, &ConvertOptions::default())?;
    ensure!(conversions.is_empty() && same.keys().count() == 4);
    let e = convert(&sd, Target::Folded, &ConvertOptions::default()).expect_err("no geometry in a state dict");
    ensure!(
        matches!(
            e.checkpoint_kind(),
            Some(CheckpointErrorKind::Conversion { refusal: ConversionRefusal::NeedsGeometry, .. })
        ) && e.to_string().contains("does not record"),
        "{e:?}"
    );
    Ok(())
}

#[test]
fn guards_apply_to_the_operator_sigma() -> Result<()> {
    one_thread(); // power iteration is many small ops: one intra-op thread is faster
    let vs = VarStore::new(Device::Cpu);
    let conv = seeded(90, || conv1d(&(vs.root() / "c"), 2, 2, [3], ConvOptions::default()))?;
    let conv = operator_norm(&vs, conv, OperatorNormLayerOptions::new([8]))?
        .with_guards(SpectralNormGuards { sigma_floor: None, checked: true })?;
    tch::no_grad(|| drop(conv.weight_orig().shallow_clone().zero_()));
    let e = conv.f_forward_t(&Tensor::ones([1, 2, 8], (Kind::Float, Device::Cpu)), false).expect_err("σ = 0");
    ensure!(matches!(&e, Error::NonFinite { quantity: "σ", layer, .. } if layer.contains("`c`")), "{e:?}");
    Ok(())
}
