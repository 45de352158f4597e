//! The report's accuracy studies, Rust side: how fast spectral norm's power iteration
//! finds σ₁ (`convergence.csv`), and the loss curves of two training programs
//! (`loss.csv`). The PyTorch side runs the same programs in
//! `norm-bench/python/eager_timing.py` (`"kind": "sigma"` and `"kind": "loss"`).
//!
//! **σ study.** For a float32 CPU matrix `W` (see [`MatrixKind`]) and each iteration
//! count `k`: `torch.manual_seed(SIGMA_SEED + 1)`, fresh `u`, `v` drawn as the hook API
//! draws them at registration (`normalize(normal_(0, 1))`, u then v), `k` power
//! iterations of the hook API (`v = normalize(Wᵀu); u = normalize(W v)`), and
//! `σ = dot(u, W v)` — exactly `hooks::initial_u_v` then `hooks::compute_weight` with
//! `do_power_iteration = true`. The exact σ₁ (and σ₂, for the gap) come from
//! an SVD of `W.double()` (`torch.linalg.svdvals`' values); the relative error is `|σ − σ₁| / σ₁`.
//! Beside it, the error bound a spectral-norm layer reports for the same σ
//! (`SpectralNorm::sigma()`, `norm_core::spectral_norm::SigmaEstimate`):
//! `bound = sqrt((‖W v − σ u‖² + ‖Wᵀ u − σ v‖²) / (‖u‖² + ‖v‖²))` from the same `W`, `u`, `v`
//! after `k` iterations (`norm_tch::layers::sigma::residual_bound`, float64). It guarantees
//! that *some* singular value of `W` (or 0) lies within `bound` of σ — not necessarily σ₁:
//! power iteration approaches σ₁ from below, and while σ is still near a smaller singular value
//! the bound can be smaller than `|σ − σ₁|` (`bound_covers_exact` says which rows it covers).
//!
//! **Loss curves.** `seed_weight_norm`: the seed document's weight-norm program
//! (`norm-bench seed-loop --example weight-norm --steps K`: K steps of loop 1, then K
//! iterations of two steps of loop 2, so 3K steps), loss `1 - out.mean()`.
//! `spectral_norm_linear64`: `spectral_norm(nn.Linear(64, 64))` (hook API, training mode)
//! fitting a fixed random target, `x = randn(128, 64)`, `target = randn(128, 64)`,
//! `loss = mse_loss(m(x), target)`, `Adam(lr=1e-2)`. Step `i`'s loss is the one its
//! forward computed, before its update. Both start from `torch.manual_seed(0)` (and
//! `random.seed(0)`).

use crate::seed_loop::{Example, SeedModel};
use anyhow::{ensure, Result};
use norm_core::optim::AdamConfig;
use norm_core::random::PyRandom;
use norm_core::spectral_norm::{hooks, SigmaEstimate};
use norm_tch::layers::sigma::residual_bound;
use norm_tch::layers::{linear, spectral_norm, LinearConfig, SpectralNormOptions, WeightedLayer};
use norm_tch::optim::Adam;
use norm_tch::TchBackend;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use tch::nn::VarStore;
use tch::{Device, Kind, Reduction, Tensor};

/// `torch.manual_seed` before drawing a matrix; `SIGMA_SEED + 1` before drawing `u`, `v`.
pub(crate) const SIGMA_SEED: u64 = 0;

/// σ₂/σ₁ of the ill-conditioned matrices.
pub(crate) const ILL_CONDITIONED_GAP: f64 = 0.95;

/// σ_min/σ₂ of the ill-conditioned matrices (a condition number of about 10⁶).
pub(crate) const ILL_CONDITIONED_DECAY: f64 = 1e-6;

/// `eps` of the power iteration's normalizations (PyTorch's default).
const EPS: f64 = 1e-12;

/// The matrices of the σ study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MatrixKind {
    /// `torch.randn(rows, cols)`.
    Random,
    /// `U diag(s) Vᵀ` with `U`, `V` the Q factors of `randn(rows, k)`, `randn(cols, k)`
    /// (float64, `k = min(rows, cols)`) and the spectrum of [`spectrum`]: σ₁ = 1, a
    /// small gap to σ₂ = 0.95, then a geometric decay to 0.95·10⁻⁶; cast to float32.
    IllConditioned,
}

