//! `torch.nn.utils.parametrizations.spectral_norm`: `_SpectralNorm.forward` iterates first in
//! training mode, on every access of the weight; the algorithm is
//! [`norm_core::spectral_norm::parametrizations`].
//!
//! Registration runs 15 power iterations plus, since `register_parametrization` evaluates
//! the weight once (in the module's mode, training for a new module), `n_power_iterations`
//! more. `weight` becomes `parametrizations.weight.original` (the same tensor); the buffers
//! `parametrizations.weight.0._u`, `._v` exist for weights of rank > 1 only (a 1-D weight is
//! just `normalize(weight)`). `remove_parametrizations(module, "weight")` evaluates the weight
//! once more (iterating in training mode) and `set_`s it into `original`, which becomes
//! `weight` again: an optimizer holding it keeps working.

use super::spectral_norm_hook::{SpectralNormOptions, SpectralNormSettings};
use super::{Entries, NewEntry, RegisterContext, RemoveRule, Reparametrization};
use crate::backend::TchBackend;
use crate::scheme::{Scheme, Suffix};
use norm_core::spectral_norm::parametrizations::SpectralNormState;
use norm_core::spectral_norm::SpectralNormGuards;
use norm_core::Result;
use tch::Tensor;

/// The parametrization API's spectral norm: its checked settings (a negative dim is
/// stored counted from the front).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralNormParametrization {
    settings: SpectralNormSettings,
}

impl SpectralNormParametrization {
    /// The checked dim, iteration count and eps.
    pub fn settings(&self) -> &SpectralNormSettings {
        &self.settings
    }

    fn state(&self, entries: &Entries) -> Result<SpectralNormState<TchBackend>> {
        let SpectralNormSettings { dim, n_power_iterations, eps } = self.settings;
        // Both vectors or neither (a 1-D weight): norm-core's forward relies on it.
        let (u, v) = match entries.others.len() {
            0 => (None, None),
            _ => (Some(entries.other(0)?.shallow_clone()), Some(entries.other(1)?.shallow_clone())),
        };
        Ok(SpectralNormState { dim, eps, n_power_iterations, u, v })
    }
}

impl Reparametrization for SpectralNormParametrization {
    type Options = SpectralNormOptions;
    const SCHEME: Scheme = Scheme::SpectralNormParametrizations;
    const NORM: &'static str = "spectral_norm";
    const REGISTERED_MARKERS: &'static [Suffix] = &[Suffix::Original, Suffix::Original0, Suffix::Original1];
    const PLAIN_IS_LAYER_WEIGHT: bool = true;
    const REMOVE: RemoveRule = RemoveRule { evaluates_in_mode: true, keeps_plain: true };
    const RECYCLES_WEIGHT: bool = true;

    /// Errors, in PyTorch's order: a dim outside `[-ndim, ndim)`; `n_power_iterations <= 0`.
    fn register(
        weight: &Tensor,
        options: SpectralNormOptions,
        context: RegisterContext,
    ) -> Result<(Self, Vec<NewEntry>)> {
        let dim = options.dim.unwrap_or(context.default_spectral_norm_dim);
        let mut state = SpectralNormState::<TchBackend>::new(weight, options.n_power_iterations, dim, options.eps)?;
        // register_parametrization(unsafe=False) evaluates the parametrization once.
        drop(tch::no_grad(|| state.forward(weight, context.training))?);
        let settings =
            SpectralNormSettings { dim: state.dim, n_power_iterations: state.n_power_iterations, eps: state.eps };
        let parametrization = SpectralNormParametrization { settings };
        let buffers = match (state.u, state.v) {
            (Some(u), Some(v)) => vec![
                NewEntry { suffix: Suffix::ParamU, value: u, trainable: false },
                NewEntry { suffix: Suffix::ParamV, value: v, trainable: false },
            ],
            _ => vec![],
        };
        Ok((parametrization, buffers))
    }

    type Guards = SpectralNormGuards;

    fn weight_and_sigma(
        &self,
        entries: &Entries,
        train: bool,
        guards: &SpectralNormGuards,
        layer: &str,
    ) -> Result<(Tensor, Option<Tensor>)> {
        self.state(entries)?.forward_with_sigma(&entries.plain, train, guards, layer)
    }
}
