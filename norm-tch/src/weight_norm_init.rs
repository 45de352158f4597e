//! Data-dependent initialization of weight normalization (Salimans & Kingma 2016, section 3),
//! opt-in: nothing else in norm calls it, and PyTorch has no such function.
//!
//! For a layer under weight norm (`weight = g · v / ‖v‖`, either API, `dim` the layer's
//! output-channel dim) and a first batch `x`, per output channel `c`:
//!
//! ```text
//! t_c = (v_c / ‖v_c‖) · x           (the layer's forward with weight v/‖v‖ and no bias)
//! μ_c = mean(t_c),  s_c = sqrt(var(t_c) + eps)   over the batch (and every spatial position)
//! g_c ← init_scale / s_c,   b_c ← −μ_c · init_scale / s_c
//! ```
//!
//! so that on that batch every channel's pre-activation `g_c t_c + b_c = init_scale (t_c − μ_c)
//! / s_c` has mean 0 and standard deviation `init_scale`. The statistics use `v / ‖v‖`, as the
//! paper defines them (TensorFlow Addons' `WeightNormalization` uses the raw `v`, which is
//! only right when `‖v‖ = 1`). The variance is the *biased* one (divided by the count, as
//! `tf.nn.moments` in the paper's code), computed in float64 from `t` (which is computed in
//! the layer's dtype); `eps` defaults to 0, and a channel with `var + eps = 0` is an error
//! naming the layer and channel rather than an infinite `g`.
//!
//! Layers: Linear (output channels last in its output), Conv (dim 1) and ConvTranspose (dim 1;
//! weight norm must use `dim = 1` and `groups = 1`, so that `g` is per output channel).

use crate::backend::tch_err;
use crate::layers::reparam::{Reparametrization, WeightNormHook, WeightNormParametrization};
use crate::layers::{Conv, ConvTranspose, Normalized, WeightedLayer};
use crate::scheme::Suffix;
use norm_core::weight_norm::WeightNormDim;
use norm_core::{Error, Result};
use tch::{Kind, Tensor};

/// A layer whose output channels the data-dependent init can address: Linear, Conv,
/// ConvTranspose.
pub trait DataInitLayer: WeightedLayer {
    /// The bias, if the layer has one.
    fn bias(&self) -> Option<&Tensor>;
    /// The weight's dim of output channels (0 for Linear and Conv, 1 for ConvTranspose),
    /// which weight norm's `dim` must be.
    fn output_channel_dim(&self) -> i64;
    /// Whether `g` along [`DataInitLayer::output_channel_dim`] is one value per output
    /// channel (false for a grouped ConvTranspose, whose dim 1 is `out/groups`).
    fn g_per_output_channel(&self) -> bool {
        true
    }
    /// `Ok` when `xs` is a batched input of this layer; else [`Error::InvalidArgument`] naming `xs`.
    fn check_input(&self, xs: &Tensor) -> Result<()>;
    /// The axis of output channels in the forward's output of rank `rank`.
    fn output_channel_axis(&self, rank: usize) -> usize;
}

fn check_channels(xs: &Tensor, rank: usize, channels: i64, layout: &str) -> Result<()> {
    let size = xs.size();
    if size.len() != rank || size[1] != channels || size[0] == 0 {
        return Err(Error::invalid("xs", format!("a tensor of shape {size:?}"), layout.to_string()));
    }
    Ok(())
}

impl DataInitLayer for tch::nn::Linear {
    fn bias(&self) -> Option<&Tensor> {
        self.bs.as_ref()
    }
    fn output_channel_dim(&self) -> i64 {
        0
    }
    fn check_input(&self, xs: &Tensor) -> Result<()> {
        let size = xs.size();
        let in_features = self.ws.size()[1];
        if size.len() < 2 || size[size.len() - 1] != in_features || size[0] == 0 {
            return Err(Error::invalid(
                "xs",
                format!("a tensor of shape {size:?}"),
                format!("[batch >= 1, ..., in_features = {in_features}]"),
            ));
        }
        Ok(())
    }
    fn output_channel_axis(&self, rank: usize) -> usize {
        rank - 1
    }
}

impl<const N: usize> DataInitLayer for Conv<N> {
    fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    fn output_channel_dim(&self) -> i64 {
        0
    }
    fn check_input(&self, xs: &Tensor) -> Result<()> {
        check_channels(
            xs,
            N + 2,
            self.in_channels,
            &format!("[batch >= 1, in_channels = {}, {N} spatial sizes]", self.in_channels),
        )
    }
    fn output_channel_axis(&self, _rank: usize) -> usize {
        1
    }
}

