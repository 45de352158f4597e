//! Power iteration to a tolerance (opt-in; issue 11, item 3): both spectral-norm APIs' own
//! iteration step, run at least `n_power_iterations` times and then until the residual
//! bound of the current `u`, `v` is below `tolerance · |σ|`, or `max_iterations` ran.
//!
//! For unit-norm `u`, `v` and `σ = dot(u, W v)`, the bound is the one of
//! [`SigmaEstimate`](crate::spectral_norm::SigmaEstimate):
//!
//! `bound = sqrt((‖W v − σ u‖² + ‖Wᵀ u − σ v‖²) / (‖u‖² + ‖v‖²))`
//!
//! and some singular value of `W` lies in `[σ − bound, σ + bound]`. Computed where the
//! products are already at hand, it costs no extra matrix-vector product per iteration:
//!
//! - **Hook API** (`v = normalize(Wᵀu); u = normalize(W v)`): after an iteration, `W v` is the
//!   product just normalized into `u`, and `Wᵀ u` is the first product of the next iteration.
//!   So the check of iterate `k` runs at the start of iteration `k + 1`, after its `Wᵀ u`;
//!   when the check passes, that one product is the only extra work (the iteration stops
//!   before normalizing it into `v`).
//! - **Parametrization API** (`u = normalize(W v); v = normalize(Wᵀ u)`): `Wᵀ u` is the
//!   last product of the iteration and `W v` the first one of the next; when the check
//!   passes, that `W v` is also the product `σ = vdot(u, W v)` needs, and is reused with
//!   `mv`'s autograd history ([`AutodiffBackend::mv_reusing`]), so on convergence the
//!   tolerance mode does no extra product at all.
//!
//! `σ` and the bound are computed in the layer's dtype (two scalars read per check), so the
//! bound is exact up to that dtype's rounding: in float32 a relative tolerance much below
//! `1e-6` is not reachable and the iteration runs to `max_iterations`.
//!
//! The iterates are exactly the API's own: the first `n` iterations are PyTorch's ops, and
//! a tolerance-mode forward that ran `k` iterations leaves the same `u`, `v`, σ and weight,
//! bit for bit, as the fixed mode with `n_power_iterations = k`. The gradient graph is
//! PyTorch's (the iterations under no_grad, σ from the final `u`, `v`).

use crate::backend::{AutodiffBackend, Backend};
use crate::error::{Error, Result};
use crate::functional::normalize;
use crate::spectral_norm::parametrizations::{self, SpectralNormState, REGISTRATION_ITERATIONS};
use crate::spectral_norm::{check_weight, divide_by_sigma, hooks, SpectralNormGuards};

/// Stop the power iteration once `bound ≤ tolerance · |σ|`, after at most `max_iterations`
/// iterations (see the [module docs](self) for the bound).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowerIterationTolerance {
    /// The relative tolerance on the residual bound (finite, `>= 0`; `0` runs to the maximum
    /// unless the bound is exactly 0).
    pub tolerance: f64,
    /// The most iterations one weight computation runs (at least the layer's
    /// `n_power_iterations`, which always run).
    pub max_iterations: usize,
}

impl PowerIterationTolerance {
    /// Checks the tolerance (finite, `>= 0`) and `max_iterations >= max(1, n_power_iterations)`.
    pub fn validate(&self, n_power_iterations: usize) -> Result<()> {
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(Error::invalid("tolerance", self.tolerance, "a finite relative tolerance >= 0"));
        }
        if self.max_iterations < n_power_iterations.max(1) {
            return Err(Error::invalid(
                "max_iterations",
                self.max_iterations,
                format!("at least n_power_iterations ({n_power_iterations}) and at least 1"),
            ));
        }
        Ok(())
    }

    /// Whether `bound ≤ tolerance · |σ|`.
    pub fn is_met(&self, sigma: f64, bound: f64) -> bool {
        bound <= self.tolerance * sigma.abs()
    }
}

/// `(σ, bound)` of unit-ish `u`, `v` from the products `w_v = W v` and `wt_u = Wᵀ u`:
/// `σ = dot(u, w_v)`, `bound = sqrt((‖w_v − σu‖² + ‖wt_u − σv‖²) / (‖u‖² + ‖v‖²))`, in the
/// tensors' dtype, read as f64.
pub fn sigma_and_bound<B: Backend>(
    u: &B::Tensor,
    v: &B::Tensor,
    w_v: &B::Tensor,
    wt_u: &B::Tensor,
) -> Result<(f64, f64)> {
    let scalar = |t: &B::Tensor| -> Result<f64> {
        B::to_f64_vec(t)?.first().copied().ok_or_else(|| Error::invalid("scalar", "an empty tensor", "one value"))
    };
    let sigma = scalar(&B::dot(u, w_v)?)?;
    let r1 = B::add_scaled(w_v, u, -sigma)?;
    let r2 = B::add_scaled(wt_u, v, -sigma)?;
    let residual = B::add_scaled(&B::dot(&r1, &r1)?, &B::dot(&r2, &r2)?, 1.0)?;
    let length = B::add_scaled(&B::dot(u, u)?, &B::dot(v, v)?, 1.0)?;
    Ok((sigma, scalar(&B::div(&residual, &length)?)?.sqrt()))
}

