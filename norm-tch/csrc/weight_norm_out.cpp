// torch._weight_norm(v, g, dim) written into a caller's tensor.
//
// _weight_norm takes ATen's fused path (v and g not Half, dim 0 or v.dim() - 1):
// v.contiguous(), g.contiguous(), then weight_norm_cpu, which allocates w (empty_like v)
// and the norms and runs at::native::weight_norm_stub. Here the same stub runs on the
// caller's `out` instead of a fresh w, so the bits are those of _weight_norm, and a
// reused output costs no allocation: on Linux a fresh multi-megabyte tensor is new mmap
// pages, whose first-touch faults dominate the op (see docs/reports.md).
//
// The stub is called through DispatchStub's header, whose signature depends on the CPU
// kernels libtorch was built with: on x86-64 those are DEFAULT, AVX2 and AVX512, declared
// by the two macros below (as PyTorch's own build defines them). Elsewhere the function
// falls back to copying _weight_norm's result: the same bits, with the allocation.
#if defined(__x86_64__) || defined(_M_X64)
#define NORM_WEIGHT_NORM_STUB 1
#define HAVE_AVX512_CPU_DEFINITION
#define HAVE_AVX2_CPU_DEFINITION
#include <ATen/native/cpu/WeightNormKernel.h>
#endif
#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <c10/core/GradMode.h>

#include "guarded.h"

extern "C" {

// Whether grad mode is on (torch.is_grad_enabled()).
int norm_grad_enabled() { return c10::GradMode::is_enabled() ? 1 : 0; }

// out = torch._weight_norm(v, g, dim) on the fused CPU path (a copy of its result elsewhere). The caller has checked
// devices, dtypes, shapes, dim and out's contiguity; overlap of out with v or g fails here.
int norm_weight_norm_out(at::Tensor* out, const at::Tensor* v_in, const at::Tensor* g_in, int64_t dim) {
  return guarded([&] {
    at::assert_no_overlap(*out, *v_in);
    at::assert_no_overlap(*out, *g_in);
    c10::NoGradGuard no_grad;
    // Off the CPU (CUDA) there is no CPU stub to call: _weight_norm's own result is copied
    // (its bits, with the allocation).
    if (!out->is_cpu()) {
      out->copy_(at::_weight_norm(*v_in, *g_in, dim));
      return;
    }
#ifndef NORM_WEIGHT_NORM_STUB
    out->copy_(at::_weight_norm(*v_in, *g_in, dim));
    return;
#endif
    const at::Tensor v = v_in->contiguous();
    const at::Tensor g = g_in->contiguous();
    // As weight_norm_cpu: the norms keep g's layout, in float when g is bfloat16.
    const auto norm_dtype = g.scalar_type() == at::kBFloat16 ? at::kFloat : g.scalar_type();
    at::TensorBase norm = at::empty_strided(g.sizes(), g.strides(), g.options().dtype(norm_dtype));
    at::TensorBase w = *out;
    at::native::weight_norm_stub(at::kCPU, w, norm, v, g, dim);
    out->unsafeGetTensorImpl()->bump_version();
  });
}

}  // extern "C"
