// torch.optim.Adam's fused path, _fused_adam, for one (device, dtype) group:
// torch._fused_adam_ (or torch._fused_adamw_ with decoupled weight decay) with PyTorch's
// arguments, grad_scale and found_inf None. PyTorch keeps `step` as a float32 tensor on the
// parameter's device and increments it with _foreach_add_(steps, 1) before the call; the
// caller (norm-core's Adam::step) has incremented norm's float32 counters, whose values
// `steps` holds, so the kernel gets float32 step tensors with the same values on the
// parameters' device. Works on every device ATen has the kernel for (CPU, CUDA, ...).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <vector>

#include "adam_hyper.h"
#include "guarded.h"

extern "C" {

// max_exp_avg_sqs is null without AMSGrad (PyTorch then passes an empty list), else n handles.
int norm_adam_fused(at::Tensor* const* params_in, at::Tensor* const* grads_in, at::Tensor* const* exp_avgs_in,
                    at::Tensor* const* exp_avg_sqs_in, at::Tensor* const* max_exp_avg_sqs_in, const double* steps, int n,
                    const NormAdamHyper* hyper) {
  return guarded([&] {
    c10::NoGradGuard no_grad;
    if (n == 0) return;
    const NormAdamHyper& h = *hyper;
    const bool amsgrad = max_exp_avg_sqs_in != nullptr;
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps;
    for (int i = 0; i < n; ++i) {
      params.push_back(*params_in[i]);
      grads.push_back(*grads_in[i]);
      exp_avgs.push_back(*exp_avgs_in[i]);
      exp_avg_sqs.push_back(*exp_avg_sqs_in[i]);
      if (amsgrad) max_exp_avg_sqs.push_back(*max_exp_avg_sqs_in[i]);
      state_steps.push_back(
          at::full({}, steps[i], at::TensorOptions().dtype(at::kFloat).device(params_in[i]->device())));
    }
    if (h.decoupled_weight_decay) {
      at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, h.lr, h.beta1, h.beta2,
                        h.weight_decay, h.eps, amsgrad, h.maximize != 0, std::nullopt, std::nullopt);
    } else {
      at::_fused_adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, h.lr, h.beta1, h.beta2,
                       h.weight_decay, h.eps, amsgrad, h.maximize != 0, std::nullopt, std::nullopt);
    }
  });
}

}  // extern "C"
