// A weight-normed nn.Linear's training forward, `F.linear(x, torch._weight_norm(v, g, dim), bias)`,
// as one autograd node instead of three.
//
// For a 2-D input with a bias PyTorch runs `_weight_norm_interface(v, g, dim)` (the fused
// path of `_weight_norm`: dim 0 or the last dim, no half dtype), then `at::linear`'s
// `addmm(bias, x, w.t())`, and records WeightNormInterfaceBackward0, TBackward0 and
// AddmmBackward0. Here the same two ATen ops run below autograd and one node,
// WeightNormLinearBackward, is recorded. Its backward makes, in order, the calls those three
// nodes make (derivatives.yaml and FunctionsManual.cpp of PyTorch 2.11):
//   AddmmBackward0   bias: maybe_multiply(grad, beta=1) = grad (the engine then sum_to's it
//                          to the bias shape, as for addmm's broadcast `self`)
//                    w.t(): mm_mat2_backward(grad, x, w.t() sizes/strides/layout, alpha=1)
//                    (x: never, see below)
//   TBackward0       grad.t()
//   WeightNormInterfaceBackward0
//                    _weight_norm_interface_backward(grad.contiguous(), v, g, norms, dim), or
//                    _weight_norm_differentiable_backward(...) when the backward itself
//                    records a graph (create_graph), as the generated node chooses.
// Every gradient therefore has PyTorch's bits; the node count, the autograd bookkeeping of
// three forward ops and two engine steps are what go. The gradient PyTorch's graph would
// send into `norms` (result1) is dropped there by WeightNormInterfaceBackward0's formula,
// which reads only the weight's gradient; here `norms` is a constant: the same.
//
// norm_weight_norm_linear declines (*used = 0, nothing computed) whenever PyTorch would take
// another path or the one-node graph could differ: input not 2-D or no bias, dim not 0 nor
// the last, v not 2-D, dtypes other than one float32/float64 for all four tensors, any
// tensor off the CPU, not strided, non-contiguous v or g (`_weight_norm` would record a
// contiguous() copy), forward-mode gradients, no input needing a gradient under grad mode
// (then the caller's plain ops record nothing anyway), or an input `x` that requires grad.
// The last rule keeps double backward exact: x's gradient is `grad.mm(w)`, and under
// create_graph PyTorch differentiates it through w's own WeightNormInterfaceBackward0, a
// history this node's weight does not have. So the fused path is a network's first layer
// (input data, as in the seed step), where x's gradient is never asked for.
#include <ATen/ATen.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <c10/core/GradMode.h>
#include <optional>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include "guarded.h"
#include "tiny_kernels.h"

