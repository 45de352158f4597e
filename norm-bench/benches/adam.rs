//! Criterion bench of norm-tch's PyTorch-exact Adam, one intra-op thread, on the CPU and
//! (where libtorch sees one) on CUDA device 0:
//!
//! - `step_256x256`: `optimizer.step()` alone over a `nn.Linear(256, 256)` whose gradients
//!   were set once (the update reads them, it does not consume them);
//! - `train_step_spectral_256x256`: the report's `spectral_norm_train_step`, a whole step
//!   of `spectral_norm(nn.Linear(256, 256))`: `m(x).pow(2).mean()`, zero_grad, backward,
//!   Adam, with `x = randn(32, 256)`;
//! - `seed_loop_step`: one step of the seed document's weight-norm loop (CPU only).
//!
//! CUDA iterations end with `torch.cuda.synchronize()`.
//!
//! `cargo bench -p norm-bench --bench adam`.

use criterion::{criterion_group, criterion_main, Criterion};
use norm_bench::seed_loop::{Example, SeedModel};
use norm_tch::backend::synchronize;
use norm_tch::layers::{linear, spectral_norm, LinearConfig, SpectralNormOptions};
use norm_tch::norm_core::optim::AdamConfig;
use norm_tch::norm_core::random::PyRandom;
use norm_tch::optim::Adam;
use norm_test_support::{bench_devices, one_thread};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Size of the square weight.
const SIZE: i64 = 256;

fn adam(c: &mut Criterion) {
    one_thread();
    for (device, name) in bench_devices() {
        let mut group = c.benchmark_group(format!("adam_{name}"));

        tch::manual_seed(0);
        let vs = VarStore::new(device);
        let layer = linear(&vs.root(), SIZE, SIZE, LinearConfig::default()).expect("nn.Linear(256, 256)");
        let x = Tensor::randn([32, SIZE], (Kind::Float, device));
        x.apply_t(&layer, true).pow_tensor_scalar(2).mean(Kind::Float).backward();
        let mut optimizer = Adam::new(&vs, AdamConfig::with_lr(1e-3)).expect("Adam");
        group.bench_function(format!("step_{SIZE}x{SIZE}"), |b| {
            b.iter(|| {
                optimizer.step().expect("step");
                synchronize(device);
            })
        });

        tch::manual_seed(0);
        let vs = VarStore::new(device);
        let layer = linear(&vs.root(), SIZE, SIZE, LinearConfig::default()).expect("nn.Linear(256, 256)");
        let layer = spectral_norm(&vs, layer, SpectralNormOptions::default()).expect("spectral_norm");
        let mut optimizer = Adam::new(&vs, AdamConfig::with_lr(1e-3)).expect("Adam");
        group.bench_function(format!("train_step_spectral_{SIZE}x{SIZE}"), |b| {
            b.iter(|| {
                let loss = layer.f_forward_t(&x, true).expect("forward").pow_tensor_scalar(2).mean(Kind::Float);
                optimizer.zero_grad().expect("zero_grad");
                loss.backward();
                optimizer.step().expect("step");
                synchronize(device);
            })
        });

        if device == Device::Cpu {
            tch::manual_seed(0);
            let mut random = PyRandom::new(0);
            let mut model = SeedModel::new(Example::WeightNorm).expect("seed model");
            group.bench_function("seed_loop_step", |b| {
                b.iter(|| {
                    let x = Tensor::randn([10, 2], (Kind::Float, Device::Cpu)) * random.random() * 10.0;
                    model.train_step(&x).expect("train_step");
                })
            });
        }
        group.finish();
    }
}

// criterion_group! makes an undocumented `pub fn`: a private module keeps it out of the docs lint.
mod group {
    use super::*;
    criterion_group!(benches, adam);
}
criterion_main!(group::benches);
