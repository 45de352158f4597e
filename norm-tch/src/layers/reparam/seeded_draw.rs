//! The seeded warm start's draws as tensors ([`norm_core::seeded_start`]): float64 standard
//! normals computed on the host from a per-layer seed, cast to the layer's dtype and moved
//! to its device (the same values on every device; the global generator is not touched).

use crate::backend::tch_err;
use norm_core::seeded_start::SeededNormal;
use norm_core::Result;
use tch::Tensor;

/// `draw(like, n)` for the spectral-norm registrations: the next `n` values of `stream` as a
/// tensor of `like`'s dtype on `like`'s device (in place of `like.new_empty(n).normal_()`).
pub fn draw_from(stream: &mut SeededNormal, like: &Tensor, n: usize) -> Result<Tensor> {
    Tensor::f_from_slice(&stream.take(n))
        .and_then(|t| t.f_to_kind(like.kind()))
        .and_then(|t| t.f_to_device(like.device()))
        .map_err(tch_err("seeded draw"))
}
