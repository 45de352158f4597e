// Three ATen CPU kernels replayed in scalar code for tiny tensors, for the fused weight-normed
// Linear (weight_norm_linear.cpp): the same bits as the ATen calls, without their dispatcher,
// TensorIterator and allocation costs, which are most of a tiny layer's step.
//
//   weight_norm      _weight_norm_interface(v, g, 0): WeightNormKernel.cpp's
//                    weight_norm_first_dim_kernel, per row i of v (M rows of N):
//                      norm_i = sqrt(v_i0*v_i0 + v_i1*v_i1 + ...)   (squares rounded, summed
//                                                                    left to right)
//                      w_ij   = v_ij * (g_i / norm_i)
//   weight_norm_bwd  _weight_norm_interface_backward(grad_w, v, g, norms, 0):
//                    weight_norm_backward_first_dim_kernel, per row i:
//                      s_i      = gw_i0*v_i0 + gw_i1*v_i1 + ...     (as above)
//                      grad_g_i = s_i / norm_i
//                      a = g_i / norm_i, b = a * grad_g_i / norm_i
//                      grad_v_ij = a * gw_ij - b * v_ij
//   bias_sum         at::sum_to(grad, {O}) of a contiguous [N, O] grad (the bias gradient
//                    the engine reduces for addmm's broadcast bias): SumKernel.cpp's
//                    cascade_sum, whose TensorIterator loop sees the N rows as the reduced
//                    dim (stride O) and the O columns as the kept one (stride 1), and so
//                    takes scalar_outer_sum: multi_row_sum over four columns at a time, then
//                    row_sum (four interleaved partial sums) per remaining column, added
//                    onto the zero-filled output.
//
// When each replay is exact. A row shorter than 32 bytes (float N < 8, double N < 4) is
// shorter than Vectorized<T>::size() under every CPU capability, so ATen's vec::map /
// map_reduce_all / map2_reduce_all take their one partial-vector branch: the lane-by-lane
// arithmetic above. Fewer than 32 bytes of columns (O < 8 or 4) keep cascade_sum off its
// vectorized outer loop, N >= 2 and O >= 2 keep TensorIterator from dropping a dimension, and
// N * O < GRAIN_SIZE keeps the reduction serial whatever the thread count. Everything else
// declines (the ATen call runs). Like Adam's scalar lambdas (adam_scalar_lambdas.h), nothing
// is guessed about the compiler: `a * gw - b * v` may have been contracted into a fused
// multiply-add in ATen's AVX2/AVX512 builds, so before first use probe() runs ATen's own
// three ops on values of every magnitude and every tiny shape, keeps the backward variant
// that matches, and turns a kernel off for that dtype if nothing matches. Non-finite inputs
// decline (NaN payloads are ATen's business). This file is compiled with -ffp-contract=off.
#pragma once
#include <ATen/ATen.h>
#include <ATen/TensorIterator.h>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "replay_probe.h"