namespace {

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

// t.t() for a 2-D strided tensor without autograd history, made directly (the view at::t
// makes: the same storage, sizes and strides swapped) rather than through the dispatcher.
at::Tensor transposed(const at::Tensor& t) {
  auto impl = c10::make_intrusive<c10::TensorImpl>(c10::TensorImpl::VIEW, c10::Storage(t.storage()), t.key_set(),
                                                   t.dtype());
  const int64_t sizes[2] = {t.size(1), t.size(0)}, strides[2] = {t.stride(1), t.stride(0)};
  impl->set_sizes_and_strides(c10::IntArrayRef(sizes), c10::IntArrayRef(strides), t.storage_offset());
  return at::Tensor(std::move(impl));
}

template <typename T>
bool finite(const at::Tensor& t) {
  return norm_tiny::all_finite(t.const_data_ptr<T>(), t.numel());
}

// _weight_norm_interface(v, g, 0) replayed by tiny_kernels.h when it applies: (w, norms) with
// the metadata ATen gives them (w contiguous like v, norms shaped and strided like g).
template <typename T>
bool tiny_weight_norm(const at::Tensor& v, const at::Tensor& g, int64_t dim, at::Tensor& w, at::Tensor& norms) {
  const int64_t M = v.size(0), N = v.size(1);
  if (dim != 0 || N >= norm_tiny::max_row<T>() || g.numel() != M || !g.is_contiguous() ||
      !norm_tiny::active<T>().weight_norm || !finite<T>(v) || !finite<T>(g))
    return false;
  w = at::detail::empty_cpu(v.sizes(), v.scalar_type());
  norms = at::detail::empty_strided_cpu(g.sizes(), g.strides(), g.scalar_type());
  norm_tiny::weight_norm<T>(w.data_ptr<T>(), norms.data_ptr<T>(), v.const_data_ptr<T>(), g.const_data_ptr<T>(), M, N);
  norm_tiny::count();
  return true;
}

// _weight_norm_interface_backward(grad_w, v, g, norms, 0) replayed when it applies.
template <typename T>
bool tiny_weight_norm_bwd(const at::Tensor& grad_w, const at::Tensor& v, const at::Tensor& g, const at::Tensor& norms,
                          int64_t dim, at::Tensor& grad_v, at::Tensor& grad_g) {
  const norm_tiny::Verdict verdict = norm_tiny::active<T>();
  const int64_t M = v.size(0), N = v.size(1);
  if (dim != 0 || N >= norm_tiny::max_row<T>() || !verdict.weight_norm_bwd || !grad_w.is_contiguous() ||
      !norms.is_contiguous() || norms.scalar_type() != v.scalar_type() || norms.numel() != M || !finite<T>(grad_w) ||
      !finite<T>(norms))
    return false;
  grad_v = at::detail::empty_cpu(v.sizes(), v.scalar_type());
  grad_g = at::detail::empty_cpu(g.sizes(), g.scalar_type());
  norm_tiny::weight_norm_bwd<T>(grad_v.data_ptr<T>(), grad_g.data_ptr<T>(), grad_w.const_data_ptr<T>(),
                                v.const_data_ptr<T>(), g.const_data_ptr<T>(), norms.const_data_ptr<T>(), M, N,
                                verdict.contraction);
  norm_tiny::count();
  return true;
}

// at::sum_to(grad, {O}), the bias gradient the engine would reduce, replayed when it applies.
template <typename T>
bool tiny_bias_sum(const at::Tensor& grad, at::Tensor& out) {
  if (grad.dim() != 2 || !grad.is_contiguous()) return false;
  const int64_t N = grad.size(0), O = grad.size(1);
  if (!norm_tiny::bias_sum_shape(N, O, norm_tiny::max_row<T>()) || !norm_tiny::active<T>().bias_sum ||
      !finite<T>(grad))
    return false;
  out = at::detail::empty_cpu({O}, grad.scalar_type());
  norm_tiny::bias_sum<T>(out.data_ptr<T>(), grad.const_data_ptr<T>(), N, O);
  norm_tiny::count();
  return true;
}

// run(float{}) or run(double{}) for a float32 or float64 tensor's dtype (the type of the
// tiny replay to try); false, nothing run, for any other dtype.
template <typename Run>
bool for_float_or_double(at::ScalarType dtype, Run run) {
  if (dtype == at::kFloat) return run(float{});
  if (dtype == at::kDouble) return run(double{});
  return false;
}

// Whether FunctionsManual.cpp's mm_mat2_backward(grad, mat1, mat2_sizes, mat2_strides,
// mat2_layout, alpha = 1) takes its first branch, `grad.t().mm(mat1.conj()).t()`, rather than
// `mat1.t().conj().mm(grad)` (maybe_multiply with s = 1 returns t itself, so alpha drops out).
bool mm_mat2_transposed(const at::Tensor& grad, const at::Tensor& mat1, at::IntArrayRef mat2_sizes,
                        at::IntArrayRef mat2_strides, c10::Layout mat2_layout) {
  return grad.layout() == c10::kStrided && mat1.layout() == c10::kStrided && mat2_layout == c10::kStrided &&
         mat2_strides[0] == 1 && mat2_strides[1] == mat2_sizes[0];
}

// Next edges: 0 bias, 1 x (never requiring grad), 2 v, 3 g (addmm's self, mat1;
// _weight_norm_interface's v, g).
struct WeightNormLinearBackward : public torch::autograd::Node {
  SavedVariable x_;       // addmm's mat1, saved when w.t() needs a gradient (v or g does)
  SavedVariable v_, g_;   // _weight_norm_interface's inputs
  SavedVariable norms_;   // its result1
  std::vector<int64_t> w_t_sizes_, w_t_strides_;
  c10::Layout w_t_layout_ = c10::kStrided;
  int64_t dim_ = 0;

