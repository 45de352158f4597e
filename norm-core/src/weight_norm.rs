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
