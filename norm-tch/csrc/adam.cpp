// torch.optim.Adam's _single_tensor_adam (PyTorch's CPU default) made from C++: the same
// ATen calls in the same order as norm-core's `single_tensor_update` and PyTorch's Python
// loop, without a round trip through Rust per op. `step` is the incremented float32
// counter as a double; bias corrections use C pow as Python's `**` does.
//
// norm_adam_update_many also packs small parameters: ATen's CPU elementwise loops
// (at::vec::vectorized_loop) run a tensor of n elements through the vector body only
// when n >= 2 * Vectorized<T>::size(), and through the scalar lambda otherwise. On x86-64
// a vector is at least 32 bytes, so every element of a tensor under 64 bytes takes the
// scalar lambda, whatever the tensor, position or thread count (ATen splits work across
// threads only past 32768 elements). Parameters of one dtype, step and option set whose
// sizes add up to under 64 bytes therefore give the same bits when their values are
// copied into one flat tensor, updated by one run of the same ATen calls, and copied back:
// 7 ATen calls for the group instead of 7 per parameter. Version counters are bumped as
// the in-place calls would have bumped them. tests/adam_fused.rs checks the bits.
//
// Such a parameter goes first to adam_scalar_lambdas.h, which computes those scalar
// lambdas' arithmetic itself (probed against ATen once per process), with one ATen call
// (sqrt_) per group; packing is then what remains for the cases it declines (AMSGrad,
// non-finite values, the switch off, a probe that failed).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

#include "adam_hyper.h"
#include "adam_scalar_lambdas.h"
#include "guarded.h"

namespace {

using Hyper = NormAdamHyper;

void update_one(at::Tensor& param, const at::Tensor& grad_in, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                at::Tensor* max_exp_avg_sq, const Hyper& h, double step) {
  at::Tensor grad = h.maximize ? grad_in.neg() : grad_in;
  if (h.weight_decay != 0) {
    if (h.decoupled_weight_decay) {
      param.mul_(1 - h.lr * h.weight_decay);
    } else {
      grad = at::add(grad, param, h.weight_decay);
    }
  }
  exp_avg.lerp_(grad, 1 - h.beta1);
  exp_avg_sq.mul_(h.beta2).addcmul_(grad, grad, 1 - h.beta2);
  const double bias_correction1 = 1 - std::pow(h.beta1, step);
  const double bias_correction2 = 1 - std::pow(h.beta2, step);
  const double step_size = h.lr / bias_correction1;
  const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);
  const at::Tensor* second_moment = &exp_avg_sq;
  if (max_exp_avg_sq != nullptr) {
    at::maximum_out(*max_exp_avg_sq, *max_exp_avg_sq, exp_avg_sq);
    second_moment = max_exp_avg_sq;
  }
  at::Tensor denom = at::div(second_moment->sqrt(), bias_correction2_sqrt).add_(h.eps);
  param.addcdiv_(exp_avg, denom, -step_size);
}

// Below this many bytes every element of a contiguous tensor runs through ATen's scalar
// lambda (2 vectors of at least 32 bytes on x86-64). Elsewhere packing is off.
#if defined(__x86_64__) || defined(_M_X64)
constexpr int64_t kPackBytes = 64;
#else
constexpr int64_t kPackBytes = 0;
#endif

struct Item {
  at::Tensor* param;
  const at::Tensor* grad;
  at::Tensor* exp_avg;
  at::Tensor* exp_avg_sq;
  at::Tensor* max_exp_avg_sq;
  double step;
};

bool packable(const Item& it) {
  const at::Tensor& p = *it.param;
  if (!p.device().is_cpu() || (p.scalar_type() != at::kFloat && p.scalar_type() != at::kDouble)) return false;
  if (p.nbytes() >= kPackBytes) return false;
  std::vector<const at::Tensor*> all = {it.param, it.grad, it.exp_avg, it.exp_avg_sq};
  if (it.max_exp_avg_sq != nullptr) all.push_back(it.max_exp_avg_sq);
  for (const at::Tensor* t : all) {
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != p.scalar_type() || !t->is_contiguous() ||
        t->numel() != p.numel() || t->is_conj() || t->is_neg() || t->is_inference())
      return false;
  }
  return true;
}