  std::string name() const override { return "WeightNormLinearBackward"; }

  void release_variables() override {
    x_.reset_data();
    v_.reset_data();
    g_.reset_data();
    norms_.reset_data();
  }

  variable_list apply(variable_list&& grads) override {
    variable_list out(4);
    const at::Tensor& grad = grads[0];
    if (!grad.defined()) return out;
    const bool bias_needed = task_should_compute_output(0);
    const bool weight_needed = task_should_compute_output(2) || task_should_compute_output(3);
    // Without create_graph nothing below records a graph, so the ops skip autograd's
    // dispatch and the tiny kernels (tiny_kernels.h) may replay theirs.
    const bool records = c10::GradMode::is_enabled();
    std::optional<at::AutoDispatchBelowADInplaceOrView> below_autograd;
    if (!records) below_autograd.emplace();
    // AddmmBackward0: `grad`, which the engine then sum_to's to the bias shape; or that
    // sum_to's result itself, replayed.
    if (bias_needed) {
      at::Tensor bias_grad;
      const bool replayed = !records && for_float_or_double(grad.scalar_type(), [&](auto t) {
                              return tiny_bias_sum<decltype(t)>(grad, bias_grad);
                            });
      out[0] = replayed ? std::move(bias_grad) : grad;
    }
    if (!weight_needed) return out;
    // mm_mat2_backward's grad_w_t, then TBackward0's grad_w = grad_w_t.t(). In the
    // transposed branch grad_w_t is `grad.t().mm(x).t()`, so grad_w is that mm's result, the
    // same tensor (values, sizes and strides) without two transposed views.
    const at::Tensor x = x_.unpack();
    at::Tensor grad_w;
    if (!mm_mat2_transposed(grad, x, w_t_sizes_, w_t_strides_, w_t_layout_))
      grad_w = x.t().conj().mm(grad).t();
    else if (records)
      grad_w = grad.t().mm(x.conj());
    else
      grad_w = transposed(grad).mm(x);
    // WeightNormInterfaceBackward0.
    const at::Tensor v = v_.unpack(), g = g_.unpack(), norms = norms_.unpack();
    at::Tensor grad_v, grad_g;
    if (records) {
      std::tie(grad_v, grad_g) = at::_weight_norm_differentiable_backward(grad_w.contiguous(), v, g, norms, dim_);
    } else {
      const at::Tensor grad_w_c = grad_w.contiguous();
      const bool replayed = grad_w_c.scalar_type() == v.scalar_type() &&
                            for_float_or_double(v.scalar_type(), [&](auto t) {
                              return tiny_weight_norm_bwd<decltype(t)>(grad_w_c, v, g, norms, dim_, grad_v, grad_g);
                            });
      if (!replayed) std::tie(grad_v, grad_g) = at::_weight_norm_interface_backward(grad_w_c, v, g, norms, dim_);
    }
    if (task_should_compute_output(2)) out[2] = std::move(grad_v);
    if (task_should_compute_output(3)) out[3] = std::move(grad_g);
    return out;
  }
};

bool has_forward_grad(const at::Tensor& t) { return t._fw_grad(/*level=*/0).defined(); }

}  // namespace

