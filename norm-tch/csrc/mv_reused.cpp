// torch.mv(self, vec) when its value is already known: the spectral norm hook API's last
// power iteration computes `mv(W_mat, v)` under no_grad, and σ = dot(u, mv(W_mat, v))
// then asks for the same product of the same W_mat and the same v values (the clone
// PyTorch takes), which a deterministic kernel would give again bit for bit.
//
// norm_mv_reused returns that `product` with the autograd history PyTorch's own `mv`
// would have given it: the node is ATen's generated `MvBackward0` itself, set up as
// VariableType's mv kernel sets it up (next edges of self and vec, `vec` saved when self
// needs a gradient, `self` saved when vec does, both as inputs), created at the point where
// PyTorch creates it (so its sequence number orders it as PyTorch's). Its backward is
// derivatives.yaml's `self: grad.ger(vec.conj())`, `vec: self.conj().t().mv(grad)`: every
// gradient has PyTorch's bits. With grad mode off, or neither input requiring grad, the
// product comes back as it is, as mv's would.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/generated/Functions.h>
#include <torch/csrc/autograd/saved_variable.h>

#include "guarded.h"

extern "C" {

// *out = mv(self, vec), whose value the caller computed before as `product` (a 1-D
// tensor not requiring grad, with self's dtype and device and self.size(0) elements).
// The returned handle is `product`'s tensor, which now carries mv's history.
int norm_mv_reused(at::Tensor** out, const at::Tensor* self, const at::Tensor* vec, const at::Tensor* product) {
  return guarded([&] {
    TORCH_CHECK(self->dim() == 2 && vec->dim() == 1 && self->size(1) == vec->size(0),
                "mv_reused: expected a matrix and a vector of matching size, got self ", self->sizes(), " and vec ",
                vec->sizes());
    TORCH_CHECK(product->dim() == 1 && product->size(0) == self->size(0) &&
                    product->scalar_type() == self->scalar_type() && product->device() == self->device(),
                "mv_reused: the known product must be mv(self, vec)'s shape [", self->size(0), "], dtype ",
                self->scalar_type(), " and device ", self->device(), ", got ", product->sizes(), " ",
                product->scalar_type(), " on ", product->device());
    TORCH_CHECK(!product->requires_grad(), "mv_reused: the known product must not require grad (compute it under no_grad)");
    at::Tensor result = *product;
    const bool any_requires_grad = c10::GradMode::is_enabled() && (self->requires_grad() || vec->requires_grad());
    if (any_requires_grad) {
      using torch::autograd::generated::MvBackward0;
      auto grad_fn = std::shared_ptr<MvBackward0>(new MvBackward0(), torch::autograd::deleteNode);
      grad_fn->set_next_edges(torch::autograd::collect_next_edges(*self, *vec));
      if (grad_fn->should_compute_output(0)) grad_fn->vec_ = torch::autograd::SavedVariable(*vec, false);
      if (grad_fn->should_compute_output(1)) grad_fn->self_ = torch::autograd::SavedVariable(*self, false);
      torch::autograd::set_history(result, grad_fn);
    }
    *out = new at::Tensor(std::move(result));
  });
}

}  // extern "C"