impl MatrixKind {
    /// Both kinds.
    pub(crate) const ALL: [MatrixKind; 2] = [MatrixKind::Random, MatrixKind::IllConditioned];

    /// The name in the CSV, the config file and the protocol.
    pub(crate) fn name(self) -> &'static str {
        match self {
            MatrixKind::Random => "random",
            MatrixKind::IllConditioned => "ill_conditioned",
        }
    }
}

impl fmt::Display for MatrixKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MatrixKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        MatrixKind::ALL
            .into_iter()
            .find(|k| k.name() == text.trim())
            .ok_or_else(|| format!("unknown matrix kind '{text}' (known: random, ill_conditioned)"))
    }
}

/// The singular values of an ill-conditioned `k`-rank matrix: `s[0] = 1`,
/// `s[i] = GAP · DECAY^((i - 1) / (k - 2))` for `i >= 1` (so `s[1] = GAP`, `s[k-1] = GAP · DECAY`).
pub(crate) fn spectrum(k: usize) -> Vec<f64> {
    (0..k)
        .map(|i| match i {
            0 => 1.0,
            _ if k <= 2 => ILL_CONDITIONED_GAP,
            _ => ILL_CONDITIONED_GAP * ILL_CONDITIONED_DECAY.powf((i - 1) as f64 / (k - 2) as f64),
        })
        .collect()
}

/// The study's float32 CPU matrix, drawn after `torch.manual_seed(SIGMA_SEED)`.
pub(crate) fn make_matrix(kind: MatrixKind, rows: i64, cols: i64) -> Result<Tensor> {
    tch::manual_seed(SIGMA_SEED as i64);
    Ok(match kind {
        MatrixKind::Random => Tensor::f_randn([rows, cols], (Kind::Float, Device::Cpu))?,
        MatrixKind::IllConditioned => {
            let k = rows.min(cols);
            let a = Tensor::f_randn([rows, k], (Kind::Double, Device::Cpu))?;
            let b = Tensor::f_randn([cols, k], (Kind::Double, Device::Cpu))?;
            let (u, _) = Tensor::f_linalg_qr(&a, "reduced")?;
            let (v, _) = Tensor::f_linalg_qr(&b, "reduced")?;
            let s = Tensor::f_from_slice(&spectrum(k as usize))?;
            u.f_mul(&s)?.f_matmul(&v.f_tr()?)?.f_to_kind(Kind::Float)?
        }
    })
}

/// The hook API's σ estimate of `w` after `k` power iterations from fresh `u`, `v`
/// (drawn after `torch.manual_seed(SIGMA_SEED + 1)`), as an f64 of the float32 value, with
/// the residual bound a spectral-norm layer reports for it
/// (`norm_tch::layers::sigma::residual_bound` of the same `W`, `u`, `v`, σ).
pub(crate) fn sigma_estimate(w: &Tensor, k: usize) -> Result<SigmaEstimate> {
    tch::manual_seed(SIGMA_SEED as i64 + 1);
    let (mut u, mut v) = hooks::initial_u_v::<TchBackend>(w, 0, EPS)?;
    tch::no_grad(|| -> Result<SigmaEstimate> {
        drop(hooks::compute_weight::<TchBackend>(w, &mut u, &mut v, 0, k, EPS, true)?);
        // The buffers now hold the iterated u, v: σ = dot(u, W v), as compute_weight computed it.
        let w_mat = hooks::weight_to_matrix::<TchBackend>(w, 0)?;
        let sigma = u.f_dot(&w_mat.f_mv(&v)?)?.f_double_value(&[])?;
        let bound = residual_bound(&w_mat, &u, &v, sigma)?;
        Ok(SigmaEstimate { sigma, bound })
    })
}

/// The two largest singular values of `w`, from an SVD in float64 (σ₂ is 0 for a
/// matrix with one row or column).
///
/// `torch.svd(W.double(), compute_uv=False)`, which ATen computes as
/// `torch.linalg.svdvals(W.double())`; tch's own `linalg_svdvals` cannot pass
/// `driver=None` (it passes `""`, which ATen rejects on the CPU).
pub(crate) fn top_singular_values(w: &Tensor) -> Result<(f64, f64)> {
    let (_, s, _) = w.f_to_kind(Kind::Double)?.f_svd(true, false)?;
    let n = s.size()[0];
    ensure!(n >= 1, "svdvals of an empty matrix");
    let second = if n > 1 { s.f_double_value(&[1])? } else { 0.0 };
    Ok((s.f_double_value(&[0])?, second))
}

