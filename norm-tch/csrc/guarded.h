// Error handling shared by norm-tch's C++ files: every extern "C" function returns 0 on
// success and 1 on a C++ exception, whose message norm_last_error() then returns.
#pragma once
#include <exception>
#include <string>

namespace norm_detail {
inline thread_local std::string last_error;

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
}  // namespace norm_detail

using norm_detail::guarded;
