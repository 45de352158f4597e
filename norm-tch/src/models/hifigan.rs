//! The HiFi-GAN-style generator of `data/hifigan_block.py` (HiFi-GAN's `Generator` with
//! `ResBlock1`, at toy sizes; that script is its PyTorch twin) built from norm-tch's layers, every convolution under weight
//! normalization (hook API, dim 0), registered under PyTorch's state-dict names:
//!
//! | PyTorch module | norm-tch | state-dict keys |
//! | --- | --- | --- |
//! | `conv_pre = weight_norm(Conv1d(in, ch, 7, 1, padding=3))` | `WeightNorm<Conv1d>` | `conv_pre.bias`, `.weight_g`, `.weight_v` |
//! | `ups[i] = weight_norm(ConvTranspose1d(c, c/2, 2u, u, padding=u/2))` | `WeightNorm<ConvTranspose1d>` | `ups.0.weight_g`, ... |
//! | `resblocks[n].convs1[m]` (dilation `d_m`), `.convs2[m]` (dilation 1) | `WeightNorm<Conv1d>` | `resblocks.0.convs1.1.weight_v`, ... |
//! | `conv_post = weight_norm(Conv1d(c, 1, 7, 1, padding=3))` | `WeightNorm<Conv1d>` | `conv_post.weight_g`, ... |
//!
//! The forward runs PyTorch's ops in PyTorch's order (`leaky_relu` with slope 0.1 through
//! [`crate::backend::leaky_relu`], `xt + x` with the operands in that order, `xs / K`, the final
//! `leaky_relu` with the default slope 0.01, `tanh`), so a checkpoint saved by the Python
//! model gives the same output bits here.

use crate::backend::{leaky_relu, tch_err};
use crate::layers::{
    conv1d, conv_transpose1d, fold_all, unfold_all, weight_norm, Conv1d, ConvOptions, ConvTranspose1d,
    ConvTransposeOptions, Foldable, WeightNorm,
};
use crate::var_store::path_at;
use norm_core::{Error, Result};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// HiFi-GAN's `LRELU_SLOPE`.
pub const LRELU_SLOPE: f64 = 0.1;

/// The generator's sizes (the `config` object of `data/hifigan_block.py`'s JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Input channels (HiFi-GAN: 80 mel bins).
    pub in_channels: i64,
    /// `upsample_initial_channel`: conv_pre's output channels, halved by every upsampling.
    pub channels: i64,
    /// One upsampling stage per rate `u`: ConvTranspose1d with kernel `2u`, stride `u`,
    /// padding `u / 2` (HiFi-GAN's `(k - u) // 2`).
    pub upsample_rates: Vec<i64>,
    /// One ResBlock1 per kernel size after every upsampling, averaged.
    pub resblock_kernel_sizes: Vec<i64>,
    /// The dilations of each ResBlock1's `convs1` (one `convs1`/`convs2` pair per entry).
    pub dilations: Vec<i64>,
}

impl Default for Config {
    /// The sizes `data/hifigan_block.py` uses by default.
    fn default() -> Self {
        Config {
            in_channels: 8,
            channels: 16,
            upsample_rates: vec![4, 2],
            resblock_kernel_sizes: vec![3, 5],
            dilations: vec![1, 3],
        }
    }
}

/// HiFi-GAN's `get_padding(kernel_size, dilation)`: `int((k * d - d) / 2)`.
pub fn get_padding(kernel_size: i64, dilation: i64) -> i64 {
    (kernel_size * dilation - dilation) / 2
}

/// A weight-normed `nn.Conv1d(c_in, c_out, k, 1, dilation=d, padding=p)` at `prefix`.
fn wn_conv1d(
    vs: &VarStore,
    prefix: &str,
    c_in: i64,
    c_out: i64,
    k: i64,
    dilation: i64,
    padding: i64,
) -> Result<WeightNorm<Conv1d>> {
    let options = ConvOptions { padding: [padding], dilation: [dilation], ..Default::default() };
    let conv = conv1d(&path_at(vs, prefix), c_in, c_out, [k], options)?;
    weight_norm(vs, conv, Some(0))
}

/// HiFi-GAN's `ResBlock1`: pairs of dilated and undilated convolutions with residual adds.
#[derive(Debug)]
pub struct ResBlock1 {
    /// `convs1[m]`: kernel `k`, dilation `dilations[m]`.
    pub convs1: Vec<WeightNorm<Conv1d>>,
    /// `convs2[m]`: kernel `k`, dilation 1.
    pub convs2: Vec<WeightNorm<Conv1d>>,
}

