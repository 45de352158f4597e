//! Spectral-norm arithmetic of the conversions, all of it norm-core's
//! ([`norm_core::spectral_norm`]) on the tch backend, so σ's formula lives once:
//!
//! - folding: `remove_spectral_norm` (hooks, `σ = dot(u, W_mat v)`) or the parametrization's
//!   eval-mode evaluation (`σ = vdot(u, W_mat v)`), `weight_orig / σ`, from the stored `u`, `v`;
//! - the legacy upgrade: `SpectralNormLoadStateDictPreHook` (spectral_norm.py) for a
//!   version-None state dict;
//! - seeded `u`, `v`: registration's draws (`SpectralNorm.apply`, `_SpectralNorm.__init__`)
//!   from a private generator seeded like `torch.manual_seed`.

use super::ConvertOptions;
use crate::backend::{tch_err, TchBackend};
use crate::ffi::CpuGenerator;
use norm_core::spectral_norm::{check_n_power_iterations, hooks, parametrizations};
use norm_core::Result;
use tch::Tensor;

/// `weight_orig / σ` from the stored `u`, `v`, no power iteration: the hook API's
/// `remove_spectral_norm` or the parametrization API's eval-mode weight.
pub(super) fn fold_spectral(orig: &Tensor, u: &Tensor, v: &Tensor, dim: usize, parametrized: bool) -> Result<Tensor> {
    if parametrized {
        parametrizations::fold::<TchBackend>(orig, u, v, dim)
    } else {
        hooks::fold::<TchBackend>(orig, u, v, dim)
    }
}

/// `SpectralNormLoadStateDictPreHook` for a version-None state dict: the `v` that makes
/// `u = normalize(W v)` and `u·W v = σ`, `σ = (weight_orig / weight).mean()`, op for op.
pub(super) fn upgrade_legacy(orig: &Tensor, weight: &Tensor, u: &Tensor, dim: usize) -> Result<Tensor> {
    let e = |op| tch_err(op);
    let sigma = orig.f_div(weight).map_err(e("div"))?.f_mean(None).map_err(e("mean"))?;
    let w_mat = hooks::weight_to_matrix::<TchBackend>(orig, dim)?;
    // _solve_v_and_rescale: multi_dot([W.t().mm(W).pinverse(), W.t(), u.unsqueeze(1)]).squeeze(1)
    let pinv = w_mat.f_tr().map_err(e("t"))?.f_mm(&w_mat).map_err(e("mm"))?.f_pinverse(1e-15).map_err(e("pinverse"))?;
    let w_t = w_mat.f_tr().map_err(e("t"))?;
    let u_col = u.f_unsqueeze(1).map_err(e("unsqueeze"))?;
    let mut v = Tensor::f_linalg_multi_dot(&[pinv, w_t, u_col])
        .map_err(e("linalg_multi_dot"))?
        .f_squeeze_dim(1)
        .map_err(e("squeeze"))?;
    // v.mul_(target_sigma / torch.dot(u, torch.mv(weight_mat, v)))
    let factor = sigma.f_div(&hooks::sigma::<TchBackend>(&w_mat, u, &v)?).map_err(e("div"))?;
    drop(v.f_mul_(&factor).map_err(e("mul_"))?);
    Ok(v)
}

/// `u`, `v` as registration leaves them after `torch.manual_seed(seed)` (the generator
/// is shared by the layers of one conversion, in order): hooks draw u then v, normalized
/// ([`hooks::initial_u_v_with`]); parametrizations draw the same way and iterate 15 times
/// ([`parametrizations::SpectralNormState::new_with`]), then `n_power_iterations` more
/// when registered in training mode (`register_parametrization`'s evaluation).
pub(super) fn seeded_u_v(
    w: &Tensor,
    dim: usize,
    parametrized: bool,
    options: &ConvertOptions,
    generator: &mut CpuGenerator,
) -> Result<(Tensor, Tensor)> {
    let eps = options.spectral_eps;
    let w_cpu = w.f_to_device(tch::Device::Cpu).map_err(tch_err("to_device"))?;
    let draw = |like: &Tensor, n: usize| generator.normal(like, n as i64);
    if !parametrized {
        check_n_power_iterations(options.spectral_n_power_iterations)?;
        return hooks::initial_u_v_with::<TchBackend>(&w_cpu, dim, eps, draw);
    }
    let n = options.spectral_n_power_iterations;
    let mut state = parametrizations::SpectralNormState::<TchBackend>::new_with(&w_cpu, n, dim as i64, eps, draw)?;
    if options.spectral_registration_training {
        drop(state.forward(&w_cpu, true)?);
    }
    match (state.u, state.v) {
        (Some(u), Some(v)) => Ok((u, v)),
        _ => unreachable!("a weight of 2 or more dims has u and v"),
    }
}
