//! The conformance suite every backend runs: one body per property, generic over the
//! backend and run on each of its devices (see [`crate::conformance_tests`]).
//!
//! These checks compare against closed forms computed in f64, with tolerances, because
//! they must hold for backends that are not bit-exact (the reference backend). Bit-exact
//! agreement with PyTorch is checked separately, against PyTorch itself, by the
//! backends that claim it.

use crate::backend::{AutodiffBackend, Backend};
use crate::error::Error;
use crate::functional::normalize;
use crate::optim::{Adam, AdamConfig};
use crate::spectral_norm::{check_n_power_iterations, hooks, parametrizations};
use crate::weight_norm::{compute_weight, initial_g, WeightNormDim};

/// A conformance failure: what was checked and what was found.
pub type Outcome = Result<(), String>;

fn fail<E: std::fmt::Display>(context: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{context}: {e}")
}

/// Deterministic test data: `n` values in about [-1, 1], none zero.
pub fn test_values(n: usize, salt: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(salt.wrapping_mul(40_503)) >> 8) as f32
                / (1u32 << 24) as f32;
            let v = 2.0 * x - 1.0;
            if v.abs() < 1e-3 {
                0.5
            } else {
                v
            }
        })
        .collect()
}

fn assert_close(what: &str, got: &[f32], expected: &[f64], rel: f64) -> Outcome {
    if got.len() != expected.len() {
        return Err(format!("{what}: {} values, expected {}", got.len(), expected.len()));
    }
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        let tol = rel * e.abs().max(1e-6);
        let within = (g as f64 - e).abs() <= tol; // false for NaN
        if !within {
            return Err(format!("{what}[{i}]: got {g}, expected {e} (tolerance {tol:e})"));
        }
    }
    Ok(())
}

/// `g` has the shape of the dim contract and `compute_weight(v, g)` gives back `v` at
/// registration, for every dim form: axes, negative axes, `-1` and `None` (whole tensor).
pub fn weight_norm_dim_contract<B: Backend>(device: &B::Device) -> Outcome {
    let shape = [3usize, 4, 5];
    let values = test_values(60, 1);
    let w = B::from_f32(&values, &shape, device).map_err(fail("from_f32"))?;
    let forms: [(Option<i64>, Vec<usize>); 7] = [
        (Some(0), vec![3, 1, 1]),
        (Some(1), vec![1, 4, 1]),
        (Some(2), vec![1, 1, 5]),
        (Some(-2), vec![1, 4, 1]),
        (Some(-3), vec![3, 1, 1]),
        (Some(-1), vec![]),
        (None, vec![]),
    ];
    for (dim, g_shape) in forms {
        let dim = WeightNormDim::new(dim);
        let g = initial_g::<B>(&w, dim).map_err(fail("initial_g"))?;
        if B::shape(&g) != g_shape {
            return Err(format!("dim {dim}: g has shape {:?}, expected {g_shape:?}", B::shape(&g)));
        }
        let weight = compute_weight::<B>(&w, &g, dim).map_err(fail("compute_weight"))?;
        let expected: Vec<f64> = values.iter().map(|&x| x as f64).collect();
        assert_close(
            &format!("weight at registration, dim {dim}"),
            &B::to_f32_vec(&weight).map_err(fail("to_f32_vec"))?,
            &expected,
            1e-5,
        )?;
    }
    let whole = initial_g::<B>(&w, WeightNormDim::WHOLE).map_err(fail("initial_g"))?;
    let norm = values.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    assert_close("whole-tensor g", &B::to_f32_vec(&whole).map_err(fail("to_f32_vec"))?, &[norm], 1e-6)
}

