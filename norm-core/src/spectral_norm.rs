//! Spectral normalization: `weight / σ(W_mat)`, σ the largest singular value of the
//! weight reshaped to a matrix, estimated by power iteration — mirroring both PyTorch APIs.
//!
//! `W_mat` is the weight with axis `dim` moved to the front and the rest flattened
//! (`h = size(dim)` rows). With unit vectors `u` (length h) and `v` (length w):
//!
//! **Hook API** (`torch.nn.utils.spectral_norm`, [`hooks`]): buffers `weight_u`, `weight_v`
//! drawn at registration as `normalize(normal_(0, 1))`, u then v, with no iteration. Each
//! training forward runs `n_power_iterations` of
//! `v = normalize(W_matᵀ u, out=v); u = normalize(W_mat v, out=u)` in place, then clones;
//! `σ = dot(u, W_mat v)`; `weight = weight_orig / σ`. Eval uses the stored u, v unchanged.
//!
//! **Parametrization API** (`torch.nn.utils.parametrizations.spectral_norm`,
//! [`parametrizations`]): the reversed order, u first:
//! `u = normalize(W_mat v, out=u); v = normalize(W_matᴴ u, out=v)`, and `σ = vdot(u, W_mat v)`.
//! Registration draws u, v and runs 15 iterations; `register_parametrization` then
//! evaluates the weight once more, which in training mode iterates `n_power_iterations`
//! times again. Every access of the weight in training mode iterates. A 1-D weight is
//! simply `normalize(weight, dim=0, eps)`, with no u or v.
//!
//! `normalize` is [`crate::functional::normalize`] (eps clamps the norm from below).
//!
//! **The repeated product.** In the hook API's training forward the last iteration's
//! `u = normalize(W_mat v)` has just computed `W_mat v` from the same `W_mat` and the same
//! `v` values that σ's `dot(u, W_mat v)` multiplies again (σ reads clones of u, v). That
//! product is reused through [`AutodiffBackend::mv_reusing`], which keeps `mv`'s autograd
//! history (norm-tch attaches ATen's own `MvBackward0`), so σ, the weight, u, v and every
//! gradient keep PyTorch's bits with one matrix-vector product fewer per forward.
//!
//! The parametrization API has no such saving: its last iteration computes `W_mat v_old`
//! (before v is updated) and `W_matᴴ u`, while σ needs `W_mat v_new`, a product with the
//! *new* v that no iteration has formed; the next forward's first product `W_mat' v_new`
//! uses the weight after the optimizer step. Nothing is reusable bit-exactly, so
//! [`parametrizations`] computes what PyTorch computes.

use crate::backend::AutodiffBackend;
use crate::error::{Error, Result};
use crate::functional::normalize;

/// Checks `n_power_iterations` (PyTorch raises `ValueError` for <= 0).
pub fn check_n_power_iterations(n_power_iterations: i64) -> Result<usize> {
    if n_power_iterations <= 0 {
        return Err(Error::invalid("n_power_iterations", n_power_iterations, "a positive number of power iterations"));
    }
    Ok(n_power_iterations as usize)
}

/// Opt-in guards for spectral norm ([`crate::guards`]); the default is PyTorch's behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpectralNormGuards {
    /// `Some(floor)`: `weight = weight_orig / max(σ, floor)` (one `clamp_min` on the 0-dim σ,
    /// added to the graph only when set). `None` (default): `weight_orig / σ`, PyTorch's op.
    pub sigma_floor: Option<f64>,
    /// Checked mode: `weight_orig` must be finite and the divisor σ (after the floor) finite
    /// and non-zero, else [`Error::NonFinite`]; the checks only read, so a passing forward
    /// returns PyTorch's bits (with no floor).
    pub checked: bool,
}

impl crate::guards::Guards for SpectralNormGuards {
    /// Errors: a `sigma_floor` that is not positive and finite.
    fn validate(&self) -> Result<()> {
        crate::guards::check_floor("sigma_floor", self.sigma_floor)
    }
}

