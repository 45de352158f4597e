//! The spectrally normalized GAN discriminator of `data/sn_discriminator.py` (its PyTorch
//! twin) and its training loop, built from norm-tch's layers under PyTorch's state-dict names:
//!
//! | PyTorch module | norm-tch | state-dict keys |
//! | --- | --- | --- |
//! | `convs.0 = spectral_norm(Conv2d(1, 8, 4, 2, padding=1))` | `SpectralNorm<Conv2d>` | `convs.0.bias`, `.weight_orig`, `.weight_u`, `.weight_v` |
//! | `convs.1 = parametrizations.spectral_norm(Conv2d(8, 16, 4, 2, padding=1))` | `Parametrized<Conv2d>` | `convs.1.bias`, `.parametrizations.weight.original`, `.parametrizations.weight.0._u`, `._v` |
//! | `convs.2 = spectral_norm(Conv2d(16, 16, 3, 1, padding=1))` | `SpectralNorm<Conv2d>` | `convs.2.*` |
//! | `fc = spectral_norm(Linear(256, 1))` | `SpectralNorm<Linear>` | `fc.bias`, `fc.weight_orig`, `fc.weight_u`, `fc.weight_v` |
//!
//! Forward: `x = leaky_relu(conv(x), 0.2)` for each conv, then `fc(flatten(x, 1))`.
//! Training: hinge loss `relu(1 - D(real)).mean() + relu(1 + D(fake)).mean()` with
//! PyTorch-exact Adam (`lr=2e-4, betas=(0.5, 0.999)`), each forward in training mode (one
//! power iteration per layer per forward, as PyTorch).

use crate::backend::{leaky_relu, tch_err};
use crate::layers::{
    conv2d, linear, parametrizations, spectral_norm, Conv2d, ConvOptions, LinearConfig, ParametrizedSpectralNorm,
    SpectralNorm, SpectralNormOptions,
};
use crate::optim::Adam;
use norm_core::optim::AdamConfig;
use norm_core::Result;
use tch::nn::{Linear, VarStore};
use tch::{Device, Kind, Tensor};

/// The discriminator's LeakyReLU slope.
pub const LRELU_SLOPE: f64 = 0.2;
/// The image shape `[channels, height, width]`.
pub const IMAGE: [i64; 3] = [1, 16, 16];

/// A convolution under spectral norm, through either PyTorch API.
#[derive(Debug)]
pub enum SnConv {
    /// `torch.nn.utils.spectral_norm`.
    Hooks(SpectralNorm<Conv2d>),
    /// `torch.nn.utils.parametrizations.spectral_norm`.
    Param(ParametrizedSpectralNorm<Conv2d>),
}

impl SnConv {
    /// The forward in training mode (`train`: power iteration first) or eval mode.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match self {
            SnConv::Hooks(c) => c.f_forward_t(x, train),
            SnConv::Param(c) => c.f_forward_t(x, train),
        }
    }
}

/// The discriminator.
#[derive(Debug)]
pub struct Discriminator {
    /// `convs.0` .. `convs.2`.
    pub convs: Vec<SnConv>,
    /// `fc`.
    pub fc: SpectralNorm<Linear>,
}

impl Discriminator {
    /// Builds the discriminator in `vs`, drawing from the global generator exactly as
    /// `Discriminator()` does in PyTorch: for each layer in order its weight and bias
    /// (PyTorch's init), then its spectral norm's `u` and `v` (the parametrization API also
    /// runs its 15 + 1 registration power iterations).
    pub fn new(vs: &VarStore) -> Result<Self> {
        let sn = SpectralNormOptions::default();
        let opts = |stride, padding| ConvOptions {
            stride: [stride, stride],
            padding: [padding, padding],
            ..Default::default()
        };
        let c0 = conv2d(&(vs.root() / "convs" / "0"), 1, 8, [4, 4], opts(2, 1))?;
        let c0 = SnConv::Hooks(spectral_norm(vs, c0, sn)?);
        let c1 = conv2d(&(vs.root() / "convs" / "1"), 8, 16, [4, 4], opts(2, 1))?;
        let c1 = SnConv::Param(parametrizations::spectral_norm(vs, c1, sn)?);
        let c2 = conv2d(&(vs.root() / "convs" / "2"), 16, 16, [3, 3], opts(1, 1))?;
        let c2 = SnConv::Hooks(spectral_norm(vs, c2, sn)?);
        let fc = linear(&(vs.root() / "fc"), 16 * 4 * 4, 1, LinearConfig::default())?;
        let fc = spectral_norm(vs, fc, sn)?;
        Ok(Discriminator { convs: vec![c0, c1, c2], fc })
    }

