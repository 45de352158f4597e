//! Adam, op for op as `torch.optim.Adam`'s single-tensor path (`_single_tensor_adam`),
//! which is what PyTorch runs for CPU parameters.
//!
//! For each parameter `p` with a gradient `g` (parameters without one are skipped, as in
//! PyTorch), with `step` a float32 counter:
//! ```text
//! g        = -g                                   if maximize
//! step    += 1
//! p        = p * (1 - lr * wd)                    if wd != 0 and decoupled (AdamW)
//! g        = g + wd * p   (torch.add alpha=wd)    if wd != 0 otherwise
//! m.lerp_(g, 1 - beta1)
//! s.mul_(beta2).addcmul_(g, g, value=1 - beta2)
//! bc1 = 1 - beta1 ** step ; bc2 = 1 - beta2 ** step          (f64, C `pow`)
//! step_size = lr / bc1 ;    bc2_sqrt = bc2 ** 0.5            (f64, C `pow`)
//! smax = maximum(smax, s)                         if amsgrad (then used for s below)
//! denom = (sqrt(s) / bc2_sqrt).add_(eps)
//! p.addcdiv_(m, denom, value=-step_size)
//! ```
//! The scalar arithmetic is done in f64 exactly as Python does it, so a backend that
//! forwards each op to ATen reproduces PyTorch's parameters bit for bit. A step hands all
//! its updates to [`AutodiffBackend::adam_update_many`] at once, so a backend can batch
//! them where that provably keeps the bits (the tch backend packs tiny parameters).
//!
//! [`Adam::step`] is `Adam.step` with its `_init_group` and the dispatch of `adam()`: the
//! path (single-tensor, foreach or fused) is chosen per step from `foreach`/`fused` and the
//! devices of the parameters that have a gradient exactly as PyTorch chooses it
//! ([`super::AdamPath`]); the foreach path is [`super::multi_tensor_update`] (or the
//! backend's [`AutodiffBackend::adam_foreach_update`]), the fused path the backend's
//! [`AutodiffBackend::adam_fused_update`], each per (device, dtype) group.
//!
//! Validation mirrors the constructor's `ValueError`s (`Invalid learning rate: ...`) and its
//! `RuntimeError` for `fused=True, foreach=True`; at a parameter's first update with
//! `fused=True`, `_device_dtype_check_for_fused`. `capturable`/`differentiable` and tensor
//! hyper-parameters are not mirrored.

use super::foreach::group_by_device_and_dtype;
use super::path::{check_fused_param, AdamPath};
use crate::backend::AutodiffBackend;
use crate::error::{Error, Result};

/// Adam's hyper-parameters with PyTorch's defaults (`torch.optim.Adam`'s signature);
/// [`AdamConfig::adamw`] gives `torch.optim.AdamW`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate (default `1e-3`).
    pub lr: f64,
    /// Coefficients of the running averages of the gradient and its square (default `(0.9, 0.999)`).
    pub betas: (f64, f64),
    /// Added to the denominator (default `1e-8`).
    pub eps: f64,
    /// L2 penalty (default `0`).
    pub weight_decay: f64,
    /// Use the AMSGrad variant (default `false`).
    pub amsgrad: bool,
    /// Maximize the objective instead of minimizing it (default `false`).
    pub maximize: bool,
    /// Decoupled weight decay, as `torch.optim.AdamW` (default `false`).
    pub decoupled_weight_decay: bool,
    /// `foreach`: `Some(true)` runs `_multi_tensor_adam`, `Some(false)` forbids it, `None`
    /// (default) lets PyTorch's rule choose (see [`AdamPath::choose`]).
    pub foreach: Option<bool>,
    /// `fused`: `Some(true)` runs `_fused_adam` (`_fused_adamw_` with decoupled weight decay),
    /// `None` (default) and `Some(false)` do not. `Some(false)` also turns off the default
    /// choice of foreach, as in PyTorch.
    pub fused: Option<bool>,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled_weight_decay: false,
            foreach: None,
            fused: None,
        }
    }
}

impl AdamConfig {
    /// The default configuration with learning rate `lr`.
    pub fn with_lr(lr: f64) -> Self {
        AdamConfig { lr, ..Default::default() }
    }

    /// `torch.optim.AdamW(params, lr)`'s defaults: Adam's, with `weight_decay=1e-2` decoupled
    /// from the gradient (`decoupled_weight_decay=True`, what `AdamW.__init__` passes).
    ///
    /// ```
    /// use norm_core::optim::AdamConfig;
    /// let c = AdamConfig { betas: (0.8, 0.99), ..AdamConfig::adamw(2e-4) }; // HiFi-GAN's AdamW
    /// assert_eq!((c.weight_decay, c.decoupled_weight_decay), (1e-2, true));
    /// ```
    pub fn adamw(lr: f64) -> Self {
        AdamConfig { lr, weight_decay: 1e-2, decoupled_weight_decay: true, ..Default::default() }
    }

