//! `torch.nn.Conv1d`/`Conv2d`/`Conv3d` ([`Conv`]), and the construction shared with
//! `torch.nn.ConvTranspose1d`/`2d`/`3d` ([`super::ConvTranspose`]), as norm-tch's own layers, with public fields, PyTorch's weight shapes,
//! parameter names, init draws (`_ConvNd.reset_parameters`) and forward.
//!
//! - Weight `[out, in/groups, *kernel]` (transposed: `[in, out/groups, *kernel]`) drawn by
//!   `kaiming_uniform_(a=sqrt(5))`, then bias `[out]` by `uniform_(±1/sqrt(fan_in))` where
//!   `fan_in` comes from the weight's shape (`size(1) * prod(kernel)`; for a transposed conv
//!   that is `out/groups * prod(kernel)`). With `fan_in == 0` the bias draws nothing, as in
//!   PyTorch (which leaves it uninitialized; here it is zero).
//! - The forward ([`Conv::f_forward`], `tch::nn::Module::forward`,
//!   [`WeightedLayer::forward_with_weight`]) is PyTorch's: `at::conv{1,2,3}d(x, w, b, stride,
//!   padding, dilation, groups)`, on `F.pad(x, _reversed_padding_repeated_twice, mode)` with
//!   zero conv padding for a non-`zeros` padding mode (`_conv_forward`);
//!   `at::conv_transpose{1,2,3}d(x, w, b, stride, padding, output_padding, groups, dilation)`.
//!   Every stride, padding, dilation and output padding is per dimension.
//!
//! Construction checks only what PyTorch checks at construction: `_ConvNd.__init__`'s
//! `ValueError`s (positive `groups`, channels divisible by it) as [`Error::InvalidArgument`],
//! and `torch.empty`'s `RuntimeError` on a negative size as [`Error::Backend`]. What PyTorch
//! only rejects inside ATen's forward (a zero kernel size or stride, negative padding, an
//! output padding not below the stride or dilation, a kernel larger than the input, ...)
//! constructs fine, and the forward returns ATen's error as [`Error::Backend`].

use super::WeightedLayer;
use crate::backend::tch_err;
use crate::init;
use crate::var_store::add_parameter;
use norm_core::{Error, Result};
use tch::nn::{Module, PaddingMode, Path};
use tch::{Device, Kind, Tensor};

/// Options of [`conv1d`], [`conv2d`], [`conv3d`], with PyTorch's defaults (`Default`):
/// stride 1, padding 0, dilation 1, groups 1, bias, padding mode `zeros`.
#[derive(Clone, Copy, Debug)]
pub struct ConvOptions<const N: usize> {
    /// Stride per spatial dimension (ATen's forward rejects a non-positive one).
    pub stride: [i64; N],
    /// Implicit padding on both sides, per spatial dimension (ATen's forward rejects a
    /// negative one in `zeros` mode).
    pub padding: [i64; N],
    /// Kernel dilation per spatial dimension (ATen's forward rejects a non-positive one).
    pub dilation: [i64; N],
    /// Blocked connections: positive, and `in_channels` and `out_channels` must be divisible by it.
    pub groups: i64,
    /// Whether the layer has a bias (PyTorch's default `True`).
    pub bias: bool,
    /// `padding_mode`: `Zeros` (PyTorch's `"zeros"`), `Reflect`, `Replicate`, `Circular`.
    pub padding_mode: PaddingMode,
}

impl<const N: usize> Default for ConvOptions<N> {
    fn default() -> Self {
        ConvOptions {
            stride: [1; N],
            padding: [0; N],
            dilation: [1; N],
            groups: 1,
            bias: true,
            padding_mode: PaddingMode::Zeros,
        }
    }
}

/// PyTorch's name of a padding mode (`tch::nn::PaddingMode` has no `PartialEq`).
fn padding_mode_name(mode: PaddingMode) -> &'static str {
    match mode {
        PaddingMode::Zeros => "zeros",
        PaddingMode::Reflect => "reflect",
        PaddingMode::Replicate => "replicate",
        PaddingMode::Circular => "circular",
    }
}

impl<const N: usize> PartialEq for ConvOptions<N> {
    fn eq(&self, other: &Self) -> bool {
        (self.stride, self.padding, self.dilation, self.groups, self.bias)
            == (other.stride, other.padding, other.dilation, other.groups, other.bias)
            && padding_mode_name(self.padding_mode) == padding_mode_name(other.padding_mode)
    }
}

impl<const N: usize> Eq for ConvOptions<N> {}

/// `nn.Conv1d`/`Conv2d`/`Conv3d` (`N` spatial dimensions): `weight` `[out, in/groups,
/// *kernel_size]`, `bias` `[out]`, and the settings PyTorch's forward uses.
#[derive(Debug)]
pub struct Conv<const N: usize> {
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
    /// Stride, padding, dilation, groups, padding mode.
    pub options: ConvOptions<N>,
}

