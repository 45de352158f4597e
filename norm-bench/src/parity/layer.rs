//! Builds a spec's layer and normalization as norm-tch objects, in PyTorch's order of
//! generator draws: the layer's init, then the normalization's registration.

use super::spec::{Api, DimArg, LayerSpec, NormKind, NormSpec};
use anyhow::Result;
use norm_tch::layers::{
    conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d, embedding, linear, parametrizations,
    spectral_norm, weight_norm, Conv1d, Conv2d, Conv3d, ConvOptions, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
    ConvTransposeOptions, Embedding, EmbeddingOptions, LinearConfig, ParametrizedSpectralNorm, ParametrizedWeightNorm,
    SpectralNorm, SpectralNormOptions, WeightNorm, WeightedLayer,
};
use tch::nn::{self, VarStore};
use tch::Tensor;

/// Any layer of the spec.
#[derive(Debug)]
pub enum AnyLayer {
    /// `nn.Linear`.
    Linear(nn::Linear),
    /// `nn.Conv1d`.
    Conv1d(Conv1d),
    /// `nn.Conv2d`.
    Conv2d(Conv2d),
    /// `nn.Conv3d`.
    Conv3d(Conv3d),
    /// `nn.ConvTranspose1d`.
    ConvTranspose1d(ConvTranspose1d),
    /// `nn.ConvTranspose2d`.
    ConvTranspose2d(ConvTranspose2d),
    /// `nn.ConvTranspose3d`.
    ConvTranspose3d(ConvTranspose3d),
    /// `nn.Embedding`.
    Embedding(Embedding),
}

macro_rules! each_layer {
    ($self:expr, $l:ident => $body:expr) => {
        match $self {
            AnyLayer::Linear($l) => $body,
            AnyLayer::Conv1d($l) => $body,
            AnyLayer::Conv2d($l) => $body,
            AnyLayer::Conv3d($l) => $body,
            AnyLayer::ConvTranspose1d($l) => $body,
            AnyLayer::ConvTranspose2d($l) => $body,
            AnyLayer::ConvTranspose3d($l) => $body,
            AnyLayer::Embedding($l) => $body,
        }
    };
}

impl WeightedLayer for AnyLayer {
    fn weight(&self) -> &Tensor {
        each_layer!(self, l => l.weight())
    }
    fn set_weight(&mut self, weight: Tensor) {
        each_layer!(self, l => l.set_weight(weight))
    }
    fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> norm_core::Result<Tensor> {
        each_layer!(self, l => l.forward_with_weight(xs, weight))
    }
    fn default_spectral_norm_dim(&self) -> i64 {
        each_layer!(self, l => l.default_spectral_norm_dim())
    }
}

fn array<const N: usize>(v: &[i64]) -> [i64; N] {
    let mut out = [0; N];
    out.copy_from_slice(&v[..N]);
    out
}

