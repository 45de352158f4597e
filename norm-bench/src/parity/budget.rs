//! The size budget of a parity case, checked when the spec is parsed, before anything is
//! built (data/parity.py's `check_budget` is the same rule; docs/parity.md states it):
//!
//! - `input_shape` has at most [`MAX_INPUT_DIMS`] dims;
//! - `norm.n_power_iterations` is at most [`MAX_POWER_ITERATIONS`] (below 1 it stays
//!   PyTorch's ValueError, an error case);
//! - the weight, the input and the output each have at most [`MAX_ELEMENTS`] elements;
//! - the recorded values, (output + weight elements) x max(steps, 1), are at most
//!   [`MAX_RECORDED`];
//! - the work, (multiply-adds of one forward + weight elements x max(n_power_iterations, 1))
//!   x max(steps, 1), is at most [`MAX_WORK`].
//!
//! The output's size is computed from the shapes as PyTorch's layers would (Linear: the
//! input's leading dims x out_features; Embedding: the input's elements x embedding_dim;
//! Conv: `(in + 2 padding - kernel) / stride + 1` per spatial dim, ConvTranspose:
//! `(in - 1) stride - 2 padding + kernel`, below 0 counted as 0); a shape the layer
//! refuses still raises PyTorch's error at run time. All arithmetic saturates at `u128::MAX`.

use super::spec::{Case, LayerSpec};
use anyhow::{bail, Result};

/// The most dims of `input_shape`.
pub const MAX_INPUT_DIMS: usize = 16;
/// The most power iterations per spectral-norm call.
pub const MAX_POWER_ITERATIONS: i64 = 10_000;
/// The most elements of the weight, the input or the output (2^24).
pub const MAX_ELEMENTS: u128 = 1 << 24;
/// The most values recorded over the steps (2^24).
pub const MAX_RECORDED: u128 = 1 << 24;
/// The most multiply-adds over the steps (2^32).
pub const MAX_WORK: u128 = 1 << 32;

fn product(dims: &[i64]) -> u128 {
    dims.iter().fold(1u128, |acc, &d| acc.saturating_mul(d.max(0) as u128))
}

/// (weight elements, input elements, output elements, multiply-adds of one forward).
fn sizes(case: &Case) -> (u128, u128, u128, u128) {
    let input = product(&case.input_shape);
    let rank = case.input_shape.len();
    match &case.layer {
        LayerSpec::Linear { in_features, out_features, .. } => {
            let weight = product(&[*in_features, *out_features]);
            let lead = if rank == 0 { 0 } else { product(&case.input_shape[..rank - 1]) };
            let output = lead.saturating_mul(*out_features as u128);
            (weight, input, output, output.saturating_mul(*in_features as u128))
        }
        LayerSpec::Embedding { num_embeddings, embedding_dim } => {
            let output = input.saturating_mul(*embedding_dim as u128);
            (product(&[*num_embeddings, *embedding_dim]), input, output, output)
        }
        LayerSpec::Conv {
            spatial_dims, transposed, in_channels, out_channels, kernel_size, stride, padding, ..
        } => {
            let kernel = product(kernel_size);
            let weight = product(&[*in_channels, *out_channels]).saturating_mul(kernel);
            if rank < spatial_dims + 1 {
                return (weight, input, 0, 0);
            }
            let lead = product(&case.input_shape[..rank - spatial_dims - 1]);
            let spatial = &case.input_shape[rank - spatial_dims..];
            let mut output = lead.saturating_mul(*out_channels as u128);
            for i in 0..*spatial_dims {
                let (n, k, s, p) =
                    (spatial[i] as i128, kernel_size[i] as i128, stride[i].max(1) as i128, padding[i] as i128);
                let o = if *transposed {
                    (n - 1).saturating_mul(s).saturating_sub(2 * p).saturating_add(k)
                } else {
                    let span = n.saturating_add(2 * p).saturating_sub(k);
                    if span < 0 {
                        0
                    } else {
                        span / s + 1
                    }
                };
                output = output.saturating_mul(o.max(0) as u128);
            }
            let per_output = (*in_channels as u128).saturating_mul(kernel);
            (weight, input, output, output.saturating_mul(per_output))
        }
    }
}

/// Checks `case` against the budget; the error names the field and the numbers.
pub fn check(case: &Case) -> Result<()> {
    if case.input_shape.len() > MAX_INPUT_DIMS {
        bail!("field `input_shape`: at most {MAX_INPUT_DIMS} dims, got {}", case.input_shape.len());
    }
    let iterations = case.norm.n_power_iterations.unwrap_or(1);
    if iterations > MAX_POWER_ITERATIONS {
        bail!("field `norm.n_power_iterations`: at most {MAX_POWER_ITERATIONS}, got {iterations}");
    }
    let (weight, input, output, macs) = sizes(case);
    for (field, what, n) in
        [("layer", "the weight", weight), ("input_shape", "the input", input), ("input_shape", "the output", output)]
    {
        if n > MAX_ELEMENTS {
            bail!("field `{field}`: {what} would have {n} elements; the budget is {MAX_ELEMENTS} per tensor");
        }
    }
    let steps = case.steps.max(1) as u128;
    let recorded = output.saturating_add(weight).saturating_mul(steps);
    if recorded > MAX_RECORDED {
        bail!("field `steps`: (output + weight elements) x steps = {recorded} values to record; the budget is {MAX_RECORDED}");
    }
    let work = macs.saturating_add(weight.saturating_mul(iterations.max(1) as u128)).saturating_mul(steps);
    if work > MAX_WORK {
        bail!("field `steps`: about {work} multiply-adds over the steps; the budget is {MAX_WORK}");
    }
    Ok(())
}
