//! `torch.nn.Conv1d`/`Conv2d`/`Conv3d` and `torch.nn.ConvTranspose1d`/`2d`/`3d` as tch's own
//! layers (`tch::nn::Conv1D`..., `tch::nn::ConvTranspose1D`...), with PyTorch's weight shapes,
//! parameter names and init draws (`_ConvNd.reset_parameters`).
//!
//! - Weight `[out, in/groups, *kernel]` (transposed: `[in, out/groups, *kernel]`) drawn by
//!   `kaiming_uniform_(a=sqrt(5))`, then bias `[out]` by `uniform_(±1/sqrt(fan_in))` where
//!   `fan_in` comes from the weight's shape (`size(1) * prod(kernel)`; for a transposed conv
//!   that is `out/groups * prod(kernel)`). With `fan_in == 0` the bias draws nothing, as in
//!   PyTorch (which leaves it uninitialized; here it is zero).
//! - The forward ([`WeightedLayer::forward_with_weight`] and tch's own `Module::forward`) is
//!   PyTorch's: `F.conv{1,2,3}d(x, w, b, stride, padding, dilation, groups)`, after
//!   `F.pad(x, _reversed_padding_repeated_twice, mode)` for a non-`zeros` padding mode;
//!   `F.conv_transpose{1,2,3}d(x, w, b, stride, padding, output_padding, groups, dilation)`.
//!
//! tch keeps a layer's config private and has no accessor, so `forward_with_weight` reads
//! stride, padding, ... back from the layer's `Debug` text (tch is pinned at `=0.24.0`; a
//! format it does not recognize is an [`Error::Backend`], never a guess). Printing a bias of
//! fewer than 10 elements copies it to the host, a small per-forward cost.
//!
//! Two of tch's limits show as argument errors: a `tch::nn::ConvTranspose{1,2,3}D` stores one
//! stride/padding/output_padding/dilation for every dimension, and tch's own forward pads a
//! non-`zeros` padding mode `[p1, p0, p1, p0]` where PyTorch pads `[p1, p1, p0, p0]`, so
//! those need the same padding on every dimension (kernels may be non-square everywhere).

use super::WeightedLayer;
use crate::backend::tch_err;
use crate::init;
use crate::var_store::ModulePath;
use norm_core::{Error, Result};
use tch::nn::{Conv, ConvConfigND, ConvTransposeConfig, ConvTransposeND, Init, PaddingMode, Path, VarStore};
use tch::{Device, Tensor};

/// Options of [`conv1d`], [`conv2d`], [`conv3d`], with PyTorch's defaults (`Default`):
/// stride 1, padding 0, dilation 1, groups 1, bias, padding mode `zeros`.
#[derive(Clone, Copy, Debug)]
pub struct ConvOptions<const N: usize> {
    /// Stride per spatial dimension (positive).
    pub stride: [i64; N],
    /// Implicit padding on both sides, per spatial dimension (non-negative).
    pub padding: [i64; N],
    /// Kernel dilation per spatial dimension (positive).
    pub dilation: [i64; N],
    /// Blocked connections: `in_channels` and `out_channels` must be divisible by it.
    pub groups: i64,
    /// Whether the layer has a bias (PyTorch's default `True`).
    pub bias: bool,
    /// `padding_mode`: `Zeros` (PyTorch's `"zeros"`), `Reflect`, `Replicate`, `Circular`.
    pub padding_mode: PaddingMode,
}

impl<const N: usize> Default for ConvOptions<N> {
    fn default() -> Self {
        ConvOptions { stride: [1; N], padding: [0; N], dilation: [1; N], groups: 1, bias: true, padding_mode: PaddingMode::Zeros }
    }
}