impl ResBlock1 {
    /// `ResBlock1(channels, kernel_size, dilations)` at `prefix` (e.g. `resblocks.0`),
    /// constructed in PyTorch's order: every `convs1`, then every `convs2`.
    pub fn new(vs: &VarStore, prefix: &str, channels: i64, kernel_size: i64, dilations: &[i64]) -> Result<Self> {
        let convs1 = dilations
            .iter()
            .enumerate()
            .map(|(m, &d)| {
                wn_conv1d(
                    vs,
                    &format!("{prefix}.convs1.{m}"),
                    channels,
                    channels,
                    kernel_size,
                    d,
                    get_padding(kernel_size, d),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let convs2 = (0..dilations.len())
            .map(|m| {
                wn_conv1d(
                    vs,
                    &format!("{prefix}.convs2.{m}"),
                    channels,
                    channels,
                    kernel_size,
                    1,
                    get_padding(kernel_size, 1),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ResBlock1 { convs1, convs2 })
    }

    /// `for c1, c2 in zip(convs1, convs2): xt = c2(lrelu(c1(lrelu(x, 0.1)), 0.1)); x = xt + x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.shallow_clone();
        for (c1, c2) in self.convs1.iter().zip(&self.convs2) {
            let xt = leaky_relu(&x, LRELU_SLOPE)?;
            let xt = c1.f_forward(&xt)?;
            let xt = leaky_relu(&xt, LRELU_SLOPE)?;
            let xt = c2.f_forward(&xt)?;
            x = xt.f_add(&x).map_err(tch_err("add"))?;
        }
        Ok(x)
    }
}

/// HiFi-GAN's `Generator` at the sizes of a [`Config`].
#[derive(Debug)]
pub struct Generator {
    /// `conv_pre`.
    pub conv_pre: WeightNorm<Conv1d>,
    /// `ups[i]`.
    pub ups: Vec<WeightNorm<ConvTranspose1d>>,
    /// `resblocks[i * K + j]`, `K` resblocks (one per kernel size) after upsampling `i`.
    pub resblocks: Vec<ResBlock1>,
    /// `conv_post`.
    pub conv_post: WeightNorm<Conv1d>,
    num_kernels: usize,
}

impl Generator {
    /// Builds the generator in `vs` with PyTorch's default init, drawing from the global
    /// generator in PyTorch's construction order (conv_pre, ups, resblocks, conv_post), so
    /// after `tch::manual_seed(s)` the weights are those of `Generator(config)` after
    /// `torch.manual_seed(s)` (hold `norm_tch::backend::lock_global_generator()` when other
    /// threads may draw). Loading a checkpoint overwrites them anyway.
    ///
    /// Errors: `config.channels` not divisible by `2^stages` (one halving per upsampling
    /// stage) or no resblock kernel size ([`Error::InvalidArgument`]), and the layers' own.
    pub fn new(vs: &VarStore, config: &Config) -> Result<Self> {
        let stages = config.upsample_rates.len();
        let divisor = u32::try_from(stages).ok().and_then(|s| 2i64.checked_pow(s));
        if divisor.is_none_or(|d| config.channels % d != 0) {
            return Err(Error::invalid(
                "config.channels",
                config.channels,
                format!("a multiple of 2^{stages} (halved by each of the {stages} upsampling stages)"),
            ));
        }
        if config.resblock_kernel_sizes.is_empty() {
            return Err(Error::invalid("config.resblock_kernel_sizes", "[]", "at least one kernel size"));
        }
        let ch = config.channels;
        let conv_pre = wn_conv1d(vs, "conv_pre", config.in_channels, ch, 7, 1, 3)?;
        let mut ups = Vec::new();
        for (i, &u) in config.upsample_rates.iter().enumerate() {
            let c = ch >> i;
            let options = ConvTransposeOptions { stride: [u], padding: [u / 2], ..Default::default() };
            let prefix = format!("ups.{i}");
            let up = conv_transpose1d(&path_at(vs, &prefix), c, c / 2, [2 * u], options)?;
            ups.push(weight_norm(vs, up, Some(0))?);
        }
        let mut resblocks = Vec::new();
        for i in 0..ups.len() {
            for &k in &config.resblock_kernel_sizes {
                let prefix = format!("resblocks.{}", resblocks.len());
                resblocks.push(ResBlock1::new(vs, &prefix, ch >> (i + 1), k, &config.dilations)?);
            }
        }
        let conv_post = wn_conv1d(vs, "conv_post", ch >> ups.len(), 1, 7, 1, 3)?;
        Ok(Generator { conv_pre, ups, resblocks, conv_post, num_kernels: config.resblock_kernel_sizes.len() })
    }

    /// `Generator.forward`: `[batch, in_channels, T]` to `[batch, 1, T * prod(rates)]` (for
    /// even rates, as HiFi-GAN's; an odd rate `u` turns a length `L` into `u * L + 1`).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.conv_pre.f_forward(x)?;
        for (i, up) in self.ups.iter().enumerate() {
            x = leaky_relu(&x, LRELU_SLOPE)?;
            x = up.f_forward(&x)?;
            let mut xs: Option<Tensor> = None;
            for block in &self.resblocks[i * self.num_kernels..(i + 1) * self.num_kernels] {
                let y = block.forward(&x)?;
                // PyTorch: `xs += resblock(x)` (in place; the same add, the same bits).
                xs = Some(match xs {
                    None => y,
                    Some(xs) => xs.f_add(&y).map_err(tch_err("add"))?,
                });
            }
            // `Generator::new` refuses an empty kernel list, so every stage has a resblock.
            let xs = xs.ok_or_else(|| Error::invalid("resblock_kernel_sizes", "[]", "at least one kernel size"))?;
            // `xs / self.num_kernels`: a Python int, hence an integer Scalar here too.
            x = xs.f_div_scalar(self.num_kernels as i64).map_err(tch_err("div"))?;
        }
        let x = x.f_leaky_relu().map_err(tch_err("leaky_relu"))?; // F.leaky_relu(x): the default slope 0.01
        let x = self.conv_post.f_forward(&x)?;
        x.f_tanh().map_err(tch_err("tanh"))
    }

    /// Every weight-normed layer, in module order.
    pub fn layers_mut(&mut self) -> Vec<&mut dyn Foldable> {
        let mut layers: Vec<&mut dyn Foldable> = vec![&mut self.conv_pre];
        for up in &mut self.ups {
            layers.push(up);
        }
        for block in &mut self.resblocks {
            for conv in block.convs1.iter_mut().chain(block.convs2.iter_mut()) {
                layers.push(conv);
            }
        }
        layers.push(&mut self.conv_post);
        layers
    }

    /// Every `weight_g`, in module order (PyTorch's `named_parameters()` order).
    pub fn weight_gs(&self) -> Vec<&Tensor> {
        let mut gs = vec![self.conv_pre.weight_g()];
        gs.extend(self.ups.iter().map(|u| u.weight_g()));
        for block in &self.resblocks {
            gs.extend(block.convs1.iter().chain(&block.convs2).map(|c| c.weight_g()));
        }
        gs.push(self.conv_post.weight_g());
        gs
    }

    /// The number of weight-normed layers.
    pub fn num_layers(&self) -> usize {
        2 + self.ups.len() + self.resblocks.iter().map(|b| b.convs1.len() + b.convs2.len()).sum::<usize>()
    }

    /// Folds every weight norm into a plain `weight` (`norm_tch::layers::fold_all`): the
    /// store then holds what PyTorch's `remove_weight_norm` on every layer leaves.
    pub fn fold(&mut self) -> Result<()> {
        fold_all(self.layers_mut())
    }

    /// Unfolds every layer again (`norm_tch::layers::unfold_all`): `v = w`, `g = ‖w‖` per
    /// output slice, so the effective weight `g * w / ‖w‖` equals `w` up to rounding only.
    pub fn unfold(&mut self) -> Result<()> {
        unfold_all(self.layers_mut())
    }
}

/// The model and input of `data/hifigan_block.py --seed seed` without reading its files:
/// `manual_seed(seed)`, the generator with PyTorch's init, every `weight_g` multiplied in
/// place by `rand_like(g) + 0.5` (in module order), then `randn(batch, in_channels,
/// length)`. Holds `norm_tch::backend::lock_global_generator()` throughout.
///
/// ```
/// use norm_tch::models::hifigan::{seeded, Config};
/// # fn main() -> norm_tch::Result<()> {
/// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
/// let (model, x) = seeded(&vs, &Config::default(), 0, 1, 16)?;
/// let y = tch::no_grad(|| model.forward(&x))?;
/// assert_eq!(y.size(), [1, 1, 16 * 8]); // upsampling rates 4 and 2
/// assert_eq!(model.num_layers(), 20);
/// # Ok(()) }
/// ```
pub fn seeded(vs: &VarStore, config: &Config, seed: u64, batch: i64, length: i64) -> Result<(Generator, Tensor)> {
    let _generator = crate::backend::lock_global_generator();
    seeded_while_locked(vs, config, seed, batch, length)
}

/// [`seeded`] for a caller that already holds `norm_tch::backend::lock_global_generator()`
/// (locking it again would deadlock): the same draws, without taking the lock.
pub fn seeded_while_locked(
    vs: &VarStore,
    config: &Config,
    seed: u64,
    batch: i64,
    length: i64,
) -> Result<(Generator, Tensor)> {
    tch::manual_seed(seed as i64);
    let model = Generator::new(vs, config)?;
    tch::no_grad(|| -> std::result::Result<(), tch::TchError> {
        for g in model.weight_gs() {
            let factor = g.f_rand_like()?.f_add_scalar(0.5)?;
            let _ = g.shallow_clone().f_mul_(&factor)?;
        }
        Ok(())
    })
    .map_err(tch_err("g *= rand_like(g) + 0.5"))?;
    let x =
        Tensor::f_randn([batch, config.in_channels, length], (Kind::Float, Device::Cpu)).map_err(tch_err("randn"))?;
    Ok((model, x))
}