    /// `D(x)` for `x` of shape `[batch, 1, 16, 16]`: logits `[batch, 1]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.shallow_clone();
        for conv in &self.convs {
            x = leaky_relu(&conv.forward_t(&x, train)?, LRELU_SLOPE)?;
        }
        self.fc.f_forward_t(&x.f_flatten(1, -1).map_err(tch_err("flatten"))?, train)
    }
}

/// `F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()`: `1.0 - t` is
/// `aten::rsub(t, 1.0)` and `1.0 + t` is `aten::add(t, 1.0)` in PyTorch too.
pub fn hinge_loss(d_real: &Tensor, d_fake: &Tensor) -> Result<Tensor> {
    let loss = || -> std::result::Result<Tensor, tch::TchError> {
        let real = d_real.f_rsub_scalar(1.0)?.f_relu()?.f_mean(None::<Kind>)?;
        let fake = d_fake.f_add_scalar(1.0)?.f_relu()?.f_mean(None::<Kind>)?;
        real.f_add(&fake)
    };
    loss().map_err(tch_err("hinge loss"))
}

/// `torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))`.
pub fn adam_config() -> AdamConfig {
    AdamConfig { lr: 2e-4, betas: (0.5, 0.999), ..Default::default() }
}

/// A finished training run.
pub struct TrainRun {
    /// The store holding the trained parameters and buffers.
    pub vs: VarStore,
    /// The model.
    pub model: Discriminator,
    /// The loss of every step (before that step's update; `loss.item()` of the float32 loss).
    pub losses: Vec<f32>,
    /// `torch.randn(batch, 1, 16, 16)` drawn after the last step.
    pub eval_input: Tensor,
    /// The eval-mode output on it (no power iteration; computed under `no_grad`).
    pub eval_output: Tensor,
}

/// `data/sn_discriminator.py train`, in Rust: `manual_seed(seed)`, build, Adam, `steps`
/// hinge-loss steps on `randn` real and fake batches, then one eval forward on a fresh
/// `randn` batch. Holds `norm_tch::backend::lock_global_generator()` throughout; set one
/// intra-op thread first (`norm_tch::backend::set_num_threads(1)`) to match the script.
///
/// ```
/// use norm_tch::models::sn_discriminator::train;
/// # fn main() -> norm_tch::Result<()> {
/// let run = train(0, 2, 2, |_, _| {})?;
/// assert_eq!(run.losses.len(), 2);
/// assert_eq!(run.eval_output.size(), [2, 1]);
/// # Ok(()) }
/// ```
pub fn train(seed: u64, steps: usize, batch: i64, mut on_step: impl FnMut(usize, &Tensor)) -> Result<TrainRun> {
    let _generator = crate::backend::lock_global_generator();
    tch::manual_seed(seed as i64);
    let vs = VarStore::new(Device::Cpu);
    let model = Discriminator::new(&vs)?;
    let mut opt = Adam::new(&vs, adam_config())?;
    let shape = [batch, IMAGE[0], IMAGE[1], IMAGE[2]];
    let mut losses = Vec::with_capacity(steps);
    let randn = || Tensor::f_randn(shape, (Kind::Float, Device::Cpu)).map_err(tch_err("randn"));
    for step in 1..=steps {
        let real = randn()?;
        let fake = randn()?;
        let d_real = model.forward_t(&real, true)?;
        let d_fake = model.forward_t(&fake, true)?;
        let loss = hinge_loss(&d_real, &d_fake)?;
        opt.zero_grad()?;
        loss.f_backward().map_err(tch_err("backward"))?;
        opt.step()?;
        on_step(step, &loss);
        losses.push(f32::try_from(&loss).map_err(tch_err("loss.item()"))?);
    }
    let eval_input = randn()?;
    let eval_output = tch::no_grad(|| model.forward_t(&eval_input, false))?;
    Ok(TrainRun { vs, model, losses, eval_input, eval_output })
}
