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
//!
//! Opt-in (see [`SpectralNormOptions`]): tolerance mode ([`norm_core::power_iteration`]; on
//! convergence its last `W v` is σ's product, reused), a per-layer seed for `u`, `v` and
//! `converge_at_registration` (the 15 registration iterations continued to the tolerance).

use super::iteration_count::IterationCount;
use super::spectral_norm_hook::{SpectralNormOptions, SpectralNormSettings};
use super::{Entries, NewEntry, RegisterContext, RemoveRule, Reparametrization};
use crate::backend::TchBackend;
use crate::scheme::{Scheme, Suffix};
use norm_core::power_iteration::{self, PowerIterationTolerance};
use norm_core::spectral_norm::parametrizations::{self, SpectralNormState, REGISTRATION_ITERATIONS};
use norm_core::spectral_norm::{check_n_power_iterations, SpectralNormGuards};
use norm_core::Result;
use tch::Tensor;

/// The parametrization API's spectral norm: its checked settings (a negative dim is
/// stored counted from the front).
#[derive(Clone, Debug, PartialEq)]
pub struct SpectralNormParametrization {
    settings: SpectralNormSettings,
    tolerance: Option<PowerIterationTolerance>,
    last_iterations: IterationCount,
}

impl SpectralNormParametrization {
    /// The checked dim, iteration count and eps.
    pub fn settings(&self) -> &SpectralNormSettings {
        &self.settings
    }

    /// The tolerance mode's setting (`None`: the fixed count).
    pub fn tolerance(&self) -> Option<&PowerIterationTolerance> {
        self.tolerance.as_ref()
    }

    /// Power iterations run by the last weight computation: `n_power_iterations` in training
    /// mode without a tolerance, the count the tolerance needed with one, 0 in eval mode and
    /// for a 1-D weight; before any, those of registration (its 15, or the count
    /// `converge_at_registration` needed, plus `register_parametrization`'s evaluation).
    pub fn last_iterations(&self) -> usize {
        self.last_iterations.get()
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

    /// One evaluation of the weight on `state` (PyTorch's, or in tolerance mode), recording
    /// the iterations it ran.
    fn forward(
        &self,
        state: &mut SpectralNormState<TchBackend>,
        weight: &Tensor,
        train: bool,
        guards: &SpectralNormGuards,
        layer: &str,
    ) -> Result<(Tensor, Option<Tensor>, usize)> {
        let out = match &self.tolerance {
            Some(tolerance) => power_iteration::parametrizations_forward_with_sigma::<TchBackend>(
                state, weight, train, tolerance, guards, layer,
            )?,
            None => {
                let (weight, sigma) = state.forward_with_sigma(weight, train, guards, layer)?;
                let ran = if train && state.u.is_some() { state.n_power_iterations } else { 0 };
                (weight, sigma, ran)
            }
        };
        self.last_iterations.set(out.2);
        Ok(out)
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

    /// Errors, in PyTorch's order: a dim outside `[-ndim, ndim)`; `n_power_iterations <= 0`;
    /// then norm's: an invalid tolerance, `converge_at_registration` without one (or with a
    /// `max_iterations` below the 15 registration iterations).
    fn register(
        weight: &Tensor,
        options: SpectralNormOptions,
        context: RegisterContext,
    ) -> Result<(Self, Vec<NewEntry>)> {
        let dim = options.dim.unwrap_or(context.default_spectral_norm_dim);
        // norm's own checks, before anything is drawn (PyTorch's come first where they fail).
        if let Ok(n) = check_n_power_iterations(options.n_power_iterations) {
            if parametrizations::check_dim(dim, weight.dim()).is_ok() {
                options.check_extensions(n)?;
            }
        }
        let (mut state, registration_iterations) = match (options.converge_at_registration, &options.tolerance) {
            (true, Some(tolerance)) => power_iteration::parametrizations_register_to_tolerance::<TchBackend>(
                weight,
                options.n_power_iterations,
                dim,
                options.eps,
                tolerance,
                options.draw(),
            )?,
            _ => {
                let state = SpectralNormState::<TchBackend>::new_with(
                    weight,
                    options.n_power_iterations,
                    dim,
                    options.eps,
                    options.draw(),
                )?;
                let ran = if state.u.is_some() { REGISTRATION_ITERATIONS } else { 0 };
                (state, ran)
            }
        };
        let settings =
            SpectralNormSettings { dim: state.dim, n_power_iterations: state.n_power_iterations, eps: state.eps };
        let parametrization = SpectralNormParametrization {
            settings,
            tolerance: options.tolerance,
            last_iterations: IterationCount::new(0),
        };
        // register_parametrization(unsafe=False) evaluates the parametrization once.
        let no_guards = SpectralNormGuards::default();
        let forward_iterations =
            tch::no_grad(|| parametrization.forward(&mut state, weight, context.training, &no_guards, ""))?.2;
        parametrization.last_iterations.set(registration_iterations + forward_iterations);
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
        let (weight, sigma, _) = self.forward(&mut self.state(entries)?, &entries.plain, train, guards, layer)?;
        Ok((weight, sigma))
    }
}
