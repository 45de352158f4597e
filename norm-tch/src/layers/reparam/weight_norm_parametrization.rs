//! `torch.nn.utils.parametrizations.weight_norm`: `_WeightNorm.forward` is
//! `torch._weight_norm(original1, original0, dim)`, recomputed on every access of the weight.
//!
//! Registration (`register_parametrization(..., unsafe=True)`: no evaluation) stores
//! `original0 = norm_except_dim(weight, 2, dim)` (g) and `original1 = weight` (v) as new
//! parameters, g first; `weight` leaves the module. `remove_parametrizations(module,
//! "weight")` evaluates the weight once more into a new `weight` parameter.

use super::weight_norm_hook::{register_g, unfold_g};
use super::{Entries, NewEntry, RegisterContext, RemoveRule, Reparametrization};
use crate::backend::TchBackend;
use crate::scheme::{Scheme, Suffix};
use norm_core::weight_norm::{compute_weight_guarded, WeightNormDim, WeightNormGuards};
use norm_core::Result;
use tch::Tensor;

/// The parametrization API's weight norm; its one setting is the stored dim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightNormParametrization {
    dim: WeightNormDim,
}

impl WeightNormParametrization {
    /// The stored dim (`-1` for `None`).
    pub fn dim(&self) -> WeightNormDim {
        self.dim
    }
}

impl Reparametrization for WeightNormParametrization {
    /// `dim` of `parametrizations.weight_norm(module, dim=dim)` (`None`: the whole tensor).
    type Options = Option<i64>;
    const SCHEME: Scheme = Scheme::WeightNormParametrizations;
    const NORM: &'static str = "weight_norm";
    const REGISTERED_MARKERS: &'static [Suffix] = &[Suffix::Original, Suffix::Original0, Suffix::Original1];
    const PLAIN_IS_LAYER_WEIGHT: bool = false;
    const REMOVE: RemoveRule = RemoveRule { evaluates_in_mode: true, keeps_plain: false };

    fn register(weight: &Tensor, dim: Option<i64>, _: RegisterContext) -> Result<(Self, Vec<NewEntry>)> {
        let (dim, g) = register_g(weight, dim, Suffix::Original0)?;
        Ok((WeightNormParametrization { dim }, vec![g]))
    }

    type Guards = WeightNormGuards;

    fn weight_and_sigma(
        &self,
        entries: &Entries,
        _train: bool,
        guards: &WeightNormGuards,
        layer: &str,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let weight = compute_weight_guarded::<TchBackend>(&entries.plain, entries.other(0)?, self.dim, guards, layer)?;
        Ok((weight, None))
    }

    fn unfold_others(&self, entries: &Entries) -> Result<()> {
        unfold_g(entries, self.dim)
    }
}