/// Options of [`conv_transpose1d`], [`conv_transpose2d`], [`conv_transpose3d`], with
/// PyTorch's defaults (`Default`): stride 1, padding 0, output_padding 0, dilation 1,
/// groups 1, bias. Only the `zeros` padding mode exists, as in PyTorch.
///
/// tch's transposed layers store one value for all dimensions, so `stride`, `padding`,
/// `output_padding` and `dilation` must each repeat one value (an argument error otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTransposeOptions<const N: usize> {
    /// Stride per spatial dimension (positive).
    pub stride: [i64; N],
    /// `dilation * (kernel_size - 1) - padding` zero padding on both sides (non-negative).
    pub padding: [i64; N],
    /// Extra size on one side of the output; smaller than the stride or the dilation.
    pub output_padding: [i64; N],
    /// Blocked connections: `in_channels` and `out_channels` must be divisible by it.
    pub groups: i64,
    /// Whether the layer has a bias (PyTorch's default `True`).
    pub bias: bool,
    /// Kernel dilation per spatial dimension (positive).
    pub dilation: [i64; N],
}

impl<const N: usize> Default for ConvTransposeOptions<N> {
    fn default() -> Self {
        ConvTransposeOptions { stride: [1; N], padding: [0; N], output_padding: [0; N], groups: 1, bias: true, dilation: [1; N] }
    }
}

fn check_each(name: &'static str, values: &[i64], ok: impl Fn(i64) -> bool, expected: &str) -> Result<()> {
    if values.iter().all(|&v| ok(v)) {
        Ok(())
    } else {
        Err(Error::invalid(name, format!("{values:?}"), expected))
    }
}

fn check_uniform(name: &'static str, values: &[i64], why: &str) -> Result<()> {
    if values.windows(2).all(|w| w[0] == w[1]) {
        Ok(())
    } else {
        Err(Error::invalid(name, format!("{values:?}"), format!("the same value on every dimension ({why})")))
    }
}

/// The checks of `_ConvNd.__init__` (groups, divisibility) and of ATen's forward that do
/// not depend on the input (positive kernel, stride and dilation, non-negative padding).
fn check_common(in_channels: i64, out_channels: i64, kernel_size: &[i64], stride: &[i64], padding: &[i64], dilation: &[i64], groups: i64) -> Result<()> {
    if in_channels < 0 {
        return Err(Error::invalid("in_channels", in_channels, "a non-negative number of channels"));
    }
    if out_channels < 0 {
        return Err(Error::invalid("out_channels", out_channels, "a non-negative number of channels"));
    }
    if groups <= 0 {
        return Err(Error::invalid("groups", groups, "a positive integer"));
    }
    if in_channels % groups != 0 {
        return Err(Error::invalid("in_channels", in_channels, format!("a multiple of groups ({groups})")));
    }
    if out_channels % groups != 0 {
        return Err(Error::invalid("out_channels", out_channels, format!("a multiple of groups ({groups})")));
    }
    check_each("kernel_size", kernel_size, |k| k > 0, "positive kernel sizes")?;
    check_each("stride", stride, |s| s > 0, "positive strides")?;
    check_each("padding", padding, |p| p >= 0, "non-negative padding (negative padding is not supported)")?;
    check_each("dilation", dilation, |d| d > 0, "positive dilations")
}

/// Refuses before drawing anything if `<prefix>.weight` or `<prefix>.bias` is taken, so a
/// failed construction neither consumes the generator nor leaves half a layer behind.
pub(super) fn check_free(vs: &VarStore, path: &ModulePath, names: &[&str]) -> Result<()> {
    for name in names {
        if path.get(vs, name).is_some() {
            return Err(Error::invalid("name", path.full_name(name), "a parameter name not yet registered in the VarStore"));
        }
    }
    Ok(())
}

/// Draws weight then bias as `_ConvNd.reset_parameters` and registers them under `prefix`.
fn init_and_register(vs: &VarStore, prefix: &str, weight_shape: &[i64], out_channels: i64, bias: bool) -> Result<(Tensor, Option<Tensor>)> {
    let path = ModulePath::new(prefix);
    check_free(vs, &path, if bias { &["weight", "bias"] } else { &["weight"] })?;
    let weight = init::kaiming_uniform_default(weight_shape)?;
    let bias = if bias {
        let (fan_in, _) = init::fan_in_and_fan_out(weight_shape)?;
        Some(init::conv_bias_uniform(out_channels, fan_in)?)
    } else {
        None
    };
    let ws = path.add_parameter(vs, "weight", &weight)?;
    let bs = match bias {
        Some(b) => Some(path.add_parameter(vs, "bias", &b)?),
        None => None,
    };
    Ok((ws, bs))
}

