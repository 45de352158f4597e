//! Compositions of backend ops that PyTorch writes in Python, op for op.

use crate::backend::Backend;
use crate::error::Result;

/// `torch.nn.functional.normalize(input, p=2, dim=dim, eps=eps, out=out)`:
/// `input / input.norm(2, dim, keepdim=True).clamp_min(eps).expand_as(input)`.
///
/// With `out`, PyTorch clamps in place and divides into `out` (the buffer is updated
/// in place and returned); without, it clamps out of place (the differentiable path).
pub fn normalize<B: Backend>(input: &B::Tensor, dim: i64, eps: f64, out: Option<&mut B::Tensor>) -> Result<B::Tensor> {
    let norm = B::vector_norm(input, 2.0, &[dim], true)?;
    match out {
        Some(out) => {
            let mut denom = norm;
            B::clamp_min_(&mut denom, eps)?;
            let denom = B::expand_as(&denom, input)?;
            B::div_out(input, &denom, out)?;
            Ok(B::shallow_clone(out))
        }
        None => {
            let denom = B::expand_as(&B::clamp_min(&norm, eps)?, input)?;
            B::div(input, &denom)
        }
    }
}