/// `|estimate - exact| / exact`.
pub(crate) fn relative_error(estimate: f64, exact: f64) -> f64 {
    (estimate - exact).abs() / exact
}

/// One line of `convergence.csv`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SigmaRow {
    /// The matrix kind.
    pub(crate) matrix: MatrixKind,
    /// The matrix's shape.
    pub(crate) rows: u64,
    /// The matrix's shape.
    pub(crate) cols: u64,
    /// Power iterations run.
    pub(crate) n_power_iterations: u64,
    /// norm's σ estimate.
    pub(crate) sigma_estimate: f64,
    /// The residual bound of norm's σ estimate (`SigmaEstimate::bound`): some singular value
    /// of `W` (or 0) lies within it.
    pub(crate) bound: f64,
    /// PyTorch's σ estimate for the same matrix and draws, when its side ran.
    pub(crate) sigma_estimate_pytorch: Option<f64>,
    /// σ₁ from the SVD.
    pub(crate) sigma_exact: f64,
    /// σ₂/σ₁ from the SVD.
    pub(crate) gap: f64,
}

impl SigmaRow {
    /// `|σ − σ₁| / σ₁` of norm's estimate.
    pub(crate) fn rel_error(&self) -> f64 {
        relative_error(self.sigma_estimate, self.sigma_exact)
    }

    /// `bound / σ`: the bound relative to the estimate (at least `bound / σ₁` while σ ≤ σ₁).
    pub(crate) fn rel_bound(&self) -> f64 {
        self.bound / self.sigma_estimate
    }

    /// Whether `|σ − σ₁| ≤ bound`: the bound covers the distance to the largest singular value
    /// (it always covers the distance to the nearest one).
    pub(crate) fn bound_covers_exact(&self) -> bool {
        (self.sigma_estimate - self.sigma_exact).abs() <= self.bound
    }
}

/// The Rust side of the σ study for one matrix: one row per iteration count.
pub(crate) fn sigma_study(kind: MatrixKind, rows: u64, cols: u64, iterations: &[u64]) -> Result<Vec<SigmaRow>> {
    let w = make_matrix(kind, i64::try_from(rows)?, i64::try_from(cols)?)?;
    let (sigma_exact, sigma_2) = top_singular_values(&w)?;
    iterations
        .iter()
        .map(|&k| {
            let estimate = sigma_estimate(&w, usize::try_from(k)?)?;
            Ok(SigmaRow {
                matrix: kind,
                rows,
                cols,
                n_power_iterations: k,
                sigma_estimate: estimate.sigma,
                bound: estimate.bound,
                sigma_estimate_pytorch: None,
                sigma_exact,
                gap: sigma_2 / sigma_exact,
            })
        })
        .collect()
}

/// The training programs of `loss.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LossRun {
    /// The seed document's weight-norm program (3K steps).
    SeedWeightNorm,
    /// `spectral_norm(nn.Linear(64, 64))` fitting a random target with Adam.
    SpectralNormLinear64,
}

impl LossRun {
    /// The name in the CSV's `run` column and the protocol.
    pub(crate) fn name(self) -> &'static str {
        match self {
            LossRun::SeedWeightNorm => "seed_weight_norm",
            LossRun::SpectralNormLinear64 => "spectral_norm_linear64",
        }
    }
}