/// `nn.Conv1d`.
pub type Conv1d = Conv<1>;
/// `nn.Conv2d`.
pub type Conv2d = Conv<2>;
/// `nn.Conv3d`.
pub type Conv3d = Conv<3>;

pub(super) fn no_such_op(what: &str, n: usize) -> Error {
    Error::Unsupported {
        what: format!("{what} with {n} spatial dimensions"),
        reason: "PyTorch has 1d, 2d and 3d convolutions only".into(),
    }
}

/// `_reverse_repeat_tuple(padding, 2)`: `(p_last, p_last, ..., p0, p0)`, the `pad` argument of
/// `F.pad` for a non-`zeros` padding mode.
pub(super) fn reversed_padding_repeated_twice(padding: &[i64]) -> Vec<i64> {
    padding.iter().rev().flat_map(|&p| [p, p]).collect()
}

impl<const N: usize> Conv<N> {
    /// `_reversed_padding_repeated_twice`: `(p_last, p_last, ..., p0, p0)`.
    pub fn reversed_padding_repeated_twice(&self) -> Vec<i64> {
        reversed_padding_repeated_twice(&self.options.padding)
    }

    /// PyTorch's forward, `_conv_forward(xs, self.weight, self.bias)`; ATen's errors
    /// (bad stride, padding, kernel or input shape) as [`Error::Backend`].
    pub fn f_forward(&self, xs: &Tensor) -> Result<Tensor> {
        self.forward_with_weight(xs, &self.weight)
    }

    /// `at::conv{N}d(xs, weight, bias, stride, padding, dilation, groups)`.
    fn conv(&self, xs: &Tensor, weight: &Tensor, padding: [i64; N]) -> Result<Tensor> {
        let ConvOptions { stride, dilation, groups, .. } = self.options;
        let bias = self.bias.as_ref();
        match N {
            1 => xs.f_conv1d(weight, bias, stride, padding, dilation, groups).map_err(tch_err("conv1d")),
            2 => xs.f_conv2d(weight, bias, stride, padding, dilation, groups).map_err(tch_err("conv2d")),
            3 => xs.f_conv3d(weight, bias, stride, padding, dilation, groups).map_err(tch_err("conv3d")),
            n => Err(no_such_op("Conv", n)),
        }
    }
}

impl<const N: usize> WeightedLayer for Conv<N> {
    fn weight(&self) -> &Tensor {
        &self.weight
    }
    fn set_weight(&mut self, weight: Tensor) {
        self.weight = weight;
    }
    /// `_conv_forward(xs, weight, self.bias)`: `F.conv{N}d(xs, weight, bias, stride, padding,
    /// dilation, groups)` (`at::conv{N}d`), or for a non-`zeros` padding mode the same on
    /// `F.pad(xs, _reversed_padding_repeated_twice, mode)` with padding 0.
    fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
        match self.options.padding_mode {
            PaddingMode::Zeros => self.conv(xs, weight, self.options.padding),
            mode => {
                let padded = mode.f_pad(xs, &self.reversed_padding_repeated_twice()).map_err(tch_err("pad"))?;
                self.conv(&padded, weight, [0; N])
            }
        }
    }
}