// The values of one field of every item, end to end in a new flat tensor.
template <typename T>
at::Tensor gather(const std::vector<Item>& group, T* Item::*field, int64_t total, const at::TensorOptions& options) {
  at::Tensor flat = at::empty({total}, options);
  char* out = static_cast<char*>(flat.data_ptr());
  for (const Item& it : group) {
    const at::Tensor& t = *(it.*field);
    std::memcpy(out, t.const_data_ptr(), t.nbytes());
    out += t.nbytes();
  }
  return flat;
}

// The flat tensor's values back into that field of every item, bumping each tensor's
// version counter `bumps` times (once per in-place call the unpacked update makes on it).
void scatter(const at::Tensor& flat, const std::vector<Item>& group, at::Tensor* Item::*field, int bumps) {
  const char* in = static_cast<const char*>(flat.const_data_ptr());
  for (const Item& it : group) {
    at::Tensor& t = *(it.*field);
    std::memcpy(t.data_ptr(), in, t.nbytes());
    in += t.nbytes();
    for (int i = 0; i < bumps; ++i) t.unsafeGetTensorImpl()->bump_version();
  }
}

// The updates of a group (one dtype and step, under 64 bytes together) through ATen's
// scalar lambdas (adam_scalar_lambdas.h) when that path is on, probed and applies: no
// AMSGrad, gradients that share no storage with the tensors updated, finite values. Bumps
// the version counters as update_one's in-place calls would. False (nothing changed)
// otherwise.
template <typename T>
bool update_scalar_as(const std::vector<Item>& group, const Hyper& h) {
  std::vector<norm_adam_scalar::Span<T>> spans;
  spans.reserve(group.size());
  for (const Item& it : group) {
    spans.push_back({it.param->data_ptr<T>(), it.grad->const_data_ptr<T>(), it.exp_avg->data_ptr<T>(),
                     it.exp_avg_sq->data_ptr<T>(), it.param->numel()});
  }
  return norm_adam_scalar::try_update<T>(h, group.front().step, spans);
}

bool update_scalar(const std::vector<Item>& group, const Hyper& h) {
  for (const Item& it : group) {
    if (it.max_exp_avg_sq != nullptr || !it.grad->has_storage()) return false;
    for (const Item& other : group) {
      const at::Tensor* updated[3] = {other.param, other.exp_avg, other.exp_avg_sq};
      for (const at::Tensor* t : updated)
        if (!t->has_storage() || t->storage().is_alias_of(it.grad->storage())) return false;
    }
  }
  const at::ScalarType dtype = group.front().param->scalar_type();
  const bool done = dtype == at::kFloat    ? update_scalar_as<float>(group, h)
                    : dtype == at::kDouble ? update_scalar_as<double>(group, h)
                                           : false;
  if (!done) return false;
  const bool decays_param = h.weight_decay != 0 && h.decoupled_weight_decay;
  for (const Item& it : group) {
    for (int i = 0; i < (decays_param ? 2 : 1); ++i) it.param->unsafeGetTensorImpl()->bump_version();
    it.exp_avg->unsafeGetTensorImpl()->bump_version();
    for (int i = 0; i < 2; ++i) it.exp_avg_sq->unsafeGetTensorImpl()->bump_version();
  }
  return true;
}