impl<const N: usize> DataInitLayer for ConvTranspose<N> {
    fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    fn output_channel_dim(&self) -> i64 {
        1
    }
    fn g_per_output_channel(&self) -> bool {
        self.options.groups == 1
    }
    fn check_input(&self, xs: &Tensor) -> Result<()> {
        check_channels(
            xs,
            N + 2,
            self.in_channels,
            &format!("[batch >= 1, in_channels = {}, {N} spatial sizes]", self.in_channels),
        )
    }
    fn output_channel_axis(&self, _rank: usize) -> usize {
        1
    }
}

/// The two weight-norm reparametrizations, with the suffixes of g and v.
pub trait WeightNormReparametrization: Reparametrization {
    /// g's entry (`weight_g`, `parametrizations.weight.original0`).
    const G: Suffix;
    /// v's entry (`weight_v`, `parametrizations.weight.original1`).
    const V: Suffix;
    /// The stored dim.
    fn weight_norm_dim(&self) -> WeightNormDim;
}

impl WeightNormReparametrization for WeightNormHook {
    const G: Suffix = Suffix::WeightG;
    const V: Suffix = Suffix::WeightV;
    fn weight_norm_dim(&self) -> WeightNormDim {
        self.dim()
    }
}

impl WeightNormReparametrization for WeightNormParametrization {
    const G: Suffix = Suffix::Original0;
    const V: Suffix = Suffix::Original1;
    fn weight_norm_dim(&self) -> WeightNormDim {
        self.dim()
    }
}

/// Options of [`data_dependent_init`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DataInitOptions {
    /// The standard deviation every channel's pre-activation gets (positive, finite). Default 1.
    pub init_scale: f64,
    /// Added to the biased variance before the square root (finite, >= 0). Default 0.
    pub eps: f64,
}

impl Default for DataInitOptions {
    fn default() -> Self {
        DataInitOptions { init_scale: 1.0, eps: 0.0 }
    }
}

/// The batch statistics of `t = (v/‖v‖) · x` that [`data_dependent_init`] used, per output channel.
#[derive(Clone, Debug, PartialEq)]
pub struct DataInitStats {
    /// `μ_c`.
    pub mean: Vec<f64>,
    /// `s_c = sqrt(var_c + eps)` (biased variance).
    pub std: Vec<f64>,
    /// Values per channel the statistics ran over (batch × spatial positions).
    pub count: i64,
}

fn write(target: &Tensor, values: &Tensor) -> Result<()> {
    let mut target = target.shallow_clone();
    let values =
        values.f_to_kind(target.kind()).and_then(|v| v.f_reshape(target.size())).map_err(tch_err("reshape"))?;
    tch::no_grad(|| target.f_copy_(&values)).map_err(tch_err("copy_"))
}

