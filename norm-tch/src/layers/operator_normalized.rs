//! [`OperatorNormalized`]'s accessors: its entries under their state-dict names, and σ
//! with the residual bound `sqrt((‖A v − σ u‖² + ‖Aᵀ u − σ v‖²) / (‖u‖² + ‖v‖²))` of
//! [`SigmaEstimate`] for the layer's operator `A` (computed when asked, in float64, from the
//! current `weight_orig`, `weight_op_u`, `weight_op_v`).

use super::normalizations::OperatorNormalized;
use super::reparam::operator_residual_bound;
use super::WeightedLayer;
use crate::scheme::Suffix;
use norm_core::spectral_norm::SigmaEstimate;
use norm_core::Result;
use tch::Tensor;

impl<L: WeightedLayer> OperatorNormalized<L> {
    fn entry_of(&self, suffix: Suffix) -> &Tensor {
        self.entry(suffix).expect("every operator-norm layer has this entry")
    }

    /// `weight_orig`. While folded: the same tensor, which is then the plain `<prefix>.weight`.
    pub fn weight_orig(&self) -> &Tensor {
        self.entry_of(Suffix::WeightOrig)
    }

    /// The `weight_op_u` buffer, `[1, C_out, *S_out]` (while folded: kept out of the store).
    pub fn weight_op_u(&self) -> &Tensor {
        self.entry_of(Suffix::WeightOpU)
    }

    /// The `weight_op_v` buffer, `[1, C_in, *S_in]` (while folded: kept out of the store).
    pub fn weight_op_v(&self) -> &Tensor {
        self.entry_of(Suffix::WeightOpV)
    }

    /// The last σ the weight was divided by and its error bound ([`SigmaEstimate`]: some
    /// singular value of the operator lies within `bound` of `sigma`); `None` before the first
    /// weight computation (forward, [`super::Normalized::weight_t`], fold). The bound is
    /// computed now, from the current entries.
    pub fn sigma(&self) -> Result<Option<SigmaEstimate>> {
        let Some(sigma) = self.last_sigma_value()? else { return Ok(None) };
        let bound = operator_residual_bound(
            self.reparametrization(),
            self.weight_orig(),
            self.weight_op_u(),
            self.weight_op_v(),
            sigma,
        )?;
        Ok(Some(SigmaEstimate { sigma, bound }))
    }
}
