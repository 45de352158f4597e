//! The whole-model rows: the HiFi-GAN-style generator (weight norm) and the SN-GAN
//! discriminator (spectral norm) of the examples ([`norm_tch::models`]), timed as a
//! full training step and as eval inference, Rust and PyTorch eager side by side, with the
//! training losses checked bit for bit in the same run ([`rust_losses`] against the PyTorch
//! script's `model_losses` answer).
//!
//! | op | timed body (PyTorch twin in `eager_timing.py`) |
//! |---|---|
//! | `hifigan_train_step` | `loss = F.l1_loss(G(x), y)`, `zero_grad`, `backward`, `Adam(lr=2e-4, betas=(0.8, 0.99)).step()` |
//! | `hifigan_eval_cached` | `G(x)` under `no_grad`: norm's cached weights; PyTorch's hooks recompute every weight |
//! | `hifigan_eval_folded` | `G(x)` under `no_grad` after norm's `fold`; PyTorch after `remove_weight_norm` on every layer |
//! | `sn_discriminator_train_step` | hinge loss of `D(real)`, `D(fake)` (training forwards: one power iteration per layer), `zero_grad`, `backward`, `Adam(lr=2e-4, betas=(0.5, 0.999)).step()` |
//! | `sn_discriminator_eval_cached` | `D(x)` in eval mode under `no_grad` (norm: cached weights) |
//! | `sn_discriminator_eval_folded` | the same after norm's `fold`; PyTorch after `remove_spectral_norm` / `remove_parametrizations` |
//!
//! The case's shape is `batch x length`: the generator's input is `randn(batch, 8, length)`
//! (output `8 · length` samples), the discriminator's `randn(batch, 1, 16, 16)` (length 256,
//! the pixels). Setup: `torch.manual_seed(0)`, the model built on the CPU (the generator's
//! `weight_g` scaled by `rand_like(g) + 0.5`, as `data/hifigan_block.py`), then the inputs
//! drawn on the CPU, then everything moved to the case's device. The loss check runs
//! [`LOSS_CHECK_STEPS`] training steps from the same setup on both sides.

use super::case::{Case, DType};
use super::ops::Op;
use super::rust_side::CASE_SEED;
use super::sampling::Body;
use anyhow::{bail, ensure, Context, Result};
use norm_core::optim::AdamConfig;
use norm_tch::models::hifigan::{self, Config, Generator};
use norm_tch::models::sn_discriminator::{self, Discriminator, SnConv};
use norm_tch::optim::Adam;
use tch::nn::VarStore;
use tch::{Device, Kind, Reduction, Tensor};

/// The generator rows' shape: batch 4, 64 input frames (512 output samples).
pub(crate) const HIFIGAN_SHAPE: (u64, u64) = (4, 64);
/// The discriminator rows' shape: batch 16 of 16x16 images.
pub(crate) const SN_DISCRIMINATOR_SHAPE: (u64, u64) = (16, 256);
/// Training steps whose losses are compared bit for bit.
pub(crate) const LOSS_CHECK_STEPS: usize = 3;

/// HiFi-GAN's optimizer settings (`lr=2e-4, betas=(0.8, 0.99)`), with Adam.
fn hifigan_adam() -> AdamConfig {
    AdamConfig { lr: 2e-4, betas: (0.8, 0.99), ..Default::default() }
}

/// Which model an op times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Model {
    /// The HiFi-GAN-style generator.
    Hifigan,
    /// The SN-GAN discriminator.
    SnDiscriminator,
}

impl Model {
    /// The model of a model op; `None` for the other ops.
    pub(crate) fn of(op: Op) -> Option<Model> {
        match op {
            Op::HifiganTrainStep | Op::HifiganEvalCached | Op::HifiganEvalFolded => Some(Model::Hifigan),
            Op::SnDiscriminatorTrainStep | Op::SnDiscriminatorEvalCached | Op::SnDiscriminatorEvalFolded => {
                Some(Model::SnDiscriminator)
            }
            _ => None,
        }
    }
}

