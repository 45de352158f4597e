//! `norm_tch::operator_norm` against independent references (`tests/opnorm_reference.py`, the
//! venv's PyTorch and NumPy): the largest singular value of the dense operator matrix (built
//! by applying PyTorch's convolution to every basis vector, `numpy.linalg.svd`) for Conv1d/2d/3d,
//! ConvTranspose1d/2d/3d and Linear with strides, paddings, dilations, groups and circular
//! padding; Sedghi, Gupta & Long's FFT method for circular 2-D convolutions at stride 1; and,
//! in Rust alone, the adjoint identity `⟨A x, y⟩ = ⟨x, Aᵀ y⟩` in float64 over many random
//! geometries. The error bound is checked as a certificate: `|σ − σ_dense| ≤ bound`.
//!
//! Without `.venv/bin/python` the reference tests print `SKIPPED` and pass, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

mod support;

use anyhow::{ensure, Result};
use norm_core::Error;
use norm_tch::layers::{
    conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, linear, ConvOptions,
    ConvTransposeOptions, LinearConfig,
};
use norm_tch::operator_norm::{operator_norm, reshaped_sigma, AsOperator, ConvOperator, OperatorNormOptions};
use norm_test_support::{run_python_json, seeded};
use serde::Deserialize;
use serde_json::{json, Value};
use support::python_or_skip;
use tch::nn::{PaddingMode, VarStore};
use tch::{Device, Kind, Tensor};

fn script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/opnorm_reference.py")
}

/// The reference script's view of an operator: its float64 weight and geometry.
fn describe(op: &ConvOperator, weight: &Tensor) -> Value {
    let g = op.geometry();
    let w = weight.to_kind(Kind::Double).flatten(0, -1);
    json!({
        "weight": Vec::<f64>::try_from(&w).unwrap(),
        "shape": weight.size(),
        "transposed": g.transposed,
        "stride": g.stride, "padding": g.padding, "dilation": g.dilation,
        "output_padding": g.output_padding, "groups": g.groups, "circular": g.circular,
        "input_size": op.input_shape()[2..].to_vec(),
    })
}

/// The operators of the dense test: (label, operator, the weight the operator reads).
fn dense_cases() -> Result<Vec<(String, ConvOperator, Tensor)>> {
    let vs = VarStore::new(Device::Cpu);
    let r = vs.root();
    let mut cases: Vec<(String, ConvOperator, Tensor)> = Vec::new();
    let mut push = |label: &str, op: ConvOperator, w: &Tensor| cases.push((label.to_string(), op, w.shallow_clone()));
    seeded(11, || -> Result<()> {
        let c = conv1d(&(&r / "a"), 3, 4, [3], ConvOptions::default())?;
        push("conv1d", c.operator(&[9])?, &c.weight);
        let c = conv1d(
            &(&r / "b"),
            4,
            6,
            [3],
            ConvOptions { stride: [2], padding: [2], dilation: [2], groups: 2, ..Default::default() },
        )?;
        push("conv1d s2 p2 d2 g2", c.operator(&[11])?, &c.weight);
        let c =
            conv2d(&(&r / "c"), 2, 3, [3, 2], ConvOptions { stride: [2, 1], padding: [1, 0], ..Default::default() })?;
        push("conv2d s(2,1) p(1,0)", c.operator(&[6, 5])?, &c.weight);
        let c = conv2d(
            &(&r / "d"),
            2,
            4,
            [3, 3],
            ConvOptions { padding: [1, 1], padding_mode: PaddingMode::Circular, ..Default::default() },
        )?;
        push("conv2d circular", c.operator(&[5, 4])?, &c.weight);
        let c = conv3d(
            &(&r / "e"),
            2,
            2,
            [2, 2, 2],
            ConvOptions { stride: [1, 2, 1], padding: [1, 0, 1], ..Default::default() },
        )?;
        push("conv3d", c.operator(&[3, 4, 3])?, &c.weight);
        let t = conv_transpose1d(
            &(&r / "f"),
            4,
            2,
            [4],
            ConvTransposeOptions { stride: [2], padding: [1], ..Default::default() },
        )?;
        push("conv_transpose1d s2 p1", t.operator(&[7])?, &t.weight);
        let t = conv_transpose1d(
            &(&r / "g"),
            4,
            6,
            [3],
            ConvTransposeOptions {
                stride: [3],
                padding: [1],
                output_padding: [2],
                groups: 2,
                dilation: [2],
                ..Default::default()
            },
        )?;
        push("conv_transpose1d s3 op2 g2 d2", t.operator(&[5])?, &t.weight);
        let t = conv_transpose2d(
            &(&r / "h"),
            3,
            2,
            [2, 3],
            ConvTransposeOptions { stride: [2, 1], output_padding: [1, 0], ..Default::default() },
        )?;
        push("conv_transpose2d", t.operator(&[3, 4])?, &t.weight);
        let t = conv_transpose3d(
            &(&r / "i"),
            2,
            2,
            [2, 1, 2],
            ConvTransposeOptions { stride: [2, 1, 1], ..Default::default() },
        )?;
        push("conv_transpose3d", t.operator(&[2, 3, 2])?, &t.weight);
        let l = linear(&(&r / "j"), 7, 5, LinearConfig::default())?;
        push("linear", l.operator(&[7])?, &l.ws.unsqueeze(-1));
        Ok(())
    })?;
    Ok(cases)
}

