//! Weight normalization: `w = g * v / ‖v‖`, mirroring `torch.nn.utils.weight_norm`.
//!
//! The weight is split into a magnitude `g` (`weight_g`) and a direction `v`
//! (`weight_v`). At registration `g = norm_except_dim(w, 2, dim)` and `v = w`; on every
//! forward the weight is recomputed as `torch._weight_norm(v, g, dim)`.
//!
//! # The `dim` contract (PyTorch's, quirks included)
//! - `dim = None` is stored as `-1`, and `-1` means **the norm of the whole tensor**
//!   (`g` is 0-dim), *not* the last axis. This is true for every rank.
//! - `0 <= dim < rank`: one norm per slice along `dim`; `g` has `v`'s size along `dim`
//!   and 1 elsewhere.
//! - `-rank <= dim <= -2` counts from the end (ATen resolves it through
//!   `transpose(0, dim)`); note that it takes ATen's composite, unfused path even when it
//!   names the same axis as `0` or `rank - 1`, so its rounding can differ from the
//!   positive spelling — exactly as in PyTorch.
//! - Anything else is an [`Error::DimOutOfRange`] (PyTorch raises `IndexError`).
//!
//! PyTorch's default is `dim = 0`.

use crate::backend::Backend;
use crate::error::{Error, Result};

/// PyTorch's stored form of `weight_norm`'s `dim`: `None` becomes `-1` (whole tensor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WeightNormDim(i64);

impl WeightNormDim {
    /// `dim=None`: one norm over the whole tensor (stored as `-1`).
    pub const WHOLE: WeightNormDim = WeightNormDim(-1);

    /// From PyTorch's argument: `None` is stored as `-1`, any integer as given.
    pub fn new(dim: Option<i64>) -> Self {
        WeightNormDim(dim.unwrap_or(-1))
    }

    /// The stored integer, as PyTorch passes it to `norm_except_dim`/`_weight_norm`.
    pub fn value(self) -> i64 {
        self.0
    }

    /// True if this is the whole-tensor norm (`None` or `-1`).
    pub fn is_whole(self) -> bool {
        self.0 == -1
    }

    /// Checks the dim against a weight of rank `rank` and returns the axis it
    /// normalizes over, `None` for the whole tensor.
    pub fn resolve(self, rank: usize) -> Result<Option<usize>> {
        let dim = self.0;
        let r = rank as i64;
        if dim == -1 {
            Ok(None)
        } else if (0..r).contains(&dim) {
            Ok(Some(dim as usize))
        } else if dim < -1 && dim >= -r {
            Ok(Some((dim + r) as usize))
        } else {
            Err(Error::DimOutOfRange {
                dim,
                rank,
                expected: format!("None or -1 (whole tensor), or an axis in [{}, {}]", -r, r - 1),
            })
        }
    }

    /// The shape of `g` for a weight of this shape.
    pub fn g_shape(self, weight_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(match self.resolve(weight_shape.len())? {
            None => vec![],
            Some(axis) => {
                let mut s = vec![1; weight_shape.len()];
                s[axis] = weight_shape[axis];
                s
            }
        })
    }
}

impl Default for WeightNormDim {
    /// PyTorch's default, `dim=0`.
    fn default() -> Self {
        WeightNormDim(0)
    }
}