/// `w = g * v / ‖v‖` per row for `dim = 0` with a `g` that differs from `‖v‖`.
pub fn weight_norm_formula<B: Backend>(device: &B::Device) -> Outcome {
    let (rows, cols) = (4usize, 6usize);
    let v_values = test_values(rows * cols, 2);
    let g_values = [0.5f32, -2.0, 3.0, 0.25];
    let v = B::from_f32(&v_values, &[rows, cols], device).map_err(fail("from_f32"))?;
    let g = B::from_f32(&g_values, &[rows, 1], device).map_err(fail("from_f32"))?;
    let w = compute_weight::<B>(&v, &g, WeightNormDim::default()).map_err(fail("compute_weight"))?;
    let mut expected = Vec::new();
    for r in 0..rows {
        let row = &v_values[r * cols..(r + 1) * cols];
        let norm = row.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        expected.extend(row.iter().map(|&x| g_values[r] as f64 * x as f64 / norm));
    }
    assert_close("weight_norm dim 0", &B::to_f32_vec(&w).map_err(fail("to_f32_vec"))?, &expected, 1e-5)
}

/// Dims outside `[-rank, rank)` are errors naming the dim and rank; a `g` of the wrong
/// shape is an error naming both shapes.
pub fn weight_norm_rejects_bad_input<B: Backend>(device: &B::Device) -> Outcome {
    let w = B::from_f32(&test_values(6, 3), &[2, 3], device).map_err(fail("from_f32"))?;
    for bad in [2i64, 5, -3] {
        match initial_g::<B>(&w, WeightNormDim::new(Some(bad))) {
            Err(Error::DimOutOfRange { dim, rank: 2, .. }) if dim == bad => {}
            other => return Err(format!("dim {bad} on a rank-2 weight: expected DimOutOfRange, got {other:?}")),
        }
    }
    let g = B::from_f32(&[1.0, 2.0, 3.0], &[3, 1], device).map_err(fail("from_f32"))?;
    match compute_weight::<B>(&w, &g, WeightNormDim::default()) {
        Err(Error::ShapeMismatch { expected, got, .. }) if expected == vec![2, 1] && got == vec![3, 1] => Ok(()),
        other => Err(format!("g of shape [3, 1] for v of shape [2, 3]: expected ShapeMismatch, got {other:?}")),
    }
}

/// Adam configurations that exercise every option: defaults, other betas/eps, L2 and
/// decoupled weight decay, AMSGrad, maximize, and all of them at once.
pub fn adam_test_configs() -> Vec<AdamConfig> {
    vec![
        AdamConfig::with_lr(1e-2),
        AdamConfig { lr: 3e-3, betas: (0.8, 0.99), eps: 1e-6, ..Default::default() },
        AdamConfig { weight_decay: 0.1, ..AdamConfig::with_lr(1e-2) },
        AdamConfig { weight_decay: 0.1, decoupled_weight_decay: true, ..AdamConfig::with_lr(1e-2) },
        AdamConfig { amsgrad: true, ..AdamConfig::with_lr(1e-2) },
        AdamConfig { maximize: true, ..AdamConfig::with_lr(1e-2) },
        AdamConfig { maximize: true, amsgrad: true, weight_decay: 0.05, ..AdamConfig::with_lr(2e-2) },
    ]
}

