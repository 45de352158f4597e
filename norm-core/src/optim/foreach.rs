//! Adam's foreach path, `torch.optim.adam._multi_tensor_adam` (capturable=False, float
//! hyper-parameters, `step` a float32 CPU tensor per parameter), op for op, for one
//! (device, dtype) group as `Optimizer._group_tensors_by_device_and_dtype` forms them:
//! ```text
//! grads = _foreach_neg(grads)                                   if maximize
//! _foreach_add_(steps, tensor(1.0), alpha=1.0)                  (done by Adam::step)
//! _foreach_mul_(params, 1 - lr * wd)                            if wd != 0 and decoupled
//! grads = _foreach_add(grads, params, alpha=wd)                 if wd != 0 otherwise
//!     (in place, _foreach_add_, when maximize: the same values)
//! _foreach_lerp_(exp_avgs, grads, 1 - beta1)
//! _foreach_mul_(exp_avg_sqs, beta2)
//! _foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
//! bc1 = [1 - beta1 ** step] ; bc2 = [1 - beta2 ** step]        (Python floats, per parameter)
//! step_size = [(lr / bc) * -1 for bc in bc1] ; bc2_sqrt = [bc ** 0.5 for bc in bc2]
//! _foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)               if amsgrad (then used below)
//! d = _foreach_sqrt(exp_avg_sqs)
//! _foreach_div_(d, bc2_sqrt)                                    (ScalarList)
//! _foreach_add_(d, eps)                                         (Scalar)
//! _foreach_addcdiv_(params, exp_avgs, d, step_size)             (ScalarList)
//! ```
//! [`multi_tensor_update`] composes these from the backend's single-tensor primitives, one
//! op over the whole list before the next, which is what ATen's `_foreach_*` ops do on a
//! device without foreach kernels (CPU: the "slow path", a loop of the per-tensor op). A
//! backend overrides [`AutodiffBackend::adam_foreach_update`] to call the real `_foreach_*`
//! ops (the tch backend does, so CUDA gets ATen's multi-tensor kernels and their bits).

use super::{bias_corrections, AdamConfig, AdamUpdate};
use crate::backend::AutodiffBackend;
use crate::error::Result;

/// The tensors of one (device, dtype) group of an Adam step, as `_multi_tensor_adam` and
/// `_fused_adam` receive them: handles sharing storage with the parameters and the state,
/// in parameter order.
#[derive(Debug)]
pub struct AdamGroup<B: AutodiffBackend> {
    /// The parameters (updated in place).
    pub params: Vec<B::Tensor>,
    /// Their gradients.
    pub grads: Vec<B::Tensor>,
    /// `state['exp_avg']` of each (updated in place).
    pub exp_avgs: Vec<B::Tensor>,
    /// `state['exp_avg_sq']` of each (updated in place).
    pub exp_avg_sqs: Vec<B::Tensor>,
    /// `state['max_exp_avg_sq']` of each with AMSGrad, empty without (updated in place).
    pub max_exp_avg_sqs: Vec<B::Tensor>,
    /// The already incremented float32 `state['step']` of each.
    pub steps: Vec<f32>,
}