/// The guarded checks on the weight, before any power iteration reads it: the guards valid,
/// and in checked mode the weight finite ([`Error::NonFinite`] naming `layer` otherwise).
/// Shared by every σ-dividing normalization (both spectral-norm APIs, the operator norm).
pub fn check_weight<B: AutodiffBackend>(weight: &B::Tensor, guards: &SpectralNormGuards, layer: &str) -> Result<()> {
    crate::guards::Guards::validate(guards)?;
    if guards.checked {
        crate::guards::check::<B>(weight, layer, "weight", crate::guards::Requirement::Finite)?;
    }
    Ok(())
}

/// `weight / σ` (PyTorch's `torch.div`), or `weight / max(σ, floor)` with a `sigma_floor`,
/// after checking in checked mode that the divisor is finite and non-zero.
pub fn divide_by_sigma<B: AutodiffBackend>(
    weight: &B::Tensor,
    sigma: &B::Tensor,
    guards: &SpectralNormGuards,
    layer: &str,
) -> Result<B::Tensor> {
    let floored;
    let divisor = match guards.sigma_floor {
        Some(floor) => {
            floored = B::clamp_min(sigma, floor)?;
            &floored
        }
        None => sigma,
    };
    if guards.checked {
        crate::guards::check::<B>(divisor, layer, "σ", crate::guards::Requirement::FiniteNonZero)?;
    }
    B::div(weight, divisor)
}

/// `W_mat`: `weight` with axis `dim` moved first (`permute(dim, *others)` when `dim != 0`).
fn permuted<B: AutodiffBackend>(weight: &B::Tensor, dim: usize) -> Result<B::Tensor> {
    if dim == 0 {
        return Ok(B::shallow_clone(weight));
    }
    let rank = B::shape(weight).len();
    let order: Vec<i64> = std::iter::once(dim).chain((0..rank).filter(|&d| d != dim)).map(|d| d as i64).collect();
    B::permute(weight, &order)
}

/// The hook API, `torch.nn.utils.spectral_norm` (`SpectralNorm` in spectral_norm.py).
pub mod hooks {
    use super::*;

    /// PyTorch's default `dim`: 1 for ConvTranspose layers, else 0.
    pub fn default_dim(is_conv_transpose: bool) -> i64 {
        if is_conv_transpose {
            1
        } else {
            0
        }
    }

    /// Checks `dim` for a weight of rank `rank`: only `0 <= dim < rank` works. The hook
    /// API does not normalize dims: `permute(dim, *[d for d in range(ndim) if d != dim])`
    /// names a negative dim's axis twice, and a dim past the rank makes the permutation
    /// one entry too long; PyTorch raises `RuntimeError` for both, from inside `permute`.
    /// norm reports them up front as [`Error::Unsupported`].
    pub fn check_dim(dim: i64, rank: usize) -> Result<usize> {
        let r = rank as i64;
        if (0..r).contains(&dim) {
            return Ok(dim as usize);
        }
        let reason = if dim < 0 && dim >= -r {
            format!("the hook API's permute(dim, *others) names the axis of a negative dim twice (PyTorch raises RuntimeError: duplicate dims); pass {} instead", dim + r)
        } else {
            format!("it is out of range for a weight of rank {rank}: expected a dim in [0, {}] (PyTorch's permute raises RuntimeError)", r - 1)
        };
        Err(Error::Unsupported { what: format!("dim {dim} in the hook API's spectral_norm"), reason })
    }

    /// `reshape_weight_to_matrix`: `permute` then `reshape(height, -1)`.
    pub fn weight_to_matrix<B: AutodiffBackend>(weight: &B::Tensor, dim: usize) -> Result<B::Tensor> {
        let mat = permuted::<B>(weight, dim)?;
        let height = B::shape(&mat)[0] as i64;
        B::reshape(&mat, &[height, -1])
    }