/// Adam against an f64 model of the same update, over several steps and every option.
pub fn adam_follows_its_formula<B: AutodiffBackend>(device: &B::Device) -> Outcome {
    for config in adam_test_configs() {
        let n = 7;
        let p0 = test_values(n, 4);
        let param = B::from_f32(&p0, &[n], device).map_err(fail("from_f32"))?;
        let mut adam = Adam::<B>::new(vec![B::shallow_clone(&param)], config).map_err(fail("Adam::new"))?;
        let (b1, b2) = config.betas;
        let mut p: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
        let (mut m, mut s, mut smax) = (vec![0.0f64; n], vec![0.0f64; n], vec![0.0f64; n]);
        for step in 1..=5 {
            let grad = test_values(n, 10 + step);
            B::set_grad(&param, B::from_f32(&grad, &[n], device).map_err(fail("from_f32"))?)
                .map_err(fail("set_grad"))?;
            adam.step().map_err(fail("step"))?;
            let t = step as f64;
            for i in 0..n {
                let mut g = grad[i] as f64;
                if config.maximize {
                    g = -g;
                }
                if config.weight_decay != 0.0 {
                    if config.decoupled_weight_decay {
                        p[i] *= 1.0 - config.lr * config.weight_decay;
                    } else {
                        g += config.weight_decay * p[i];
                    }
                }
                m[i] = b1 * m[i] + (1.0 - b1) * g;
                s[i] = b2 * s[i] + (1.0 - b2) * g * g;
                smax[i] = smax[i].max(s[i]);
                let second = if config.amsgrad { smax[i] } else { s[i] };
                let denom = second.sqrt() / (1.0 - b2.powf(t)).sqrt() + config.eps;
                p[i] -= config.lr / (1.0 - b1.powf(t)) * m[i] / denom;
            }
            let got = B::to_f32_vec(&param).map_err(fail("to_f32_vec"))?;
            assert_close(&format!("{config:?} step {step}"), &got, &p, 1e-4)?;
        }
    }
    Ok(())
}

/// Parameters without a gradient are left alone; `zero_grad` sets gradients to `None`.
pub fn adam_skips_params_without_grad<B: AutodiffBackend>(device: &B::Device) -> Outcome {
    let a = B::from_f32(&[1.0, 2.0], &[2], device).map_err(fail("from_f32"))?;
    let b = B::from_f32(&[3.0, 4.0], &[2], device).map_err(fail("from_f32"))?;
    let mut adam = Adam::<B>::new(vec![B::shallow_clone(&a), B::shallow_clone(&b)], AdamConfig::with_lr(0.1))
        .map_err(fail("Adam::new"))?;
    B::set_grad(&a, B::from_f32(&[1.0, -1.0], &[2], device).map_err(fail("from_f32"))?).map_err(fail("set_grad"))?;
    adam.step().map_err(fail("step"))?;
    if B::to_f32_vec(&b).map_err(fail("to_f32_vec"))? != vec![3.0, 4.0] {
        return Err("a parameter without a gradient was updated".into());
    }
    if adam.state(1).is_some() {
        return Err("state was created for a parameter without a gradient".into());
    }
    assert_close("first Adam step", &B::to_f32_vec(&a).map_err(fail("to_f32_vec"))?, &[0.9, 2.1], 1e-5)?;
    adam.zero_grad().map_err(fail("zero_grad"))?;
    if B::grad(&a).is_some() {
        return Err("zero_grad left a gradient (PyTorch's default sets it to None)".into());
    }
    Ok(())
}

/// Invalid hyper-parameters are errors naming the argument, as PyTorch's `ValueError`s.
pub fn adam_rejects_bad_config<B: AutodiffBackend>(device: &B::Device) -> Outcome {
    let bad = [
        ("lr", AdamConfig::with_lr(-1.0)),
        ("lr", AdamConfig::with_lr(f64::NAN)),
        ("eps", AdamConfig { eps: -1e-8, ..Default::default() }),
        ("betas[0]", AdamConfig { betas: (1.0, 0.999), ..Default::default() }),
        ("betas[1]", AdamConfig { betas: (0.9, -0.1), ..Default::default() }),
        ("weight_decay", AdamConfig { weight_decay: -0.5, ..Default::default() }),
    ];
    for (name, config) in bad {
        let p = B::from_f32(&[1.0], &[1], device).map_err(fail("from_f32"))?;
        match Adam::<B>::new(vec![p], config) {
            Err(Error::InvalidArgument { name: n, .. }) if n == name => {}
            other => return Err(format!("{config:?}: expected InvalidArgument for `{name}`, got {other:?}")),
        }
    }
    Ok(())
}

