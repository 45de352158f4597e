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
//!
//! Opt-in (see [`SpectralNormOptions`]): tolerance mode ([`norm_core::power_iteration`]),
//! a per-layer seed for `u`, `v` ([`norm_core::seeded_start`]) and `converge_at_registration`,
//! which removes the eval-before-training trap.

use super::iteration_count::IterationCount;
use super::seeded_draw::draw_from;
use super::{Entries, NewEntry, RegisterContext, RemoveRule, Reparametrization};
use crate::backend::TchBackend;
use crate::scheme::{Scheme, Suffix};
use norm_core::power_iteration::{self, PowerIterationTolerance};
use norm_core::seeded_start::SeededNormal;
use norm_core::spectral_norm::{check_n_power_iterations, hooks, SpectralNormGuards};
use norm_core::{Backend, Result};
use tch::Tensor;

/// Options of `spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None)`,
/// for both APIs, plus norm's opt-in extensions (all off by default: PyTorch's bits).
///
/// **Tolerance mode** (`tolerance: Some(..)`, [`norm_core::power_iteration`]): a training-mode
/// weight computation runs at least `n_power_iterations` of the API's own step, then
/// continues until `bound ≤ tolerance · |σ|` or `max_iterations` ran, with
/// `bound = sqrt((‖W v − σ u‖² + ‖Wᵀ u − σ v‖²) / (‖u‖² + ‖v‖²))` (some singular value of
/// `W_mat` lies within `bound` of σ). The count is read with `last_iterations()`; running `k`
/// iterations gives the same bits as the fixed mode with `n_power_iterations = k`.
///
/// **Seeded warm start** (`seed: Some(s)`, [`norm_core::seeded_start`]): `u`, `v` drawn from a
/// private splitmix64 → Box–Muller stream of `s` (float64 on the host, cast to the weight's
/// dtype, the same on every device), not from the global generator, which is left untouched.
/// `converge_at_registration` (needs `tolerance`) iterates to the tolerance at registration,
/// so eval before any training forward uses converged vectors (the hook API otherwise uses
/// its random draws; the parametrization API continues its 15 registration iterations).
///
/// ```
/// use norm_tch::layers::{linear, spectral_norm, LinearConfig, PowerIterationTolerance, SpectralNormOptions};
/// use tch::nn::ModuleT;
/// # fn main() -> norm_tch::Result<()> {
/// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
/// let fc = linear(&(vs.root() / "fc"), 32, 16, LinearConfig::default())?;
/// let options = SpectralNormOptions {
///     tolerance: Some(PowerIterationTolerance { tolerance: 1e-4, max_iterations: 500 }),
///     seed: Some(42),
///     converge_at_registration: true,
///     ..Default::default()
/// };
/// let fc = spectral_norm(&vs, fc, options)?;
/// assert!(fc.last_iterations() > 1); // registration iterated to the tolerance
/// let _ = fc.forward_t(&tch::Tensor::ones([2, 32], (tch::Kind::Float, tch::Device::Cpu)), true);
/// let est = fc.sigma()?.expect("a forward ran");
/// assert!(fc.last_iterations() >= 1 && est.bound <= 2e-4 * est.sigma); // float32 rounding aside, ≤ 1e-4
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralNormOptions {
    /// Power iterations per training forward (default 1; must be positive). In tolerance
    /// mode: the least number per training forward.
    pub n_power_iterations: i64,
    /// `eps` of the normalizations (default 1e-12).
    pub eps: f64,
    /// The dim of the output channels; `None`: 1 for ConvTranspose, else 0.
    pub dim: Option<i64>,
    /// Opt-in tolerance mode (see above); `None` (default): the fixed count, PyTorch's.
    pub tolerance: Option<PowerIterationTolerance>,
    /// Opt-in per-layer seed of `u`, `v` (see above); `None` (default): the global generator.
    pub seed: Option<u64>,
    /// Iterate to `tolerance` at registration (default false; needs `tolerance`).
    pub converge_at_registration: bool,
}

