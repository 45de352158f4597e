// ATen calls that tch's generated API does not expose with all their arguments:
// `add` with `alpha`, `addcmul_`/`addcdiv_` with `value`, and assignment of `.grad`
// (`p.grad = g` / `p.grad = None`). Each is the exact ATen entry point PyTorch's Python
// code reaches, so results are bit-identical to PyTorch's.
//
// Tensors are tch's handles (`at::Tensor*`). Every function returns 0 on success and 1
// on a C++ exception, whose message `norm_last_error()` then returns.
#include <ATen/ATen.h>
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