#[derive(Deserialize)]
struct Sigmas {
    sigma: Vec<f64>,
}

#[test]
fn sigma_matches_the_dense_svd_and_the_bound_is_a_certificate() -> Result<()> {
    let Some(python) = python_or_skip("check the operator norm against the dense SVD")? else { return Ok(()) };
    let cases = dense_cases()?;
    let request = json!({"mode": "dense", "cases": cases.iter().map(|(_, op, w)| describe(op, w)).collect::<Vec<_>>()});
    let reference: Sigmas = run_python_json(&python, &script(), &[], Some(&request))?;
    let options = OperatorNormOptions { tolerance: 1e-9, max_iterations: 100_000, seed: 3 };
    let mut worst = 0.0f64;
    for ((label, op, _), dense) in cases.iter().zip(&reference.sigma) {
        let norm = operator_norm(op, options)?;
        let rel = (norm.sigma - dense).abs() / dense;
        worst = worst.max(rel);
        eprintln!(
            "{label}: sigma {} dense {dense} rel {rel:.2e} iterations {} bound {:.2e}",
            norm.sigma, norm.iterations, norm.bound
        );
        ensure!(norm.converged, "{label}: not converged: {norm:?}");
        ensure!(norm.sigma <= dense * (1.0 + 1e-12), "{label}: sigma {} above the dense {dense}", norm.sigma);
        ensure!(
            (norm.sigma - dense).abs() <= norm.bound + 1e-12 * dense,
            "{label}: |{} - {dense}| > bound {}",
            norm.sigma,
            norm.bound
        );
        ensure!(rel <= 1e-8, "{label}: relative error {rel:e}");
    }
    eprintln!("largest relative error of sigma_operator against the dense SVD: {worst:.3e}");
    Ok(())
}

#[test]
fn circular_stride_one_matches_the_fft_method() -> Result<()> {
    let Some(python) = python_or_skip("check the operator norm against the FFT method")? else { return Ok(()) };
    let vs = VarStore::new(Device::Cpu);
    let mut ops = Vec::new();
    let mut request_cases = Vec::new();
    seeded(5, || -> Result<()> {
        for (i, (c_in, c_out, k, n, p)) in [
            (2, 3, [3, 3], [8, 8], [1, 1]),
            (3, 3, [3, 1], [6, 9], [1, 0]),
            (4, 2, [5, 5], [7, 10], [2, 2]),
            (1, 2, [5, 3], [6, 4], [2, 1]),
        ]
        .into_iter()
        .enumerate()
        {
            let opts = ConvOptions { padding: p, padding_mode: PaddingMode::Circular, ..Default::default() };
            let c = conv2d(&(vs.root() / format!("c{i}")), c_in, c_out, k, opts)?;
            let w = c.weight.to_kind(Kind::Double);
            request_cases.push(json!({"weight": Vec::<f64>::try_from(&w.flatten(0, -1))?, "shape": w.size(), "n": n}));
            ops.push(c.operator(&n)?);
        }
        Ok(())
    })?;
    let reference: Sigmas =
        run_python_json(&python, &script(), &[], Some(&json!({"mode": "fft", "cases": request_cases})))?;
    for (op, fft) in ops.iter().zip(&reference.sigma) {
        let norm = operator_norm(op, OperatorNormOptions { tolerance: 1e-10, max_iterations: 100_000, seed: 1 })?;
        let rel = (norm.sigma - fft).abs() / fft;
        eprintln!("circular {:?}: sigma {} fft {fft} rel {rel:.2e}", op.input_shape(), norm.sigma);
        ensure!(rel <= 1e-8, "{:?}: sigma {} vs FFT {fft}", op.input_shape(), norm.sigma);
    }
    Ok(())
}