void update_packed(const std::vector<Item>& group, const Hyper& h) {
  int64_t total = 0;
  for (const Item& it : group) total += it.param->numel();
  const bool amsgrad = group.front().max_exp_avg_sq != nullptr;  // the same for the whole group
  const at::TensorOptions options = group.front().param->options().requires_grad(false);
  at::Tensor param = gather(group, &Item::param, total, options);
  at::Tensor grad = gather(group, &Item::grad, total, options);
  at::Tensor exp_avg = gather(group, &Item::exp_avg, total, options);
  at::Tensor exp_avg_sq = gather(group, &Item::exp_avg_sq, total, options);
  at::Tensor max_exp_avg_sq = amsgrad ? gather(group, &Item::max_exp_avg_sq, total, options) : at::Tensor();
  update_one(param, grad, exp_avg, exp_avg_sq, amsgrad ? &max_exp_avg_sq : nullptr, h, group.front().step);

  // In-place calls per tensor in update_one: param addcdiv_ (+ mul_ under decoupled
  // weight decay), exp_avg lerp_, exp_avg_sq mul_ and addcmul_, max_exp_avg_sq maximum out=.
  const bool decays_param = h.weight_decay != 0 && h.decoupled_weight_decay;
  scatter(param, group, &Item::param, decays_param ? 2 : 1);
  scatter(exp_avg, group, &Item::exp_avg, 1);
  scatter(exp_avg_sq, group, &Item::exp_avg_sq, 2);
  if (amsgrad) scatter(max_exp_avg_sq, group, &Item::max_exp_avg_sq, 1);
}

}  // namespace