/// The hook API's iteration `v = normalize(Wᵀu, out=v); u = normalize(W v, out=u)` on
/// `w_mat`, at least `min_iterations` times (and at least once), then until `tolerance` is
/// met or `max_iterations` ran. Returns the number run and the last `W v` (the product the
/// last `u` was normalized from). Runs under no_grad.
pub fn iterate_hooks<B: AutodiffBackend>(
    w_mat: &B::Tensor,
    u: &mut B::Tensor,
    v: &mut B::Tensor,
    eps: f64,
    min_iterations: usize,
    tolerance: &PowerIterationTolerance,
) -> Result<(usize, Option<B::Tensor>)> {
    B::no_grad(|| {
        let w_mat_t = B::t(w_mat)?;
        let mut last_w_v: Option<B::Tensor> = None;
        let mut k = 0;
        while k < tolerance.max_iterations {
            let wt_u = B::mv(&w_mat_t, u)?;
            if let (true, Some(w_v)) = (k >= min_iterations, &last_w_v) {
                let (sigma, bound) = sigma_and_bound::<B>(u, v, w_v, &wt_u)?;
                if tolerance.is_met(sigma, bound) {
                    break;
                }
            }
            normalize::<B>(&wt_u, 0, eps, Some(&mut *v))?;
            let w_v = B::mv(w_mat, v)?;
            normalize::<B>(&w_v, 0, eps, Some(&mut *u))?;
            last_w_v = Some(w_v);
            k += 1;
        }
        Ok((k, last_w_v))
    })
}

/// The parametrization API's iteration `u = normalize(W v, out=u); v = normalize(Wᴴ u, out=v)`
/// on `w_mat`, at least `min_iterations` times (and at least once), then until `tolerance` is
/// met or `max_iterations` ran. Returns the number run and, when it stopped on the check,
/// `W v` for the final `v` (the product σ needs). Runs under no_grad.
pub fn iterate_parametrizations<B: AutodiffBackend>(
    w_mat: &B::Tensor,
    u: &mut B::Tensor,
    v: &mut B::Tensor,
    eps: f64,
    min_iterations: usize,
    tolerance: &PowerIterationTolerance,
) -> Result<(usize, Option<B::Tensor>)> {
    B::no_grad(|| {
        let w_mat_h = B::t(w_mat)?;
        let mut last_wt_u: Option<B::Tensor> = None;
        let mut k = 0;
        while k < tolerance.max_iterations {
            let w_v = B::mv(w_mat, v)?;
            if let (true, Some(wt_u)) = (k >= min_iterations, &last_wt_u) {
                let (sigma, bound) = sigma_and_bound::<B>(u, v, &w_v, wt_u)?;
                if tolerance.is_met(sigma, bound) {
                    return Ok((k, Some(w_v)));
                }
            }
            normalize::<B>(&w_v, 0, eps, Some(&mut *u))?;
            let wt_u = B::mv(&w_mat_h, u)?;
            normalize::<B>(&wt_u, 0, eps, Some(&mut *v))?;
            last_wt_u = Some(wt_u);
            k += 1;
        }
        Ok((k, None))
    })
}

/// [`hooks::compute_weight_and_sigma`] in tolerance mode: with `do_power_iteration`, runs
/// [`iterate_hooks`] (at least `n_power_iterations`) instead of the fixed count, then
/// computes σ and the weight exactly as the fixed mode does. Also returns the iterations run
/// (0 without `do_power_iteration`, which is the fixed mode's eval computation).
#[allow(clippy::too_many_arguments)]
pub fn hooks_compute_weight_and_sigma<B: AutodiffBackend>(
    weight_orig: &B::Tensor,
    u: &mut B::Tensor,
    v: &mut B::Tensor,
    dim: usize,
    n_power_iterations: usize,
    eps: f64,
    tolerance: &PowerIterationTolerance,
    do_power_iteration: bool,
    guards: &SpectralNormGuards,
    layer: &str,
) -> Result<(B::Tensor, B::Tensor, usize)> {
    if !do_power_iteration {
        let (weight, sigma) = hooks::compute_weight_and_sigma::<B>(
            weight_orig,
            u,
            v,
            dim,
            n_power_iterations,
            eps,
            false,
            guards,
            layer,
        )?;
        return Ok((weight, sigma, 0));
    }
    tolerance.validate(n_power_iterations)?;
    check_weight::<B>(weight_orig, guards, layer)?;
    let w_mat = hooks::weight_to_matrix::<B>(weight_orig, dim)?;
    let (iterations, last_w_v) = iterate_hooks::<B>(&w_mat, u, v, eps, n_power_iterations, tolerance)?;
    let (u_used, v_used) = B::no_grad(|| -> Result<_> { Ok((B::clone_contiguous(u)?, B::clone_contiguous(v)?)) })?;
    // As in the fixed mode: the last iteration's `W v` is σ's product (same W_mat, same v values).
    let w_v = match last_w_v {
        Some(product) => B::mv_reusing(&w_mat, &v_used, product)?,
        None => B::mv(&w_mat, &v_used)?,
    };
    let sigma = B::dot(&u_used, &w_v)?;
    Ok((divide_by_sigma::<B>(weight_orig, &sigma, guards, layer)?, sigma, iterations))
}

