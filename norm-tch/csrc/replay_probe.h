// What the scalar replays of ATen kernels share (adam_scalar_lambdas.h: Adam's elementwise
// lambdas; tiny_kernels.h: a tiny weight-normed Linear's weight norm and bias sum): a
// hardware fused multiply-add for the variants where ATen's compiler contracted `c + a * b`,
// the deterministic probe values that decide which variant ATen is, and the process-wide
// switch with its count of replays. Files including this are compiled with
// -ffp-contract=off, so their own `c + a * b` rounds twice.
#pragma once
#include <atomic>
#include <cmath>
#include <cstdint>

namespace norm_replay {

__attribute__((target("fma"))) inline float fma_hw(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
__attribute__((target("fma"))) inline double fma_hw(double a, double b, double c) { return __builtin_fma(a, b, c); }

// Deterministic values of every sign and magnitude from 2^-12 to 2^12 (xorshift64 from `seed`).
struct ProbeValues {
  uint64_t state;
  explicit ProbeValues(uint64_t seed) : state(seed) {}
  double next(bool positive) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const double mantissa = 1.0 + static_cast<double>(state >> 11) / 9007199254740992.0;  // [1, 2)
    const int exponent = static_cast<int>((state >> 3) % 25) - 12;
    const double x = std::ldexp(mantissa, exponent);
    return (positive || (state & 1)) ? x : -x;
  }
};

// Probe()'s verdict, computed once per process (thread-safe static), per Probe.
template <typename Verdict, Verdict (*Probe)()>
const Verdict& probed_once() {
  static const Verdict verdict = Probe();
  return verdict;
}

// A replay's process-wide switch (on by default) and how many times it ran.
struct Switch {
  std::atomic<bool> on{true};
  std::atomic<uint64_t> count{0};
  bool enabled() const { return on.load(std::memory_order_relaxed); }
  void counted(uint64_t n = 1) { count.fetch_add(n, std::memory_order_relaxed); }
};

}  // namespace norm_replay
