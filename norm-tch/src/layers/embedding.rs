//! `torch.nn.Embedding` as tch's own `tch::nn::Embedding`: `weight` `[num_embeddings,
//! embedding_dim]` drawn by `init.normal_(weight)` (`weight.normal_(0, 1)`), then the
//! `padding_idx` row zeroed, as `Embedding.reset_parameters` does; the forward is
//! `F.embedding`'s `torch.embedding(weight, input, padding_idx, scale_grad_by_freq, sparse)`
//! with `padding_idx = -1` when there is none.
//!
//! A negative `padding_idx` counts from the end and is stored normalized
//! (`num_embeddings + padding_idx`), as PyTorch stores it. `max_norm` is not supported.
//! tch keeps the config private; [`WeightedLayer::forward_with_weight`] reads it back from
//! the layer's `Debug` text (see the `conv` module).

use super::conv::{check_free, DebugConfig};
use super::WeightedLayer;
use crate::backend::tch_err;
use crate::init;
use crate::var_store::ModulePath;
use norm_core::{Error, Result};
use tch::nn::{Embedding, EmbeddingConfig, Init, VarStore};
use tch::{Device, Tensor};

/// Options of [`embedding`], with PyTorch's defaults (`Default`): no padding index,
/// `scale_grad_by_freq=False`, `sparse=False`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmbeddingOptions {
    /// The row that gets no gradient and starts at zero; negative counts from the end.
    pub padding_idx: Option<i64>,
    /// Scale gradients by the inverse frequency of the words in the mini-batch.
    pub scale_grad_by_freq: bool,
    /// Sparse gradients for `weight` (PyTorch's Adam, like norm's, does not take them).
    pub sparse: bool,
}

/// `nn.Embedding(num_embeddings, embedding_dim, padding_idx, ...)` registered as
/// `<prefix>.weight` `[num_embeddings, embedding_dim]` in `vs`, on the VarStore's device.
///
/// Errors: a negative size; `padding_idx` outside `[-num_embeddings, num_embeddings)`;
/// `<prefix>.weight` already registered.
pub fn embedding(vs: &VarStore, prefix: &str, num_embeddings: i64, embedding_dim: i64, options: EmbeddingOptions) -> Result<Embedding> {
    if num_embeddings < 0 {
        return Err(Error::invalid("num_embeddings", num_embeddings, "a non-negative size"));
    }
    if embedding_dim < 0 {
        return Err(Error::invalid("embedding_dim", embedding_dim, "a non-negative size"));
    }
    let padding_idx = match options.padding_idx {
        None => None,
        Some(i) if (-num_embeddings..num_embeddings).contains(&i) => Some(if i < 0 { num_embeddings + i } else { i }),
        Some(i) => return Err(Error::invalid("padding_idx", i, format!("None or an index within num_embeddings, in [{}, {})", -num_embeddings, num_embeddings))),
    };
    let path = ModulePath::new(prefix);
    check_free(vs, &path, &["weight"])?;
    let weight = init::normal(&[num_embeddings, embedding_dim], 0.0, 1.0)?;
    if let Some(i) = padding_idx {
        // `self.weight[self.padding_idx].fill_(0)` under no_grad.
        let mut row = weight.f_select(0, i).map_err(tch_err("select"))?;
        drop(tch::no_grad(|| row.f_fill_(0.0)).map_err(tch_err("fill_"))?);
    }
    let ws = path.add_parameter(vs, "weight", &weight)?;
    // tch's constructor is the only way to set the private config: build the layer on a
    // scratch store with an empty, constant-initialized weight (no draws), then put ours in.
    let scratch = VarStore::new(Device::Cpu);
    let config = EmbeddingConfig { sparse: options.sparse, scale_grad_by_freq: options.scale_grad_by_freq, ws_init: Init::Const(0.), padding_idx: padding_idx.unwrap_or(-1) };
    let mut layer = tch::nn::embedding(scratch.root(), 0, 0, config);
    layer.ws = ws;
    Ok(layer)
}

impl WeightedLayer for Embedding {
    fn weight(&self) -> &Tensor {
        &self.ws
    }
    fn set_weight(&mut self, weight: Tensor) {
        self.ws = weight;
    }
    /// `torch.embedding(weight, xs, padding_idx, scale_grad_by_freq, sparse)` (`at::embedding`),
    /// what `F.embedding` calls (`padding_idx` -1 when there is none).
    fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let c = DebugConfig::of(self, "EmbeddingConfig")?;
        let (padding_idx, scale_grad_by_freq, sparse) = (c.int("padding_idx")?, c.boolean("scale_grad_by_freq")?, c.boolean("sparse")?);
        Tensor::f_embedding(weight, xs, padding_idx, scale_grad_by_freq, sparse).map_err(tch_err("embedding"))
    }
}