/// `torch.nn.<Layer>(...)` registered at the root of `vs` (its init draws from the generator).
pub fn build_layer(vs: &VarStore, spec: &LayerSpec) -> Result<AnyLayer> {
    Ok(match spec {
        LayerSpec::Linear { in_features, out_features, bias } => {
            AnyLayer::Linear(linear(&vs.root(), *in_features, *out_features, LinearConfig { bias: *bias })?)
        }
        LayerSpec::Embedding { num_embeddings, embedding_dim } => {
            AnyLayer::Embedding(embedding(&vs.root(), *num_embeddings, *embedding_dim, EmbeddingOptions::default())?)
        }
        LayerSpec::Conv { spatial_dims, transposed, in_channels, out_channels, kernel_size, stride, padding, bias } => {
            let (i, o, k, s, p, b) =
                (*in_channels, *out_channels, kernel_size.as_slice(), stride.as_slice(), padding.as_slice(), *bias);
            match (spatial_dims, transposed) {
                (1, false) => AnyLayer::Conv1d(conv1d(
                    &vs.root(),
                    i,
                    o,
                    array(k),
                    ConvOptions { stride: array(s), padding: array(p), bias: b, ..Default::default() },
                )?),
                (2, false) => AnyLayer::Conv2d(conv2d(
                    &vs.root(),
                    i,
                    o,
                    array(k),
                    ConvOptions { stride: array(s), padding: array(p), bias: b, ..Default::default() },
                )?),
                (3, false) => AnyLayer::Conv3d(conv3d(
                    &vs.root(),
                    i,
                    o,
                    array(k),
                    ConvOptions { stride: array(s), padding: array(p), bias: b, ..Default::default() },
                )?),
                (1, true) => AnyLayer::ConvTranspose1d(conv_transpose1d(
                    &vs.root(),
                    i,
                    o,
                    array(k),
                    ConvTransposeOptions { stride: array(s), padding: array(p), bias: b, ..Default::default() },
                )?),
                (2, true) => AnyLayer::ConvTranspose2d(conv_transpose2d(
                    &vs.root(),
                    i,
                    o,
                    array(k),
                    ConvTransposeOptions { stride: array(s), padding: array(p), bias: b, ..Default::default() },
                )?),
                (3, true) => AnyLayer::ConvTranspose3d(conv_transpose3d(
                    &vs.root(),
                    i,
                    o,
                    array(k),
                    ConvTransposeOptions { stride: array(s), padding: array(p), bias: b, ..Default::default() },
                )?),
                _ => anyhow::bail!("unsupported conv dimensionality {spatial_dims}"),
            }
        }
    })
}

/// A layer with its normalization, any kind and API.
#[derive(Debug)]
pub enum Normalized {
    /// `torch.nn.utils.weight_norm`.
    WeightNormHooks(WeightNorm<AnyLayer>),
    /// `torch.nn.utils.spectral_norm`.
    SpectralNormHooks(SpectralNorm<AnyLayer>),
    /// `torch.nn.utils.parametrizations.weight_norm`.
    ParametrizedWeightNorm(ParametrizedWeightNorm<AnyLayer>),
    /// `torch.nn.utils.parametrizations.spectral_norm`.
    ParametrizedSpectralNorm(ParametrizedSpectralNorm<AnyLayer>),
}

impl Normalized {
    /// Applies `norm` to `layer`'s weight as PyTorch's function of that name does.
    pub fn apply(vs: &VarStore, layer: AnyLayer, norm: &NormSpec) -> norm_core::Result<Self> {
        let spectral = || SpectralNormOptions {
            n_power_iterations: norm.n_power_iterations.unwrap_or(1),
            eps: norm.eps.unwrap_or(1e-12),
            dim: match norm.dim {
                DimArg::Value(d) => Some(d),
                DimArg::Omitted | DimArg::Null => None,
            },
            ..Default::default()
        };
        // weight_norm: an omitted dim is PyTorch's default 0; null is dim=None (whole tensor).
        let wn_dim = match norm.dim {
            DimArg::Omitted => Some(0),
            DimArg::Null => None,
            DimArg::Value(d) => Some(d),
        };
        Ok(match (norm.kind, norm.api) {
            (NormKind::WeightNorm, Api::Hooks) => Normalized::WeightNormHooks(weight_norm(vs, layer, wn_dim)?),
            (NormKind::WeightNorm, Api::Parametrizations) => {
                Normalized::ParametrizedWeightNorm(parametrizations::weight_norm(vs, layer, wn_dim)?)
            }
            (NormKind::SpectralNorm, Api::Hooks) => {
                Normalized::SpectralNormHooks(spectral_norm(vs, layer, spectral())?)
            }
            (NormKind::SpectralNorm, Api::Parametrizations) => {
                Normalized::ParametrizedSpectralNorm(parametrizations::spectral_norm(vs, layer, spectral())?)
            }
        })
    }

    /// `layer(x)` in training (`train = true`) or eval mode.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> norm_core::Result<Tensor> {
        match self {
            Normalized::WeightNormHooks(l) => l.f_forward(xs),
            Normalized::SpectralNormHooks(l) => l.f_forward_t(xs, train),
            Normalized::ParametrizedWeightNorm(l) => l.f_forward(xs),
            Normalized::ParametrizedSpectralNorm(l) => l.f_forward_t(xs, train),
        }
    }
}