/// A model set up for a case: built, its inputs drawn, moved to the case's device (one
/// lives per case: the size difference of the variants does not matter).
#[allow(clippy::large_enum_variant)]
enum Setup {
    Hifigan { vs: VarStore, model: Generator, x: Tensor, target: Tensor },
    SnDiscriminator { vs: VarStore, model: Discriminator, real: Tensor, fake: Tensor },
}

fn check_case(case: &Case, model: Model) -> Result<()> {
    ensure!(case.dtype == DType::F32, "{} runs in float32 only, got {}", case.op, case.dtype);
    ensure!(case.rows >= 1 && case.cols >= 1, "{}: batch and length must be at least 1", case.label());
    if model == Model::SnDiscriminator {
        ensure!(case.cols == 256, "{}: the discriminator's images have 256 pixels, got {}", case.label(), case.cols);
    }
    Ok(())
}

/// The case's setup (module doc). The caller holds the global generator's lock.
fn setup(case: &Case, model: Model) -> Result<Setup> {
    check_case(case, model)?;
    let device = case.device.device();
    let (batch, length) = (case.rows as i64, case.cols as i64);
    let mut vs = VarStore::new(Device::Cpu);
    Ok(match model {
        Model::Hifigan => {
            let config = Config::default();
            let (model, x) = hifigan::seeded_while_locked(&vs, &config, CASE_SEED, batch, length)?;
            let samples = length * config.upsample_rates.iter().product::<i64>();
            let target = Tensor::f_randn([batch, 1, samples], (Kind::Float, Device::Cpu))?;
            vs.set_device(device);
            Setup::Hifigan { vs, model, x: x.f_to(device)?, target: target.f_to(device)? }
        }
        Model::SnDiscriminator => {
            tch::manual_seed(CASE_SEED as i64);
            let model = Discriminator::new(&vs)?;
            let [c, h, w] = sn_discriminator::IMAGE;
            let real = Tensor::f_randn([batch, c, h, w], (Kind::Float, Device::Cpu))?;
            let fake = Tensor::f_randn([batch, c, h, w], (Kind::Float, Device::Cpu))?;
            vs.set_device(device);
            Setup::SnDiscriminator { vs, model, real: real.f_to(device)?, fake: fake.f_to(device)? }
        }
    })
}

/// A training step's closure owning a setup: returns the step's loss (computed before the update).
fn train_step(setup: Setup) -> Result<impl FnMut() -> Result<Tensor>> {
    let (vs, config) = match &setup {
        Setup::Hifigan { vs, .. } => (vs, hifigan_adam()),
        Setup::SnDiscriminator { vs, .. } => (vs, sn_discriminator::adam_config()),
    };
    let mut adam = Adam::new(vs, config)?;
    Ok(move || {
        let loss = match &setup {
            Setup::Hifigan { model, x, target, .. } => model.forward(x)?.f_l1_loss(target, Reduction::Mean)?,
            Setup::SnDiscriminator { model, real, fake, .. } => {
                sn_discriminator::hinge_loss(&model.forward_t(real, true)?, &model.forward_t(fake, true)?)?
            }
        };
        adam.zero_grad()?;
        loss.f_backward()?;
        adam.step()?;
        Ok(loss)
    })
}

/// Folds every normalized layer of the model.
fn fold(setup: &mut Setup) -> Result<()> {
    match setup {
        Setup::Hifigan { model, .. } => Ok(model.fold()?),
        Setup::SnDiscriminator { model, .. } => {
            for conv in &mut model.convs {
                match conv {
                    SnConv::Hooks(layer) => layer.fold()?,
                    SnConv::Param(layer) => layer.fold()?,
                }
            }
            Ok(model.fc.fold()?)
        }
    }
}

/// One eval forward under `no_grad` (its output dropped inside the timed window).
fn eval_forward(setup: &Setup) -> Result<()> {
    tch::no_grad(|| -> Result<()> {
        match setup {
            Setup::Hifigan { model, x, .. } => drop(model.forward(x)?),
            Setup::SnDiscriminator { model, real, .. } => drop(model.forward_t(real, false)?),
        }
        Ok(())
    })
}