impl std::fmt::Display for WeightNormDim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_whole() {
            write!(f, "-1 (whole tensor)")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// The initial magnitude at registration: `g = norm_except_dim(weight, 2, dim)`.
pub fn initial_g<B: Backend>(weight: &B::Tensor, dim: WeightNormDim) -> Result<B::Tensor> {
    dim.resolve(B::shape(weight).len())?;
    B::norm_except_dim(weight, 2, dim.value())
}

/// The effective weight: `torch._weight_norm(v, g, dim)` = `g * v / ‖v‖`.
///
/// Checks that `g` has the shape registration would have given it.
pub fn compute_weight<B: Backend>(v: &B::Tensor, g: &B::Tensor, dim: WeightNormDim) -> Result<B::Tensor> {
    let v_shape = B::shape(v);
    let expected = dim.g_shape(&v_shape)?;
    let got = B::shape(g);
    if got != expected {
        return Err(Error::ShapeMismatch {
            what: format!("weight_g for weight_v of shape {v_shape:?} and dim {dim}"),
            expected,
            got,
        });
    }
    B::weight_norm(v, g, dim.value())
}

/// Opt-in guards for weight norm ([`crate::guards`]); the default is PyTorch's behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WeightNormGuards {
    /// `Some(eps)`: `w = g · v / max(‖v‖, eps)` (the norm clamped from below, as
    /// `F.normalize` clamps it), computed as `v * (g / norm_except_dim(v, 2, dim).clamp_min(eps))`
    /// — ATen's composite formula with the clamp, so even where `‖v‖ > eps` its rounding may
    /// differ from the fused `_weight_norm` kernel. `None` (default): `torch._weight_norm`.
    pub eps: Option<f64>,
    /// Checked mode: `v` and `g` must be finite and the divisor `‖v‖` (after the clamp)
    /// finite and non-zero, else [`Error::NonFinite`]; the checks do not change the result.
    pub checked: bool,
}

impl crate::guards::Guards for WeightNormGuards {
    /// Errors: an `eps` that is not positive and finite.
    fn validate(&self) -> Result<()> {
        crate::guards::check_floor("eps", self.eps)
    }
}

/// [`compute_weight`] with [`WeightNormGuards`]; `layer` names the layer in errors. With the
/// default guards it is [`compute_weight`] (PyTorch's bits).
///
/// ```
/// use norm_core::reference::RefBackend as B;
/// use norm_core::{Backend, Error};
/// use norm_core::weight_norm::{compute_weight_guarded, WeightNormDim, WeightNormGuards};
/// let dev = Default::default();
/// let v = B::from_f32(&[0.0, 0.0, 3.0, 4.0], &[2, 2], &dev).unwrap(); // row 0: ‖v‖ = 0
/// let g = B::from_f32(&[1.0, 2.0], &[2, 1], &dev).unwrap();
/// let checked = WeightNormGuards { eps: None, checked: true };
/// let err = compute_weight_guarded::<B>(&v, &g, WeightNormDim::default(), &checked, "fc").unwrap_err();
/// assert!(matches!(err, Error::NonFinite { quantity: "‖v‖", value, .. } if value == 0.0));
/// let eps = WeightNormGuards { eps: Some(1e-6), checked: false };
/// let w = compute_weight_guarded::<B>(&v, &g, WeightNormDim::default(), &eps, "fc").unwrap();
/// assert_eq!(B::to_f32_vec(&w).unwrap(), [0.0, 0.0, 1.2, 1.6]); // g v / max(‖v‖, eps)
/// ```
pub fn compute_weight_guarded<B: Backend>(
    v: &B::Tensor,
    g: &B::Tensor,
    dim: WeightNormDim,
    guards: &WeightNormGuards,
    layer: &str,
) -> Result<B::Tensor> {
    use crate::guards::{check, Requirement};
    if guards.eps.is_none() && !guards.checked {
        return compute_weight::<B>(v, g, dim);
    }
    crate::guards::Guards::validate(guards)?;
    if guards.checked {
        check::<B>(v, layer, "weight_v", Requirement::Finite)?;
        check::<B>(g, layer, "weight_g", Requirement::Finite)?;
    }
    let Some(eps) = guards.eps else {
        // Checked only: the divisor ‖v‖ (one norm per slice), then PyTorch's kernel.
        check::<B>(&B::norm_except_dim(v, 2, dim.value())?, layer, "‖v‖", Requirement::FiniteNonZero)?;
        return compute_weight::<B>(v, g, dim);
    };
    let v_shape = B::shape(v);
    let expected = dim.g_shape(&v_shape)?;
    if B::shape(g) != expected {
        return Err(Error::ShapeMismatch {
            what: format!("weight_g for weight_v of shape {v_shape:?} and dim {dim}"),
            expected,
            got: B::shape(g),
        });
    }
    let norm = B::clamp_min(&B::norm_except_dim(v, 2, dim.value())?, eps)?;
    if guards.checked {
        check::<B>(&norm, layer, "‖v‖", Requirement::FiniteNonZero)?;
    }
    B::mul(v, &B::div(g, &norm)?)
}