extern "C" {

// One parameter's update. max_exp_avg_sq may be null (no AMSGrad).
int norm_adam_update(at::Tensor* param, const at::Tensor* grad, at::Tensor* exp_avg, at::Tensor* exp_avg_sq,
                     at::Tensor* max_exp_avg_sq, const NormAdamHyper* h, double step) {
  return guarded([&] {
    c10::NoGradGuard no_grad;
    update_one(*param, *grad, *exp_avg, *exp_avg_sq, max_exp_avg_sq, *h, step);
  });
}

// The scalar-lambda path's switch (on by default) and state: *float_state and
// *double_state get -1 when the probe failed (the path is off for that dtype), else a bit
// mask of the fused lambdas (1 lerp small weight, 2 lerp large weight, 4 addcmul, 8 add
// with alpha); *updates the parameters updated through it so far in this process.
int norm_adam_scalar_lambdas(int set_enabled, int* enabled, int* float_state, int* double_state, uint64_t* updates) {
  return guarded([&] {
    if (set_enabled >= 0) norm_adam_scalar::path.on.store(set_enabled != 0);
    *enabled = norm_adam_scalar::path.enabled() ? 1 : 0;
    auto state = [](const norm_adam_scalar::Lambdas& l) {
      return l.valid ? (l.lerp_small_fma ? 1 : 0) | (l.lerp_large_fma ? 2 : 0) | (l.addcmul_fma ? 4 : 0) |
                           (l.add_alpha_fma ? 8 : 0)
                     : -1;
    };
    c10::NoGradGuard no_grad;
    *float_state = kPackBytes == 0 ? -1 : state(norm_adam_scalar::lambdas<float>());
    *double_state = kPackBytes == 0 ? -1 : state(norm_adam_scalar::lambdas<double>());
    *updates = norm_adam_scalar::path.count.load();
  });
}

// The updates of n parameters (arrays of n handles; max_exp_avg_sqs[i] null without
// AMSGrad; steps[i] the incremented counter of parameter i). Small parameters that share
// dtype, step and AMSGrad-ness and no storage with any other parameter are updated in
// packed groups (see the top of this file); the rest one by one, in order. Sets
// *packed_groups to the number of groups of two or more parameters that were packed
// (through the scalar lambdas or one run of ATen calls).
int norm_adam_update_many(at::Tensor* const* params, const at::Tensor* const* grads, at::Tensor* const* exp_avgs,
                          at::Tensor* const* exp_avg_sqs, at::Tensor* const* max_exp_avg_sqs, const double* steps,
                          int n, const NormAdamHyper* hyper, int* packed_groups) {
  return guarded([&] {
    c10::NoGradGuard no_grad;
    const Hyper& h = *hyper;
    *packed_groups = 0;
    std::vector<Item> items;
    items.reserve(n);
    for (int i = 0; i < n; ++i)
      items.push_back({params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], max_exp_avg_sqs[i], steps[i]});

    // Storages used by more than one parameter (shared or tied views) are never packed:
    // their updates must happen one after the other. (Flat sorted vectors, not maps: this
    // runs every step, and a tiny model's whole update costs a few microseconds.)
    auto storage_of = [](const Item& it) -> const void* {
      return it.param->has_storage() ? static_cast<const void*>(it.param->storage().unsafeGetStorageImpl()) : it.param;
    };
    std::vector<const void*> storages;
    storages.reserve(n);
    for (const Item& it : items) storages.push_back(storage_of(it));
    std::sort(storages.begin(), storages.end());
    auto shared = [&](const Item& it) {
      const auto range = std::equal_range(storages.begin(), storages.end(), storage_of(it));
      return range.second - range.first > 1;
    };

    // Candidates, in order; then per key (dtype, step, AMSGrad-ness), in order of first
    // appearance, consecutive runs under kPackBytes.
    std::vector<bool> done(n, false);
    std::vector<int> open;
    open.reserve(n);
    for (int i = 0; i < n; ++i) {
      const Item& it = items[i];
      if (kPackBytes != 0 && packable(it) && !shared(it)) open.push_back(i);
    }
    using Key = std::tuple<int, double, bool>;
    auto key_of = [&](int i) {
      const Item& it = items[i];
      return Key{static_cast<int>(it.param->scalar_type()), it.step, it.max_exp_avg_sq != nullptr};
    };
    // A group (alone in their storages, so its updates may come before the others'): the
    // scalar lambdas, else, for two or more parameters, one packed run of the ATen calls.
    std::vector<Item> group;
    group.reserve(kPackBytes);
    auto pack = [&](std::vector<int>& chosen) {
      group.clear();
      for (int j : chosen) group.push_back(items[j]);
      if (!group.empty() && update_scalar(group, h)) {
        if (chosen.size() >= 2) ++*packed_groups;
        for (int j : chosen) done[j] = true;
      } else if (chosen.size() >= 2) {
        update_packed(group, h);
        ++*packed_groups;
        for (int j : chosen) done[j] = true;
      }
      chosen.clear();
    };
    // The candidates by key, each key's in their order (a stable sort: O(n log n) however many
    // keys there are), then the keys' runs in order of their first candidate.
    std::vector<size_t> by_key(open.size());
    for (size_t k = 0; k < open.size(); ++k) by_key[k] = k;
    std::stable_sort(by_key.begin(), by_key.end(),
                     [&](size_t a, size_t b) { return key_of(open[a]) < key_of(open[b]); });
    std::vector<std::pair<size_t, size_t>> runs;  // [begin, end) in by_key, ordered by by_key[begin]
    for (size_t begin = 0, end = 0; begin < by_key.size(); begin = end) {
      const Key key = key_of(open[by_key[begin]]);
      for (end = begin + 1; end < by_key.size() && key_of(open[by_key[end]]) == key;) ++end;
      runs.emplace_back(begin, end);
    }
    std::sort(runs.begin(), runs.end(), [&](const auto& a, const auto& b) { return by_key[a.first] < by_key[b.first]; });
    std::vector<int> chosen;
    chosen.reserve(kPackBytes);
    for (const auto& [begin, end] : runs) {
      int64_t bytes = 0;
      for (size_t r = begin; r < end; ++r) {
        const int i = open[by_key[r]];
        const int64_t b = static_cast<int64_t>(items[i].param->nbytes());
        if (bytes + b >= kPackBytes) {
          pack(chosen);
          bytes = 0;
        }
        chosen.push_back(i);
        bytes += b;
      }
      pack(chosen);
    }
    for (int i = 0; i < n; ++i) {
      if (done[i]) continue;
      const Item& it = items[i];
      update_one(*it.param, *it.grad, *it.exp_avg, *it.exp_avg_sq, it.max_exp_avg_sq, h, it.step);
    }
  });
}

}  // extern "C"
