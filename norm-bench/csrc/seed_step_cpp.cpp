// The seed document's training step (data/seed_loop.py, loop 1) written directly against
// libtorch, making PyTorch's own sequence of ATen calls with no Python and no Rust: the
// floor of what any caller of these calls can reach. Adam is `_single_tensor_adam` as
// PyTorch runs it, one parameter at a time, its step counter a float32 tensor
// (`step_t += 1; step = step_t.item()`). norm-bench's `seed_loop_step_cpp` row times it
// beside PyTorch eager and norm (norm updates the three tiny parameters with ATen's
// scalar-lambda arithmetic and one shared sqrt_ call);
// tests/seed_step_cpp.rs checks its bits against norm's.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <cmath>

#include "guarded.h"  // norm-tch's: errors come back through norm_last_error()

namespace {
struct SeedStepCpp {
  at::Tensor params[3];  // weight_v, weight_g, bias: the optimizer's order
  at::Tensor step_t[3], exp_avg[3], exp_avg_sq[3];
  bool started[3] = {false, false, false};
  double lr;
};
}  // namespace

extern "C" {

// A model holding copies of weight_v, weight_g and bias (requiring grad) and a fresh
// Adam(lr) state.
int norm_bench_seed_cpp_new(void** out, const at::Tensor* v, const at::Tensor* g, const at::Tensor* bias, double lr) {
  return guarded([&] {
    auto* s = new SeedStepCpp();
    const at::Tensor* given[3] = {v, g, bias};
    for (int i = 0; i < 3; ++i) s->params[i] = given[i]->detach().clone().set_requires_grad(true);
    s->lr = lr;
    *out = s;
  });
}

void norm_bench_seed_cpp_free(void* state) { delete static_cast<SeedStepCpp*>(state); }

// One step: x = randn(10, 2) * r * 10 (the global generator); out = linear(x,
// _weight_norm(v, g, 0), bias); loss = 1 - out.mean(); zero_grad; backward; Adam step.
int norm_bench_seed_cpp_step(void* state, double r) {
  return guarded([&] {
    auto& s = *static_cast<SeedStepCpp*>(state);
    at::Tensor x = at::randn({10, 2}).mul(r).mul(10);
    at::Tensor weight = at::_weight_norm(s.params[0], s.params[1], 0);
    at::Tensor loss = at::rsub(at::linear(x, weight, s.params[2]).mean(), 1);
    for (auto& p : s.params) p.mutable_grad().reset();
    loss.backward();
    c10::NoGradGuard no_grad;
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    for (int i = 0; i < 3; ++i) {
      at::Tensor& param = s.params[i];
      const at::Tensor grad = param.grad();
      if (!grad.defined()) continue;
      if (!s.started[i]) {
        s.step_t[i] = at::zeros({}, at::kFloat);
        s.exp_avg[i] = at::zeros_like(param, at::MemoryFormat::Preserve);
        s.exp_avg_sq[i] = at::zeros_like(param, at::MemoryFormat::Preserve);
        s.started[i] = true;
      }
      s.step_t[i].add_(1);
      s.exp_avg[i].lerp_(grad, 1 - beta1);
      s.exp_avg_sq[i].mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      const double step = s.step_t[i].item<float>();
      const double bias_correction1 = 1 - std::pow(beta1, step);
      const double bias_correction2 = 1 - std::pow(beta2, step);
      const double step_size = s.lr / bias_correction1;
      const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);
      at::Tensor denom = at::div(s.exp_avg_sq[i].sqrt(), bias_correction2_sqrt).add_(eps);
      param.addcdiv_(s.exp_avg[i], denom, -step_size);
    }
  });
}

// *out = a detached copy of parameter i (0 weight_v, 1 weight_g, 2 bias).
int norm_bench_seed_cpp_param(void* state, int i, at::Tensor** out) {
  return guarded([&] {
    auto& s = *static_cast<SeedStepCpp*>(state);
    *out = new at::Tensor(s.params[i].detach().clone());
  });
}

}  // extern "C"