fn conv_nd<const N: usize>(vs: &VarStore, prefix: &str, in_channels: i64, out_channels: i64, kernel_size: [i64; N], options: ConvOptions<N>) -> Result<Conv<[i64; N]>> {
    let ConvOptions { stride, padding, dilation, groups, bias, padding_mode } = options;
    check_common(in_channels, out_channels, &kernel_size, &stride, &padding, &dilation, groups)?;
    if !matches!(padding_mode, PaddingMode::Zeros) {
        check_uniform("padding", &padding, "tch's Conv forward pads [p1, p0, p1, p0] for a non-zeros padding_mode, PyTorch [p1, p1, p0, p0]")?;
    }
    let mut shape = vec![out_channels, in_channels / groups];
    shape.extend_from_slice(&kernel_size);
    let (ws, bs) = init_and_register(vs, prefix, &shape, out_channels, bias)?;
    // tch's constructor is the only way to set the private config: build the layer on a
    // scratch store with empty, constant-initialized tensors (no draws), then put ours in.
    let scratch = VarStore::new(Device::Cpu);
    let config = ConvConfigND { stride, padding, dilation, groups, bias, ws_init: Init::Const(0.), bs_init: Init::Const(0.), padding_mode };
    let mut layer = tch::nn::conv(scratch.root(), 0, 0, kernel_size, config);
    layer.ws = ws;
    layer.bs = bs;
    Ok(layer)
}

fn conv_transpose_nd<const N: usize>(
    vs: &VarStore,
    prefix: &str,
    in_channels: i64,
    out_channels: i64,
    kernel_size: [i64; N],
    options: ConvTransposeOptions<N>,
    build: impl FnOnce(&Path, ConvTransposeConfig) -> ConvTransposeND<[i64; N]>,
) -> Result<ConvTransposeND<[i64; N]>> {
    let ConvTransposeOptions { stride, padding, output_padding, groups, bias, dilation } = options;
    check_common(in_channels, out_channels, &kernel_size, &stride, &padding, &dilation, groups)?;
    check_each("output_padding", &output_padding, |p| p >= 0, "non-negative output padding")?;
    for d in 0..N {
        if output_padding[d] >= stride[d] && output_padding[d] >= dilation[d] {
            return Err(Error::invalid("output_padding", format!("{output_padding:?}"), format!("output padding smaller than either stride ({stride:?}) or dilation ({dilation:?}) on every dimension")));
        }
    }
    let why = "tch's ConvTranspose stores one value for all dimensions";
    check_uniform("stride", &stride, why)?;
    check_uniform("padding", &padding, why)?;
    check_uniform("output_padding", &output_padding, why)?;
    check_uniform("dilation", &dilation, why)?;
    let mut shape = vec![in_channels, out_channels / groups];
    shape.extend_from_slice(&kernel_size);
    let (ws, bs) = init_and_register(vs, prefix, &shape, out_channels, bias)?;
    let scratch = VarStore::new(Device::Cpu);
    let config = ConvTransposeConfig {
        stride: stride.first().copied().unwrap_or(1),
        padding: padding.first().copied().unwrap_or(0),
        output_padding: output_padding.first().copied().unwrap_or(0),
        groups,
        bias,
        dilation: dilation.first().copied().unwrap_or(1),
        ws_init: Init::Const(0.),
        bs_init: Init::Const(0.),
    };
    let mut layer = build(&scratch.root(), config);
    layer.ws = ws;
    layer.bs = bs;
    Ok(layer)
}

/// `nn.Conv1d(in_channels, out_channels, kernel_size, ...)` registered as `<prefix>.weight`
/// `[out, in/groups, k]` and `<prefix>.bias` `[out]` in `vs`, on the VarStore's device.
pub fn conv1d(vs: &VarStore, prefix: &str, in_channels: i64, out_channels: i64, kernel_size: [i64; 1], options: ConvOptions<1>) -> Result<tch::nn::Conv1D> {
    conv_nd(vs, prefix, in_channels, out_channels, kernel_size, options)
}