/// `Module::forward` panics on an error, as tch's own layers do; [`Conv::f_forward`] returns it.
impl<const N: usize> Module for Conv<N> {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.f_forward(xs).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The `ValueError`s of `_ConvNd.__init__`, in its order. (A remainder is zero in Rust
/// exactly when it is in Python, negative operands included.)
pub(super) fn check_groups(in_channels: i64, out_channels: i64, groups: i64) -> Result<()> {
    if groups <= 0 {
        return Err(Error::invalid("groups", groups, "a positive integer"));
    }
    if in_channels % groups != 0 {
        return Err(Error::invalid("in_channels", in_channels, format!("a multiple of groups ({groups})")));
    }
    if out_channels % groups != 0 {
        return Err(Error::invalid("out_channels", out_channels, format!("a multiple of groups ({groups})")));
    }
    Ok(())
}

/// `torch.empty(shape)`'s check: a negative size is ATen's `RuntimeError` ("Trying to create
/// tensor with negative dimension ..."), returned as [`Error::Backend`] with ATen's message.
/// Nothing is allocated: ATen fails before, and valid shapes skip the call.
pub(super) fn check_sizes(shape: &[i64]) -> Result<()> {
    if shape.iter().any(|&d| d < 0) {
        drop(Tensor::f_empty(shape, (Kind::Float, Device::Cpu)).map_err(tch_err("empty"))?);
    }
    Ok(())
}

/// Refuses before drawing anything if `weight` or `bias` is taken at `path`, so a
/// failed construction neither consumes the generator nor leaves half a layer behind.
pub(super) fn check_free(path: &Path, names: &[&str]) -> Result<()> {
    for name in names {
        if path.get(name).is_some() {
            return Err(Error::invalid("name", path.path(name), "a parameter name not yet registered in the VarStore"));
        }
    }
    Ok(())
}

/// `_ConvNd.__init__` from its checks on: `groups`, `torch.empty` of weight and bias, then
/// weight and bias drawn as `_ConvNd.reset_parameters` does, registered at `path`.
pub(super) fn init_and_register(
    path: &Path,
    weight_shape: &[i64],
    out_channels: i64,
    bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    check_sizes(weight_shape)?;
    if bias {
        check_sizes(&[out_channels])?;
    }
    check_free(path, if bias { &["weight", "bias"] } else { &["weight"] })?;
    let weight = init::kaiming_uniform_default(weight_shape)?;
    let bias = if bias {
        let (fan_in, _) = init::fan_in_and_fan_out(weight_shape)?;
        Some(init::conv_bias_uniform(out_channels, fan_in)?)
    } else {
        None
    };
    let ws = add_parameter(path, "weight", weight)?;
    let bs = match bias {
        Some(b) => Some(add_parameter(path, "bias", b)?),
        None => None,
    };
    Ok((ws, bs))
}

fn conv_nd<const N: usize>(
    path: &Path,
    in_channels: i64,
    out_channels: i64,
    kernel_size: [i64; N],
    options: ConvOptions<N>,
) -> Result<Conv<N>> {
    check_groups(in_channels, out_channels, options.groups)?;
    let mut shape = vec![out_channels, in_channels / options.groups];
    shape.extend_from_slice(&kernel_size);
    let (weight, bias) = init_and_register(path, &shape, out_channels, options.bias)?;
    Ok(Conv { in_channels, out_channels, kernel_size, weight, bias, options })
}

/// `nn.Conv1d(in_channels, out_channels, kernel_size, ...)` registered as `weight`
/// `[out, in/groups, k]` and `bias` `[out]` at `path`, on the VarStore's device.
///
/// Errors: `groups` not positive or not dividing both channel counts
/// ([`Error::InvalidArgument`]); a negative size ([`Error::Backend`], as `torch.empty`);
/// `weight`/`bias` already registered at `path`. Nothing is drawn or registered on error.
pub fn conv1d(
    path: &Path,
    in_channels: i64,
    out_channels: i64,
    kernel_size: [i64; 1],
    options: ConvOptions<1>,
) -> Result<Conv1d> {
    conv_nd(path, in_channels, out_channels, kernel_size, options)
}

/// `nn.Conv2d(in_channels, out_channels, kernel_size, ...)` registered as `weight`
/// `[out, in/groups, kh, kw]` and `bias` `[out]` at `path`, on the VarStore's device.
/// Errors as [`conv1d`].
pub fn conv2d(
    path: &Path,
    in_channels: i64,
    out_channels: i64,
    kernel_size: [i64; 2],
    options: ConvOptions<2>,
) -> Result<Conv2d> {
    conv_nd(path, in_channels, out_channels, kernel_size, options)
}

/// `nn.Conv3d(in_channels, out_channels, kernel_size, ...)` registered as `weight`
/// `[out, in/groups, kd, kh, kw]` and `bias` `[out]` at `path`, on the VarStore's device.
/// Errors as [`conv1d`].
pub fn conv3d(
    path: &Path,
    in_channels: i64,
    out_channels: i64,
    kernel_size: [i64; 3],
    options: ConvOptions<3>,
) -> Result<Conv3d> {
    conv_nd(path, in_channels, out_channels, kernel_size, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::ConvTransposeOptions;
    use tch::nn::VarStore;

    #[test]
    fn reversed_padding_is_pytorchs() {
        assert_eq!(reversed_padding_repeated_twice(&[1, 2, 3]), [3, 3, 2, 2, 1, 1]);
        assert_eq!(reversed_padding_repeated_twice(&[2]), [2, 2]);
    }

    #[test]
    fn keeps_per_dimension_settings() {
        let _generator = crate::backend::lock_global_generator();
        let vs = VarStore::new(Device::Cpu);
        let opts = ConvOptions {
            stride: [2, 3],
            padding: [1, 0],
            dilation: [1, 2],
            groups: 2,
            bias: true,
            padding_mode: PaddingMode::Reflect,
        };
        let c = conv2d(&(vs.root() / "c"), 4, 6, [3, 2], opts).unwrap();
        assert_eq!(c.options, opts);
        assert_eq!((c.in_channels, c.out_channels, c.kernel_size), (4, 6, [3, 2]));
        assert_eq!(c.weight.size(), [6, 2, 3, 2]);
        assert_eq!(c.reversed_padding_repeated_twice(), [0, 0, 1, 1]);
        let opts = ConvTransposeOptions {
            stride: [3, 1, 2],
            padding: [1, 0, 2],
            output_padding: [2, 0, 1],
            groups: 3,
            bias: false,
            dilation: [2, 1, 3],
        };
        let t = crate::layers::conv_transpose3d(&(vs.root() / "t"), 3, 6, [1, 2, 3], opts).unwrap();
        assert_eq!(t.options, opts);
        assert_eq!(t.weight.size(), [3, 2, 1, 2, 3]);
        assert!(t.bias.is_none());
        assert_eq!(t.default_spectral_norm_dim(), 1);
    }
}