    /// The checks of `torch.optim.Adam.__init__` (NaN fails them, as in Python), in its
    /// order: the `ValueError`s of the hyper-parameters, then the `RuntimeError` for
    /// `fused=True` together with `foreach=True`.
    pub fn validate(&self) -> Result<()> {
        // Python's `not 0.0 <= x`: a comparison with NaN is false, so NaN is refused.
        let non_negative = |x: f64| x >= 0.0;
        let in_unit = |b: f64| (0.0..1.0).contains(&b);
        if !non_negative(self.lr) {
            return Err(Error::invalid("lr", self.lr, "a learning rate >= 0"));
        }
        if !non_negative(self.eps) {
            return Err(Error::invalid("eps", self.eps, "an epsilon >= 0"));
        }
        if !in_unit(self.betas.0) {
            return Err(Error::invalid("betas[0]", self.betas.0, "a beta in [0, 1)"));
        }
        if !in_unit(self.betas.1) {
            return Err(Error::invalid("betas[1]", self.betas.1, "a beta in [0, 1)"));
        }
        if !non_negative(self.weight_decay) {
            return Err(Error::invalid("weight_decay", self.weight_decay, "a weight_decay >= 0"));
        }
        if self.fused == Some(true) && self.foreach == Some(true) {
            return Err(Error::Unsupported {
                what: "`fused=True` with `foreach=True`".into(),
                reason: "`fused` and `foreach` cannot be `True` together".into(),
            });
        }
        Ok(())
    }
}

/// Per-parameter state, named as in `optimizer.state[p]`.
#[derive(Debug)]
pub struct AdamState<B: AutodiffBackend> {
    /// `state['step']`: a float32 counter, as PyTorch keeps it.
    pub step: f32,
    /// `state['exp_avg']`.
    pub exp_avg: B::Tensor,
    /// `state['exp_avg_sq']`.
    pub exp_avg_sq: B::Tensor,
    /// `state['max_exp_avg_sq']` (AMSGrad only).
    pub max_exp_avg_sq: Option<B::Tensor>,
}

/// The Adam optimizer over a list of parameter handles.
#[derive(Debug)]
pub struct Adam<B: AutodiffBackend> {
    config: AdamConfig,
    params: Vec<B::Tensor>,
    state: Vec<Option<AdamState<B>>>,
}