/// `F.normalize`: unit 2-norm along the dim; with `out`, the buffer is written in place.
pub fn normalize_is_unit_norm<B: Backend>(device: &B::Device) -> Outcome {
    let x = B::from_f32(&[3.0, 4.0, 0.0, 0.0, 1e-20, -1e-20], &[3, 2], device).map_err(fail("from_f32"))?;
    let rows = normalize::<B>(&x, 1, 1e-12, None).map_err(fail("normalize"))?;
    // Row 2's norm is below eps: it is divided by eps instead.
    assert_close(
        "normalize dim 1",
        &B::to_f32_vec(&rows).map_err(fail("to_f32_vec"))?,
        &[0.6, 0.8, 0.0, 0.0, 1e-8, -1e-8],
        1e-5,
    )?;
    let v = B::from_f32(&[1.0, 2.0, 2.0], &[3], device).map_err(fail("from_f32"))?;
    let mut out = B::zeros_like(&v).map_err(fail("zeros_like"))?;
    let alias = B::shallow_clone(&out);
    normalize::<B>(&v, 0, 1e-12, Some(&mut out)).map_err(fail("normalize out"))?;
    assert_close(
        "normalize out= (seen through another handle)",
        &B::to_f32_vec(&alias).map_err(fail("to_f32_vec"))?,
        &[1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0],
        1e-6,
    )
}

/// Power iteration finds σ = 3 of `[[2, 1], [1, 2], [0, 0]]` in both APIs, the
/// normalized weight is `W / 3`, and eval mode leaves `u`, `v` untouched.
pub fn spectral_norm_estimates_sigma<B: AutodiffBackend>(device: &B::Device) -> Outcome {
    let w_values = [2.0f32, 1.0, 1.0, 2.0, 0.0, 0.0];
    let w = B::from_f32(&w_values, &[3, 2], device).map_err(fail("from_f32"))?;
    let expected: Vec<f64> = w_values.iter().map(|&x| x as f64 / 3.0).collect();

    let (mut u, mut v) = hooks::initial_u_v::<B>(&w, 0, 1e-12).map_err(fail("initial_u_v"))?;
    if B::shape(&u) != [3] || B::shape(&v) != [2] {
        return Err(format!("hook u, v shapes {:?} {:?}, expected [3] [2]", B::shape(&u), B::shape(&v)));
    }
    let normalized =
        hooks::compute_weight::<B>(&w, &mut u, &mut v, 0, 30, 1e-12, true).map_err(fail("hooks compute_weight"))?;
    assert_close("hooks W / sigma", &B::to_f32_vec(&normalized).map_err(fail("to_f32_vec"))?, &expected, 1e-4)?;
    let (u_before, v_before) = (B::to_f32_vec(&u).map_err(fail("u"))?, B::to_f32_vec(&v).map_err(fail("v"))?);
    hooks::compute_weight::<B>(&w, &mut u, &mut v, 0, 30, 1e-12, false).map_err(fail("hooks eval"))?;
    if B::to_f32_vec(&u).map_err(fail("u"))? != u_before || B::to_f32_vec(&v).map_err(fail("v"))? != v_before {
        return Err("hooks: eval mode changed u or v".into());
    }

    let mut state =
        parametrizations::SpectralNormState::<B>::new(&w, 1, 0, 1e-12).map_err(fail("SpectralNormState::new"))?;
    for _ in 0..10 {
        state.forward(&w, true).map_err(fail("parametrized forward"))?;
    }
    let normalized = state.forward(&w, false).map_err(fail("parametrized eval"))?;
    assert_close(
        "parametrizations W / sigma",
        &B::to_f32_vec(&normalized).map_err(fail("to_f32_vec"))?,
        &expected,
        1e-4,
    )?;

    // ConvTranspose-style dim 1 on a 3-D weight: W_mat is size(1) x rest.
    let w3 = B::from_f32(&test_values(24, 9), &[2, 3, 4], device).map_err(fail("from_f32"))?;
    let (u3, v3) = hooks::initial_u_v::<B>(&w3, 1, 1e-12).map_err(fail("initial_u_v dim 1"))?;
    if B::shape(&u3) != [3] || B::shape(&v3) != [8] {
        return Err(format!(
            "dim 1 of [2, 3, 4]: u, v shapes {:?} {:?}, expected [3] [8]",
            B::shape(&u3),
            B::shape(&v3)
        ));
    }
    // A 1-D weight in the parametrization API is just normalize(weight).
    let w1 = B::from_f32(&[3.0, 4.0], &[2], device).map_err(fail("from_f32"))?;
    let mut s1 = parametrizations::SpectralNormState::<B>::new(&w1, 1, 0, 1e-12).map_err(fail("1-D state"))?;
    if s1.u.is_some() {
        return Err("a 1-D weight must have no u buffer".into());
    }
    assert_close(
        "1-D parametrized",
        &B::to_f32_vec(&s1.forward(&w1, true).map_err(fail("1-D forward"))?).map_err(fail("to_f32_vec"))?,
        &[0.6, 0.8],
        1e-6,
    )
}