/// `nn.Conv2d(in_channels, out_channels, kernel_size, ...)` registered as `<prefix>.weight`
/// `[out, in/groups, kh, kw]` and `<prefix>.bias` `[out]` in `vs`, on the VarStore's device.
pub fn conv2d(vs: &VarStore, prefix: &str, in_channels: i64, out_channels: i64, kernel_size: [i64; 2], options: ConvOptions<2>) -> Result<tch::nn::Conv2D> {
    conv_nd(vs, prefix, in_channels, out_channels, kernel_size, options)
}

/// `nn.Conv3d(in_channels, out_channels, kernel_size, ...)` registered as `<prefix>.weight`
/// `[out, in/groups, kd, kh, kw]` and `<prefix>.bias` `[out]` in `vs`, on the VarStore's device.
pub fn conv3d(vs: &VarStore, prefix: &str, in_channels: i64, out_channels: i64, kernel_size: [i64; 3], options: ConvOptions<3>) -> Result<tch::nn::Conv3D> {
    conv_nd(vs, prefix, in_channels, out_channels, kernel_size, options)
}

/// `nn.ConvTranspose1d(in_channels, out_channels, kernel_size, ...)` registered as
/// `<prefix>.weight` `[in, out/groups, k]` and `<prefix>.bias` `[out]` in `vs`.
pub fn conv_transpose1d(vs: &VarStore, prefix: &str, in_channels: i64, out_channels: i64, kernel_size: [i64; 1], options: ConvTransposeOptions<1>) -> Result<tch::nn::ConvTranspose1D> {
    conv_transpose_nd(vs, prefix, in_channels, out_channels, kernel_size, options, |p, c| tch::nn::conv_transpose1d(p, 0, 0, 1, c))
}

/// `nn.ConvTranspose2d(in_channels, out_channels, kernel_size, ...)` registered as
/// `<prefix>.weight` `[in, out/groups, kh, kw]` and `<prefix>.bias` `[out]` in `vs`.
pub fn conv_transpose2d(vs: &VarStore, prefix: &str, in_channels: i64, out_channels: i64, kernel_size: [i64; 2], options: ConvTransposeOptions<2>) -> Result<tch::nn::ConvTranspose2D> {
    conv_transpose_nd(vs, prefix, in_channels, out_channels, kernel_size, options, |p, c| tch::nn::conv_transpose2d(p, 0, 0, 1, c))
}

/// `nn.ConvTranspose3d(in_channels, out_channels, kernel_size, ...)` registered as
/// `<prefix>.weight` `[in, out/groups, kd, kh, kw]` and `<prefix>.bias` `[out]` in `vs`.
pub fn conv_transpose3d(vs: &VarStore, prefix: &str, in_channels: i64, out_channels: i64, kernel_size: [i64; 3], options: ConvTransposeOptions<3>) -> Result<tch::nn::ConvTranspose3D> {
    conv_transpose_nd(vs, prefix, in_channels, out_channels, kernel_size, options, |p, c| tch::nn::conv_transpose3d(p, 0, 0, 1, c))
}

/// The private config of a tch layer, read back from its `Debug` text
/// (`... config: ConvConfigND { stride: [1, 1], padding: [0, 0], ..., groups: 1, ... } }`).
pub(super) struct DebugConfig {
    text: String,
}

fn config_err(layer: &str, what: String) -> Error {
    Error::Backend { op: "reading a tch layer's config", message: format!("{layer}: {what} (tch's Debug format changed?)") }
}

impl DebugConfig {
    /// The `config: <struct_name> { ... }` part of `layer`'s Debug text.
    pub(super) fn of(layer: &impl std::fmt::Debug, struct_name: &str) -> Result<Self> {
        let all = format!("{layer:?}");
        let marker = format!(" config: {struct_name} {{");
        let start = all.find(&marker).ok_or_else(|| config_err(struct_name, format!("no `{}` in the layer's Debug text", marker.trim())))?;
        Ok(DebugConfig { text: all[start + marker.len() - 1..].to_string() })
    }

    /// The raw text of `field`'s value: a `[...]` list or everything up to the next `,` / ` }`.
    fn raw(&self, field: &str) -> Result<&str> {
        let key = format!(" {field}: ");
        let start = self.text.find(&key).ok_or_else(|| config_err("config", format!("no field `{field}`")))? + key.len();
        let rest = &self.text[start..];
        let end = if rest.starts_with('[') { rest.find(']').map(|i| i + 1) } else { rest.find([',', ' ', '}']) };
        end.map(|e| &rest[..e]).ok_or_else(|| config_err("config", format!("unterminated field `{field}`")))
    }

