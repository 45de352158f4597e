//! The seed document's two training programs, replayed as PyTorch runs them.
//!
//! Both start with `torch.manual_seed(seed); random.seed(seed)`, build `nn.Linear(2, 3)`
//! (whose init consumes the generator), overwrite its weight and bias with the
//! document's values, apply `weight_norm` (dim 0) and train with Adam:
//!
//! - `weight-norm` (lr 2e-3): loop 1 runs K steps of
//!   `x = randn(10, 2) * random.random() * 10; loss = 1 - linear(x).mean(); zero_grad; backward; step`;
//!   loop 2 runs K iterations that each do forward/zero_grad/backward/step twice on the same `x`.
//! - `seed-spectral` (lr 1e-4, weights ±200): K steps with `x = randn(10, 2)`. The document
//!   imports `weight_norm` under the name `spectral_norm`, so this trains weight norm.

use crate::snapshot::{Snapshot, TensorBits};
use anyhow::Result;
use norm_core::optim::AdamConfig;
use norm_core::random::PyRandom;
use norm_tch::layers::{linear, weight_norm, LinearConfig, WeightNorm};
use norm_tch::optim::Adam;
use norm_tch::var_store::detached_copy;
use std::collections::BTreeMap;
use tch::nn::{Linear, VarStore};
use tch::{Device, Kind, Tensor};

/// Which program of the seed document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Example {
    /// The weight-norm program: two training loops, lr 2e-3.
    WeightNorm,
    /// The "spectral_norm" program, which really applies weight_norm: weights ±200, lr 1e-4.
    SeedSpectral,
}

impl Example {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Example::WeightNorm => "weight-norm",
            Example::SeedSpectral => "seed-spectral",
        }
    }
}

/// The result of a replay: snapshots of the parameters, plus, for the human output, the
/// `weight` attribute as PyTorch holds it (computed by the last forward pre-hook).
#[derive(Debug)]
pub struct Replay {
    /// `initial`, `after_loop1` (weight-norm only) and `final`.
    pub snapshots: Vec<Snapshot>,
    /// The document's printouts, in order: (label, tensor).
    pub printouts: Vec<(String, Tensor)>,
}

/// The document's model: `nn.Linear(2, 3)` with `weight_norm`, and its optimizer.
pub struct SeedModel {
    /// The var store holding `bias`, `weight_g`, `weight_v`.
    pub vs: VarStore,
    /// The weight-normed layer.
    pub layer: WeightNorm<Linear>,
    /// `optim.Adam(linear_layer.parameters(), lr=lr)`.
    pub adam: Adam,
    /// `linear_layer.weight`: the weight computed by the last forward pre-hook.
    pub weight_attr: Tensor,
}

fn f32_tensor(values: &[f64], shape: &[i64]) -> Result<Tensor> {
    // torch.tensor(python_floats, dtype=torch.float32): each f64 literal rounded to f32.
    let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Ok(Tensor::f_from_slice(&values)?.f_reshape(shape)?)
}

impl SeedModel {
    /// Builds the model exactly as the document's program does (the generator must be seeded first).
    pub fn new(example: Example) -> Result<Self> {
        let vs = VarStore::new(Device::Cpu);
        let mut layer = linear(&vs.root(), 2, 3, LinearConfig::default())?;
        let (weight, bias, lr) = match example {
            Example::WeightNorm => {
                (f32_tensor(&[0.0, -2e-2, 0.3, 1.0, 1e-2, 0.0], &[3, 2])?, f32_tensor(&[-0.3, 0.0, -2e-2], &[3])?, 2e-3)
            }
            Example::SeedSpectral => {
                (f32_tensor(&[0.0, -2e2, 0.3, 1.0, 1e2, 0.0], &[3, 2])?, f32_tensor(&[-0.3, 0.0, -2e2], &[3])?, 1e-4)
            }
        };
        tch::no_grad(|| -> Result<()> {
            layer.ws.f_copy_(&weight)?;
            layer.bs.as_mut().expect("Linear(2, 3) has a bias").f_copy_(&bias)?;
            Ok(())
        })?;
        let layer = weight_norm(&vs, layer, Some(0))?;
        let adam = Adam::new(&vs, AdamConfig::with_lr(lr))?;
        let weight_attr = layer.weight_t(false)?;
        Ok(SeedModel { vs, layer, adam, weight_attr })
    }

