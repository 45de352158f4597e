//! The opt-in guards (eps, σ floor, checked mode) and the readable σ (issue 11, items 1–2):
//!
//! - checked mode and σ readout change no bit: twin layers (same seed), one checked and read
//!   after every step, give the same outputs, weights and u, v bit for bit over training and
//!   eval forwards, for all four reparametrizations;
//! - checked mode turns a zero `‖v‖`, a zero σ and a NaN weight into [`Error::NonFinite`]
//!   naming the layer's module path, the quantity and the value (where, unchecked, PyTorch's
//!   computation gives NaN);
//! - `g · v / max(‖v‖, eps)` and `weight_orig / max(σ, floor)` against NumPy in float64
//!   (`tests/guards_and_sigma.py`), with no NaN for a zero `v` or a zero weight; a floor
//!   below σ gives the unguarded bits;
//! - σ against `torch.linalg.svdvals` in float64: some singular value (or 0) lies within the
//!   bound after one iteration from random vectors, and after converging
//!   `|σ − σ_max| ≤ bound`, with a small bound.
//!
//! Without `.venv/bin/python` the NumPy/SVD tests print `SKIPPED` and pass, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

mod support;

use anyhow::{ensure, Context, Result};
use norm_core::spectral_norm::{hooks, parametrizations as core_param, SigmaEstimate, SpectralNormGuards};
use norm_core::weight_norm::WeightNormGuards;
use norm_core::Error;
use norm_tch::layers::{
    conv2d, linear, parametrizations, spectral_norm, weight_norm, ConvOptions, LinearConfig, Normalized,
    ParametrizedSpectralNorm, Reparametrization, SpectralNorm, SpectralNormOptions,
};
use norm_test_support::{run_python_json, seeded, Bits};
use serde::Deserialize;
use serde_json::json;
use support::python_or_skip;
use tch::nn::{Linear, VarStore};
use tch::{Device, Kind, Tensor};

fn input(seed: i64, shape: &[i64]) -> Tensor {
    seeded(seed, || Tensor::randn(shape, (Kind::Float, Device::Cpu)))
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1])).expect("float values")
}

/// A Linear(6 → 4) at `enc.fc`, drawn after `manual_seed(seed)`, with `register` applied
/// under the same seed.
fn build<R: Reparametrization>(
    seed: i64,
    register: impl FnOnce(&VarStore, Linear) -> norm_core::Result<Normalized<Linear, R>>,
) -> Result<(VarStore, Normalized<Linear, R>)> {
    let vs = VarStore::new(Device::Cpu);
    let layer = seeded(seed, || -> Result<_> {
        let fc = linear(&(vs.root() / "enc" / "fc"), 6, 4, LinearConfig::default())?;
        Ok(register(&vs, fc)?)
    })?;
    Ok((vs, layer))
}

/// Runs 3 training forwards (with a backward and a manual SGD step on the plain weight)
/// and one eval forward; returns every output's and every entry's bits.
fn trace<R: Reparametrization>(
    layer: &Normalized<Linear, R>,
    read: &dyn Fn(&Normalized<Linear, R>),
) -> Result<Vec<Bits>> {
    let mut bits = vec![];
    for step in 0..4 {
        let train = step < 3;
        let ys = layer.f_forward_t(&input(100 + step, &[3, 6]), train)?;
        read(layer);
        bits.push(Bits::of(&ys)?);
        if train {
            ys.sum(Kind::Float).backward();
            let plain = layer.weight_t(false)?; // eval weight, a second read
            bits.push(Bits::of(&plain)?);
        }
        for suffix in R::SCHEME.suffixes() {
            if let Some(t) = layer.entry(*suffix) {
                bits.push(Bits::of(t)?);
                if let Some(g) = t.grad().defined().then(|| t.grad()) {
                    bits.push(Bits::of(&g)?);
                    let mut t = t.shallow_clone();
                    tch::no_grad(|| {
                        let _ = t.f_sub_(&(g * 0.1)).map(drop);
                        drop(t.grad().zero_());
                    });
                }
            }
        }
    }
    Ok(bits)
}