    /// An `i64` field.
    pub(super) fn int(&self, field: &str) -> Result<i64> {
        let raw = self.raw(field)?;
        raw.parse().map_err(|_| config_err("config", format!("field `{field}` is `{raw}`, not an integer")))
    }

    /// A `bool` field.
    pub(super) fn boolean(&self, field: &str) -> Result<bool> {
        let raw = self.raw(field)?;
        raw.parse().map_err(|_| config_err("config", format!("field `{field}` is `{raw}`, not a bool")))
    }

    /// An `[i64; N]` field.
    fn ints<const N: usize>(&self, field: &str) -> Result<[i64; N]> {
        let raw = self.raw(field)?;
        let bad = || config_err("config", format!("field `{field}` is `{raw}`, not a list of {N} integers"));
        let inner = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')).ok_or_else(bad)?;
        let values: Vec<i64> = inner.split(", ").map(str::parse).collect::<std::result::Result<_, _>>().map_err(|_| bad())?;
        values.try_into().map_err(|_| bad())
    }

    fn padding_mode(&self) -> Result<PaddingMode> {
        match self.raw("padding_mode")? {
            "Zeros" => Ok(PaddingMode::Zeros),
            "Reflect" => Ok(PaddingMode::Reflect),
            "Replicate" => Ok(PaddingMode::Replicate),
            "Circular" => Ok(PaddingMode::Circular),
            other => Err(config_err("config", format!("unknown padding_mode `{other}`"))),
        }
    }
}

/// A conv layer's settings as PyTorch's `_conv_forward` uses them.
struct ConvSettings<const N: usize> {
    stride: [i64; N],
    padding: [i64; N],
    dilation: [i64; N],
    groups: i64,
    padding_mode: PaddingMode,
}

impl<const N: usize> ConvSettings<N> {
    fn of(layer: &Conv<[i64; N]>) -> Result<Self> {
        let c = DebugConfig::of(layer, "ConvConfigND")?;
        Ok(ConvSettings { stride: c.ints("stride")?, padding: c.ints("padding")?, dilation: c.ints("dilation")?, groups: c.int("groups")?, padding_mode: c.padding_mode()? })
    }

    /// `_reverse_repeat_tuple(padding, 2)`: `(p_last, p_last, ..., p0, p0)`.
    fn reversed_padding_repeated_twice(&self) -> Vec<i64> {
        self.padding.iter().rev().flat_map(|&p| [p, p]).collect()
    }
}

/// A transposed conv layer's settings as PyTorch's forward passes them (`output_size` None).
struct ConvTransposeSettings<const N: usize> {
    stride: [i64; N],
    padding: [i64; N],
    output_padding: [i64; N],
    groups: i64,
    dilation: [i64; N],
}

impl<const N: usize> ConvTransposeSettings<N> {
    fn of(layer: &ConvTransposeND<[i64; N]>) -> Result<Self> {
        let c = DebugConfig::of(layer, "ConvTransposeConfigND")?;
        Ok(ConvTransposeSettings { stride: c.ints("stride")?, padding: c.ints("padding")?, output_padding: c.ints("output_padding")?, groups: c.int("groups")?, dilation: c.ints("dilation")? })
    }
}

macro_rules! weighted_conv {
    ($ty:ty, $n:literal, $op:ident, $name:literal) => {
        impl WeightedLayer for $ty {
            fn weight(&self) -> &Tensor {
                &self.ws
            }
            fn set_weight(&mut self, weight: Tensor) {
                self.ws = weight;
            }
            #[doc = concat!("`F.", $name, "(xs, weight, bias, stride, padding, dilation, groups)` (`at::", $name, "`), ")]
            /// on `F.pad(xs, _reversed_padding_repeated_twice, mode)` with zero padding for a
            /// non-`zeros` padding mode, as `_conv_forward` does.
            fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
                let s = ConvSettings::<$n>::of(self)?;
                match s.padding_mode {
                    PaddingMode::Zeros => xs.$op(weight, self.bs.as_ref(), s.stride, s.padding, s.dilation, s.groups).map_err(tch_err($name)),
                    mode => {
                        let padded = mode.f_pad(xs, &s.reversed_padding_repeated_twice()).map_err(tch_err("pad"))?;
                        padded.$op(weight, self.bs.as_ref(), s.stride, [0i64; $n], s.dilation, s.groups).map_err(tch_err($name))
                    }
                }
            }
        }
    };
}

