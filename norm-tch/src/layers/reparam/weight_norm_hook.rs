//! `torch.nn.utils.weight_norm` (the hook API): `weight = weight_g * weight_v / ‖weight_v‖`,
//! recomputed on every forward with `torch._weight_norm(v, g, dim)`.
//!
//! Registration mirrors `WeightNorm.apply`: `weight` leaves the module and
//! `weight_g = norm_except_dim(weight, 2, dim)` and `weight_v = weight` are registered as new
//! parameters, g first. See [`norm_core::weight_norm`] for the `dim` contract (`None` is
//! stored as -1 and means the whole tensor). `remove_weight_norm` computes the weight once
//! more (under `no_grad`) into a new `weight` parameter.

use super::{Entries, NewEntry, RegisterContext, RemoveRule, Reparametrization};
use crate::backend::TchBackend;
use crate::scheme::{Scheme, Suffix};
use norm_core::weight_norm::{compute_weight_guarded, initial_g, WeightNormDim, WeightNormGuards};
use norm_core::Result;
use tch::Tensor;

/// The hook API's weight norm; its one setting is the stored dim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightNormHook {
    pub(crate) dim: WeightNormDim,
}

impl WeightNormHook {
    /// The stored dim (`-1` for `None`).
    pub fn dim(&self) -> WeightNormDim {
        self.dim
    }
}

/// `g = norm_except_dim(weight, 2, dim)` (under `no_grad`) after checking `dim` against the
/// weight's rank: the one computation both weight-norm APIs register.
pub(super) fn register_g(weight: &Tensor, dim: Option<i64>, suffix: Suffix) -> Result<(WeightNormDim, NewEntry)> {
    let dim = WeightNormDim::new(dim);
    dim.resolve(weight.dim())?;
    let g = tch::no_grad(|| initial_g::<TchBackend>(weight, dim))?;
    Ok((dim, NewEntry { suffix, value: g, trainable: true }))
}

/// Writes `g = norm_except_dim(plain, 2, dim)` into `others[0]` in place (`right_inverse`).
pub(super) fn unfold_g(entries: &Entries, dim: WeightNormDim) -> Result<()> {
    let g = tch::no_grad(|| initial_g::<TchBackend>(&entries.plain, dim))?;
    crate::layers::fold::write_in_place(entries.other(0)?, &g)
}

impl Reparametrization for WeightNormHook {
    /// `dim` of `weight_norm(module, dim=dim)` (`None`: the whole tensor).
    type Options = Option<i64>;
    const SCHEME: Scheme = Scheme::WeightNormHooks;
    const NORM: &'static str = "weight_norm";
    const REGISTERED_MARKERS: &'static [Suffix] = &[Suffix::WeightG, Suffix::WeightV];
    const PLAIN_IS_LAYER_WEIGHT: bool = false;
    const REMOVE: RemoveRule = RemoveRule { evaluates_in_mode: false, keeps_plain: false };

    fn register(weight: &Tensor, dim: Option<i64>, _: RegisterContext) -> Result<(Self, Vec<NewEntry>)> {
        let (dim, g) = register_g(weight, dim, Suffix::WeightG)?;
        Ok((WeightNormHook { dim }, vec![g]))
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

    fn fused_weight_norm_dim(&self) -> Option<i64> {
        Some(self.dim.value())
    }

    fn unfold_others(&self, entries: &Entries) -> Result<()> {
        unfold_g(entries, self.dim)
    }
}
