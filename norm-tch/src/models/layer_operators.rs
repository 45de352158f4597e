//! Every normalized convolution (and Linear) of the two models as a convolution operator
//! ([`crate::operator_norm::ConvOperator`]) on the input size it sees in the model, beside the
//! reshaped weight PyTorch's `spectral_norm` normalizes: what `σ_operator / σ_reshaped` of the
//! models' layers is computed from (`examples/operator_norm_figure.rs`, `norm-bench report`'s
//! `operator_norm.csv`; docs/operator_norm.md).
//!
//! - Generator ([`hifigan_layer_operators`]): every layer under weight norm, with its effective
//!   weight `g · v/‖v‖` (`weight_t(false)`); the input lengths follow the upsampling: `frames`
//!   for `conv_pre` and `ups.0`, `frames · u₀` for the first stage's resblocks and `ups.1`, ...
//! - Discriminator ([`sn_discriminator_layer_operators`]): each convolution's `weight_orig`
//!   (hook API) or `original` (parametrization API) on the 16×16, 8×8 and 4×4 feature maps it
//!   sees, and `fc` as a Linear (σ_operator = σ_reshaped).
//!
//! The ratio does not depend on the weight's scale, so normalized or plain weights give the same.

use super::hifigan::{Config, Generator};
use super::sn_discriminator::{Discriminator, SnConv, IMAGE};
use crate::operator_norm::{
    operator_norm, reshaped_sigma, AsOperator, ConvOperator, OperatorNorm, OperatorNormOptions,
};
use norm_core::Result;
use tch::Tensor;

/// One normalized layer of a model as an operator.
#[derive(Debug)]
pub struct LayerOperator {
    /// The layer's state-dict prefix (`conv_pre`, `resblocks.0.convs1.1`, `convs.0`, `fc`).
    pub layer: String,
    /// The layer's PyTorch class: `Conv1d`, `ConvTranspose1d`, `Conv2d` or `Linear`.
    pub kind: &'static str,
    /// The spatial input size the operator acts on (`[]` for a Linear).
    pub input_size: Vec<i64>,
    /// The layer's linear part on one sample of that size.
    pub operator: ConvOperator,
    /// The weight the operator holds (float32, the layer's layout).
    pub weight: Tensor,
    /// PyTorch's `spectral_norm` dim for the layer (1 for a ConvTranspose, else 0).
    pub dim: i64,
}

/// What [`LayerOperator::norms`] found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNorms {
    /// The largest singular value of the reshaped weight ([`reshaped_sigma`], float64): what
    /// PyTorch's `spectral_norm` converges to.
    pub sigma_reshaped: f64,
    /// The operator's norm by power iteration ([`operator_norm`]).
    pub operator: OperatorNorm,
}

impl LayerNorms {
    /// `σ_operator / σ_reshaped`.
    pub fn ratio(&self) -> f64 {
        self.operator.sigma / self.sigma_reshaped
    }
}

impl LayerOperator {
    fn new<L: AsOperator>(
        layer: String,
        kind: &'static str,
        l: &L,
        weight: Tensor,
        input_size: &[i64],
    ) -> Result<Self> {
        let operator = l.operator_with_weight(&weight, input_size)?;
        Ok(LayerOperator {
            layer,
            kind,
            input_size: input_size.to_vec(),
            operator,
            weight,
            dim: l.default_spectral_norm_dim(),
        })
    }

    /// Both σ of the layer: the reshaped weight's and the operator's (to `options`).
    pub fn norms(&self, options: OperatorNormOptions) -> Result<LayerNorms> {
        Ok(LayerNorms {
            sigma_reshaped: reshaped_sigma(&self.weight, self.dim)?,
            operator: operator_norm(&self.operator, options)?,
        })
    }
}

/// The generator's 20 weight-normed layers (module order within each stage: `conv_pre`, then
/// per stage `ups.i` and its resblocks, then `conv_post`) on an input of `frames` frames.
pub fn hifigan_layer_operators(model: &Generator, config: &Config, frames: i64) -> Result<Vec<LayerOperator>> {
    let mut out = Vec::with_capacity(model.num_layers());
    let mut length = frames;
    out.push(LayerOperator::new(
        "conv_pre".into(),
        "Conv1d",
        model.conv_pre.layer(),
        model.conv_pre.weight_t(false)?,
        &[length],
    )?);
    let k = config.resblock_kernel_sizes.len();
    for (i, up) in model.ups.iter().enumerate() {
        out.push(LayerOperator::new(
            format!("ups.{i}"),
            "ConvTranspose1d",
            up.layer(),
            up.weight_t(false)?,
            &[length],
        )?);
        length *= config.upsample_rates[i];
        for (n, block) in model.resblocks.iter().enumerate().skip(i * k).take(k) {
            for (name, convs) in [("convs1", &block.convs1), ("convs2", &block.convs2)] {
                for (m, c) in convs.iter().enumerate() {
                    let layer = format!("resblocks.{n}.{name}.{m}");
                    out.push(LayerOperator::new(layer, "Conv1d", c.layer(), c.weight_t(false)?, &[length])?);
                }
            }
        }
    }
    let post = &model.conv_post;
    out.push(LayerOperator::new("conv_post".into(), "Conv1d", post.layer(), post.weight_t(false)?, &[length])?);
    Ok(out)
}

/// The discriminator's four spectrally normalized layers on the feature maps they see.
pub fn sn_discriminator_layer_operators(model: &Discriminator) -> Result<Vec<LayerOperator>> {
    let mut out = Vec::with_capacity(model.convs.len() + 1);
    let mut size = IMAGE[1];
    for (i, conv) in model.convs.iter().enumerate() {
        let layer = format!("convs.{i}");
        let op = match conv {
            SnConv::Hooks(c) => {
                LayerOperator::new(layer, "Conv2d", c.layer(), c.weight_orig().shallow_clone(), &[size, size])?
            }
            SnConv::Param(c) => {
                LayerOperator::new(layer, "Conv2d", c.layer(), c.original().shallow_clone(), &[size, size])?
            }
        };
        // The output's spatial size is the next layer's input size.
        size = op.operator.output_shape().last().copied().unwrap_or(size);
        out.push(op);
    }
    let fc = &model.fc;
    out.push(LayerOperator::new("fc".into(), "Linear", fc.layer(), fc.weight_orig().shallow_clone(), &[])?);
    Ok(out)
}