weighted_conv!(tch::nn::Conv1D, 1, f_conv1d, "conv1d");
weighted_conv!(tch::nn::Conv2D, 2, f_conv2d, "conv2d");
weighted_conv!(tch::nn::Conv3D, 3, f_conv3d, "conv3d");

macro_rules! weighted_conv_transpose {
    ($ty:ty, $n:literal, $op:ident, $name:literal) => {
        impl WeightedLayer for $ty {
            fn weight(&self) -> &Tensor {
                &self.ws
            }
            fn set_weight(&mut self, weight: Tensor) {
                self.ws = weight;
            }
            #[doc = concat!("`F.", $name, "(xs, weight, bias, stride, padding, output_padding, groups, dilation)` (`at::", $name, "`).")]
            fn forward_with_weight(&self, xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
                let s = ConvTransposeSettings::<$n>::of(self)?;
                xs.$op(weight, self.bs.as_ref(), s.stride, s.padding, s.output_padding, s.groups, s.dilation).map_err(tch_err($name))
            }
            /// 1: the weight is `[in, out/groups, ...]`, so output channels are dim 1.
            fn default_spectral_norm_dim(&self) -> i64 {
                1
            }
        }
    };
}

weighted_conv_transpose!(tch::nn::ConvTranspose1D, 1, f_conv_transpose1d, "conv_transpose1d");
weighted_conv_transpose!(tch::nn::ConvTranspose2D, 2, f_conv_transpose2d, "conv_transpose2d");
weighted_conv_transpose!(tch::nn::ConvTranspose3D, 3, f_conv_transpose3d, "conv_transpose3d");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_tch_configs() {
        let _generator = crate::backend::lock_global_generator();
        let vs = VarStore::new(Device::Cpu);
        let opts = ConvOptions { stride: [2, 3], padding: [1, 0], dilation: [1, 2], groups: 2, bias: true, padding_mode: PaddingMode::Zeros };
        let c = conv2d(&vs, "c", 4, 6, [3, 2], opts).unwrap();
        let s = ConvSettings::of(&c).unwrap();
        assert_eq!((s.stride, s.padding, s.dilation, s.groups), ([2, 3], [1, 0], [1, 2], 2));
        assert!(matches!(s.padding_mode, PaddingMode::Zeros));
        let opts = ConvOptions { padding: [2], padding_mode: PaddingMode::Circular, bias: false, ..Default::default() };
        let c = conv1d(&vs, "c1", 1, 1, [3], opts).unwrap();
        let s = ConvSettings::of(&c).unwrap();
        assert!(matches!(s.padding_mode, PaddingMode::Circular));
        assert_eq!(s.reversed_padding_repeated_twice(), [2, 2]);
        let opts = ConvTransposeOptions { stride: [3; 3], padding: [1; 3], output_padding: [2; 3], groups: 3, bias: true, dilation: [2; 3] };
        let t = conv_transpose3d(&vs, "t", 3, 6, [1, 2, 3], opts).unwrap();
        let s = ConvTransposeSettings::of(&t).unwrap();
        assert_eq!((s.stride, s.padding, s.output_padding, s.groups, s.dilation), ([3; 3], [1; 3], [2; 3], 3, [2; 3]));
        assert_eq!(t.ws.size(), [3, 2, 1, 2, 3]);
    }

    #[test]
    fn reversed_padding_is_pytorchs() {
        let s = ConvSettings::<3> { stride: [1; 3], padding: [1, 2, 3], dilation: [1; 3], groups: 1, padding_mode: PaddingMode::Reflect };
        assert_eq!(s.reversed_padding_repeated_twice(), [3, 3, 2, 2, 1, 1]);
    }
}