/// Salimans & Kingma's data-dependent init of `layer`'s `g` and bias from the batch `xs`
/// (see the [module docs](self) for the formula); returns the statistics it used. Both are
/// written in place (`copy_`, so an optimizer holding them keeps them).
///
/// Errors, nothing written: `init_scale` not positive and finite or `eps` negative or not
/// finite; the layer folded; weight norm's dim not the layer's output-channel dim (0, or 1
/// for ConvTranspose) or a grouped ConvTranspose; no bias; `xs` not a batched input of the
/// layer; a channel whose `var + eps` is zero or not finite (naming the layer and channel).
///
/// ```
/// use norm_tch::layers::{conv1d, weight_norm, ConvOptions};
/// use norm_tch::weight_norm_init::{data_dependent_init, DataInitOptions};
/// use tch::{Device, Kind, Tensor};
/// # fn main() -> norm_tch::Result<()> {
/// let vs = tch::nn::VarStore::new(Device::Cpu);
/// let conv = weight_norm(&vs, conv1d(&(vs.root() / "c"), 4, 6, [3], ConvOptions::default())?, Some(0))?;
/// let xs = Tensor::randn([8, 4, 32], (Kind::Float, Device::Cpu));
/// let options = DataInitOptions { init_scale: 0.5, ..Default::default() };
/// data_dependent_init(&conv, &xs, options)?;
/// let ys = tch::no_grad(|| conv.f_forward(&xs))?.to_kind(Kind::Double);
/// let (std, mean) = ys.std_mean_correction([0i64, 2].as_slice(), 0, false);
/// assert!(mean.abs().max().double_value(&[]) < 1e-5);
/// assert!((std - 0.5).abs().max().double_value(&[]) < 1e-5);
/// # Ok(()) }
/// ```
pub fn data_dependent_init<L: DataInitLayer, R: WeightNormReparametrization>(
    layer: &Normalized<L, R>,
    xs: &Tensor,
    options: DataInitOptions,
) -> Result<DataInitStats> {
    let DataInitOptions { init_scale, eps } = options;
    if !(init_scale.is_finite() && init_scale > 0.0) {
        return Err(Error::invalid("init_scale", init_scale, "a positive finite number"));
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::invalid("eps", eps, "a finite number >= 0"));
    }
    let module = layer.module_path();
    if layer.is_folded() {
        return Err(Error::invalid("layer", format!("{module}, folded"), "an unfolded weight-norm layer"));
    }
    let inner = layer.layer();
    let dim = layer.reparametrization().weight_norm_dim();
    if dim.value() != inner.output_channel_dim() || !inner.g_per_output_channel() {
        return Err(Error::invalid(
            "dim",
            format!("{dim} for {module}"),
            format!(
                "weight norm over the output channels: dim {} (and groups = 1 for a ConvTranspose)",
                inner.output_channel_dim()
            ),
        ));
    }
    let bias = inner.bias().ok_or_else(|| {
        Error::invalid("layer", format!("{module} without a bias"), "a layer with a bias (the init sets it)")
    })?;
    inner.check_input(xs)?;
    let (g, v) = match (layer.entry(R::G), layer.entry(R::V)) {
        (Some(g), Some(v)) => (g, v),
        _ => return Err(Error::MissingParameter { name: "g or v".into(), module: module.to_string() }),
    };
    let stats = tch::no_grad(|| -> Result<(Tensor, Tensor, i64)> {
        let v64 = v.f_to_kind(Kind::Double).map_err(tch_err("to_kind"))?;
        let norm = Tensor::f_norm_except_dim(&v64, 2, dim.value()).map_err(tch_err("norm_except_dim"))?;
        let direction = v64.f_div(&norm).and_then(|d| d.f_to_kind(v.kind())).map_err(tch_err("div"))?;
        // The forward with a zero bias is the linear part: zero it, run, restore it.
        let mut bias_handle = bias.shallow_clone();
        let saved = bias.f_detach_copy().map_err(tch_err("detach_copy"))?;
        drop(bias_handle.f_zero_().map_err(tch_err("zero_"))?);
        let t = inner.forward_with_weight(xs, &direction);
        bias_handle.f_copy_(&saved).map_err(tch_err("copy_"))?;
        let t = t?.f_to_kind(Kind::Double).map_err(tch_err("to_kind"))?;
        let axis = inner.output_channel_axis(t.dim()) as i64;
        let channels = t.size()[axis as usize];
        let t =
            t.f_movedim(&[axis][..], &[0][..]).and_then(|t| t.f_reshape([channels, -1])).map_err(tch_err("reshape"))?;
        let count = t.size()[1];
        let var = t.f_var_correction(&[1i64][..], 0, false).map_err(tch_err("var"))?;
        let mean = t.f_mean_dim(&[1i64][..], false, Kind::Double).map_err(tch_err("mean"))?;
        Ok((mean, var, count))
    })?;
    let (mean, var, count) = stats;
    let std = var.f_add_scalar(eps).and_then(|v| v.f_sqrt()).map_err(tch_err("sqrt"))?;
    let std_values = Vec::<f64>::try_from(&std).map_err(tch_err("to_vec"))?;
    let mean_values = Vec::<f64>::try_from(&mean).map_err(tch_err("to_vec"))?;
    if let Some((channel, s)) = std_values.iter().enumerate().find(|(_, s)| !(s.is_finite() && **s > 0.0)) {
        return Err(Error::invalid(
            "xs",
            format!("a batch on which output channel {channel} of {module} has pre-activation std {s} (eps {eps})"),
            "a batch on which every output channel varies (std > 0), or eps > 0",
        ));
    }
    let new_g = std.f_reciprocal().and_then(|r| r.f_mul_scalar(init_scale)).map_err(tch_err("mul"))?;
    let new_b = mean.f_mul(&new_g).and_then(|b| b.f_neg()).map_err(tch_err("neg"))?;
    write(g, &new_g)?;
    write(bias, &new_b)?;
    Ok(DataInitStats { mean: mean_values, std: std_values, count })
}
