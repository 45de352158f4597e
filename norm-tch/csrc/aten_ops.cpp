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
#include <stdexcept>
#include <string>

#include "guarded.h"

extern "C" {

const char* norm_last_error() { return norm_detail::last_error.c_str(); }

// *out = torch.add(self, other, alpha=alpha)
int norm_add_alpha(at::Tensor** out, const at::Tensor* self, const at::Tensor* other, double alpha) {
  return guarded([&] { *out = new at::Tensor(at::add(*self, *other, alpha)); });
}

// The ATen ops with a Scalar argument that norm's backend uses, with ATen's errors returned
// (tch's own wrappers panic when ATen rejects the scalar, e.g. 1e39 for a float32 tensor).
// op: 0 *out = self / value, 1 *out = self.clamp_min(value); in place (out unused):
// 2 self.add_(value), 3 self.mul_(value), 4 self.clamp_min_(value).
int norm_scalar_op(at::Tensor** out, at::Tensor* self, int op, double value) {
  return guarded([&] {
    switch (op) {
      case 0: *out = new at::Tensor(at::div(*self, value)); break;
      case 1: *out = new at::Tensor(at::clamp_min(*self, value)); break;
      case 2: self->add_(value); break;
      case 3: self->mul_(value); break;
      case 4: self->clamp_min_(value); break;
      default: throw std::invalid_argument("norm_scalar_op: unknown op " + std::to_string(op));
    }
  });
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

// *out = torch.nn.functional.leaky_relu(self, negative_slope)
int norm_leaky_relu(at::Tensor** out, const at::Tensor* self, double negative_slope) {
  return guarded([&] { *out = new at::Tensor(at::leaky_relu(*self, negative_slope)); });
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

// Whether two handles are the same tensor (one TensorImpl), not just the same storage.
int norm_same_tensor(const at::Tensor* a, const at::Tensor* b) {
  return a->unsafeGetTensorImpl() == b->unsafeGetTensorImpl() ? 1 : 0;
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

#include <c10/core/GradMode.h>

extern "C" {
// For norm-tch's eval-mode weight cache: for each of the n tensors ts[i], writes three
// int64 to out[3i..3i+3]: its version counter (ATen bumps it on every in-place op:
// optimizer steps, copy_, set_), its data pointer, and a hash of its sizes, strides, dtype
// and device (set_data swaps those without bumping the version). Sets *needs_graph to 1
// when grad mode is on and some tensor requires grad. Fails for an inference tensor, which
// has no version counter.
int norm_tensor_fingerprints(const at::Tensor* const* ts, int n, int64_t* out, int* needs_graph) {
  return guarded([&] {
    bool requires_grad = false;
    for (int i = 0; i < n; ++i) {
      const at::Tensor& t = *ts[i];
      uint64_t h = 1469598103934665603ull;
      auto mix = [&h](uint64_t x) { h = (h ^ x) * 1099511628211ull; };
      for (int64_t s : t.sizes()) mix(static_cast<uint64_t>(s));
      mix(0xffffull);
      for (int64_t s : t.strides()) mix(static_cast<uint64_t>(s));
      mix(static_cast<uint64_t>(t.scalar_type()));
      mix(static_cast<uint64_t>(t.device().type()));
      mix(static_cast<uint64_t>(t.device().index()));
      out[3 * i] = static_cast<int64_t>(t._version());
      out[3 * i + 1] = reinterpret_cast<int64_t>(t.const_data_ptr());
      out[3 * i + 2] = static_cast<int64_t>(h);
      requires_grad = requires_grad || t.requires_grad();
    }
    *needs_graph = (requires_grad && at::GradMode::is_enabled()) ? 1 : 0;
  });
}
}  // extern "C"

// --- Checkpoints (norm-tch/src/checkpoint): the zip container of torch.save/torch.load
// (caffe2::serialize::PyTorchStreamReader/Writer, the very classes behind Python's
// torch._C.PyTorchFileReader/Writer), and normal draws from a private seeded CPU generator.
#include <ATen/CPUGeneratorImpl.h>
#include <caffe2/serialize/inline_container.h>

extern "C" {
// Reads every record of the torch.save zip archive at `path` (names relative to the
// archive folder: "data.pkl", "data/0", "byteorder", ...): for each, `alloc` gets its name
// and declared size and returns a buffer of that many bytes (owned by the caller), which
// the record is read into. `alloc` must not unwind. A record may not declare more than
// `max_record` bytes (the caller's bound from the file's length), so nothing is allocated
// for a size the file cannot hold. Fails on a file that is not such an archive, is
// truncated, or declares such a size.
int norm_pt_read_records(const char* path, uint64_t max_record, void* ctx, char* (*alloc)(void* ctx, const char* name, size_t len)) {
  return guarded([&] {
    caffe2::serialize::PyTorchStreamReader reader{std::string(path)};
    for (const std::string& name : reader.getAllRecords()) {
      size_t size = reader.getRecordSize(name);
      if (size > max_record) {
        throw std::runtime_error("record " + name + " declares " + std::to_string(size) +
                                 " bytes, more than the file's length allows (" + std::to_string(max_record) + ")");
      }
      char* dst = alloc(ctx, name.c_str(), size);
      if (size > 0) {
        reader.getRecord(name, dst, size);
      }
    }
  });
}

// Writes the n records (names[i], data[i], lens[i]) into a new torch.save zip archive at
// `path`, 64-byte aligned, with the "version", "byteorder" and ".data/serialization_id"
// records the writer adds itself, as Python's torch.save does.
int norm_pt_write_records(const char* path, int n, const char* const* names, const char* const* data, const size_t* lens) {
  return guarded([&] {
    caffe2::serialize::PyTorchStreamWriter writer{std::string(path)};
    for (int i = 0; i < n; ++i) {
      writer.writeRecord(names[i], data[i], lens[i]);
    }
    writer.writeEndOfFile();
  });
}

// *gen = a new CPU generator seeded with `seed`: the state torch.manual_seed(seed) gives
// the default CPU generator, without touching the global one.
int norm_cpu_generator_new(void** gen, uint64_t seed) {
  return guarded([&] { *gen = new at::Generator(at::make_generator<at::CPUGeneratorImpl>(seed)); });
}

void norm_cpu_generator_free(void* gen) { delete static_cast<at::Generator*>(gen); }

// *out = like.new_empty(n).normal_(0, 1, generator=gen) on the CPU (like's dtype).
int norm_cpu_generator_normal(at::Tensor** out, void* gen, const at::Tensor* like, int64_t n) {
  return guarded([&] {
    at::Tensor t = at::empty({n}, like->options().device(at::kCPU));
    t.normal_(0, 1, *static_cast<at::Generator*>(gen));
    *out = new at::Tensor(t);
  });
}
}  // extern "C"
