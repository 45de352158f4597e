// torch.optim.Adam's foreach path, _multi_tensor_adam (capturable=False, float
// hyper-parameters, `step` float32 CPU tensors), for one (device, dtype) group: the same
// ATen _foreach_* calls in the same order, with Python's scalar arithmetic in doubles
// (bias corrections with C pow as Python's `**`), the Scalar overloads where Python passes
// a float and the ScalarList overloads where it passes a list of floats. The step counters
// are incremented by the caller (norm-core's Adam::step); `steps` holds the new values.
// On CPU ATen runs each _foreach_ op as a loop of the per-tensor op; on CUDA its
// multi-tensor kernels. norm-core's multi_tensor_update is the same sequence composed
// from single-tensor ops; tests/adam_paths.rs checks both give the same bits on CPU.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <cmath>
#include <vector>

#include "adam_hyper.h"
#include "guarded.h"

namespace {
std::vector<at::Tensor> list(at::Tensor* const* ts, int n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(*ts[i]);  // handles on the same TensorImpl
  return out;
}
}  // namespace

extern "C" {

// max_exp_avg_sqs is null without AMSGrad, else n handles.
int norm_adam_foreach(at::Tensor* const* params_in, at::Tensor* const* grads_in, at::Tensor* const* exp_avgs_in,
                      at::Tensor* const* exp_avg_sqs_in, at::Tensor* const* max_exp_avg_sqs_in, const double* steps,
                      int n, const NormAdamHyper* hyper) {
  return guarded([&] {
    c10::NoGradGuard no_grad;
    if (n == 0) return;
    const NormAdamHyper& h = *hyper;
    const bool amsgrad = max_exp_avg_sqs_in != nullptr;
    std::vector<at::Tensor> params = list(params_in, n);
    std::vector<at::Tensor> grads = list(grads_in, n);
    std::vector<at::Tensor> exp_avgs = list(exp_avgs_in, n);
    std::vector<at::Tensor> exp_avg_sqs = list(exp_avg_sqs_in, n);

    if (h.maximize) grads = at::_foreach_neg(grads);
    if (h.weight_decay != 0) {
      if (h.decoupled_weight_decay) {
        at::_foreach_mul_(params, at::Scalar(1 - h.lr * h.weight_decay));
      } else if (h.maximize) {
        // Python reuses the negated gradients' memory: in place.
        at::_foreach_add_(grads, params, at::Scalar(h.weight_decay));
      } else {
        grads = at::_foreach_add(grads, params, at::Scalar(h.weight_decay));
      }
    }
    at::_foreach_lerp_(exp_avgs, grads, at::Scalar(1 - h.beta1));
    at::_foreach_mul_(exp_avg_sqs, at::Scalar(h.beta2));
    at::_foreach_addcmul_(exp_avg_sqs, grads, grads, at::Scalar(1 - h.beta2));
    grads.clear();

    std::vector<at::Scalar> step_size, bias_correction2_sqrt;
    step_size.reserve(n);
    bias_correction2_sqrt.reserve(n);
    for (int i = 0; i < n; ++i) {
      const double bias_correction1 = 1 - std::pow(h.beta1, steps[i]);
      const double bias_correction2 = 1 - std::pow(h.beta2, steps[i]);
      step_size.emplace_back((h.lr / bias_correction1) * -1);
      bias_correction2_sqrt.emplace_back(std::pow(bias_correction2, 0.5));
    }

    std::vector<at::Tensor> exp_avg_sq_sqrt;
    if (amsgrad) {
      std::vector<at::Tensor> max_exp_avg_sqs = list(max_exp_avg_sqs_in, n);
      at::_foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs);
      exp_avg_sq_sqrt = at::_foreach_sqrt(max_exp_avg_sqs);
    } else {
      exp_avg_sq_sqrt = at::_foreach_sqrt(exp_avg_sqs);
    }
    at::_foreach_div_(exp_avg_sq_sqrt, at::ArrayRef<at::Scalar>(bias_correction2_sqrt));
    at::_foreach_add_(exp_avg_sq_sqrt, at::Scalar(h.eps));
    at::_foreach_addcdiv_(params, exp_avgs, exp_avg_sq_sqrt, at::ArrayRef<at::Scalar>(step_size));
  });
}

}  // extern "C"