    /// Registration (`SpectralNorm.apply`): `(u, v)` drawn from the generator, u first,
    /// each `normalize(new_empty(n).normal_(0, 1), dim=0, eps)`; no power iteration.
    pub fn initial_u_v<B: AutodiffBackend>(weight: &B::Tensor, dim: usize, eps: f64) -> Result<(B::Tensor, B::Tensor)> {
        initial_u_v_with::<B>(weight, dim, eps, |like, n| B::normal(like, &[n], 0.0, 1.0))
    }

    /// [`initial_u_v`] with the draws of `draw(like, n)` (`like.new_empty(n).normal_(0, 1)`
    /// from a generator of the caller's, e.g. a private one seeded like `torch.manual_seed`).
    pub fn initial_u_v_with<B: AutodiffBackend>(
        weight: &B::Tensor,
        dim: usize,
        eps: f64,
        mut draw: impl FnMut(&B::Tensor, usize) -> Result<B::Tensor>,
    ) -> Result<(B::Tensor, B::Tensor)> {
        B::no_grad(|| {
            let mat = weight_to_matrix::<B>(weight, dim)?;
            let shape = B::shape(&mat);
            let u = normalize::<B>(&draw(weight, shape[0])?, 0, eps, None)?;
            let v = normalize::<B>(&draw(weight, shape[1])?, 0, eps, None)?;
            Ok((u, v))
        })
    }

    /// `σ = dot(u, W_mat v)`, the hook API's estimate (`compute_weight`, and the rescaling
    /// of `_solve_v_and_rescale`).
    pub fn sigma<B: AutodiffBackend>(w_mat: &B::Tensor, u: &B::Tensor, v: &B::Tensor) -> Result<B::Tensor> {
        B::dot(u, &B::mv(w_mat, v)?)
    }

    /// `remove_spectral_norm`'s weight: `weight_orig / σ` from the stored `u`, `v`, no power
    /// iteration ([`compute_weight`] in eval mode).
    pub fn fold<B: AutodiffBackend>(
        weight_orig: &B::Tensor,
        u: &B::Tensor,
        v: &B::Tensor,
        dim: usize,
    ) -> Result<B::Tensor> {
        let w_mat = weight_to_matrix::<B>(weight_orig, dim)?;
        B::div(weight_orig, &sigma::<B>(&w_mat, u, v)?)
    }

    /// `SpectralNorm.compute_weight`: updates the buffers `u`, `v` in place when
    /// `do_power_iteration` (PyTorch passes `module.training`), returns `weight_orig / σ`.
    pub fn compute_weight<B: AutodiffBackend>(
        weight_orig: &B::Tensor,
        u: &mut B::Tensor,
        v: &mut B::Tensor,
        dim: usize,
        n_power_iterations: usize,
        eps: f64,
        do_power_iteration: bool,
    ) -> Result<B::Tensor> {
        let guards = SpectralNormGuards::default();
        compute_weight_and_sigma::<B>(weight_orig, u, v, dim, n_power_iterations, eps, do_power_iteration, &guards, "")
            .map(|(weight, _)| weight)
    }

