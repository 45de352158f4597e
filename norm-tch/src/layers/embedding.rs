//! `torch.nn.Embedding` as norm-tch's own [`Embedding`], with public fields: `weight`
//! `[num_embeddings, embedding_dim]` drawn by `init.normal_(weight)` (`weight.normal_(0, 1)`),
//! then the `padding_idx` row zeroed, as `Embedding.reset_parameters` does; the forward is
//! `F.embedding`'s `torch.embedding(weight, input, padding_idx, scale_grad_by_freq, sparse)`
//! with `padding_idx = -1` when there is none.
//!
//! A negative `padding_idx` counts from the end and is stored normalized
//! (`num_embeddings + padding_idx`), as PyTorch stores it. `max_norm` is not supported.

use super::conv::{check_free, check_sizes};
use super::WeightedLayer;
use crate::backend::tch_err;
use crate::init;
use crate::var_store::add_parameter;
use norm_core::{Error, Result};
use tch::nn::{Module, Path};
use tch::Tensor;

/// Options of [`embedding`], with PyTorch's defaults (`Default`): no padding index,
/// `scale_grad_by_freq=False`, `sparse=False`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbeddingOptions {
    /// The row that gets no gradient and starts at zero; negative counts from the end
    /// (an [`Embedding`] stores it normalized to `[0, num_embeddings)`).
    pub padding_idx: Option<i64>,
    /// Scale gradients by the inverse frequency of the words in the mini-batch.
    pub scale_grad_by_freq: bool,
    /// Sparse gradients for `weight` (PyTorch's Adam, like norm's, does not take them).
    pub sparse: bool,
}

/// `nn.Embedding`: `weight` `[num_embeddings, embedding_dim]` and the settings PyTorch's
/// forward uses.
#[derive(Debug)]
pub struct Embedding {
    /// `num_embeddings` as constructed.
    pub num_embeddings: i64,
    /// `embedding_dim` as constructed.
    pub embedding_dim: i64,
    /// The `weight` parameter (registered as `weight`).
    pub weight: Tensor,
    /// `padding_idx` (normalized as PyTorch stores it: `num_embeddings + padding_idx` for a
    /// negative one), `scale_grad_by_freq`, `sparse`.
    pub options: EmbeddingOptions,
}

fn padding_idx_err(padding_idx: i64, rows: i64) -> Error {
    Error::invalid(
        "padding_idx",
        padding_idx,
        format!(
            "None or an index within num_embeddings, in [{}, {}) (Padding_idx must be within num_embeddings)",
            -rows, rows
        ),
    )
}

/// The `padding_idx` assertions of `nn.Embedding.__init__` and `F.embedding` (PyTorch's
/// `AssertionError`s, here [`Error::InvalidArgument`]): `0 < i < rows` or `-rows <= i < 0`
/// (normalized to `rows + i`); 0 passes unchecked, as in PyTorch.
fn normalize_padding_idx(padding_idx: i64, rows: i64) -> Result<i64> {
    if padding_idx > 0 && padding_idx >= rows {
        return Err(padding_idx_err(padding_idx, rows));
    }
    if padding_idx < 0 {
        if padding_idx < -rows {
            return Err(padding_idx_err(padding_idx, rows));
        }
        return Ok(rows + padding_idx);
    }
    Ok(padding_idx)
}

/// `nn.Embedding(num_embeddings, embedding_dim, padding_idx, ...)` registered as
/// `weight` `[num_embeddings, embedding_dim]` at `path`, on the VarStore's device.
///
/// Errors, in PyTorch's order: `padding_idx` outside `[-num_embeddings, num_embeddings)`
/// ([`Error::InvalidArgument`]; PyTorch's `AssertionError`); a negative size
/// ([`Error::Backend`], as `torch.empty`'s `RuntimeError`); `weight` already
/// registered ([`Error::InvalidArgument`]); `padding_idx` 0 with `num_embeddings` 0
/// ([`Error::Backend`]: PyTorch's `weight[0]` raises `IndexError` from ATen's index check,
/// here ATen's `select` makes the same check). Nothing is drawn or registered on error.
pub fn embedding(path: &Path, num_embeddings: i64, embedding_dim: i64, options: EmbeddingOptions) -> Result<Embedding> {
    let padding_idx = options.padding_idx.map(|i| normalize_padding_idx(i, num_embeddings)).transpose()?;
    check_sizes(&[num_embeddings, embedding_dim])?;
    check_free(path, &["weight"])?;
    let weight = init::normal(&[num_embeddings, embedding_dim], 0.0, 1.0)?;
    if let Some(i) = padding_idx {
        // `self.weight[self.padding_idx].fill_(0)` under no_grad.
        let mut row = weight.f_select(0, i).map_err(tch_err("select"))?;
        drop(tch::no_grad(|| row.f_fill_(0.0)).map_err(tch_err("fill_"))?);
    }
    let weight = add_parameter(path, "weight", weight)?;
    Ok(Embedding { num_embeddings, embedding_dim, weight, options: EmbeddingOptions { padding_idx, ..options } })
}

impl Embedding {
    /// PyTorch's forward, `F.embedding(xs, self.weight, self.padding_idx, ...)`; ATen's errors
    /// (an index out of range, indices not integers, ...) as [`Error::Backend`].
    pub fn f_forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_with_weight(xs, &self.weight)
    }
}

impl WeightedLayer for Embedding {
    fn weight(&self) -> &Tensor {
        &self.weight
    }
    fn set_weight(&mut self, weight: Tensor) {
        self.weight = weight;
    }
    /// `F.embedding(xs, weight, padding_idx, None, 2.0, scale_grad_by_freq, sparse)`: its
    /// `padding_idx` checks against `weight.size(0)` (a no-op for the stored, normalized
    /// index), then `torch.embedding(weight, xs, padding_idx, scale_grad_by_freq, sparse)`
    /// (`at::embedding`) with `padding_idx` -1 when there is none.
    fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let padding_idx = match self.options.padding_idx {
            None => -1,
            Some(i) => {
                let rows = *weight.size().first().ok_or_else(|| Error::DimOutOfRange {
                    dim: 0,
                    rank: 0,
                    expected: "a weight with at least one dimension (weight.size(0))".into(),
                })?;
                normalize_padding_idx(i, rows)?
            }
        };
        Tensor::f_embedding(weight, xs, padding_idx, self.options.scale_grad_by_freq, self.options.sparse)
            .map_err(tch_err("embedding"))
    }
}

/// `Module::forward` panics on an error, as tch's own layers do; [`Embedding::f_forward`] returns it.
impl Module for Embedding {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.f_forward(xs).unwrap_or_else(|e| panic!("{e}"))
    }
}