fn twins<R: Reparametrization>(
    register: impl Fn(&VarStore, Linear) -> norm_core::Result<Normalized<Linear, R>>,
    guards: R::Guards,
    read: &dyn Fn(&Normalized<Linear, R>),
) -> Result<()> {
    let (_vs, plain) = build(7, &register)?;
    let (_vs2, mut checked) = build(7, &register)?;
    checked.set_guards(guards)?;
    let a = trace(&plain, &|_| {})?;
    let b = trace(&checked, read)?;
    ensure!(a == b, "{}: checked mode or σ readout changed bits", std::any::type_name::<R>());
    Ok(())
}

#[test]
fn checked_mode_and_sigma_readout_keep_the_bits() -> Result<()> {
    let checked_wn = WeightNormGuards { eps: None, checked: true };
    let checked_sn = SpectralNormGuards { sigma_floor: None, checked: true };
    let options = SpectralNormOptions { n_power_iterations: 2, ..Default::default() };
    twins(|vs, fc| weight_norm(vs, fc, Some(0)), checked_wn, &|_| {})?;
    twins(|vs, fc| parametrizations::weight_norm(vs, fc, None), checked_wn, &|_| {})?;
    twins(|vs, fc| spectral_norm(vs, fc, options), checked_sn, &|l: &SpectralNorm<Linear>| {
        l.sigma().expect("sigma").expect("after a forward");
    })?;
    twins(|vs, fc| parametrizations::spectral_norm(vs, fc, options), checked_sn, &|l: &ParametrizedSpectralNorm<
        Linear,
    >| {
        l.sigma().expect("sigma").expect("after a forward");
    })?;
    Ok(())
}

fn expect_non_finite(result: norm_core::Result<Tensor>, quantity: &str, nan: bool) -> Result<()> {
    let err = result.err().context("expected an error")?;
    let message = err.to_string();
    match err {
        Error::NonFinite { layer, quantity: q, value, .. } => {
            ensure!(layer.contains("enc.fc"), "the layer is named: {message}");
            ensure!(q == quantity, "quantity {q}, expected {quantity}: {message}");
            ensure!(if nan { value.is_nan() } else { value == 0.0 }, "value {value}: {message}");
            ensure!(message.contains(quantity) && message.contains("enc.fc"), "{message}");
        }
        other => anyhow::bail!("expected NonFinite, got {other:?}"),
    }
    Ok(())
}

fn has_nan(t: &Tensor) -> bool {
    values(t).iter().any(|x| x.is_nan())
}

#[test]
fn checked_mode_names_the_layer_and_the_value() -> Result<()> {
    let xs = input(1, &[2, 6]);
    // weight norm: a zero row of v (‖v‖ = 0), then a NaN in v.
    fn wn<R: Reparametrization<Guards = WeightNormGuards>>(
        (_vs, mut l): (VarStore, Normalized<Linear, R>),
        v: norm_tch::scheme::Suffix,
        xs: &Tensor,
    ) -> Result<()> {
        let v = l.entry(v).context("v")?.shallow_clone();
        tch::no_grad(|| drop(v.get(1).zero_()));
        ensure!(has_nan(&l.f_forward_t(xs, false)?), "unchecked: PyTorch's NaN");
        l.set_guards(WeightNormGuards { eps: None, checked: true })?;
        expect_non_finite(l.f_forward_t(xs, false), "‖v‖", false)?;
        tch::no_grad(|| drop(v.get(1).fill_(f64::NAN)));
        expect_non_finite(l.f_forward_t(xs, true), "weight_v", true)?;
        Ok(())
    }
    wn(build(3, |vs, fc| weight_norm(vs, fc, Some(0)))?, l_plain(false, true), &xs)?;
    wn(build(3, |vs, fc| parametrizations::weight_norm(vs, fc, Some(0)))?, l_plain(true, true), &xs)?;
    // spectral norm: an all-zero weight (σ = 0), then a NaN weight.
    fn sn<R: Reparametrization<Guards = SpectralNormGuards>>(
        (_vs, mut l): (VarStore, Normalized<Linear, R>),
        w: norm_tch::scheme::Suffix,
        xs: &Tensor,
    ) -> Result<()> {
        let mut w = l.entry(w).context("weight")?.shallow_clone();
        tch::no_grad(|| drop(w.zero_()));
        ensure!(has_nan(&l.weight_t(true)?), "unchecked: PyTorch's NaN");
        l.set_guards(SpectralNormGuards { sigma_floor: None, checked: true })?;
        expect_non_finite(l.weight_t(true), "σ", false)?;
        expect_non_finite(l.f_forward_t(xs, false), "σ", false)?;
        tch::no_grad(|| drop(w.get(0).fill_(f64::NAN)));
        expect_non_finite(l.weight_t(true), "weight", true)?;
        Ok(())
    }
    sn(build(3, |vs, fc| spectral_norm(vs, fc, SpectralNormOptions::default()))?, l_plain(false, false), &xs)?;
    let param = build(3, |vs, fc| parametrizations::spectral_norm(vs, fc, SpectralNormOptions::default()))?;
    sn(param, l_plain(true, false), &xs)?;
    // a bad eps or floor is refused and leaves the guards as they were
    let (_vs, mut l) = build(3, |vs, fc| weight_norm(vs, fc, Some(0)))?;
    ensure!(matches!(
        l.set_guards(WeightNormGuards { eps: Some(-1.0), checked: false }),
        Err(Error::InvalidArgument { name: "eps", .. })
    ));
    ensure!(*l.guards() == WeightNormGuards::default());
    let (_vs, mut l) = build(3, |vs, fc| spectral_norm(vs, fc, SpectralNormOptions::default()))?;
    ensure!(matches!(
        l.set_guards(SpectralNormGuards { sigma_floor: Some(f64::NAN), checked: false }),
        Err(Error::InvalidArgument { name: "sigma_floor", .. })
    ));
    Ok(())
}

