//! Operator-norm normalization (opt-in, norm's own; no PyTorch function): `weight =
//! weight_orig / σ_op`, where `σ_op = max_{‖x‖=1} ‖A x‖₂` is the operator norm of the layer's
//! convolution `A` ([`ConvOperator`]: stride, padding, dilation, groups, circular padding) on
//! one input of the spatial size the user gives, estimated by power iteration on `A` itself
//! rather than on the reshaped kernel (which only gives a lower bound, pytorch/pytorch#99149).
//!
//! - Registration: `weight` becomes `weight_orig` (the same tensor); the buffers
//!   `weight_op_v` (`[1, C_in, *S_in]`) and `weight_op_u` (`[1, C_out, *S_out]`) come from
//!   [`operator_norm`](crate::operator_norm::operator_norm)'s float64 power iteration, started
//!   from the layer's own `seed` (splitmix64; the global generator is not touched) and run to
//!   the registration's tolerance (a warm start: eval mode is meaningful at once), then stored
//!   in the weight's dtype.
//! - Training forward: `n_power_iterations` times, under no_grad, in the weight's dtype:
//!   `v = normalize(Aᵀ u, eps)`, `u = normalize(A v, eps)` (`normalize(x) = x / max(‖x‖, eps)`,
//!   PyTorch's spectral-norm order), written into the buffers in place; then, with autograd,
//!   `σ = ⟨u, A(weight_orig) v⟩` (clones of `u`, `v`, as constants, as PyTorch's spectral norm
//!   treats its vectors), so `∂weight/∂weight_orig` includes the derivative of σ.
//! - Eval: `σ = ⟨u, A(weight_orig) v⟩` from the stored vectors, without iterating.
//!
//! `σ = ⟨u, A v⟩ ≤ σ_op` for unit `u`, `v`, so the normalized layer's operator norm
//! `σ_op / σ` is at least 1 and exceeds it by the relative error of the estimate;
//! [`OperatorNormalized::sigma`](crate::layers::OperatorNormalized::sigma) gives σ with a
//! residual bound on it.

use super::spectral_norm_hook::SpectralNormSettings;
use super::{Entries, NewEntry, RegisterContext, RemoveRule, Reparametrization};
use crate::backend::{tch_err, TchBackend};
use crate::operator_norm::{power_iteration, AsOperator, ConvMap, ConvOperator, OperatorNorm, OperatorNormOptions};
use crate::scheme::{Scheme, Suffix};
use crate::var_store::detached_copy;
use norm_core::spectral_norm::{self, check_n_power_iterations, SpectralNormGuards};
use norm_core::{Error, Result};
use tch::{Kind, Tensor};

/// Options of [`crate::layers::operator_norm`].
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorNormLayerOptions {
    /// The spatial size of one input (`[L]`, `[H, W]`, `[D, H, W]`; a Linear: `[]` or
    /// `[in_features]`): `A` is the convolution on inputs of this size.
    pub input_size: Vec<i64>,
    /// `A`/`Aᵀ` steps per training forward (positive; default 1).
    pub n_power_iterations: i64,
    /// `eps` of the per-forward normalizations (positive; default 1e-12, spectral norm's).
    pub eps: f64,
    /// The registration's float64 power iteration: its tolerance (`bound ≤ tolerance · σ`;
    /// default 1e-6), most iterations (default 10,000) and the seed of the start vector
    /// (default 0; give each layer its own for independent starts).
    pub registration: OperatorNormOptions,
}

impl OperatorNormLayerOptions {
    /// The defaults for inputs of spatial size `input_size`.
    pub fn new(input_size: impl Into<Vec<i64>>) -> Self {
        OperatorNormLayerOptions {
            input_size: input_size.into(),
            n_power_iterations: 1,
            eps: 1e-12,
            registration: OperatorNormOptions::default(),
        }
    }

    /// With the start vector's seed set to `seed`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.registration.seed = seed;
        self
    }
}

/// What [`OperatorNormReparam`]'s registration takes: the options and the layer's operator
/// ([`AsOperator`]; the registration itself only sees the weight).
#[derive(Debug)]
pub struct OperatorNormSetup {
    options: OperatorNormLayerOptions,
    operator: ConvOperator,
    weight_shape: Vec<i64>,
}

impl OperatorNormSetup {
    /// The operator of `layer` on inputs of `options.input_size`, with the options checked.
    ///
    /// Errors ([`Error::InvalidArgument`] naming the argument): `n_power_iterations <= 0`, an
    /// `eps` that is not positive and finite, a negative or non-finite registration tolerance,
    /// `max_iterations == 0`; then [`AsOperator::operator`]'s (an `input_size` of the wrong
    /// length, a non-positive entry, one giving an empty output; reflect or replicate
    /// padding, [`Error::Unsupported`]).
    pub fn for_layer<L: AsOperator>(layer: &L, options: OperatorNormLayerOptions) -> Result<Self> {
        check_options(&options)?;
        let operator = layer.operator(&options.input_size)?;
        Ok(OperatorNormSetup { options, operator, weight_shape: layer.weight().size() })
    }
}

