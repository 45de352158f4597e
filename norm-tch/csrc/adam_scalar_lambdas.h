// Adam's single-tensor update of parameters under 64 bytes (together), element by element
// with the arithmetic of ATen's scalar lambdas: the same bits as the seven ATen calls per
// parameter of adam.cpp's update_one, with one ATen call (sqrt) for all of them, so
// without the others' dispatcher, TensorIterator and allocation costs.
//
// Why the bits are the same. ATen's CPU elementwise loops (at::vec::vectorized_loop) run a
// contiguous tensor of n elements through the scalar lambda whenever n < 2 * Vectorized<T>::size()
// (adam.cpp: every tensor under 64 bytes on x86-64). Those lambdas are, for float and
// double (opmath_t = T):
//   lerp_(end, w)          |w| < 0.5 ? self + w * (end - self) : end - (end - self) * (1 - w)
//   mul_(s)                self * s
//   addcmul_(t1, t2, s)    self + s * t1 * t2
//   sqrt()                 not a lambda: ATen's vml layer (MKL's vsSqrt), kept as one ATen call
//   div(s)                 self / s
//   add_(s), add(o, a)     self + a * other        (a = 1 for add_(eps))
//   addcdiv_(t1, t2, s)    self + s * t1 / t2
//   neg()                  -self
// with each Scalar argument converted to T (a Python float to float: one rounding). The one
// thing the source does not fix is contraction: ATen's AVX2/AVX512 kernel files are built
// with FMA available and GCC's default -ffp-contract=fast, so `c + a * b` may be one fused
// multiply-add there and two roundings in the DEFAULT build. So this file does not guess:
// before first use, probe() runs each ATen call on tensors of random values of every
// magnitude and keeps, per op and dtype, the variant (rounded twice, or hardware FMA) that
// matches ATen on every probe value. If any op matches no variant, the scalar path stays off
// and adam.cpp runs the ATen calls. This file is compiled with -ffp-contract=off (build.rs),
// so its own `c + a * b` is rounded twice and its fma() is one instruction.
//
// Non-finite values (an input, a converted hyper-parameter or any result) make update()
// decline before writing anything: NaN payloads and overflow checks are ATen's business.
// AMSGrad (ATen's maximum) is not covered: adam.cpp runs it through ATen.
#pragma once
#include <ATen/ATen.h>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "adam_hyper.h"
#include "replay_probe.h"