/// splitmix64, for random geometries without the global generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    (a * b).sum(Kind::Double).double_value(&[])
}

#[test]
fn adjoint_identity_holds_in_float64_for_random_geometries() -> Result<()> {
    let mut rng = Rng(42);
    let mut checked = 0;
    for trial in 0..300 {
        let n = rng.int(1, 3) as usize;
        let transposed = rng.int(0, 2) == 0;
        let circular = !transposed && rng.int(0, 3) == 0;
        let groups = rng.int(1, 3);
        let (c0, c1) = (groups * rng.int(1, 2), rng.int(1, 3));
        let kernel: Vec<i64> = (0..n).map(|_| rng.int(1, 3)).collect();
        let stride: Vec<i64> = (0..n).map(|_| rng.int(1, 3)).collect();
        let dilation: Vec<i64> = (0..n).map(|_| rng.int(1, 2)).collect();
        let padding: Vec<i64> = (0..n).map(|_| rng.int(0, 2)).collect();
        let output_padding: Vec<i64> =
            if transposed { (0..n).map(|i| rng.int(0, stride[i].max(dilation[i]) - 1)).collect() } else { vec![0; n] };
        let input_size: Vec<i64> = (0..n).map(|_| rng.int(2, if n == 3 { 4 } else { 7 })).collect();
        let mut shape = vec![c0, c1];
        shape.extend(&kernel);
        let weight = Tensor::from_slice(
            &(0..shape.iter().product::<i64>()).map(|_| rng.int(-1000, 1000) as f64 / 1000.0).collect::<Vec<_>>(),
        )
        .reshape(&shape);
        let geometry = norm_tch::operator_norm::ConvGeometry {
            transposed,
            stride,
            padding,
            dilation,
            output_padding,
            groups,
            circular,
        };
        let op = match ConvOperator::new(&weight, geometry.clone(), &input_size) {
            Ok(op) => op,
            Err(Error::InvalidArgument { name: "input_size" | "padding", .. }) => continue, // empty output / circular pad > size
            Err(e) => return Err(anyhow::anyhow!("trial {trial} {geometry:?} {input_size:?}: {e}")),
        };
        let x = Tensor::from_slice(
            &(0..op.input_shape().iter().product::<i64>())
                .map(|_| rng.int(-999, 999) as f64 / 997.0)
                .collect::<Vec<_>>(),
        )
        .reshape(op.input_shape());
        let y = Tensor::from_slice(
            &(0..op.output_shape().iter().product::<i64>())
                .map(|_| rng.int(-999, 999) as f64 / 991.0)
                .collect::<Vec<_>>(),
        )
        .reshape(op.output_shape());
        let ax = op.apply(&x)?;
        ensure!(ax.size() == op.output_shape(), "trial {trial}: A x of shape {:?}", ax.size());
        let aty = op.adjoint(&y)?;
        ensure!(aty.size() == op.input_shape(), "trial {trial}: Aᵀ y of shape {:?}", aty.size());
        let (lhs, rhs) = (dot(&ax, &y), dot(&x, &aty));
        let scale = ax.abs().sum(Kind::Double).double_value(&[]) * y.abs().max().double_value(&[]) + 1e-300;
        ensure!(
            (lhs - rhs).abs() <= 1e-13 * scale,
            "trial {trial} {geometry:?} {input_size:?}: <Ax,y> {lhs} vs <x,Aᵀy> {rhs}"
        );
        checked += 1;
    }
    ensure!(checked >= 200, "only {checked} geometries were valid");
    Ok(())
}