    /// [`compute_weight`] with [`SpectralNormGuards`] (`layer` names the layer in errors),
    /// also returning the σ tensor the weight was divided by (before any floor): the 0-dim
    /// `dot(u, W_mat v)` of the graph, not a recomputation. With the default guards the ops
    /// and bits are [`compute_weight`]'s, which is this function.
    #[allow(clippy::too_many_arguments)]
    pub fn compute_weight_and_sigma<B: AutodiffBackend>(
        weight_orig: &B::Tensor,
        u: &mut B::Tensor,
        v: &mut B::Tensor,
        dim: usize,
        n_power_iterations: usize,
        eps: f64,
        do_power_iteration: bool,
        guards: &SpectralNormGuards,
        layer: &str,
    ) -> Result<(B::Tensor, B::Tensor)> {
        check_weight::<B>(weight_orig, guards, layer)?;
        let w_mat = weight_to_matrix::<B>(weight_orig, dim)?;
        if !do_power_iteration {
            let sigma = sigma::<B>(&w_mat, u, v)?;
            return Ok((divide_by_sigma::<B>(weight_orig, &sigma, guards, layer)?, sigma));
        }
        let (u_used, v_used, last_w_v) = B::no_grad(|| -> Result<_> {
            let w_mat_t = B::t(&w_mat)?;
            let mut last_w_v = None;
            for _ in 0..n_power_iterations {
                normalize::<B>(&B::mv(&w_mat_t, u)?, 0, eps, Some(&mut *v))?;
                let w_v = B::mv(&w_mat, v)?;
                normalize::<B>(&w_v, 0, eps, Some(&mut *u))?;
                last_w_v = Some(w_v);
            }
            Ok((B::clone_contiguous(u)?, B::clone_contiguous(v)?, last_w_v))
        })?;
        // σ = dot(u, mv(W_mat, v)): the last iteration's `mv(W_mat, v)` is that product
        // (same W_mat, v_used a clone of the v it read), so it is reused with mv's history.
        let w_v = match last_w_v {
            Some(product) => B::mv_reusing(&w_mat, &v_used, product)?,
            None => B::mv(&w_mat, &v_used)?,
        };
        let sigma = B::dot(&u_used, &w_v)?;
        Ok((divide_by_sigma::<B>(weight_orig, &sigma, guards, layer)?, sigma))
    }
}

/// The parametrization API, `torch.nn.utils.parametrizations.spectral_norm`
/// (`_SpectralNorm` in parametrizations.py).
pub mod parametrizations {
    use super::*;

    /// Power iterations `_SpectralNorm.__init__` runs at registration.
    pub const REGISTRATION_ITERATIONS: usize = 15;

    /// Normalizes `dim` like `_SpectralNorm.__init__`: `[-ndim, ndim)` is accepted,
    /// negative counted from the end; anything else is PyTorch's `IndexError`.
    pub fn check_dim(dim: i64, rank: usize) -> Result<usize> {
        let r = rank as i64;
        if dim >= r || dim < -r {
            return Err(Error::DimOutOfRange { dim, rank, expected: format!("a dim in [{}, {}]", -r, r - 1) });
        }
        Ok(if dim < 0 { (dim + r) as usize } else { dim as usize })
    }

    /// `_reshape_weight_to_matrix`: `permute` then `flatten(1)`.
    pub fn weight_to_matrix<B: AutodiffBackend>(weight: &B::Tensor, dim: usize) -> Result<B::Tensor> {
        B::flatten(&permuted::<B>(weight, dim)?, 1, -1)
    }

    /// The state of one `_SpectralNorm` parametrization: its settings and its `_u`, `_v`
    /// buffers (absent for a 1-D weight, as in PyTorch).
    #[derive(Debug)]
    pub struct SpectralNormState<B: AutodiffBackend> {
        /// The normalized dim (non-negative).
        pub dim: usize,
        /// `eps` of `normalize`.
        pub eps: f64,
        /// Iterations per training-mode evaluation.
        pub n_power_iterations: usize,
        /// `_u` (length `h`), `None` for a 1-D weight.
        pub u: Option<B::Tensor>,
        /// `_v` (length `w`), `None` for a 1-D weight.
        pub v: Option<B::Tensor>,
    }

    impl<B: AutodiffBackend> SpectralNormState<B> {
        /// `_SpectralNorm(weight, n_power_iterations, dim, eps)`: checks dim (IndexError)
        /// then `n_power_iterations` (ValueError); for `ndim > 1` draws u then v and runs 15
        /// power iterations. `register_parametrization`'s extra evaluation is the caller's
        /// ([`SpectralNormState::forward`] once, in the module's mode).
        pub fn new(weight: &B::Tensor, n_power_iterations: i64, dim: i64, eps: f64) -> Result<Self> {
            Self::new_with(weight, n_power_iterations, dim, eps, |like, n| B::normal(like, &[n], 0.0, 1.0))
        }