/// PyTorch's error cases: `n_power_iterations <= 0`, dims out of range, and the hook
/// API's rejection of negative dims.
pub fn spectral_norm_rejects_bad_input<B: AutodiffBackend>(device: &B::Device) -> Outcome {
    let w = B::from_f32(&test_values(6, 5), &[2, 3], device).map_err(fail("from_f32"))?;
    match check_n_power_iterations(0) {
        Err(Error::InvalidArgument { name: "n_power_iterations", .. }) => {}
        other => return Err(format!("n_power_iterations 0: {other:?}")),
    }
    match parametrizations::SpectralNormState::<B>::new(&w, -1, 0, 1e-12) {
        Err(Error::InvalidArgument { name: "n_power_iterations", .. }) => {}
        other => return Err(format!("parametrized n_power_iterations -1: {other:?}")),
    }
    match parametrizations::SpectralNormState::<B>::new(&w, 1, 2, 1e-12) {
        Err(Error::DimOutOfRange { dim: 2, rank: 2, .. }) => {}
        other => return Err(format!("parametrized dim 2 on rank 2: {other:?}")),
    }
    if parametrizations::check_dim(-1, 2).ok() != Some(1) || parametrizations::check_dim(-2, 2).ok() != Some(0) {
        return Err("parametrized negative dims must count from the end".into());
    }
    match hooks::check_dim(-1, 2) {
        Err(Error::Unsupported { .. }) => {}
        other => return Err(format!("hooks dim -1: {other:?}")),
    }
    match hooks::check_dim(3, 2) {
        Err(Error::Unsupported { .. }) => Ok(()),
        other => Err(format!("hooks dim 3 on rank 2: {other:?}")),
    }
}

/// Expands to one `#[test]` per conformance check for backend `$backend` on `$device`
/// (an expression evaluated in each test; return `None` from it to skip, e.g. when a
/// CUDA device is absent).
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ty, $device:expr) => {
        $crate::conformance_tests!(@tests $backend, $device;
            weight_norm_dim_contract, weight_norm_formula, weight_norm_rejects_bad_input,
            adam_follows_its_formula, adam_skips_params_without_grad, adam_rejects_bad_config,
            normalize_is_unit_norm, spectral_norm_estimates_sigma, spectral_norm_rejects_bad_input);
    };
    (@tests $backend:ty, $device:expr; $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                let device: Option<<$backend as $crate::backend::Backend>::Device> = $device;
                match device {
                    Some(device) => {
                        if let Err(message) = $crate::conformance::$check::<$backend>(&device) {
                            panic!("{} on {:?}: {}", stringify!($check), device, message);
                        }
                    }
                    None => eprintln!("skipped {}: device not available", stringify!($check)),
                }
            }
        )*
    };
}