impl<B: AutodiffBackend> Adam<B> {
    /// An optimizer over `params` (handles sharing storage with the model's parameters).
    pub fn new(params: Vec<B::Tensor>, config: AdamConfig) -> Result<Self> {
        config.validate()?;
        let state = params.iter().map(|_| None).collect();
        Ok(Adam { config, params, state })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// The parameters, in the order they were given.
    pub fn params(&self) -> &[B::Tensor] {
        &self.params
    }

    /// The state of parameter `i`; `None` before its first update.
    pub fn state(&self, i: usize) -> Option<&AdamState<B>> {
        self.state.get(i).and_then(|s| s.as_ref())
    }

    /// `optimizer.zero_grad()`: sets every gradient to `None` (PyTorch's default, `set_to_none=True`).
    pub fn zero_grad(&mut self) -> Result<()> {
        for p in &mut self.params {
            B::clear_grad(p)?;
        }
        Ok(())
    }

    /// `optimizer.step()`: one update of every parameter that has a gradient, on the path
    /// PyTorch would take for them ([`AdamPath::choose`]).
    pub fn step(&mut self) -> Result<()> {
        let config = self.config;
        B::no_grad(|| {
            // `_init_group`: the parameters with a gradient; lazy state (after the fused
            // device/dtype check, which PyTorch makes before creating the state).
            let mut grads: Vec<Option<B::Tensor>> = Vec::with_capacity(self.params.len());
            for (param, state) in self.params.iter().zip(self.state.iter_mut()) {
                let grad = B::grad(param);
                if grad.is_some() && state.is_none() {
                    if config.fused == Some(true) {
                        check_fused_param::<B>(param)?;
                    }
                    *state = Some(AdamState {
                        step: 0.0,
                        exp_avg: B::zeros_like(param)?,
                        exp_avg_sq: B::zeros_like(param)?,
                        max_exp_avg_sq: if config.amsgrad { Some(B::zeros_like(param)?) } else { None },
                    });
                }
                grads.push(grad);
            }
            let with_grad = self.params.iter().zip(&grads).filter(|(_, g)| g.is_some());
            let path = AdamPath::choose(&config, with_grad.map(|(p, _)| B::device_type(p)));
            let mut updates = Vec::with_capacity(self.params.len());
            for ((param, state), grad) in self.params.iter_mut().zip(self.state.iter_mut()).zip(grads) {
                let (Some(grad), Some(state)) = (grad, state.as_mut()) else { continue };
                // `step_t += 1` on a float32 tensor, as PyTorch keeps it (every path).
                state.step += 1.0;
                updates.push(AdamUpdate {
                    step: state.step,
                    param,
                    grad,
                    exp_avg: &mut state.exp_avg,
                    exp_avg_sq: &mut state.exp_avg_sq,
                    max_exp_avg_sq: state.max_exp_avg_sq.as_mut(),
                });
            }
            match path {
                AdamPath::SingleTensor => B::adam_update_many(&config, updates),
                AdamPath::ForEach => {
                    group_by_device_and_dtype(updates).into_iter().try_for_each(|g| B::adam_foreach_update(&config, g))
                }
                AdamPath::Fused => {
                    group_by_device_and_dtype(updates).into_iter().try_for_each(|g| B::adam_fused_update(&config, g))
                }
            }
        })
    }

    /// The path the next [`Adam::step`] takes if every parameter has a gradient.
    pub fn path(&self) -> AdamPath {
        AdamPath::choose(&self.config, self.params.iter().map(B::device_type))
    }
}

/// One parameter's share of an Adam step, as handed to [`AutodiffBackend::adam_update_many`].
#[derive(Debug)]
pub struct AdamUpdate<'a, B: AutodiffBackend> {
    /// The already incremented float32 step counter.
    pub step: f32,
    /// The parameter, updated in place.
    pub param: &'a mut B::Tensor,
    /// Its gradient.
    pub grad: B::Tensor,
    /// `state['exp_avg']`, updated in place.
    pub exp_avg: &'a mut B::Tensor,
    /// `state['exp_avg_sq']`, updated in place.
    pub exp_avg_sq: &'a mut B::Tensor,
    /// `state['max_exp_avg_sq']` (AMSGrad only), updated in place.
    pub max_exp_avg_sq: Option<&'a mut B::Tensor>,
}

/// One parameter's update, the body of `_single_tensor_adam`'s loop, composed from the
/// backend's primitives; `step` is the already incremented float32 counter. This is
/// [`AutodiffBackend::adam_update`]'s default; a backend may run the same ops in one call.
pub fn single_tensor_update<B: AutodiffBackend>(
    config: &AdamConfig,
    step: f32,
    param: &mut B::Tensor,
    grad: B::Tensor,
    exp_avg: &mut B::Tensor,
    exp_avg_sq: &mut B::Tensor,
    max_exp_avg_sq: Option<&mut B::Tensor>,
) -> Result<()> {
    let AdamConfig { lr, betas: (beta1, beta2), eps, weight_decay, amsgrad, maximize, decoupled_weight_decay, .. } =
        *config;
    let mut grad = if maximize { B::neg(&grad)? } else { grad };
    if weight_decay != 0.0 {
        if decoupled_weight_decay {
            B::mul_scalar_(param, 1.0 - lr * weight_decay)?;
        } else {
            grad = B::add_scaled(&grad, param, weight_decay)?;
        }
    }
    B::lerp_(exp_avg, &grad, 1.0 - beta1)?;
    B::mul_scalar_(exp_avg_sq, beta2)?;
    B::addcmul_(exp_avg_sq, &grad, &grad, 1.0 - beta2)?;

    // Python: `step = _get_value(step_t)`, a float32 tensor's item() as a Python float.
    let (bias_correction1, bias_correction2) = bias_corrections(beta1, beta2, step);
    let step_size = lr / bias_correction1;
    let bias_correction2_sqrt = bias_correction2.powf(0.5);

    let second_moment = match (amsgrad, max_exp_avg_sq) {
        (true, Some(max_sq)) => {
            B::maximum_(max_sq, exp_avg_sq)?;
            &*max_sq
        }
        _ => &*exp_avg_sq,
    };
    let mut denom = B::div_scalar(&B::sqrt(second_moment)?, bias_correction2_sqrt)?;
    B::add_scalar_(&mut denom, eps)?;
    B::addcdiv_(param, exp_avg, &denom, -step_size)
}

/// `(1 - beta1 ** step, 1 - beta2 ** step)` in f64 with C `pow`, as Python computes them.
pub fn bias_corrections(beta1: f64, beta2: f64, step: f32) -> (f64, f64) {
    let step = step as f64;
    (1.0 - beta1.powf(step), 1.0 - beta2.powf(step))
}