namespace norm_tiny {

// The longest row (weight norm) or column count (bias sum) taken, exclusive, in bytes.
constexpr int64_t kMaxRowBytes = 32;

template <typename T>
constexpr int64_t max_row() {
  return kMaxRowBytes / static_cast<int64_t>(sizeof(T));
}

// How weight_norm_bwd's `a * gw - b * v` was compiled in ATen.
enum class Contraction : int { None = 0, FmaFirst = 1, FmaSecond = 2 };

// The probe's verdict per dtype.
struct Verdict {
  bool weight_norm = false;      // forward replay matches
  bool weight_norm_bwd = false;  // backward replay matches, with `contraction`
  bool bias_sum = false;         // sum_to replay matches
  Contraction contraction = Contraction::None;
};

using norm_replay::fma_hw;

template <typename T>
inline bool all_finite(const T* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

// v_0 * w_0 + v_1 * w_1 + ... as vec_reduce_all adds a partial vector's products: each
// product rounded, then summed left to right.
template <typename T>
inline T dot_row(const T* a, const T* b, int64_t n) {
  T acc = a[0] * b[0];
  for (int64_t k = 1; k < n; ++k) acc = acc + a[k] * b[k];
  return acc;
}

// weight_norm_first_dim_kernel on M rows of N < max_row<T>() elements.
template <typename T>
void weight_norm(T* w, T* norms, const T* v, const T* g, int64_t M, int64_t N) {
  for (int64_t i = 0; i < M; ++i) {
    const T* row = v + i * N;
    const T norm = std::sqrt(dot_row(row, row, N));
    norms[i] = norm;
    const T a = g[i] / norm;
    for (int64_t k = 0; k < N; ++k) w[i * N + k] = row[k] * a;
  }
}

// weight_norm_backward_first_dim_kernel on M rows of N < max_row<T>() elements.
template <typename T>
void weight_norm_bwd(T* grad_v, T* grad_g, const T* grad_w, const T* v, const T* g, const T* norms, int64_t M,
                     int64_t N, Contraction c) {
  for (int64_t i = 0; i < M; ++i) {
    const T* gw = grad_w + i * N;
    const T* row = v + i * N;
    const T norm = norms[i];
    const T grad_g_val = dot_row(gw, row, N) / norm;
    grad_g[i] = grad_g_val;
    const T a = g[i] / norm;
    const T b = a * grad_g_val / norm;
    for (int64_t k = 0; k < N; ++k) {
      T out;
      switch (c) {
        case Contraction::FmaFirst: out = fma_hw(a, gw[k], -(b * row[k])); break;
        case Contraction::FmaSecond: out = fma_hw(-b, row[k], a * gw[k]); break;
        default: out = a * gw[k] - b * row[k];
      }
      grad_v[i * N + k] = out;
    }
  }
}

// SumKernel.cpp's multi_row_sum: `nrows` sums at once over `size` steps, in chunks of
// 2^level_power whose partial sums cascade through four levels.
template <typename T, int64_t nrows>
std::array<T, nrows> multi_row_sum(const T* in, int64_t row_stride, int64_t col_stride, int64_t size) {
  constexpr int64_t num_levels = 4;
  int64_t ceil_log2 = 1;  // at::native::utils::CeilLog2: 1 up to 2, else ceil(log2(size))
  while ((int64_t(1) << ceil_log2) < size) ++ceil_log2;
  const int64_t level_power = std::max(int64_t(4), ceil_log2 / num_levels);
  const int64_t level_step = int64_t(1) << level_power;
  const int64_t level_mask = level_step - 1;
  T acc[num_levels][nrows];
  for (auto& level : acc)
    for (T& x : level) x = T(0);
  int64_t i = 0;
  for (; i + level_step <= size;) {
    for (int64_t j = 0; j < level_step; ++j, ++i)
      for (int64_t k = 0; k < nrows; ++k) acc[0][k] += in[i * row_stride + k * col_stride];
    for (int64_t j = 1; j < num_levels; ++j) {
      for (int64_t k = 0; k < nrows; ++k) {
        acc[j][k] += acc[j - 1][k];
        acc[j - 1][k] = T(0);
      }
      if ((i & (level_mask << (j * level_power))) != 0) break;
    }
  }
  for (; i < size; ++i)
    for (int64_t k = 0; k < nrows; ++k) acc[0][k] += in[i * row_stride + k * col_stride];
  for (int64_t j = 1; j < num_levels; ++j)
    for (int64_t k = 0; k < nrows; ++k) acc[0][k] += acc[j][k];
  std::array<T, nrows> out;
  for (int64_t k = 0; k < nrows; ++k) out[k] = acc[0][k];
  return out;
}

// SumKernel.cpp's row_sum: `size` elements `stride` apart as four interleaved partial sums.
template <typename T>
T row_sum(const T* in, int64_t stride, int64_t size) {
  constexpr int64_t ilp = 4;
  const int64_t size_ilp = size / ilp;
  std::array<T, ilp> partial = multi_row_sum<T, ilp>(in, stride * ilp, stride, size_ilp);
  for (int64_t i = size_ilp * ilp; i < size; ++i) partial[0] += in[i * stride];
  for (int64_t k = 1; k < ilp; ++k) partial[0] += partial[k];
  return partial[0];
}

// cascade_sum's scalar_outer_sum over a contiguous [N, O] (rows reduced), into out[O].
template <typename T>
void bias_sum(T* out, const T* grad, int64_t N, int64_t O) {
  constexpr int64_t nrows = 4;
  int64_t j = 0;
  for (; j + (nrows - 1) < O; j += nrows) {
    const std::array<T, nrows> sums = multi_row_sum<T, nrows>(grad + j, O, 1, N);
    for (int64_t k = 0; k < nrows; ++k) out[j + k] = T(0) + sums[k];
  }
  for (; j < O; ++j) out[j] = T(0) + row_sum(grad + j, O, N);
}

// Whether a contiguous [N, O] gradient takes bias_sum.
inline bool bias_sum_shape(int64_t N, int64_t O, int64_t max_cols) {
  return N >= 2 && O >= 2 && O < max_cols && N * O < at::internal::GRAIN_SIZE;
}

// ---- The probe. ----------------------------------------------------------------------------

// A tensor of `sizes` filled with probe values of every sign and magnitude.
template <typename T>
at::Tensor probe_tensor(norm_replay::ProbeValues& values, at::IntArrayRef sizes) {
  at::Tensor t = at::empty(sizes, at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value));
  T* p = t.data_ptr<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(values.next(false));
  return t;
}

template <typename T>
bool same_bits(const at::Tensor& expected, const T* got) {
  const at::Tensor e = expected.contiguous();
  return std::memcmp(e.const_data_ptr<T>(), got, e.numel() * sizeof(T)) == 0;
}

template <typename T>
Verdict probe() {
  Verdict verdict;
  verdict.weight_norm = verdict.weight_norm_bwd = verdict.bias_sum = true;
  bool variant_ok[3] = {true, true, __builtin_cpu_supports("fma") != 0};
  variant_ok[1] = variant_ok[2];
  norm_replay::ProbeValues values{0x2545F4914F6CDD1Dull};
  for (int round = 0; round < 8; ++round) {
    for (int64_t N = 1; N < max_row<T>(); ++N) {
      for (int64_t M : {1, 3, 8}) {
        const at::Tensor v = probe_tensor<T>(values, {M, N}), g = probe_tensor<T>(values, {M, 1});
        const auto [w, norms] = at::_weight_norm_interface(v, g, 0);
        std::vector<T> w_r(M * N), norms_r(M);
        weight_norm<T>(w_r.data(), norms_r.data(), v.const_data_ptr<T>(), g.const_data_ptr<T>(), M, N);
        verdict.weight_norm = verdict.weight_norm && same_bits<T>(w, w_r.data()) && same_bits<T>(norms, norms_r.data());
        const at::Tensor grad_w = probe_tensor<T>(values, {M, N});
        const auto [grad_v, grad_g] = at::_weight_norm_interface_backward(grad_w, v, g, norms, 0);
        for (int c = 0; c < 3; ++c) {
          if (!variant_ok[c]) continue;
          std::vector<T> gv(M * N), gg(M);
          weight_norm_bwd<T>(gv.data(), gg.data(), grad_w.const_data_ptr<T>(), v.const_data_ptr<T>(),
                             g.const_data_ptr<T>(), norms.const_data_ptr<T>(), M, N, static_cast<Contraction>(c));
          variant_ok[c] = same_bits<T>(grad_v, gv.data()) && same_bits<T>(grad_g, gg.data());
        }
      }
    }
    for (int64_t N : {2, 3, 10, 17, 64, 100, 257, 1000}) {
      for (int64_t O = 2; O < max_row<T>(); ++O) {
        const at::Tensor grad = probe_tensor<T>(values, {N, O});
        std::vector<T> out(O);
        bias_sum<T>(out.data(), grad.const_data_ptr<T>(), N, O);
        verdict.bias_sum = verdict.bias_sum && same_bits<T>(at::sum_to(grad, at::IntArrayRef{O}), out.data());
      }
    }
  }
  verdict.weight_norm_bwd = false;
  for (int c = 0; c < 3; ++c) {
    if (variant_ok[c]) {
      verdict.weight_norm_bwd = true;
      verdict.contraction = static_cast<Contraction>(c);
      break;
    }
  }
  return verdict;
}

// T's probe, run once per process.
template <typename T>
const Verdict& verdict() {
  return norm_replay::probed_once<Verdict, probe<T>>();
}

// The process-wide switch (on by default) and how many kernel calls were replayed.
inline norm_replay::Switch path;

// The verdict for T when the switch is on; all off when it is off.
template <typename T>
Verdict active() {
  if (!path.enabled()) return Verdict{};
  return verdict<T>();
}

inline void count() { path.counted(); }

// Packs a verdict for the FFI: bit 0 weight_norm, 1 weight_norm_bwd, 2 bias_sum, bits 3-4
// the contraction.
inline int pack(const Verdict& v) {
  return int(v.weight_norm) | int(v.weight_norm_bwd) << 1 | int(v.bias_sum) << 2 | int(v.contraction) << 3;
}

}  // namespace norm_tiny