fn check_options(options: &OperatorNormLayerOptions) -> Result<()> {
    check_n_power_iterations(options.n_power_iterations)?;
    if !(options.eps.is_finite() && options.eps > 0.0) {
        return Err(Error::invalid("eps", options.eps, "a positive finite number"));
    }
    let tolerance = options.registration.tolerance;
    if !(tolerance.is_finite() && tolerance >= 0.0) {
        return Err(Error::invalid("tolerance", tolerance, "a finite number >= 0"));
    }
    if options.registration.max_iterations == 0 {
        return Err(Error::invalid("max_iterations", 0, "at least 1"));
    }
    Ok(())
}

/// The operator-norm normalization, `weight = weight_orig / σ` with `σ = ⟨u, A(weight_orig) v⟩`
/// for the layer's convolution `A` on one input of the given size (see
/// [`crate::layers::operator_norm`] and `docs/operator_norm.md`): the operator's geometry, the
/// settings, and what the registration's power iteration found.
#[derive(Debug)]
pub struct OperatorNormReparam {
    operator: ConvMap,
    input_size: Vec<i64>,
    n_power_iterations: usize,
    eps: f64,
    registration: OperatorNorm,
}

/// `x / max(‖x‖, eps)` (`F.normalize` of the whole tensor).
fn normalize(x: &Tensor, eps: f64) -> Result<Tensor> {
    let norm = x.f_norm().and_then(|n| n.f_clamp_min(eps)).map_err(tch_err("norm"))?;
    x.f_div(&norm).map_err(tch_err("div"))
}

impl OperatorNormReparam {
    /// The operator's geometry and shapes ([`ConvMap::input_shape`]: `weight_op_v`'s,
    /// [`ConvMap::output_shape`]: `weight_op_u`'s).
    pub fn operator(&self) -> &ConvMap {
        &self.operator
    }

    /// The input's spatial size.
    pub fn input_size(&self) -> &[i64] {
        &self.input_size
    }

    /// `A`/`Aᵀ` steps per training forward and the eps of their normalizations (the `dim`
    /// field is unused: 0).
    pub fn settings(&self) -> SpectralNormSettings {
        SpectralNormSettings { dim: 0, n_power_iterations: self.n_power_iterations, eps: self.eps }
    }

    /// What the registration's float64 power iteration found (σ, iterations, bound, converged).
    pub fn registration(&self) -> &OperatorNorm {
        &self.registration
    }

    /// The plain weight as the operator's convolution weight (a Linear's `[out, in]` viewed
    /// as `[out, in, 1]`; differentiable).
    pub(crate) fn conv_weight(&self, weight: &Tensor) -> Result<Tensor> {
        weight.f_reshape(self.operator.weight_shape()).map_err(tch_err("reshape"))
    }

    /// `n_power_iterations` steps on the buffers `u`, `v`, in place, under no_grad.
    fn iterate(&self, weight: &Tensor, u: &Tensor, v: &Tensor) -> Result<()> {
        tch::no_grad(|| {
            let weight = weight.f_detach().map_err(tch_err("detach"))?;
            let (mut u, mut v) = (u.shallow_clone(), v.shallow_clone());
            for _ in 0..self.n_power_iterations {
                let next_v = normalize(&self.operator.adjoint(&weight, &u)?, self.eps)?;
                v.f_copy_(&next_v).map_err(tch_err("copy_"))?;
                let next_u = normalize(&self.operator.apply(&weight, &v)?, self.eps)?;
                u.f_copy_(&next_u).map_err(tch_err("copy_"))?;
            }
            Ok(())
        })
    }
}

impl Reparametrization for OperatorNormReparam {
    type Options = OperatorNormSetup;
    const SCHEME: Scheme = Scheme::OperatorNorm;
    const NORM: &'static str = "operator_norm";
    const REGISTERED_MARKERS: &'static [Suffix] = &[Suffix::WeightOrig, Suffix::WeightOpU, Suffix::WeightOpV];
    const PLAIN_IS_LAYER_WEIGHT: bool = true;
    /// `remove`: `weight_orig / σ` from the stored vectors, without iterating, into a new `weight`.
    const REMOVE: RemoveRule = RemoveRule { evaluates_in_mode: false, keeps_plain: false };

    fn check_options(setup: &OperatorNormSetup) -> Result<()> {
        check_options(&setup.options)
    }

