//! Criterion bench of norm-tch's spectral norm on a 256x256 `nn.Linear` weight, one
//! intra-op thread, on the CPU and (where libtorch sees one) on CUDA device 0:
//!
//! - `forward_train`: `SpectralNorm::compute_weight(true)`, the hook's work before every
//!   training forward (one power iteration, then `weight_orig / σ`), autograd recording;
//!   the report's `spectral_norm_forward_train`;
//! - `forward_eval`: `compute_weight(false)` under `no_grad` (`spectral_norm_forward_eval`);
//! - `power_iteration_k1` / `_k10`: the parametrization API's `_power_method` alone
//!   (`SpectralNormState::power_method`), the report's `power_iteration`.
//!
//! CUDA iterations end with `torch.cuda.synchronize()`, so they time the work, not its launch.
//!
//! `cargo bench -p norm-bench --bench spectral_norm`; `norm-bench report` is the comparison
//! with PyTorch eager.

use criterion::{criterion_group, criterion_main, Criterion};
use norm_tch::backend::synchronize;
use norm_tch::layers::{linear, spectral_norm, LinearConfig, SpectralNormOptions};
use norm_tch::norm_core::spectral_norm::parametrizations::{weight_to_matrix, SpectralNormState};
use norm_tch::TchBackend;
use norm_test_support::{bench_devices, one_thread};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// Size of the square weight.
const SIZE: i64 = 256;

fn spectral_norm_256(c: &mut Criterion) {
    one_thread();
    for (device, name) in bench_devices() {
        tch::manual_seed(0);
        let vs = VarStore::new(device);
        let layer = linear(&vs.root(), SIZE, SIZE, LinearConfig::default()).expect("nn.Linear(256, 256)");
        let layer = spectral_norm(&vs, layer, SpectralNormOptions::default()).expect("spectral_norm");
        let weight = Tensor::randn([SIZE, SIZE], (Kind::Float, device));
        let w_mat = weight_to_matrix::<TchBackend>(&weight, 0).expect("W_mat");

        let mut group = c.benchmark_group(format!("spectral_norm_{SIZE}x{SIZE}_{name}"));
        group.bench_function("forward_train", |b| {
            b.iter(|| {
                drop(layer.weight_t(true).expect("compute_weight(train)"));
                synchronize(device);
            })
        });
        group.bench_function("forward_eval", |b| {
            b.iter(|| {
                drop(tch::no_grad(|| layer.weight_t(false)).expect("compute_weight(eval)"));
                synchronize(device);
            })
        });
        for k in [1usize, 10] {
            let mut state = SpectralNormState::<TchBackend>::new(&weight, k as i64, 0, 1e-12).expect("_SpectralNorm");
            group.bench_function(format!("power_iteration_k{k}"), |b| {
                b.iter(|| {
                    state.power_method(&w_mat, k).expect("_power_method");
                    synchronize(device);
                })
            });
        }
        group.finish();
    }
}

// criterion_group! makes an undocumented `pub fn`: a private module keeps it out of the docs lint.
mod group {
    use super::*;
    criterion_group!(benches, spectral_norm_256);
}
criterion_main!(group::benches);