extern "C" {

// *out = linear(x, _weight_norm(v, g, dim), bias) with one WeightNormLinearBackward node, and
// *weight = the weight it used (its value; no history). *used = 0 (and nothing else set)
// when the fused path does not apply (see the top of this file); then the caller runs the
// plain ops.
int norm_weight_norm_linear(at::Tensor** out, at::Tensor** weight, int* used, const at::Tensor* x,
                            const at::Tensor* v, const at::Tensor* g, const at::Tensor* bias, int64_t dim) {
  return guarded([&] {
    *used = 0;
    const at::Tensor* all[4] = {bias, x, v, g};
    const at::ScalarType dtype = v->scalar_type();
    if (dtype != at::kFloat && dtype != at::kDouble) return;
    for (const at::Tensor* t : all) {
      if (!t->defined() || !t->device().is_cpu() || t->layout() != c10::kStrided || t->scalar_type() != dtype ||
          t->is_mkldnn() || t->is_nested() || t->is_inference() || has_forward_grad(*t))
        return;
    }
    if (x->dim() != 2 || v->dim() != 2 || !(dim == 0 || dim == v->dim() - 1)) return;
    if (!v->is_contiguous() || !g->is_contiguous() || x->requires_grad()) return;
    const bool needs_graph =
        c10::GradMode::is_enabled() && (bias->requires_grad() || v->requires_grad() || g->requires_grad());
    if (!needs_graph) return;

    at::Tensor w, norms, w_t, result;
    {
      // The forward ops below autograd: the same CPU kernels, no nodes.
      at::AutoDispatchBelowADInplaceOrView below_autograd;
      const bool replayed =
          for_float_or_double(dtype, [&](auto t) { return tiny_weight_norm<decltype(t)>(*v, *g, dim, w, norms); });
      if (!replayed) std::tie(w, norms) = at::_weight_norm_interface(*v, *g, dim);
      w_t = transposed(w);
      result = at::addmm(*bias, *x, w_t);
    }
    auto grad_fn = std::shared_ptr<WeightNormLinearBackward>(new WeightNormLinearBackward(),
                                                             torch::autograd::deleteNode);
    grad_fn->set_next_edges(torch::autograd::collect_next_edges(*bias, *x, *v, *g));
    grad_fn->dim_ = dim;
    const bool weight_needed = grad_fn->should_compute_output(2) || grad_fn->should_compute_output(3);
    if (weight_needed) {
      grad_fn->x_ = SavedVariable(*x, false);
      grad_fn->v_ = SavedVariable(*v, false);
      grad_fn->g_ = SavedVariable(*g, false);
      grad_fn->norms_ = SavedVariable(norms, false);
      grad_fn->w_t_sizes_ = w_t.sizes().vec();
      grad_fn->w_t_strides_ = w_t.strides().vec();
      grad_fn->w_t_layout_ = w_t.layout();
    }
    torch::autograd::set_history(result, grad_fn);
    *out = new at::Tensor(std::move(result));
    *weight = new at::Tensor(std::move(w));
    *used = 1;
  });
}

// tiny_kernels.h's switch and state: set_enabled >= 0 sets the switch first; then *enabled,
// the float and double verdicts (norm_tiny::pack, running the probes if they have not run)
// and the number of kernel calls replayed so far.
int norm_tiny_kernels(int set_enabled, int* enabled, int* float_state, int* double_state, uint64_t* replays) {
  return guarded([&] {
    if (set_enabled >= 0) norm_tiny::path.on.store(set_enabled != 0);
    *enabled = norm_tiny::path.enabled() ? 1 : 0;
    *float_state = norm_tiny::pack(norm_tiny::verdict<float>());
    *double_state = norm_tiny::pack(norm_tiny::verdict<double>());
    *replays = norm_tiny::path.count.load();
  });
}

}  // extern "C"
