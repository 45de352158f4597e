//! `torch.nn.ConvTranspose1d`/`2d`/`3d` ([`ConvTranspose`]) as norm-tch's own layer, with
//! public fields, PyTorch's weight shape `[in, out/groups, *kernel]`, parameter names, init
//! draws (`_ConvNd.reset_parameters`, shared with [`super::conv`]) and forward
//! (`at::conv_transpose{1,2,3}d(x, w, b, stride, padding, output_padding, groups, dilation)`,
//! every setting per dimension). Construction checks what PyTorch checks at construction;
//! the forward returns ATen's errors as [`Error::Backend`](norm_core::Error::Backend).

use super::conv::{check_groups, init_and_register, no_such_op};
use super::WeightedLayer;
use crate::backend::tch_err;
use norm_core::Result;
use tch::nn::{Module, Path};
use tch::Tensor;
/// Options of [`conv_transpose1d`], [`conv_transpose2d`], [`conv_transpose3d`], with
/// PyTorch's defaults (`Default`): stride 1, padding 0, output_padding 0, dilation 1,
/// groups 1, bias. Only the `zeros` padding mode exists, as in PyTorch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTransposeOptions<const N: usize> {
    /// Stride per spatial dimension (ATen's forward rejects a non-positive one).
    pub stride: [i64; N],
    /// `dilation * (kernel_size - 1) - padding` zero padding on both sides, per dimension.
    pub padding: [i64; N],
    /// Extra size on one side of the output, per dimension; ATen's forward requires it
    /// non-negative and smaller than either the stride or the dilation.
    pub output_padding: [i64; N],
    /// Blocked connections: positive, and `in_channels` and `out_channels` must be divisible by it.
    pub groups: i64,
    /// Whether the layer has a bias (PyTorch's default `True`).
    pub bias: bool,
    /// Kernel dilation per spatial dimension (ATen's forward rejects a non-positive one).
    pub dilation: [i64; N],
}

impl<const N: usize> Default for ConvTransposeOptions<N> {
    fn default() -> Self {
        ConvTransposeOptions {
            stride: [1; N],
            padding: [0; N],
            output_padding: [0; N],
            groups: 1,
            bias: true,
            dilation: [1; N],
        }
    }
}

/// `nn.ConvTranspose1d`/`2d`/`3d` (`N` spatial dimensions): `weight` `[in, out/groups,
/// *kernel_size]`, `bias` `[out]`, and the settings PyTorch's forward uses.
#[derive(Debug)]
pub struct ConvTranspose<const N: usize> {
    /// `in_channels` as constructed.
    pub in_channels: i64,
    /// `out_channels` as constructed.
    pub out_channels: i64,
    /// `kernel_size` as constructed.
    pub kernel_size: [i64; N],
    /// The `weight` parameter (registered as `weight`).
    pub weight: Tensor,
    /// The `bias` parameter (registered as `bias` at the layer's path), `None` with `bias=False`.
    pub bias: Option<Tensor>,
    /// Stride, padding, output padding, groups, dilation.
    pub options: ConvTransposeOptions<N>,
}

/// `nn.ConvTranspose1d`.
pub type ConvTranspose1d = ConvTranspose<1>;
/// `nn.ConvTranspose2d`.
pub type ConvTranspose2d = ConvTranspose<2>;
/// `nn.ConvTranspose3d`.
pub type ConvTranspose3d = ConvTranspose<3>;

impl<const N: usize> ConvTranspose<N> {
    /// PyTorch's forward with `output_size=None`; ATen's errors (bad stride, padding, output
    /// padding, kernel or input shape) as [`Error::Backend`](norm_core::Error::Backend).
    pub fn f_forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_with_weight(xs, &self.weight)
    }
}

impl<const N: usize> WeightedLayer for ConvTranspose<N> {
    fn weight(&self) -> &Tensor {
        &self.weight
    }
    fn set_weight(&mut self, weight: Tensor) {
        self.weight = weight;
    }
    /// `F.conv_transpose{N}d(xs, weight, bias, stride, padding, output_padding, groups,
    /// dilation)` (`at::conv_transpose{N}d`), as PyTorch's forward with `output_size=None`.
    fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
        let ConvTransposeOptions { stride, padding, output_padding, groups, dilation, .. } = self.options;
        let bias = self.bias.as_ref();
        match N {
            1 => xs
                .f_conv_transpose1d(weight, bias, stride, padding, output_padding, groups, dilation)
                .map_err(tch_err("conv_transpose1d")),
            2 => xs
                .f_conv_transpose2d(weight, bias, stride, padding, output_padding, groups, dilation)
                .map_err(tch_err("conv_transpose2d")),
            3 => xs
                .f_conv_transpose3d(weight, bias, stride, padding, output_padding, groups, dilation)
                .map_err(tch_err("conv_transpose3d")),
            n => Err(no_such_op("ConvTranspose", n)),
        }
    }
    /// 1: the weight is `[in, out/groups, ...]`, so output channels are dim 1.
    fn default_spectral_norm_dim(&self) -> i64 {
        1
    }
}

/// `Module::forward` panics on an error, as tch's own layers do; [`ConvTranspose::f_forward`] returns it.
impl<const N: usize> Module for ConvTranspose<N> {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.f_forward(xs).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn conv_transpose_nd<const N: usize>(
    path: &Path,
    in_channels: i64,
    out_channels: i64,
    kernel_size: [i64; N],
    options: ConvTransposeOptions<N>,
) -> Result<ConvTranspose<N>> {
    check_groups(in_channels, out_channels, options.groups)?;
    let mut shape = vec![in_channels, out_channels / options.groups];
    shape.extend_from_slice(&kernel_size);
    let (weight, bias) = init_and_register(path, &shape, out_channels, options.bias)?;
    Ok(ConvTranspose { in_channels, out_channels, kernel_size, weight, bias, options })
}

/// `nn.ConvTranspose1d(in_channels, out_channels, kernel_size, ...)` registered as
/// `weight` `[in, out/groups, k]` and `bias` `[out]` at `path`.
/// Errors as [`conv1d`](super::conv1d).
pub fn conv_transpose1d(
    path: &Path,
    in_channels: i64,
    out_channels: i64,
    kernel_size: [i64; 1],
    options: ConvTransposeOptions<1>,
) -> Result<ConvTranspose1d> {
    conv_transpose_nd(path, in_channels, out_channels, kernel_size, options)
}

/// `nn.ConvTranspose2d(in_channels, out_channels, kernel_size, ...)` registered as
/// `weight` `[in, out/groups, kh, kw]` and `bias` `[out]` at `path`.
/// Errors as [`conv1d`](super::conv1d).
pub fn conv_transpose2d(
    path: &Path,
    in_channels: i64,
    out_channels: i64,
    kernel_size: [i64; 2],
    options: ConvTransposeOptions<2>,
) -> Result<ConvTranspose2d> {
    conv_transpose_nd(path, in_channels, out_channels, kernel_size, options)
}

/// `nn.ConvTranspose3d(in_channels, out_channels, kernel_size, ...)` registered as
/// `weight` `[in, out/groups, kd, kh, kw]` and `bias` `[out]` at `path`.
/// Errors as [`conv1d`](super::conv1d).
pub fn conv_transpose3d(
    path: &Path,
    in_channels: i64,
    out_channels: i64,
    kernel_size: [i64; 3],
    options: ConvTransposeOptions<3>,
) -> Result<ConvTranspose3d> {
    conv_transpose_nd(path, in_channels, out_channels, kernel_size, options)
}