    /// One `output = linear_layer(x); optimizer.zero_grad(); (1 - output.mean()).backward(); optimizer.step()`.
    ///
    /// The forward is the layer's training forward, which records weight norm and the
    /// linear as one autograd node ([`norm_tch::layers::Normalized::f_forward_t_and_weight`]);
    /// `weight_attr` gets the weight's value, as the forward pre-hook sets `module.weight`.
    pub fn train_step(&mut self, x: &Tensor) -> Result<()> {
        let (output, weight) = self.layer.f_forward_t_and_weight(x)?;
        self.weight_attr = weight;
        let loss = output.f_mean(None::<Kind>)?.f_rsub_scalar(1.0)?;
        self.adam.zero_grad()?;
        loss.f_backward()?;
        self.adam.step()?;
        Ok(())
    }

    /// `bias`, `weight_g`, `weight_v`, and `weight` recomputed from the current parameters.
    pub fn snapshot(&self, label: &str) -> Result<Snapshot> {
        let mut tensors = BTreeMap::new();
        tensors.insert("weight_v".to_string(), TensorBits::from_tensor(self.layer.weight_v())?);
        tensors.insert("weight_g".to_string(), TensorBits::from_tensor(self.layer.weight_g())?);
        let bias = self.layer.layer().bs.as_ref().expect("Linear(2, 3) has a bias");
        tensors.insert("bias".to_string(), TensorBits::from_tensor(bias)?);
        let weight = tch::no_grad(|| self.layer.weight_t(false))?;
        tensors.insert("weight".to_string(), TensorBits::from_tensor(&weight)?);
        Ok(Snapshot { label: label.to_string(), tensors })
    }

    /// Copies of the named tensors as they are now, for the document's printout.
    fn print(&self, out: &mut Vec<(String, Tensor)>, names: &[&str]) -> Result<()> {
        for name in names {
            let t = match *name {
                "weight_v" => self.layer.weight_v(),
                "weight_g" => self.layer.weight_g(),
                "bias" => self.layer.layer().bs.as_ref().expect("Linear(2, 3) has a bias"),
                _ => &self.weight_attr,
            };
            out.push((name.to_string(), detached_copy(t)?));
        }
        Ok(())
    }
}

/// Runs `example` for `steps` iterations per loop after seeding both generators with `seed`.
///
/// Pins libtorch to 1 intra-op thread and holds the global-generator lock throughout.
pub fn replay(example: Example, seed: u64, steps: u64) -> Result<Replay> {
    anyhow::ensure!(steps > 0, "steps must be at least 1, got {steps}");
    norm_tch::backend::set_num_threads(1)?;
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(seed as i64);
    let mut random = PyRandom::new(seed);
    let mut model = SeedModel::new(example)?;
    let mut snapshots = vec![model.snapshot("initial")?];
    let mut printouts = Vec::new();
    let randn = || Tensor::f_randn([10, 2], (Kind::Float, Device::Cpu));
    match example {
        Example::WeightNorm => {
            model.print(&mut printouts, &["weight_v", "weight_g", "weight", "bias"])?;
            for _ in 0..steps {
                let x = randn()?.f_mul_scalar(random.random())?.f_mul_scalar(10.0)?;
                model.train_step(&x)?;
            }
            snapshots.push(model.snapshot("after_loop1")?);
            model.print(&mut printouts, &["weight_v", "weight_g", "bias", "weight"])?;
            for _ in 0..steps {
                let x = randn()?.f_mul_scalar(random.random())?.f_mul_scalar(10.0)?;
                model.train_step(&x)?;
                model.train_step(&x)?;
            }
            model.print(&mut printouts, &["weight", "bias", "weight_v", "weight_g"])?;
        }
        Example::SeedSpectral => {
            model.print(&mut printouts, &["weight", "bias"])?;
            for _ in 0..steps {
                let x = randn()?;
                model.train_step(&x)?;
            }
            model.print(&mut printouts, &["weight", "bias", "weight_v", "weight_g"])?;
        }
    }
    snapshots.push(model.snapshot("final")?);
    Ok(Replay { snapshots, printouts })
}