#[test]
fn reshaped_sigma_is_the_matrix_norm_and_linear_has_one_sigma() -> Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let l = seeded(2, || linear(&vs.root(), 6, 4, LinearConfig::default()))?;
    let op = operator_norm(&l.operator(&[])?, OperatorNormOptions { tolerance: 1e-12, ..Default::default() })?;
    let reshaped = reshaped_sigma(&l.ws, 0)?;
    ensure!((op.sigma - reshaped).abs() <= 1e-10 * reshaped, "linear: {} vs {reshaped}", op.sigma);
    // dim 1 of a [2, 3] matrix is its transpose: the same σ.
    let w = Tensor::from_slice(&[3.0f64, 0.0, 0.0, 0.0, 4.0, 0.0]).reshape([2, 3]);
    ensure!((reshaped_sigma(&w, 0)? - 4.0).abs() < 1e-12 && (reshaped_sigma(&w, 1)? - 4.0).abs() < 1e-12);
    ensure!(matches!(reshaped_sigma(&w, 2), Err(Error::DimOutOfRange { dim: 2, rank: 2, .. })));
    Ok(())
}

#[test]
fn bad_arguments_are_typed_errors() -> Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let c = seeded(1, || conv2d(&vs.root(), 2, 3, [3, 3], ConvOptions::default()))?;
    let invalid = |r: norm_core::Result<ConvOperator>, name: &str| match r {
        Err(Error::InvalidArgument { name: n, .. }) if n == name => Ok(()),
        other => Err(anyhow::anyhow!("expected InvalidArgument `{name}`, got {other:?}")),
    };
    invalid(c.operator(&[5]), "input_size")?;
    invalid(c.operator(&[2, 5]), "input_size")?; // empty output
    invalid(c.operator(&[0, 5]), "input_size")?;
    let op = c.operator(&[5, 5])?;
    for (tolerance, max_iterations, name) in
        [(-1.0, 10, "tolerance"), (f64::NAN, 10, "tolerance"), (1e-6, 0, "max_iterations")]
    {
        match operator_norm(&op, OperatorNormOptions { tolerance, max_iterations, seed: 0 }) {
            Err(Error::InvalidArgument { name: n, .. }) if n == name => {}
            other => anyhow::bail!("{name}: {other:?}"),
        }
    }
    let nan = c.weight.to_kind(Kind::Double) * f64::NAN;
    invalid(c.operator_with_weight(&nan, &[5, 5]), "weight")?;
    let r = seeded(1, || {
        conv2d(
            &(vs.root() / "r"),
            2,
            3,
            [3, 3],
            ConvOptions { padding_mode: PaddingMode::Reflect, ..Default::default() },
        )
    })?;
    ensure!(matches!(r.operator(&[5, 5]), Err(Error::Unsupported { .. })));
    // A zero weight has operator norm 0, bound 0.
    let zero = ConvOperator::new(&Tensor::zeros([2, 2, 3], (Kind::Double, Device::Cpu)), op_geometry_1d(), &[6])?;
    let norm = operator_norm(&zero, OperatorNormOptions::default())?;
    ensure!(norm.sigma == 0.0 && norm.bound == 0.0 && norm.converged);
    // max_iterations caps the run and reports non-convergence.
    let capped = operator_norm(&op, OperatorNormOptions { tolerance: 0.0, max_iterations: 3, seed: 0 })?;
    ensure!(capped.iterations == 3 && !capped.converged && capped.bound > 0.0, "{capped:?}");
    Ok(())
}

fn op_geometry_1d() -> norm_tch::operator_norm::ConvGeometry {
    norm_tch::operator_norm::ConvGeometry {
        transposed: false,
        stride: vec![1],
        padding: vec![0],
        dilation: vec![1],
        output_padding: vec![0],
        groups: 1,
        circular: false,
    }
}
