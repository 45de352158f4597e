//! σ you can read (issue 11, item 2): a spectral-norm layer's last σ and the residual bound
//! of [`SigmaEstimate`], `sqrt((‖W v − σ u‖² + ‖Wᵀ u − σ v‖²) / (‖u‖² + ‖v‖²))`.
//!
//! The forward keeps a detached handle on the σ tensor it already computed (no op is added
//! to PyTorch's graph and no bit changes); the bound is computed only when asked, under
//! no_grad, in float64 from the current `W_mat` (a reshape of the plain weight, not the
//! normalized weight) and the stored `u`, `v`.

use super::normalizations::{ParametrizedSpectralNorm, SpectralNorm};
use super::normalized::Normalized;
use super::reparam::Reparametrization;
use super::WeightedLayer;
use crate::backend::{tch_err, TchBackend};
use norm_core::spectral_norm::{hooks, parametrizations, SigmaEstimate};
use norm_core::Result;
use tch::{Kind, Tensor};

/// The bound of [`SigmaEstimate`] for `W_mat`, `u`, `v` and `sigma`, in float64.
pub fn residual_bound(w_mat: &Tensor, u: &Tensor, v: &Tensor, sigma: f64) -> Result<f64> {
    tch::no_grad(|| -> std::result::Result<f64, tch::TchError> {
        let w = w_mat.f_to_kind(Kind::Double)?;
        let u = u.f_to_kind(Kind::Double)?;
        let v = v.f_to_kind(Kind::Double)?;
        let r1 = w.f_mv(&v)?.f_sub(&u.f_mul_scalar(sigma)?)?;
        let r2 = w.f_transpose(0, 1)?.f_mv(&u)?.f_sub(&v.f_mul_scalar(sigma)?)?;
        let sq = |t: &Tensor| -> std::result::Result<f64, tch::TchError> { t.f_dot(t)?.f_double_value(&[]) };
        Ok(((sq(&r1)? + sq(&r2)?) / (sq(&u)? + sq(&v)?)).sqrt())
    })
    .map_err(tch_err("sigma bound"))
}

impl<L: WeightedLayer, R: Reparametrization> Normalized<L, R> {
    /// The σ tensor of the last weight computation (detached), if it had one.
    pub(super) fn last_sigma_value(&self) -> Result<Option<f64>> {
        let guard = self.last_sigma.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(|s| s.f_double_value(&[]).map_err(tch_err("sigma"))).transpose()
    }
}

impl<L: WeightedLayer> SpectralNorm<L> {
    /// The last σ estimate and its error bound ([`SigmaEstimate`]); `None` before the first
    /// weight computation (forward, [`Normalized::weight_t`], fold). The bound is computed now,
    /// from the current `weight_orig`, `weight_u`, `weight_v`.
    ///
    /// ```
    /// use norm_tch::layers::{linear, spectral_norm, LinearConfig, SpectralNormOptions};
    /// use tch::nn::{ModuleT, VarStore};
    /// # fn main() -> norm_tch::Result<()> {
    /// let vs = VarStore::new(tch::Device::Cpu);
    /// let fc = linear(&(vs.root() / "fc"), 6, 4, LinearConfig::default())?;
    /// let fc = spectral_norm(&vs, fc, SpectralNormOptions { n_power_iterations: 50, ..Default::default() })?;
    /// assert!(fc.sigma()?.is_none());
    /// let _ = fc.forward_t(&tch::Tensor::ones([2, 6], (tch::Kind::Float, tch::Device::Cpu)), true);
    /// let est = fc.sigma()?.expect("a forward ran");
    /// assert!(est.sigma > 0.0 && est.bound < 1e-3 * est.sigma);
    /// # Ok(()) }
    /// ```
    pub fn sigma(&self) -> Result<Option<SigmaEstimate>> {
        let Some(sigma) = self.last_sigma_value()? else { return Ok(None) };
        let w_mat = hooks::weight_to_matrix::<TchBackend>(self.weight_orig(), self.dim())?;
        let bound = residual_bound(&w_mat, self.weight_u(), self.weight_v(), sigma)?;
        Ok(Some(SigmaEstimate { sigma, bound }))
    }
}

impl<L: WeightedLayer> ParametrizedSpectralNorm<L> {
    /// The last σ estimate and its error bound ([`SigmaEstimate`]); `None` before the first
    /// weight computation after registration, and always for a 1-D weight (no σ). The bound
    /// is computed now, from the current `original`, `_u`, `_v`.
    pub fn sigma(&self) -> Result<Option<SigmaEstimate>> {
        let Some((u, v)) = self.u_v() else { return Ok(None) };
        let Some(sigma) = self.last_sigma_value()? else { return Ok(None) };
        let dim = self.reparametrization().settings().dim;
        let w_mat = parametrizations::weight_to_matrix::<TchBackend>(self.original(), dim)?;
        let bound = residual_bound(&w_mat, u, v, sigma)?;
        Ok(Some(SigmaEstimate { sigma, bound }))
    }
}

impl<L: WeightedLayer> SpectralNorm<L> {
    /// Power iterations the last weight computation ran (tolerance mode: the count the
    /// tolerance needed; see [`SpectralNormHook::last_iterations`](super::reparam::SpectralNormHook::last_iterations)).
    pub fn last_iterations(&self) -> usize {
        self.reparametrization().last_iterations()
    }
}

impl<L: WeightedLayer> ParametrizedSpectralNorm<L> {
    /// Power iterations the last weight computation ran (tolerance mode: the count the
    /// tolerance needed; see
    /// [`SpectralNormParametrization::last_iterations`](super::reparam::SpectralNormParametrization::last_iterations)).
    pub fn last_iterations(&self) -> usize {
        self.reparametrization().last_iterations()
    }
}