/// The per-step losses of the seed document's weight-norm program with `k` steps per
/// loop (`3k` values), through [`SeedModel::train_step`].
pub(crate) fn seed_weight_norm_losses(k: u64) -> Result<Vec<f32>> {
    tch::manual_seed(0);
    let mut random = PyRandom::new(0);
    let mut model = SeedModel::new(Example::WeightNorm)?;
    let mut losses = Vec::with_capacity(3 * k as usize);
    // The loss of a step is `1 - linear(x).mean()` with the parameters before its update:
    // evaluated once more without autograd (the same ops, so the same bits), then the step.
    let mut step = |model: &mut SeedModel, x: &Tensor| -> Result<()> {
        let loss = tch::no_grad(|| -> Result<f64> {
            let weight = model.layer.weight_t(false)?;
            let out = model.layer.layer().forward_with_weight(x, &weight)?;
            Ok(out.f_mean(None::<Kind>)?.f_rsub_scalar(1.0)?.f_double_value(&[])?)
        })?;
        losses.push(loss as f32);
        model.train_step(x)
    };
    let draw = |random: &mut PyRandom| -> Result<Tensor> {
        Ok(Tensor::f_randn([10, 2], (Kind::Float, Device::Cpu))?.f_mul_scalar(random.random())?.f_mul_scalar(10.0)?)
    };
    for _ in 0..k {
        let x = draw(&mut random)?;
        step(&mut model, &x)?;
    }
    for _ in 0..k {
        let x = draw(&mut random)?;
        step(&mut model, &x)?;
        step(&mut model, &x)?;
    }
    Ok(losses)
}

/// The per-step losses of `spectral_norm(nn.Linear(64, 64))` fitting a random target.
pub(crate) fn spectral_linear_losses(steps: u64) -> Result<Vec<f32>> {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let layer = linear(&vs.root(), 64, 64, LinearConfig::default())?;
    let layer = spectral_norm(&vs, layer, SpectralNormOptions::default())?;
    let x = Tensor::f_randn([128, 64], (Kind::Float, Device::Cpu))?;
    let target = Tensor::f_randn([128, 64], (Kind::Float, Device::Cpu))?;
    let mut adam = Adam::new(&vs, AdamConfig::with_lr(1e-2))?;
    let mut losses = Vec::with_capacity(steps as usize);
    for _ in 0..steps {
        let loss = layer.f_forward_t(&x, true)?.f_mse_loss(&target, Reduction::Mean)?;
        losses.push(loss.f_double_value(&[])? as f32);
        adam.zero_grad()?;
        loss.f_backward()?;
        adam.step()?;
    }
    Ok(losses)
}