/// The suffix of the plain tensor: v for weight norm, the weight for spectral norm.
fn l_plain(parametrized: bool, weight_norm: bool) -> norm_tch::scheme::Suffix {
    use norm_tch::scheme::Suffix;
    match (parametrized, weight_norm) {
        (false, true) => Suffix::WeightV,
        (true, true) => Suffix::Original1,
        (false, false) => Suffix::WeightOrig,
        (true, false) => Suffix::Original,
    }
}

#[derive(Deserialize)]
struct Reference {
    svd: Vec<Vec<f64>>,
    wn: Vec<Vec<f64>>,
    floor: Vec<Vec<f64>>,
}

fn ensure_close(what: &str, got: &[f64], expected: &[f64]) -> Result<()> {
    ensure!(got.len() == expected.len(), "{what}: {} values, expected {}", got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        ensure!(g.is_finite(), "{what}[{i}] = {g}");
        ensure!((g - e).abs() <= 2e-6 * e.abs().max(1.0), "{what}[{i}]: {g} vs NumPy {e}");
    }
    Ok(())
}

#[test]
fn eps_and_floor_against_numpy() -> Result<()> {
    let Some(python) = python_or_skip("check the eps and floor guards against NumPy")? else { return Ok(()) };
    let eps = 1e-6;
    // weight norm: row 1 zero, row 2 with ‖v‖ < eps, rows 0 and 3 as drawn.
    let mut wn_cases = vec![];
    let mut wn_ours = vec![];
    fn wn<R: Reparametrization<Guards = WeightNormGuards>>(
        (_vs, mut l): (VarStore, Normalized<Linear, R>),
        parametrized: bool,
        eps: f64,
    ) -> Result<(serde_json::Value, Vec<f64>)> {
        let v = l.entry(l_plain(parametrized, true)).context("v")?.shallow_clone();
        tch::no_grad(|| {
            drop(v.get(1).zero_());
            drop(v.get(2).fill_(1e-8));
        });
        let g = l.reparametrization_entries_g(parametrized);
        l.set_guards(WeightNormGuards { eps: Some(eps), checked: true })?;
        let w = l.weight_t(true)?;
        Ok((json!({"v": values(&v), "g": values(&g), "rows": 4, "eps": eps}), values(&w)))
    }
    for (case, ours) in [
        wn(build(5, |vs, fc| weight_norm(vs, fc, Some(0)))?, false, eps)?,
        wn(build(5, |vs, fc| parametrizations::weight_norm(vs, fc, Some(0)))?, true, eps)?,
    ] {
        wn_cases.push(case);
        wn_ours.push(ours);
    }
    // spectral norm: a floor above σ divides by the floor; below σ, PyTorch's bits; a zero
    // weight gives a zero weight.
    let (_vs, mut l) = build(5, |vs, fc| spectral_norm(vs, fc, SpectralNormOptions::default()))?;
    let unguarded = l.weight_t(true)?;
    let sigma = l.sigma()?.context("σ")?.sigma;
    l.set_guards(SpectralNormGuards { sigma_floor: Some(0.5 * sigma), checked: true })?;
    ensure!(Bits::of(&l.weight_t(false)?)? == Bits::of(&unguarded)?, "a floor below σ changes no bit");
    let floor = 2.0 * sigma + 1.0;
    l.set_guards(SpectralNormGuards { sigma_floor: Some(floor), checked: true })?;
    let floored = values(&l.weight_t(false)?);
    let floor_case = json!({"w": values(l.weight_orig()), "sigma": sigma, "floor": floor});
    tch::no_grad(|| drop(l.weight_orig().shallow_clone().zero_()));
    let zero = values(&l.weight_t(true)?);
    ensure!(zero.iter().all(|&x| x == 0.0), "zero weight with a floor: {zero:?}");

    let reference: Reference = run_python_json(
        &python,
        &support::repo().join("norm-tch/tests/guards_and_sigma.py"),
        &[],
        Some(&json!({"wn": wn_cases, "floor": [floor_case]})),
    )?;
    for (i, (ours, numpy)) in wn_ours.iter().zip(&reference.wn).enumerate() {
        ensure_close(&format!("weight norm with eps, case {i}"), ours, numpy)?;
        ensure!(ours[6..12].iter().all(|&x| x == 0.0), "zero row stays zero");
    }
    ensure_close("spectral norm with a floor", &floored, &reference.floor[0])?;
    Ok(())
}