namespace norm_adam_scalar {

// The largest tensor this path takes, in bytes (exclusive): adam.cpp's kPackBytes.
constexpr int64_t kMaxBytes = 64;

// How ATen's compiler built each lambda that has a choice: true = one FMA.
struct Lambdas {
  bool lerp_small_fma = false;  // self + w * (end - self)
  bool lerp_large_fma = false;  // end - (end - self) * (1 - w)
  bool addcmul_fma = false;     // self + (s * t1) * t2
  bool add_alpha_fma = false;   // self + alpha * other
  bool valid = false;           // every probed op matched one variant
};

using norm_replay::fma_hw;

// c + a * b, rounded once (fused) or twice.
template <typename T>
inline T mul_add(T a, T b, T c, bool fused) {
  return fused ? fma_hw(a, b, c) : c + a * b;
}

template <typename T>
inline T lerp(T self, T end, T w, const Lambdas& l) {
  const T d = end - self;
  if (std::abs(w) < T(0.5)) return mul_add(w, d, self, l.lerp_small_fma);
  return mul_add(-d, T(1) - w, end, l.lerp_large_fma);
}

template <typename T>
inline T addcmul(T self, T t1, T t2, T s, const Lambdas& l) {
  return mul_add(s * t1, t2, self, l.addcmul_fma);
}

template <typename T>
inline T addcdiv(T self, T t1, T t2, T s) {
  return self + s * t1 / t2;
}

// A Python float as ATen hands it to a T kernel.
template <typename T>
inline T scalar(double x) {
  return static_cast<T>(x);
}

template <typename T>
inline bool finite(T x) {
  return std::isfinite(x);
}

// One parameter's data: n contiguous elements of each tensor.
template <typename T>
struct Span {
  T* param;
  const T* grad;
  T* exp_avg;
  T* exp_avg_sq;
  int64_t n;
};

// update_one (adam.cpp) on the spans, AMSGrad off, under 64 bytes together: every op in
// scalar arithmetic except sqrt, which is one in-place ATen sqrt_ over all the spans' second
// moments (ATen's CPU sqrt goes through its vml layer, MKL's vsSqrt in PyTorch's builds,
// which is not the correctly rounded sqrt: only ATen itself gives its bits; the probe checks
// that an element's root does not depend on its neighbours). Returns false, with nothing
// written, when a value is not finite (see the top of this file).
template <typename T>
bool update(const Lambdas& l, const NormAdamHyper& h, double step, const std::vector<Span<T>>& spans) {
  constexpr int64_t kMax = kMaxBytes / sizeof(T);
  int64_t total = 0;
  for (const Span<T>& s : spans) total += s.n;
  if (total >= kMax) return false;
  const double bias_correction1 = 1 - std::pow(h.beta1, step);
  const double bias_correction2 = 1 - std::pow(h.beta2, step);
  const double step_size = h.lr / bias_correction1;
  const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);
  const bool decays = h.weight_decay != 0;
  const T lerp_weight = scalar<T>(1 - h.beta1), beta2 = scalar<T>(h.beta2), addcmul_value = scalar<T>(1 - h.beta2);
  const T denom_divisor = scalar<T>(bias_correction2_sqrt), eps = scalar<T>(h.eps);
  const T addcdiv_value = scalar<T>(-step_size), weight_decay = scalar<T>(h.weight_decay);
  const T param_decay = scalar<T>(1 - h.lr * h.weight_decay);
  for (T s : {lerp_weight, beta2, addcmul_value, denom_divisor, eps, addcdiv_value, weight_decay, param_decay})
    if (!finite(s)) return false;
  std::array<T, kMax> p, m, v;
  // Up to the second moment: maximize's neg, weight decay, lerp_, mul_, addcmul_.
  int64_t k = 0;
  for (const Span<T>& s : spans) {
    for (int64_t i = 0; i < s.n; ++i, ++k) {
      T param = s.param[i], g = s.grad[i], exp_avg = s.exp_avg[i], exp_avg_sq = s.exp_avg_sq[i];
      if (!finite(param) || !finite(g) || !finite(exp_avg) || !finite(exp_avg_sq)) return false;
      if (h.maximize) g = -g;
      if (decays) {
        if (h.decoupled_weight_decay)
          param = param * param_decay;
        else
          g = mul_add(weight_decay, param, g, l.add_alpha_fma);
      }
      p[k] = param;
      m[k] = lerp(exp_avg, g, lerp_weight, l);
      v[k] = addcmul(exp_avg_sq * beta2, g, g, addcmul_value, l);
      if (!finite(p[k]) || !finite(m[k]) || !finite(v[k])) return false;
    }
  }
  // sqrt through ATen, then div, add_(eps) and addcdiv_.
  at::Tensor root = at::empty({total}, at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
  std::memcpy(root.data_ptr<T>(), v.data(), total * sizeof(T));
  root.sqrt_();
  const T* r = root.const_data_ptr<T>();
  for (k = 0; k < total; ++k) {
    const T denom = r[k] / denom_divisor + eps;
    p[k] = addcdiv(p[k], m[k], denom, addcdiv_value);
    if (!finite(denom) || !finite(p[k])) return false;
  }
  k = 0;
  for (const Span<T>& s : spans) {
    std::memcpy(s.param, &p[k], s.n * sizeof(T));
    std::memcpy(s.exp_avg, &m[k], s.n * sizeof(T));
    std::memcpy(s.exp_avg_sq, &v[k], s.n * sizeof(T));
    k += s.n;
  }
  return true;
}

// ---- The probe: which variant ATen's own lambdas are, per op and dtype. -------------------

// `rounds` probe tensors of n elements (under 64 bytes: ATen's scalar lambdas).
template <typename T>
struct Probe {
  static constexpr int64_t n = 32 / sizeof(T);
  static constexpr int rounds = 48;
  norm_replay::ProbeValues values{0x9E3779B97F4A7C15ull};
  at::Tensor tensor(bool positive) {
    at::Tensor t = at::empty({n}, at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
    T* data = t.data_ptr<T>();
    for (int64_t i = 0; i < n; ++i) data[i] = static_cast<T>(values.next(positive));
    return t;
  }
};

// Whether fn(variant) reproduces every element that aten_op computed from the inputs, for
// each of `rounds` draws. inputs(probe) draws; aten_op(inputs) and scalar_op(inputs, i) compute.
template <typename T, typename Draw, typename AtenOp, typename ScalarOp>
bool matches(Draw draw, AtenOp aten_op, ScalarOp scalar_op) {
  Probe<T> probe;
  for (int r = 0; r < Probe<T>::rounds; ++r) {
    auto inputs = draw(probe);
    const at::Tensor expected = aten_op(inputs).contiguous();
    const T* e = expected.template data_ptr<T>();
    for (int64_t i = 0; i < Probe<T>::n; ++i) {
      const T got = scalar_op(inputs, i);
      if (std::memcmp(&got, &e[i], sizeof(T)) != 0) return false;
    }
  }
  return true;
}

template <typename T>
T at_(const at::Tensor& t, int64_t i) {
  return t.data_ptr<T>()[i];
}

// Whether check(x) holds for every x.
template <typename Check>
bool all_of(std::initializer_list<double> xs, Check check) {
  for (double x : xs)
    if (!check(x)) return false;
  return true;
}

// One fused/unfused choice: the variant that matches; invalidates `l` if neither does.
template <typename Check>
void choose(bool& flag, Lambdas& l, bool fma_available, Check check) {
  if (check(false)) {
    flag = false;
  } else if (fma_available && check(true)) {
    flag = true;
  } else {
    l.valid = false;
  }
}

template <typename T>
Lambdas probe() {
  using Pair = std::array<at::Tensor, 2>;
  using Triple = std::array<at::Tensor, 3>;
  Lambdas l;
  l.valid = true;
  const bool fma_available = __builtin_cpu_supports("fma");
  auto pair = [](bool positive) { return [=](Probe<T>& p) { return Pair{p.tensor(false), p.tensor(positive)}; }; };
  auto triple = [](Probe<T>& p) { return Triple{p.tensor(false), p.tensor(false), p.tensor(true)}; };
  // lerp_, both branches of |w| < 0.5, with Adam's usual weights (1 - beta1).
  auto choose_lerp = [&](bool Lambdas::*branch, std::initializer_list<double> weights) {
    choose(l.*branch, l, fma_available, [&](bool fused) {
      Lambdas v = l;
      v.*branch = fused;
      return all_of(weights, [&](double w) {
        return matches<T>(pair(false), [&](Pair& in) { return in[0].clone().lerp_(in[1], w); },
                          [&](Pair& in, int64_t i) { return lerp(at_<T>(in[0], i), at_<T>(in[1], i), scalar<T>(w), v); });
      });
    });
  };
  choose_lerp(&Lambdas::lerp_small_fma, {0.1, 0.2, 0.01, 0.3});
  choose_lerp(&Lambdas::lerp_large_fma, {1.0, 0.5, 0.8, 0.9});
  choose(l.addcmul_fma, l, fma_available, [&](bool fused) {
    Lambdas v = l;
    v.addcmul_fma = fused;
    return all_of({1e-3, 0.01, 0.05, 0.37}, [&](double s) {
      return matches<T>(triple, [&](Triple& in) { return in[0].clone().addcmul_(in[1], in[2], s); },
                        [&](Triple& in, int64_t i) {
                          return addcmul(at_<T>(in[0], i), at_<T>(in[1], i), at_<T>(in[2], i), scalar<T>(s), v);
                        });
    });
  });
  choose(l.add_alpha_fma, l, fma_available, [&](bool fused) {
    return all_of({1e-2, 0.3, 5e-4}, [&](double a) {
      return matches<T>(pair(false), [&](Pair& in) { return at::add(in[0], in[1], a); },
                        [&](Pair& in, int64_t i) { return mul_add(scalar<T>(a), at_<T>(in[1], i), at_<T>(in[0], i), fused); });
    });
  });
  // The ops without a choice must match as they are.
  auto single = [&](bool ok) { l.valid = l.valid && ok; };
  single(all_of({0.999, 0.99, 0.9}, [&](double s) {
    return matches<T>(pair(false), [&](Pair& in) { return in[0].clone().mul_(s); },
                      [&](Pair& in, int64_t i) { return at_<T>(in[0], i) * scalar<T>(s); });
  }));
  // sqrt stays ATen's; what must hold is that an element's root ignores its neighbours.
  single(matches<T>(pair(true), [&](Pair& in) { return in[1].clone().sqrt_(); },
                    [&](Pair& in, int64_t i) { return at_<T>(in[1].narrow(0, i, 1).sqrt(), 0); }));
  single(all_of({0.0316, 0.99, 0.5477}, [&](double d) {
    return matches<T>(pair(false), [&](Pair& in) { return at::div(in[0], d); },
                      [&](Pair& in, int64_t i) { return at_<T>(in[0], i) / scalar<T>(d); });
  }));
  single(all_of({1e-8, 1e-6, 0.1}, [&](double e) {
    return matches<T>(pair(false), [&](Pair& in) { return in[0].clone().add_(e); },
                      [&](Pair& in, int64_t i) { return at_<T>(in[0], i) + scalar<T>(e); });
  }));
  single(all_of({-1e-3, -2e-3, -0.37, -1e-4}, [&](double s) {
    return matches<T>(triple, [&](Triple& in) { return in[0].clone().addcdiv_(in[1], in[2], s); },
                      [&](Triple& in, int64_t i) {
                        return addcdiv(at_<T>(in[0], i), at_<T>(in[1], i), at_<T>(in[2], i), scalar<T>(s));
                      });
  }));
  single(matches<T>(pair(false), [&](Pair& in) { return in[0].neg(); },
                    [&](Pair& in, int64_t i) { return -at_<T>(in[0], i); }));
  return l;
}

// The probed lambdas of T, computed once per process.
template <typename T>
const Lambdas& lambdas() {
  return norm_replay::probed_once<Lambdas, probe<T>>();
}

// The process-wide switch (on by default) and the count of parameters updated here.
inline norm_replay::Switch path;

// update() when the switch is on and T's probe passed; false (nothing written) otherwise.
template <typename T>
bool try_update(const NormAdamHyper& h, double step, const std::vector<Span<T>>& spans) {
  if (!path.enabled()) return false;
  const Lambdas& l = lambdas<T>();
  if (!l.valid || !update<T>(l, h, step, spans)) return false;
  path.counted(spans.size());
  return true;
}

}  // namespace norm_adam_scalar