impl Default for SpectralNormOptions {
    fn default() -> Self {
        SpectralNormOptions {
            n_power_iterations: 1,
            eps: 1e-12,
            dim: None,
            tolerance: None,
            seed: None,
            converge_at_registration: false,
        }
    }
}

impl SpectralNormOptions {
    /// The checks of the extensions, after PyTorch's (`n_power_iterations` checked positive):
    /// a valid tolerance, and `converge_at_registration` only with one.
    pub(super) fn check_extensions(&self, n_power_iterations: usize) -> Result<()> {
        if let Some(tolerance) = &self.tolerance {
            tolerance.validate(n_power_iterations)?;
        } else if self.converge_at_registration {
            return Err(norm_core::Error::invalid(
                "converge_at_registration",
                true,
                "a tolerance to converge to (SpectralNormOptions::tolerance)",
            ));
        }
        Ok(())
    }

    /// The draw of registration: the seeded stream, or the global generator (PyTorch's).
    pub(super) fn draw(&self) -> impl FnMut(&Tensor, usize) -> Result<Tensor> {
        let mut stream = self.seed.map(SeededNormal::new);
        move |like: &Tensor, n: usize| match stream.as_mut() {
            Some(stream) => draw_from(stream, like, n),
            None => TchBackend::normal(like, &[n], 0.0, 1.0),
        }
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
#[derive(Clone, Debug, PartialEq)]
pub struct SpectralNormHook {
    settings: SpectralNormSettings,
    tolerance: Option<PowerIterationTolerance>,
    last_iterations: IterationCount,
}

impl SpectralNormHook {
    /// The checked dim, iteration count and eps.
    pub fn settings(&self) -> &SpectralNormSettings {
        &self.settings
    }

    /// The tolerance mode's setting (`None`: the fixed count).
    pub fn tolerance(&self) -> Option<&PowerIterationTolerance> {
        self.tolerance.as_ref()
    }

    /// Power iterations run by the last weight computation: `n_power_iterations` in training
    /// mode without a tolerance, the count the tolerance needed with one, 0 in eval mode;
    /// before any, those of registration (0 unless `converge_at_registration`).
    pub fn last_iterations(&self) -> usize {
        self.last_iterations.get()
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

    /// Errors: a negative dim (PyTorch's permute rejects it) or one past the weight's rank;
    /// then norm's: an invalid tolerance, `converge_at_registration` without one.
    fn register(
        weight: &Tensor,
        options: SpectralNormOptions,
        context: RegisterContext,
    ) -> Result<(Self, Vec<NewEntry>)> {
        let n_power_iterations = check_n_power_iterations(options.n_power_iterations)?;
        let dim = hooks::check_dim(options.dim.unwrap_or(context.default_spectral_norm_dim), weight.dim())?;
        options.check_extensions(n_power_iterations)?;
        let (mut u, mut v) = hooks::initial_u_v_with::<TchBackend>(weight, dim, options.eps, options.draw())?;
        let mut registration_iterations = 0;
        if let (true, Some(tolerance)) = (options.converge_at_registration, &options.tolerance) {
            registration_iterations = power_iteration::hooks_converge::<TchBackend>(
                weight,
                &mut u,
                &mut v,
                dim,
                n_power_iterations,
                options.eps,
                tolerance,
            )?;
        }
        let hook = SpectralNormHook {
            settings: SpectralNormSettings { dim, n_power_iterations, eps: options.eps },
            tolerance: options.tolerance,
            last_iterations: IterationCount::new(registration_iterations),
        };
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
        if let Some(tolerance) = &self.tolerance {
            let (weight, sigma, iterations) = power_iteration::hooks_compute_weight_and_sigma::<TchBackend>(
                &entries.plain,
                &mut u,
                &mut v,
                dim,
                n_power_iterations,
                eps,
                tolerance,
                train,
                guards,
                layer,
            )?;
            self.last_iterations.set(iterations);
            return Ok((weight, Some(sigma)));
        }
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
        self.last_iterations.set(if train { n_power_iterations } else { 0 });
        Ok((weight, Some(sigma)))
    }
}
