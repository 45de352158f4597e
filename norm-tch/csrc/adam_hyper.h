// Adam's hyper-parameters as the C++ Adam files receive them, laid out as norm-tch's
// `ffi::AdamHyper` (#[repr(C)]).
#pragma once

struct NormAdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  int decoupled_weight_decay, maximize;
};