trait GOf {
    fn reparametrization_entries_g(&self, parametrized: bool) -> Tensor;
}

impl<R: Reparametrization> GOf for Normalized<Linear, R> {
    fn reparametrization_entries_g(&self, parametrized: bool) -> Tensor {
        use norm_tch::scheme::Suffix;
        let suffix = if parametrized { Suffix::Original0 } else { Suffix::WeightG };
        self.entry(suffix).expect("g").shallow_clone()
    }
}

/// One σ estimate with its matrix, for the SVD.
struct Case {
    name: String,
    estimate: SigmaEstimate,
    w_mat: Tensor,
    converged: bool,
}

#[test]
fn sigma_is_within_its_bound_of_the_svd() -> Result<()> {
    let Some(python) = python_or_skip("check σ against torch.linalg.svdvals")? else { return Ok(()) };
    let mut cases = vec![];
    for (n, converged) in [(1, false), (200, true)] {
        let options = SpectralNormOptions { n_power_iterations: n, ..Default::default() };
        // hooks, Linear 6 → 4 (W_mat 4×6) and Conv2d 3 → 8, 3×3 (W_mat 8×27)
        let (_vs, l) = build(11, |vs, fc| spectral_norm(vs, fc, options))?;
        drop(l.f_forward_t(&input(2, &[2, 6]), true)?);
        let w_mat = hooks::weight_to_matrix::<norm_tch::TchBackend>(l.weight_orig(), 0)?;
        cases.push(Case { name: format!("hooks linear n={n}"), estimate: l.sigma()?.context("σ")?, w_mat, converged });

        let vs = VarStore::new(Device::Cpu);
        let conv = seeded(12, || -> Result<_> {
            let conv = conv2d(&(vs.root() / "enc" / "fc"), 3, 8, [3, 3], ConvOptions::default())?;
            Ok(spectral_norm(&vs, conv, options)?)
        })?;
        drop(conv.weight_t(true)?);
        let w_mat = hooks::weight_to_matrix::<norm_tch::TchBackend>(conv.weight_orig(), 0)?;
        cases.push(Case {
            name: format!("hooks conv2d n={n}"),
            estimate: conv.sigma()?.context("σ")?,
            w_mat,
            converged,
        });

        // parametrizations: registration iterates 15 + n times; one more eval access (no iteration).
        let vs = VarStore::new(Device::Cpu);
        let conv = seeded(13, || -> Result<_> {
            let conv = conv2d(&(vs.root() / "enc" / "fc"), 8, 3, [3, 3], ConvOptions::default())?;
            Ok(parametrizations::spectral_norm(&vs, conv, options)?)
        })?;
        ensure!(conv.sigma()?.is_none(), "no σ before the first weight computation");
        drop(conv.weight_t(!converged)?);
        let w_mat = core_param::weight_to_matrix::<norm_tch::TchBackend>(conv.original(), 0)?;
        cases.push(Case {
            name: format!("parametrizations conv2d n={n}"),
            estimate: conv.sigma()?.context("σ")?,
            w_mat,
            converged,
        });
    }
    // and a σ read after an optimizer-like step on the weight: the bound is for the current weight
    let (_vs, l) = build(14, |vs, fc| spectral_norm(vs, fc, SpectralNormOptions::default()))?;
    drop(l.weight_t(true)?);
    tch::no_grad(|| drop(l.weight_orig().shallow_clone().g_mul_scalar_(1.5)));
    let w_mat = hooks::weight_to_matrix::<norm_tch::TchBackend>(l.weight_orig(), 0)?;
    cases.push(Case {
        name: "hooks linear, weight stepped".into(),
        estimate: l.sigma()?.context("σ")?,
        w_mat,
        converged: false,
    });

    let matrices: Vec<Vec<Vec<f64>>> = cases
        .iter()
        .map(|c| {
            let rows = c.w_mat.size()[0];
            (0..rows).map(|r| values(&c.w_mat.get(r))).collect()
        })
        .collect();
    let reference: Reference = run_python_json(
        &python,
        &support::repo().join("norm-tch/tests/guards_and_sigma.py"),
        &[],
        Some(&json!({"svd": matrices})),
    )?;
    for (c, svals) in cases.iter().zip(&reference.svd) {
        let SigmaEstimate { sigma, bound } = c.estimate;
        let slack = 1e-12 * svals[0];
        let nearest =
            svals.iter().chain(std::iter::once(&0.0)).map(|s| (sigma - s).abs()).fold(f64::INFINITY, f64::min);
        eprintln!(
            "{}: σ = {sigma}, bound = {bound:e}, σ_max = {}, |σ − σ_max| = {:e}",
            c.name,
            svals[0],
            (sigma - svals[0]).abs()
        );
        ensure!(nearest <= bound + slack, "{}: no singular value within {bound} of σ = {sigma}: {svals:?}", c.name);
        if c.converged {
            ensure!(bound <= 1e-4 * svals[0], "{}: converged, yet bound {bound}", c.name);
            ensure!((sigma - svals[0]).abs() <= bound + slack, "{}: |σ − σ_max| > bound", c.name);
        }
    }
    ensure!(
        cases.iter().any(|c| !c.converged && c.estimate.bound > 1e-3 * c.estimate.sigma),
        "an unconverged case has a real bound"
    );
    Ok(())
}

/// Checked mode reads values exactly in their own dtype: a float64 divisor far below float32's
/// smallest subnormal is non-zero and one beyond float32's range is finite, so neither is refused;
/// zero, infinity and NaN are, naming the value.
#[test]
fn checked_values_are_read_exactly_in_float64() {
    use norm_core::guards::{check, Requirement};
    use norm_tch::TchBackend;
    for ok in [1e-300f64, 1e-50, 3.5e38, 1e300] {
        let t = Tensor::from_slice(&[1.0f64, ok]);
        check::<TchBackend>(&t, "enc.fc", "σ", Requirement::FiniteNonZero).unwrap();
    }
    for (bad, requirement) in
        [(0.0f64, Requirement::FiniteNonZero), (f64::INFINITY, Requirement::Finite), (f64::NAN, Requirement::Finite)]
    {
        let t = Tensor::from_slice(&[1.0f64, bad]);
        match check::<TchBackend>(&t, "enc.fc", "σ", requirement) {
            Err(Error::NonFinite { layer, value, .. }) => {
                assert_eq!(layer, "enc.fc");
                assert!(value.to_bits() == bad.to_bits() || (value.is_nan() && bad.is_nan()), "{value} vs {bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}