    /// Runs the float64 power iteration from the seed to the tolerance; `u`, `v` in the
    /// weight's dtype. Errors: a weight of another shape than the setup's layer had
    /// ([`Error::ShapeMismatch`]); [`operator_norm`](crate::operator_norm::operator_norm)'s.
    fn register(weight: &Tensor, setup: OperatorNormSetup, _context: RegisterContext) -> Result<(Self, Vec<NewEntry>)> {
        if weight.size() != setup.weight_shape {
            return Err(Error::ShapeMismatch {
                what: "the weight registered (expected: the shape of the layer OperatorNormSetup was built for)".into(),
                expected: setup.weight_shape.iter().map(|&d| d as usize).collect(),
                got: weight.size().iter().map(|&d| d as usize).collect(),
            });
        }
        let options = setup.options;
        let (registration, pair) = power_iteration(&setup.operator, options.registration)?;
        let cast =
            |t: &Tensor| t.f_to_device(weight.device()).and_then(|t| t.f_to_kind(weight.kind())).map_err(tch_err("to"));
        let (u, v) = (cast(&pair.u)?, cast(&pair.v)?);
        let reparam = OperatorNormReparam {
            operator: setup.operator.map().clone(),
            input_size: options.input_size,
            n_power_iterations: check_n_power_iterations(options.n_power_iterations)?,
            eps: options.eps,
            registration,
        };
        let u = NewEntry { suffix: Suffix::WeightOpU, value: u, trainable: false };
        let v = NewEntry { suffix: Suffix::WeightOpV, value: v, trainable: false };
        Ok((reparam, vec![u, v]))
    }

    /// Spectral norm's guards: `sigma_floor` (`weight_orig / max(σ, floor)`) and checked mode
    /// (`weight_orig` finite, the divisor finite and non-zero, else [`Error::NonFinite`]).
    type Guards = SpectralNormGuards;

    /// With `train`: the power iterations on the buffers first (in place); then `σ = ⟨u,
    /// A(weight_orig) v⟩` with autograd and `weight_orig / σ`.
    fn weight_and_sigma(
        &self,
        entries: &Entries,
        train: bool,
        guards: &SpectralNormGuards,
        layer: &str,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let weight = &entries.plain;
        spectral_norm::check_weight::<TchBackend>(weight, guards, layer)?;
        let conv_weight = self.conv_weight(weight)?;
        let (u, v) = (entries.other(0)?, entries.other(1)?);
        let (u, v) = if train {
            self.iterate(&conv_weight, u, v)?;
            // Clones: the graph keeps them while later forwards update the buffers in place.
            (detached_copy(u)?, detached_copy(v)?)
        } else {
            (u.shallow_clone(), v.shallow_clone())
        };
        let av = self.operator.apply(&conv_weight, &v)?;
        let sigma = u.f_mul(&av).and_then(|t| t.f_sum(weight.kind())).map_err(tch_err("sigma"))?;
        let normalized = spectral_norm::divide_by_sigma::<TchBackend>(weight, &sigma, guards, layer)?;
        Ok((normalized, Some(sigma)))
    }
}

/// The residual bound of [`norm_core::spectral_norm::SigmaEstimate`] for the operator:
/// `sqrt((‖A v − σ u‖² + ‖Aᵀ u − σ v‖²) / (‖u‖² + ‖v‖²))`, in float64 from `weight` (the plain
/// weight) and the stored `u`, `v`: some singular value of `A` lies within it of `sigma`.
pub(crate) fn residual_bound(
    reparam: &OperatorNormReparam,
    weight: &Tensor,
    u: &Tensor,
    v: &Tensor,
    sigma: f64,
) -> Result<f64> {
    tch::no_grad(|| {
        let double = |t: &Tensor| t.f_to_kind(Kind::Double).map_err(tch_err("to_kind"));
        let w = double(&reparam.conv_weight(weight)?)?;
        let (u, v) = (double(u)?, double(v)?);
        let op = &reparam.operator;
        let sq = |t: &Tensor| -> Result<f64> {
            t.f_square().and_then(|s| s.f_sum(Kind::Double)).and_then(|s| s.f_double_value(&[])).map_err(tch_err("sum"))
        };
        let r1 = op.apply(&w, &v)?.f_sub(&u.f_mul_scalar(sigma).map_err(tch_err("mul"))?).map_err(tch_err("sub"))?;
        let r2 = op.adjoint(&w, &u)?.f_sub(&v.f_mul_scalar(sigma).map_err(tch_err("mul"))?).map_err(tch_err("sub"))?;
        Ok(((sq(&r1)? + sq(&r2)?) / (sq(&u)? + sq(&v)?)).sqrt())
    })
}
