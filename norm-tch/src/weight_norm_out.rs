//! `torch._weight_norm(v, g, dim)` written into a tensor the caller reuses:
//! `out = v · (g / ‖v‖)`, the norm taken over every dimension but `dim`.
//!
//! [`weight_norm_out`] runs ATen's own fused CPU kernel (`at::native::weight_norm_stub`,
//! what `_weight_norm` → `_weight_norm_interface` runs for dim `0` and dim `rank - 1`)
//! on `out` instead of a freshly allocated tensor, so its bits are `torch._weight_norm`'s
//! (`tests/weight_norm_out.rs` compares them). On CUDA it copies `_weight_norm`'s own
//! result into `out` (the bits of PyTorch's CUDA kernel; no allocation saved). What it saves is the allocation: a
//! multi-megabyte output is fresh `mmap` pages on Linux, and their first-touch page faults
//! cost more than the kernel itself (at 4096² f32 on the 2-core reference machine
//! `_weight_norm` reaches ~2 GB/s, the kernel on a reused output ~10 GB/s; the report's
//! `weight_norm_forward_out` row measures it).
//!
//! It records no autograd graph: use it for inference, weight export or EMA copies, under
//! `tch::no_grad` or on tensors that do not require grad. Training needs
//! [`norm_core::weight_norm::compute_weight`] (what the layers call), whose graph
//! PyTorch's backward needs.

use crate::backend::{tch_err, TchBackend};
use crate::ffi;
use norm_core::weight_norm::WeightNormDim;
use norm_core::{Backend, Error, Result};
use tch::{Kind, Tensor};

/// `out.copy_(torch._weight_norm(v, g, dim))` without the intermediate tensor, bit for
/// bit, for the dims ATen fuses: `0` and `rank - 1` (spelled non-negative).
///
/// On CUDA (no fused CPU kernel to run in place) it copies `torch._weight_norm`'s result
/// into `out`: the same bits as on PyTorch's CUDA, with the allocation.
///
/// Errors (nothing is written): `g` or `out` on another device than `v`; `v` not float32, float64 or
/// bfloat16, or `g`/`out` of another dtype than `v`; `dim` not 0 or `rank - 1` (the
/// whole-tensor `-1` and negative spellings take ATen's composite path: use
/// `compute_weight`); `g` not of weight norm's `g` shape for `dim`; `out` not `v`'s shape
/// or not contiguous, or sharing memory with `v` or `g`; grad mode on while `v` or `g`
/// requires grad (the result would silently miss its graph).
pub fn weight_norm_out(v: &Tensor, g: &Tensor, dim: WeightNormDim, out: &mut Tensor) -> Result<()> {
    for (name, t) in [("g", g), ("out", &*out)] {
        if t.device() != v.device() {
            return Err(Error::Unsupported {
                what: format!("weight_norm_out's {name} on {:?}", t.device()),
                reason: format!("v is on {:?}; expected v, g and out on one device", v.device()),
            });
        }
    }
    let kind = v.f_kind().map_err(tch_err("kind"))?;
    if !matches!(kind, Kind::Float | Kind::Double | Kind::BFloat16) {
        return Err(Error::UnsupportedDType {
            what: "weight_norm_out's v".into(),
            got: format!("{kind:?}"),
            expected: "Float, Double or BFloat16 (ATen's fused kernel; Half takes the composite path)".into(),
        });
    }
    for (name, t) in [("g", g), ("out", &*out)] {
        let k = t.f_kind().map_err(tch_err("kind"))?;
        if k != kind {
            return Err(Error::UnsupportedDType {
                what: format!("weight_norm_out's {name}"),
                got: format!("{k:?}"),
                expected: format!("{kind:?}, v's dtype"),
            });
        }
    }
    let v_shape = TchBackend::shape(v);
    let rank = v_shape.len();
    let fused = dim.value() == 0 || (rank > 0 && dim.value() == rank as i64 - 1);
    if !fused || dim.resolve(rank)?.is_none() {
        return Err(Error::invalid(
            "dim",
            dim.value(),
            format!("0 or {} (the dims ATen's fused kernel takes, for a rank-{rank} v)", rank as i64 - 1),
        ));
    }
    let g_expected = dim.g_shape(&v_shape)?;
    let g_shape = TchBackend::shape(g);
    if g_shape != g_expected {
        return Err(Error::ShapeMismatch {
            what: format!("weight_norm_out's g for dim {}", dim.value()),
            expected: g_expected,
            got: g_shape,
        });
    }
    let out_shape = TchBackend::shape(out);
    if out_shape != v_shape {
        return Err(Error::ShapeMismatch {
            what: "weight_norm_out's out (v's shape)".into(),
            expected: v_shape,
            got: out_shape,
        });
    }
    if !out.is_contiguous() {
        return Err(Error::Unsupported {
            what: format!("out with strides {:?}", out.stride()),
            reason: "weight_norm_out writes a contiguous tensor; expected out.is_contiguous()".into(),
        });
    }
    if ffi::grad_enabled() && (v.requires_grad() || g.requires_grad()) {
        return Err(Error::Unsupported {
            what: "weight_norm_out with grad mode on and v or g requiring grad".into(),
            reason: "it records no autograd graph; call it under tch::no_grad, or use compute_weight to train".into(),
        });
    }
    ffi::weight_norm_out(out, v, g, dim.value())
}