        /// [`SpectralNormState::new`] with the draws of `draw(like, n)`
        /// (`like.new_empty(n).normal_(0, 1)` from a generator of the caller's).
        pub fn new_with(
            weight: &B::Tensor,
            n_power_iterations: i64,
            dim: i64,
            eps: f64,
            draw: impl FnMut(&B::Tensor, usize) -> Result<B::Tensor>,
        ) -> Result<Self> {
            let (mut state, w_mat) = Self::checked(weight, n_power_iterations, dim, eps)?;
            if let Some(w_mat) = w_mat {
                state.draw_u_v(&w_mat, draw)?;
                state.power_method(&w_mat, REGISTRATION_ITERATIONS)?;
            }
            Ok(state)
        }

        /// The checks of `_SpectralNorm.__init__` in its order, dim (IndexError) then
        /// `n_power_iterations` (ValueError): the state without u, v, and `W_mat` for a weight
        /// of `ndim > 1` (`None` for a 1-D weight). Draws nothing.
        pub fn checked(
            weight: &B::Tensor,
            n_power_iterations: i64,
            dim: i64,
            eps: f64,
        ) -> Result<(Self, Option<B::Tensor>)> {
            let rank = B::shape(weight).len();
            let dim = check_dim(dim, rank)?;
            let n_power_iterations = check_n_power_iterations(n_power_iterations)?;
            let state = SpectralNormState { dim, eps, n_power_iterations, u: None, v: None };
            let w_mat = if rank > 1 { Some(weight_to_matrix::<B>(weight, dim)?) } else { None };
            Ok((state, w_mat))
        }

        /// Registration's draws for `w_mat` (`[h, w]`): u then v, each
        /// `normalize(draw(w_mat, n), dim=0, eps)`, under no_grad; no iteration.
        pub fn draw_u_v(
            &mut self,
            w_mat: &B::Tensor,
            mut draw: impl FnMut(&B::Tensor, usize) -> Result<B::Tensor>,
        ) -> Result<()> {
            let shape = B::shape(w_mat);
            let eps = self.eps;
            B::no_grad(|| -> Result<()> {
                let u = draw(w_mat, shape[0])?;
                let v = draw(w_mat, shape[1])?;
                self.u = Some(normalize::<B>(&u, 0, eps, None)?);
                self.v = Some(normalize::<B>(&v, 0, eps, None)?);
                Ok(())
            })
        }

        /// `_power_method`: `n` rounds of `u = normalize(W v, out=u); v = normalize(Wᴴ u, out=v)`.
        pub fn power_method(&mut self, w_mat: &B::Tensor, n: usize) -> Result<()> {
            let (Some(u), Some(v)) = (self.u.as_mut(), self.v.as_mut()) else { return Ok(()) };
            let eps = self.eps;
            B::no_grad(|| -> Result<()> {
                let w_mat_h = B::t(w_mat)?;
                for _ in 0..n {
                    normalize::<B>(&B::mv(w_mat, v)?, 0, eps, Some(&mut *u))?;
                    normalize::<B>(&B::mv(&w_mat_h, u)?, 0, eps, Some(&mut *v))?;
                }
                Ok(())
            })
        }

        /// `_SpectralNorm.forward(weight)`: one evaluation of the parametrized weight
        /// (iterating first in training mode).
        pub fn forward(&mut self, weight: &B::Tensor, training: bool) -> Result<B::Tensor> {
            self.forward_with_sigma(weight, training, &SpectralNormGuards::default(), "").map(|(w, _)| w)
        }