/// The Rust losses of `run` (`steps`: K for the seed program, the step count otherwise).
pub(crate) fn losses(run: LossRun, steps: u64) -> Result<Vec<f32>> {
    match run {
        LossRun::SeedWeightNorm => seed_weight_norm_losses(steps),
        LossRun::SpectralNormLinear64 => spectral_linear_losses(steps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_iteration_converges_to_the_top_singular_value_of_a_diagonal_matrix() {
        let _generator = norm_tch::backend::lock_global_generator();
        // diag(3, 2, 1) padded to 3x4: σ₁ = 3, σ₂ = 2; the error shrinks like (2/3)^(2k).
        let w = Tensor::from_slice(&[3.0f32, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]).reshape([3, 4]);
        let (s1, s2) = top_singular_values(&w).unwrap();
        assert!((s1 - 3.0).abs() < 1e-12 && (s2 - 2.0).abs() < 1e-12, "{s1} {s2}");
        let errors: Vec<f64> =
            [1, 2, 5, 10, 20, 50].iter().map(|&k| relative_error(sigma_estimate(&w, k).unwrap().sigma, s1)).collect();
        for pair in errors.windows(2) {
            assert!(pair[1] <= pair[0] + 1e-7, "{errors:?}");
        }
        assert!(errors[0] < 0.5, "{errors:?}");
        assert!(errors[4] < 1e-6 && errors[5] < 1e-6, "{errors:?}");
        // The estimate never exceeds σ₁ by more than float32 rounding (u, v are unit vectors).
        assert!(sigma_estimate(&w, 3).unwrap().sigma <= 3.0 * (1.0 + 1e-6));
        assert_eq!(relative_error(2.7, 3.0), (3.0f64 - 2.7).abs() / 3.0);
    }

    /// The smallest distance from `sigma` to the singular values `spectrum` of a `rows x cols`
    /// matrix (0 counts too when it is not square: `[[0, W], [Wᵀ, 0]]` has that eigenvalue).
    fn distance_to_spectrum(sigma: f64, spectrum: &[f64], square: bool) -> f64 {
        let zero = if square { f64::INFINITY } else { sigma.abs() };
        spectrum.iter().map(|s| (sigma - s).abs()).fold(zero, f64::min)
    }

    #[test]
    fn the_bound_covers_the_distance_to_the_nearest_singular_value() {
        let _generator = norm_tch::backend::lock_global_generator();
        // Exactly representable, with singular values known in closed form: the blocks
        // [[2, 1], [1, 2]] (3 and 1) and [[1, -1], [1, 1]] (√2 twice), and a zero column.
        #[rustfmt::skip]
        let w = Tensor::from_slice(&[
            2.0f32, 1.0, 0.0, 0.0, 0.0,
            1.0, 2.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 1.0, -1.0, 0.0,
            0.0, 0.0, 1.0, 1.0, 0.0,
        ])
        .reshape([4, 5]);
        let exact = [3.0, 1.0, 2f64.sqrt(), 2f64.sqrt()];
        let mut last = f64::INFINITY;
        for k in [1, 2, 3, 5, 10, 20, 50] {
            let est = sigma_estimate(&w, k).unwrap();
            let nearest = distance_to_spectrum(est.sigma, &exact, false);
            assert!(est.bound + 1e-12 >= nearest, "k={k}: bound {} < distance {nearest} (σ {})", est.bound, est.sigma);
            assert!(est.bound.is_finite() && est.bound >= 0.0);
            last = est.bound;
        }
        // Converged: the bound shrinks with the error (σ₂/σ₁ = √2/3, so (√2/3)^50 ≈ 5e-17).
        assert!(last < 1e-5, "bound after 50 iterations {last}");

        // A random matrix against its whole spectrum from an SVD in float64 (LAPACK through ATen,
        // not the power iteration): bound ≥ the distance to the nearest singular value, per row.
        let w = make_matrix(MatrixKind::Random, 12, 7).unwrap();
        let (_, s, _) = w.to_kind(Kind::Double).svd(true, false);
        let spectrum = Vec::<f64>::try_from(&s).unwrap();
        let rows = sigma_study(MatrixKind::Random, 12, 7, &[1, 2, 5, 10, 20, 50]).unwrap();
        for r in &rows {
            let nearest = distance_to_spectrum(r.sigma_estimate, &spectrum, false);
            assert!(r.bound + 1e-12 >= nearest, "{r:?}: nearest {nearest}");
            assert_eq!(r.rel_bound(), r.bound / r.sigma_estimate);
        }
        assert!(rows.last().unwrap().bound_covers_exact(), "{:?}", rows.last());
    }

    #[test]
    fn the_ill_conditioned_matrix_has_the_designed_spectrum() {
        let _generator = norm_tch::backend::lock_global_generator();
        let s = spectrum(5);
        assert_eq!(s[0], 1.0);
        assert_eq!(s[1], ILL_CONDITIONED_GAP);
        assert!((s[4] - ILL_CONDITIONED_GAP * ILL_CONDITIONED_DECAY).abs() < 1e-18);
        assert!(s.windows(2).all(|p| p[1] < p[0]));
        assert_eq!(spectrum(2), [1.0, ILL_CONDITIONED_GAP]);
        let w = make_matrix(MatrixKind::IllConditioned, 6, 5).unwrap();
        assert_eq!(w.size(), [6, 5]);
        let (s1, s2) = top_singular_values(&w).unwrap();
        assert!((s1 - 1.0).abs() < 1e-6 && (s2 - ILL_CONDITIONED_GAP).abs() < 1e-6, "{s1} {s2}");
        let rows = sigma_study(MatrixKind::Random, 8, 5, &[1, 20]).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[1].rel_error() < rows[0].rel_error() + 1e-7);
        assert!(rows[0].gap > 0.0 && rows[0].gap < 1.0);
    }

    #[test]
    fn loss_curves_have_one_loss_per_step() {
        let _generator = norm_tch::backend::lock_global_generator();
        let seed = seed_weight_norm_losses(2).unwrap();
        assert_eq!(seed.len(), 6);
        // Steps 4 and 5 use the same x; the first update changes the loss.
        assert_ne!(seed[3], seed[4]);
        let spectral = spectral_linear_losses(5).unwrap();
        assert_eq!(spectral.len(), 5);
        assert!(spectral[4] < spectral[0], "{spectral:?}");
    }
}