/// `Optimizer._group_tensors_by_device_and_dtype`: the updates of one step split by the
/// parameter's (device, dtype), groups in order of first appearance, parameter order kept
/// within a group. (The order of the groups cannot change any bit: they share no tensor.)
pub fn group_by_device_and_dtype<B: AutodiffBackend>(updates: Vec<AdamUpdate<'_, B>>) -> Vec<AdamGroup<B>> {
    let mut keys: Vec<(B::Device, String)> = Vec::new();
    let mut groups: Vec<AdamGroup<B>> = Vec::new();
    for u in updates {
        let key = (B::device(u.param), B::dtype_name(u.param));
        let index = match keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                keys.push(key);
                groups.push(AdamGroup {
                    params: Vec::new(),
                    grads: Vec::new(),
                    exp_avgs: Vec::new(),
                    exp_avg_sqs: Vec::new(),
                    max_exp_avg_sqs: Vec::new(),
                    steps: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[index];
        g.params.push(B::shallow_clone(u.param));
        g.grads.push(u.grad);
        g.exp_avgs.push(B::shallow_clone(u.exp_avg));
        g.exp_avg_sqs.push(B::shallow_clone(u.exp_avg_sq));
        if let Some(m) = u.max_exp_avg_sq {
            g.max_exp_avg_sqs.push(B::shallow_clone(m));
        }
        g.steps.push(u.step);
    }
    groups
}

/// `_multi_tensor_adam`'s body for one group (after the step increment), composed from the
/// backend's single-tensor primitives in the op order above. This is
/// [`AutodiffBackend::adam_foreach_update`]'s default.
pub fn multi_tensor_update<B: AutodiffBackend>(config: &AdamConfig, group: AdamGroup<B>) -> Result<()> {
    let AdamConfig { lr, betas: (beta1, beta2), eps, weight_decay, amsgrad, maximize, decoupled_weight_decay, .. } =
        *config;
    let AdamGroup { mut params, grads, mut exp_avgs, mut exp_avg_sqs, mut max_exp_avg_sqs, steps } = group;
    if params.is_empty() {
        return Ok(());
    }
    let mut grads = if maximize { grads.iter().map(B::neg).collect::<Result<Vec<_>>>()? } else { grads };
    if weight_decay != 0.0 {
        if decoupled_weight_decay {
            for p in &mut params {
                B::mul_scalar_(p, 1.0 - lr * weight_decay)?;
            }
        } else {
            grads = grads.iter().zip(&params).map(|(g, p)| B::add_scaled(g, p, weight_decay)).collect::<Result<_>>()?;
        }
    }
    for (m, g) in exp_avgs.iter_mut().zip(&grads) {
        B::lerp_(m, g, 1.0 - beta1)?;
    }
    for s in &mut exp_avg_sqs {
        B::mul_scalar_(s, beta2)?;
    }
    for (s, g) in exp_avg_sqs.iter_mut().zip(&grads) {
        B::addcmul_(s, g, g, 1.0 - beta2)?;
    }
    drop(grads);

    let (step_size, bias_correction2_sqrt) = foreach_scalars(config, &steps);
    let second_moments = if amsgrad {
        for (x, s) in max_exp_avg_sqs.iter_mut().zip(&exp_avg_sqs) {
            B::maximum_(x, s)?;
        }
        &max_exp_avg_sqs
    } else {
        &exp_avg_sqs
    };
    let mut denoms = second_moments.iter().map(B::sqrt).collect::<Result<Vec<_>>>()?;
    for (d, c) in denoms.iter_mut().zip(&bias_correction2_sqrt) {
        *d = B::div_scalar(d, *c)?;
    }
    for d in &mut denoms {
        B::add_scalar_(d, eps)?;
    }
    for (((p, m), d), v) in params.iter_mut().zip(&exp_avgs).zip(&denoms).zip(&step_size) {
        B::addcdiv_(p, m, d, *v)?;
    }
    Ok(())
}

/// `_multi_tensor_adam`'s Python-float lists for the given float32 steps:
/// `step_size = [(lr / (1 - beta1 ** step)) * -1]` and `bias_correction2_sqrt =
/// [(1 - beta2 ** step) ** 0.5]`, in f64 with C `pow`.
pub fn foreach_scalars(config: &AdamConfig, steps: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let (beta1, beta2) = config.betas;
    steps
        .iter()
        .map(|&step| {
            let (bc1, bc2) = bias_corrections(beta1, beta2, step);
            // Python `(lr / bc) * -1`: a product with -1 is exactly the negation.
            (-(config.lr / bc1), bc2.powf(0.5))
        })
        .unzip()
}
