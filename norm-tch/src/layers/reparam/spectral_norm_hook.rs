//! `torch.nn.utils.spectral_norm` (the hook API): `weight = weight_orig / σ`, with power
//! iteration before every training forward; the algorithm is
//! [`norm_core::spectral_norm::hooks`].
//!
//! Registration mirrors `SpectralNorm.apply`: `weight` becomes the parameter `weight_orig`
//! (the same tensor, so an optimizer holding it keeps working), and the buffers `weight_u`
//! (length h) and `weight_v` (length w) are drawn from the global generator, u first, and
//! normalized — no power iteration yet.
//!
//! PyTorch's traps, reproduced: a layer put in eval mode before any training forward uses
//! the random `u` and `v` as drawn; the weight PyTorch stores as `module.weight` is only
//! refreshed by a forward (norm-tch has no stale attribute: `weight_t(false)` recomputes,
//! without iterating). `remove_spectral_norm` computes the weight from the stored `u`, `v`
//! without iterating into a new `weight` parameter.

use super::{Entries, NewEntry, RegisterContext, RemoveRule, Reparametrization};
use crate::backend::TchBackend;
use crate::scheme::{Scheme, Suffix};
use norm_core::spectral_norm::{check_n_power_iterations, hooks, SpectralNormGuards};
use norm_core::Result;
use tch::Tensor;

/// Options of `spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None)`,
/// for both APIs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralNormOptions {
    /// Power iterations per training forward (default 1; must be positive).
    pub n_power_iterations: i64,
    /// `eps` of the normalizations (default 1e-12).
    pub eps: f64,
    /// The dim of the output channels; `None`: 1 for ConvTranspose, else 0.
    pub dim: Option<i64>,
}

impl Default for SpectralNormOptions {
    fn default() -> Self {
        SpectralNormOptions { n_power_iterations: 1, eps: 1e-12, dim: None }
    }
}

/// A registered spectral norm's checked settings (either API).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralNormSettings {
    /// The normalized dim, counted from the front.
    pub dim: usize,
    /// Power iterations per training forward (hooks) or training-mode access (parametrizations).
    pub n_power_iterations: usize,
    /// `eps` of the normalizations.
    pub eps: f64,
}

/// The hook API's spectral norm: its checked settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralNormHook {
    settings: SpectralNormSettings,
}

impl SpectralNormHook {
    /// The checked dim, iteration count and eps.
    pub fn settings(&self) -> &SpectralNormSettings {
        &self.settings
    }
}

impl Reparametrization for SpectralNormHook {
    type Options = SpectralNormOptions;
    const SCHEME: Scheme = Scheme::SpectralNormHooks;
    const NORM: &'static str = "spectral_norm";
    const REGISTERED_MARKERS: &'static [Suffix] = &[Suffix::WeightOrig];
    const PLAIN_IS_LAYER_WEIGHT: bool = true;
    const REMOVE: RemoveRule = RemoveRule { evaluates_in_mode: false, keeps_plain: false };
    const RECYCLES_WEIGHT: bool = true;

    /// `n_power_iterations <= 0` is PyTorch's first check (`ValueError`).
    fn check_options(options: &SpectralNormOptions) -> Result<()> {
        check_n_power_iterations(options.n_power_iterations).map(drop)
    }

    /// Errors: a negative dim (PyTorch's permute rejects it) or one past the weight's rank.
    fn register(
        weight: &Tensor,
        options: SpectralNormOptions,
        context: RegisterContext,
    ) -> Result<(Self, Vec<NewEntry>)> {
        let n_power_iterations = check_n_power_iterations(options.n_power_iterations)?;
        let dim = hooks::check_dim(options.dim.unwrap_or(context.default_spectral_norm_dim), weight.dim())?;
        let (u, v) = hooks::initial_u_v::<TchBackend>(weight, dim, options.eps)?;
        let hook = SpectralNormHook { settings: SpectralNormSettings { dim, n_power_iterations, eps: options.eps } };
        let u = NewEntry { suffix: Suffix::WeightU, value: u, trainable: false };
        let v = NewEntry { suffix: Suffix::WeightV, value: v, trainable: false };
        Ok((hook, vec![u, v]))
    }

    type Guards = SpectralNormGuards;

    /// `compute_weight(module, do_power_iteration=train)`: with `train`, runs the power
    /// iterations (updating `weight_u`/`weight_v` in place) first, as the forward pre-hook does.
    fn weight_and_sigma(
        &self,
        entries: &Entries,
        train: bool,
        guards: &SpectralNormGuards,
        layer: &str,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (mut u, mut v) = (entries.other(0)?.shallow_clone(), entries.other(1)?.shallow_clone());
        let SpectralNormSettings { dim, n_power_iterations, eps } = self.settings;
        let (weight, sigma) = hooks::compute_weight_and_sigma::<TchBackend>(
            &entries.plain,
            &mut u,
            &mut v,
            dim,
            n_power_iterations,
            eps,
            train,
            guards,
            layer,
        )?;
        Ok((weight, Some(sigma)))
    }
}