/// [`SpectralNormState::forward_with_sigma`] in tolerance mode: in training mode runs
/// [`iterate_parametrizations`] (at least `n_power_iterations`) instead of the fixed count,
/// then `σ = vdot(u, W v)` over clones of `u`, `v` and `weight / σ`, as the fixed mode does.
/// Also returns the iterations run (0 in eval mode and for a 1-D weight).
pub fn parametrizations_forward_with_sigma<B: AutodiffBackend>(
    state: &mut SpectralNormState<B>,
    weight: &B::Tensor,
    training: bool,
    tolerance: &PowerIterationTolerance,
    guards: &SpectralNormGuards,
    layer: &str,
) -> Result<(B::Tensor, Option<B::Tensor>, usize)> {
    if !training || state.u.is_none() {
        let (weight, sigma) = state.forward_with_sigma(weight, false, guards, layer)?;
        return Ok((weight, sigma, 0));
    }
    tolerance.validate(state.n_power_iterations)?;
    check_weight::<B>(weight, guards, layer)?;
    let w_mat = parametrizations::weight_to_matrix::<B>(weight, state.dim)?;
    let (eps, n) = (state.eps, state.n_power_iterations);
    let (Some(u), Some(v)) = (state.u.as_mut(), state.v.as_mut()) else {
        return Err(Error::invalid("spectral norm state", "u without v", "both power-iteration vectors"));
    };
    let (iterations, product) = iterate_parametrizations::<B>(&w_mat, u, v, eps, n, tolerance)?;
    let u_used = B::clone_contiguous(u)?;
    let v_used = B::clone_contiguous(v)?;
    let w_v = match product {
        Some(product) => B::mv_reusing(&w_mat, &v_used, product)?,
        None => B::mv(&w_mat, &v_used)?,
    };
    let sigma = B::vdot(&u_used, &w_v)?;
    Ok((divide_by_sigma::<B>(weight, &sigma, guards, layer)?, Some(sigma), iterations))
}

/// `_SpectralNorm.__init__` with its 15 registration iterations continued to `tolerance`
/// (at least 15, at most `tolerance.max_iterations`, which must then be `>= 15`): checks
/// dim and `n_power_iterations` as [`SpectralNormState::new_with`], draws u then v with
/// `draw`, and returns the state and the iterations run (0 for a 1-D weight).
pub fn parametrizations_register_to_tolerance<B: AutodiffBackend>(
    weight: &B::Tensor,
    n_power_iterations: i64,
    dim: i64,
    eps: f64,
    tolerance: &PowerIterationTolerance,
    draw: impl FnMut(&B::Tensor, usize) -> Result<B::Tensor>,
) -> Result<(SpectralNormState<B>, usize)> {
    let (mut state, w_mat) = SpectralNormState::<B>::checked(weight, n_power_iterations, dim, eps)?;
    tolerance.validate(state.n_power_iterations.max(REGISTRATION_ITERATIONS))?;
    let Some(w_mat) = w_mat else { return Ok((state, 0)) };
    state.draw_u_v(&w_mat, draw)?;
    let (Some(u), Some(v)) = (state.u.as_mut(), state.v.as_mut()) else { return Ok((state, 0)) };
    let (iterations, _) = iterate_parametrizations::<B>(&w_mat, u, v, eps, REGISTRATION_ITERATIONS, tolerance)?;
    Ok((state, iterations))
}

/// The hook API's registration with its u, v iterated to `tolerance` (at least
/// `n_power_iterations` of [`iterate_hooks`]) so that eval before any training forward
/// uses converged vectors; returns the iterations run.
pub fn hooks_converge<B: AutodiffBackend>(
    weight: &B::Tensor,
    u: &mut B::Tensor,
    v: &mut B::Tensor,
    dim: usize,
    n_power_iterations: usize,
    eps: f64,
    tolerance: &PowerIterationTolerance,
) -> Result<usize> {
    tolerance.validate(n_power_iterations)?;
    let w_mat = B::no_grad(|| hooks::weight_to_matrix::<B>(weight, dim))?;
    iterate_hooks::<B>(&w_mat, u, v, eps, n_power_iterations, tolerance).map(|(k, _)| k)
}