        /// [`SpectralNormState::forward`] with [`SpectralNormGuards`] (`layer` names the layer
        /// in errors), also returning the σ tensor the weight was divided by (before any
        /// floor; `None` for a 1-D weight, which is `normalize(weight)` with no σ and no
        /// floor). With the default guards the ops and bits are [`SpectralNormState::forward`]'s.
        pub fn forward_with_sigma(
            &mut self,
            weight: &B::Tensor,
            training: bool,
            guards: &SpectralNormGuards,
            layer: &str,
        ) -> Result<(B::Tensor, Option<B::Tensor>)> {
            check_weight::<B>(weight, guards, layer)?;
            if self.u.is_none() {
                return Ok((normalize::<B>(weight, 0, self.eps, None)?, None));
            }
            let w_mat = weight_to_matrix::<B>(weight, self.dim)?;
            if training {
                self.power_method(&w_mat, self.n_power_iterations)?;
            }
            let (Some(u), Some(v)) = (self.u.as_ref(), self.v.as_ref()) else { unreachable!("checked above") };
            let sigma = sigma::<B>(&w_mat, u, v)?;
            Ok((divide_by_sigma::<B>(weight, &sigma, guards, layer)?, Some(sigma)))
        }
    }

    /// `σ = vdot(u, W_mat v)` over clones of `u`, `v` (`_SpectralNorm.forward`, which clones
    /// them with `torch.contiguous_format`).
    pub fn sigma<B: AutodiffBackend>(w_mat: &B::Tensor, u: &B::Tensor, v: &B::Tensor) -> Result<B::Tensor> {
        let u = B::clone_contiguous(u)?;
        let v = B::clone_contiguous(v)?;
        B::vdot(&u, &B::mv(w_mat, &v)?)
    }

    /// The eval-mode weight from the stored `u`, `v` (what `_SpectralNorm.forward` returns
    /// with no power iteration): `weight / σ`.
    pub fn fold<B: AutodiffBackend>(weight: &B::Tensor, u: &B::Tensor, v: &B::Tensor, dim: usize) -> Result<B::Tensor> {
        let w_mat = weight_to_matrix::<B>(weight, dim)?;
        B::div(weight, &sigma::<B>(&w_mat, u, v)?)
    }
}

/// A spectral-norm layer's last σ estimate with a bound on its error.
///
/// `sigma` is the σ the last weight computation divided by (the 0-dim `dot(u, W_mat v)` /
/// `vdot(u, W_mat v)` of PyTorch's graph, before any floor); `bound` is
///
/// `bound = sqrt((‖W_mat v − σ u‖² + ‖W_matᵀ u − σ v‖²) / (‖u‖² + ‖v‖²))`
///
/// from the current `W_mat` and the stored `u`, `v` (those σ was computed from). It bounds
/// the distance from σ to the spectrum: the symmetric matrix `H = [[0, W_mat], [W_matᵀ, 0]]`
/// has the eigenvalues `±σᵢ` (and `0` when `W_mat` is not square), and for the vector
/// `x = [u; v]`, `‖H x − σ x‖ / ‖x‖` is exactly the ratio above; for a symmetric matrix some
/// eigenvalue λ satisfies `|σ − λ| ≤ ‖H x − σ x‖ / ‖x‖`. So some singular value σᵢ of `W_mat`
/// (or 0) lies within `bound` of σ. Both residuals are needed: after the hook API's last
/// iteration `u = normalize(W_mat v)`, so `W_mat v − σ u` is ~0 by construction and only
/// `W_matᵀ u − σ v` measures convergence (the reverse holds for the parametrization API).
/// Once power iteration has converged to the top singular pair, that σᵢ is the largest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SigmaEstimate {
    /// The last σ estimate.
    pub sigma: f64,
    /// `|σ − σᵢ| ≤ bound` for some singular value σᵢ of the current `W_mat` (or 0).
    pub bound: f64,
}
