// ATen calls that tch's generated API does not expose with all their arguments:
// `add` with `alpha`, `addcmul_`/`addcdiv_` with `value`, and assignment of `.grad`
// (`p.grad = g` / `p.grad = None`). Each is the exact ATen entry point PyTorch's Python
// code reaches, so results are bit-identical to PyTorch's.
//
// Tensors are tch's handles (`at::Tensor*`). Every function returns 0 on success and 1
// on a C++ exception, whose message `norm_last_error()` then returns.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <cmath>
#include <exception>
#include <string>

namespace {
thread_local std::string last_error;

template <typename F>
int guarded(F f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return 1;
}
}  // namespace

extern "C" {

const char* norm_last_error() { return last_error.c_str(); }

// *out = torch.add(self, other, alpha=alpha)
int norm_add_alpha(at::Tensor** out, const at::Tensor* self, const at::Tensor* other, double alpha) {
  return guarded([&] { *out = new at::Tensor(at::add(*self, *other, alpha)); });
}

// *out = torch.linalg.vector_norm(self, ord, dims, keepdim)
int norm_linalg_vector_norm(at::Tensor** out, const at::Tensor* self, double ord, const int64_t* dims, int ndims, int keepdim) {
  return guarded([&] {
    *out = new at::Tensor(at::linalg_vector_norm(*self, ord, at::IntArrayRef(dims, ndims), keepdim != 0, std::nullopt));
  });
}

// *out = self.clone(memory_format=torch.contiguous_format)
int norm_clone_contiguous(at::Tensor** out, const at::Tensor* self) {
  return guarded([&] { *out = new at::Tensor(self->clone(at::MemoryFormat::Contiguous)); });
}

// self.addcmul_(tensor1, tensor2, value=value)
int norm_addcmul_(at::Tensor* self, const at::Tensor* tensor1, const at::Tensor* tensor2, double value) {
  return guarded([&] { self->addcmul_(*tensor1, *tensor2, value); });
}

// self.addcdiv_(tensor1, tensor2, value=value)
int norm_addcdiv_(at::Tensor* self, const at::Tensor* tensor1, const at::Tensor* tensor2, double value) {
  return guarded([&] { self->addcdiv_(*tensor1, *tensor2, value); });
}

// One parameter's update of torch.optim.Adam's _single_tensor_adam (CPU default), the
// same ATen calls in the same order as norm-core's single_tensor_update and PyTorch's
// Python loop, without a round trip through Rust per op. `step` is the incremented
// float32 counter as a double; bias corrections use C pow as Python's `**` does.
// max_exp_avg_sq may be null (no AMSGrad).
int norm_adam_update(at::Tensor* param, const at::Tensor* grad_in, at::Tensor* exp_avg, at::Tensor* exp_avg_sq,
                     at::Tensor* max_exp_avg_sq, double lr, double beta1, double beta2, double eps,
                     double weight_decay, int decoupled_weight_decay, int maximize, double step) {
  return guarded([&] {
    c10::NoGradGuard no_grad;
    at::Tensor grad = maximize ? grad_in->neg() : *grad_in;
    if (weight_decay != 0) {
      if (decoupled_weight_decay) {
        param->mul_(1 - lr * weight_decay);
      } else {
        grad = at::add(grad, *param, weight_decay);
      }
    }
    exp_avg->lerp_(grad, 1 - beta1);
    exp_avg_sq->mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    const double bias_correction1 = 1 - std::pow(beta1, step);
    const double bias_correction2 = 1 - std::pow(beta2, step);
    const double step_size = lr / bias_correction1;
    const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);
    const at::Tensor* second_moment = exp_avg_sq;
    if (max_exp_avg_sq != nullptr) {
      at::maximum_out(*max_exp_avg_sq, *max_exp_avg_sq, *exp_avg_sq);
      second_moment = max_exp_avg_sq;
    }
    at::Tensor denom = at::div(second_moment->sqrt(), bias_correction2_sqrt).add_(eps);
    param->addcdiv_(*exp_avg, denom, -step_size);
  });
}

// self.grad = grad
int norm_set_grad(const at::Tensor* self, const at::Tensor* grad) {
  return guarded([&] { self->mutable_grad() = *grad; });
}

// self.backward(gradient)
int norm_backward_with_grad(const at::Tensor* self, const at::Tensor* gradient) {
  return guarded([&] { self->backward(*gradient); });
}

// self.grad = None
int norm_clear_grad(const at::Tensor* self) {
  return guarded([&] { self->mutable_grad().reset(); });
}

}  // extern "C"

#include <ATen/Version.h>

extern "C" {
// ATen's CPU kernel capability ("AVX2", "AVX512", "DEFAULT", ...), as
// torch.backends.cpu.get_cpu_capability(). Returns a thread-local buffer.
const char* norm_cpu_capability() {
  thread_local std::string capability;
  capability = at::get_cpu_capability();
  return capability.c_str();
}
}  // extern "C"