/// A model op's case set up in Rust: its timed body (the row's `rust_body`).
pub(crate) fn body_model(case: &Case) -> Result<Body> {
    let model = Model::of(case.op).with_context(|| format!("{} is not a model op", case.op))?;
    let mut setup = setup(case, model)?;
    let device = case.device.device();
    Ok(match case.op {
        Op::HifiganTrainStep | Op::SnDiscriminatorTrainStep => {
            let mut step = train_step(setup)?;
            Body::new(device, move || step().map(drop))
        }
        Op::HifiganEvalCached | Op::SnDiscriminatorEvalCached => Body::new(device, move || eval_forward(&setup)),
        Op::HifiganEvalFolded | Op::SnDiscriminatorEvalFolded => {
            fold(&mut setup)?;
            Body::new(device, move || eval_forward(&setup))
        }
        other => bail!("{other} is not a model op"),
    })
}

/// The float32 bits of the losses of [`LOSS_CHECK_STEPS`] training steps of the case's
/// model from the case's setup (what the PyTorch script's `model_losses` answers).
pub(crate) fn rust_losses(case: &Case) -> Result<Vec<u32>> {
    let model = Model::of(case.op).with_context(|| format!("{} is not a model op", case.op))?;
    tch::manual_seed(CASE_SEED as i64);
    let mut step = train_step(setup(case, model)?)?;
    (0..LOSS_CHECK_STEPS).map(|_| Ok(f32::try_from(step()?.f_to_device(Device::Cpu)?)?.to_bits())).collect()
}

/// The row's verdict on the losses: `losses bit-equal (3 steps)`, or where they differ.
pub(crate) fn loss_verdict(rust: &[u32], pytorch: &[u32]) -> (bool, String) {
    if rust == pytorch {
        return (true, format!("losses bit-equal ({} steps)", rust.len()));
    }
    let step = rust.iter().zip(pytorch).position(|(a, b)| a != b).unwrap_or(rust.len().min(pytorch.len()));
    let show = |bits: &[u32]| bits.get(step).map(|b| format!("{}", f32::from_bits(*b))).unwrap_or_else(|| "–".into());
    (false, format!("LOSSES DIFFER at step {}: Rust {}, PyTorch {}", step + 1, show(rust), show(pytorch)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::case::Shape;
    use crate::report::sampling::{time_alone, Sampling};

    #[test]
    fn the_verdict_names_the_first_differing_step() {
        let one = 1.0f32.to_bits();
        let two = 2.0f32.to_bits();
        assert_eq!(loss_verdict(&[one, two], &[one, two]), (true, "losses bit-equal (2 steps)".into()));
        assert_eq!(
            loss_verdict(&[one, two], &[one, one]),
            (false, "LOSSES DIFFER at step 2: Rust 2, PyTorch 1".into())
        );
        assert!(!loss_verdict(&[one], &[]).0);
    }

    #[test]
    fn every_model_op_runs_and_trains_deterministically() {
        let _generator = norm_tch::backend::lock_global_generator();
        for op in [Op::HifiganTrainStep, Op::SnDiscriminatorTrainStep] {
            let shape =
                if op == Op::HifiganTrainStep { Shape { rows: 1, cols: 8 } } else { Shape { rows: 2, cols: 256 } };
            let case = Case::cpu_f32(op, shape);
            let losses = rust_losses(&case).unwrap();
            assert_eq!(losses.len(), LOSS_CHECK_STEPS);
            assert_eq!(losses, rust_losses(&case).unwrap(), "{op}: seeded");
            assert!(losses.windows(2).all(|w| w[0] != w[1]), "{op}: the steps update the model");
            for op in Op::all().filter(|o| Model::of(*o) == Model::of(op)) {
                let timed = time_alone(body_model(&Case { op, ..case }).unwrap(), &Sampling::fixed(1, 2)).unwrap();
                assert_eq!(timed.nanos.len(), 2, "{op}");
            }
        }
    }
}
