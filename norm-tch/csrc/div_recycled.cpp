// torch.div(self, other) for spectral norm's `weight_orig / σ`, written into the storage of
// the previous result when nothing else holds it any more.
//
// A fresh output of that division is a weight-sized allocation every forward; from 32 MiB
// up glibc serves it with mmap and unmaps it on free, so every forward page-faults the
// whole output in again (at 4096² float32 that costs several times the division itself).
// Here the caller keeps a private handle `slot` on the storage of the last result. When
// that storage is referenced by `slot` alone (no tensor, view, saved variable or cache
// holds the old weight: nothing can read it again), the division runs into it with
// `at::div_out`: the same structured kernel over the same operands in the same
// element order as `at::div`, and each element is one IEEE division by the same σ, so the
// values are bit-identical to a fresh `at::div`.
//
// The returned tensor is a new TensorImpl on that storage (version 0, no autograd meta,
// metadata changes allowed, as a fresh output) given the history PyTorch's `div` would
// give it: ATen's generated `DivBackward0` set up as VariableType's div.Tensor kernel does
// (next edges of self and other, `other` saved always, `self` saved when other needs a
// gradient, self's scalar type), created after the division as in VariableType (the
// division itself creates no node, so the sequence number is the one PyTorch's gives).
// Its backward is derivatives.yaml's `self: div_tensor_self_backward(grad, other,
// self.scalar_type())`, `other: div_tensor_other_backward(grad, self, other)`.
//
// Only where that reasoning holds: a CPU, strided, contiguous floating `self` divided by a
// 0-dim `other` of the same dtype, outside inference mode and without forward-mode grads;
// anything else is a plain `at::div` (and no slot is offered for it).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/generated/Functions.h>
#include <torch/csrc/autograd/saved_variable.h>

#include "guarded.h"

namespace {

// Whether `self / other` may be recycled: the case whose output layout and bits are
// fully determined above (see the file comment).
bool recyclable(const at::Tensor& self, const at::Tensor& other) {
  return self.device().is_cpu() && self.layout() == at::kStrided && self.is_contiguous() &&
         at::isFloatingType(self.scalar_type()) && other.dim() == 0 && other.device().is_cpu() &&
         other.layout() == at::kStrided && other.scalar_type() == self.scalar_type() &&
         !c10::InferenceMode::is_enabled() && !self.is_inference() && !other.is_inference() &&
         !self._fw_grad(0).defined() && !other._fw_grad(0).defined();
}

// Whether `slot` can take `self / other`'s result: the same sizes, dtype and device,
// contiguous from offset 0, and its storage referenced by `slot`'s TensorImpl alone,
// which `slot` alone references (no other tensor, view or saved variable holds it).
bool free_for(const at::Tensor& slot, const at::Tensor& self) {
  return slot.defined() && slot.use_count() == 1 && slot.weak_use_count() == 1 && slot.storage().use_count() == 1 &&
         slot.sizes() == self.sizes() && slot.scalar_type() == self.scalar_type() && slot.device() == self.device() &&
         slot.is_contiguous() && slot.storage_offset() == 0;
}

// A new TensorImpl on `t`'s storage: same sizes, strides and dtype, version 0, no autograd meta.
at::Tensor storage_alias(const at::Tensor& t) {
  return at::Tensor(t.unsafeGetTensorImpl()->shallow_copy_and_detach(c10::VariableVersion(/*version=*/0),
                                                                     /*allow_tensor_metadata_change=*/true));
}

}  // namespace

extern "C" {

// *out = self / other. `slot` (may be null) is the caller's handle on the previous result's
// storage. *next_slot is null when the caller should keep its slot as it is (it was reused,
// or the division is not recyclable); otherwise a new handle on *out's storage to keep
// instead (the old one is then to be dropped).
int norm_div_recycled(at::Tensor** out, at::Tensor** next_slot, const at::Tensor* self, const at::Tensor* other,
                      const at::Tensor* slot) {
  return guarded([&] {
    *next_slot = nullptr;
    if (!recyclable(*self, *other)) {
      *out = new at::Tensor(at::div(*self, *other));
      return;
    }
    if (slot == nullptr || !free_for(*slot, *self)) {
      at::Tensor result = at::div(*self, *other);
      *next_slot = new at::Tensor(storage_alias(result));
      *out = new at::Tensor(std::move(result));
      return;
    }
    {
      at::NoGradGuard no_grad;
      at::Tensor target = *slot;  // the slot's TensorImpl (its version counter is private)
      at::div_out(target, *self, *other);
    }
    at::Tensor result = storage_alias(*slot);
    const bool any_requires_grad = c10::GradMode::is_enabled() && (self->requires_grad() || other->requires_grad());
    if (any_requires_grad) {
      using torch::autograd::generated::DivBackward0;
      auto grad_fn = std::shared_ptr<DivBackward0>(new DivBackward0(), torch::autograd::deleteNode);
      grad_fn->set_next_edges(torch::autograd::collect_next_edges(*self, *other));
      grad_fn->other_ = torch::autograd::SavedVariable(*other, false);
      if (grad_fn->should_compute_output(1)) grad_fn->self_ = torch::autograd::SavedVariable(*self, false);
      grad_fn->self_scalar_type = self->scalar_type();
      torch::autograd::set_history(result, grad_fn);
    }
    *out = new at::Tensor(std::move(result));
  });
}

}  // extern "C"
