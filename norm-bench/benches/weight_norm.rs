//! Criterion bench of norm-tch's weight norm on a 256x256 `nn.Linear` weight, one
//! intra-op thread, on the CPU and (where libtorch sees one) on CUDA device 0: the forward
//! (`WeightNorm::weight()` without autograd, the work of the report's
//! `weight_norm_forward`) and forward+backward (`weight().sum().backward()` with the
//! gradients set to `None` before each iteration, as `weight_norm_forward_backward`).
//! CUDA iterations end with `torch.cuda.synchronize()`.
//!
//! On the CPU also `norm_tch::weight_norm_out` at 1024² and 4096² beside `_weight_norm`
//! (`compute_weight`, a fresh output per call) on the same `v`, `g`: the report's
//! `weight_norm_forward_out` and `weight_norm_forward` (the out variant writes into one
//! output allocated before timing; at 4096² the fresh output's page faults dominate).
//!
//! `cargo bench -p norm-bench --bench weight_norm`; `norm-bench report` is the comparison
//! with PyTorch eager. `benches/spectral_norm.rs` and `benches/adam.rs` cover the other hot paths.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use norm_tch::backend::{available_devices, synchronize};
use norm_tch::layers::{linear, weight_norm, LinearConfig};
use norm_tch::norm_core::weight_norm::{compute_weight, WeightNormDim};
use norm_tch::norm_core::AutodiffBackend;
use norm_tch::{weight_norm_out, TchBackend};
use norm_test_support::one_thread;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Size of the square weight.
const SIZE: i64 = 256;

fn weight_norm_256(c: &mut Criterion) {
    one_thread();
    for device in available_devices() {
        let suffix = if device == Device::Cpu { "" } else { "_cuda" };
        tch::manual_seed(0);
        let vs = VarStore::new(device);
        let layer = linear(&vs.root(), SIZE, SIZE, LinearConfig::default()).expect("nn.Linear(256, 256)");
        let weight_norm = weight_norm(&vs, layer, Some(0)).expect("weight_norm(dim=0)");
        // Handles on the same parameters (shallow clones share their gradients), for clearing.
        let mut params = [weight_norm.weight_v().shallow_clone(), weight_norm.weight_g().shallow_clone()];

        let mut group = c.benchmark_group(format!("weight_norm_{SIZE}x{SIZE}{suffix}"));
        group.bench_function("forward", |b| {
            b.iter(|| {
                drop(tch::no_grad(|| weight_norm.weight_t(false).expect("weight")));
                synchronize(device);
            })
        });
        group.bench_function("forward_backward", |b| {
            b.iter_batched(
                || {
                    for p in params.iter_mut() {
                        TchBackend::clear_grad(p).expect("grad = None");
                    }
                },
                |()| {
                    let weight = weight_norm.weight_t(false).expect("weight");
                    weight.f_sum(None::<Kind>).and_then(|s| s.f_backward()).expect("backward");
                    synchronize(device);
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

/// Square sizes of the out-variant comparison.
const OUT_SIZES: [i64; 2] = [1024, 4096];

fn weight_norm_out_cpu(c: &mut Criterion) {
    one_thread();
    let dim = WeightNormDim::new(Some(0));
    for n in OUT_SIZES {
        // As the report's weight_norm_forward: v = randn(n, n), g = norm_except_dim(v, 2, 0), no grad.
        tch::manual_seed(0);
        let v = Tensor::randn([n, n], (Kind::Float, Device::Cpu));
        let g = Tensor::norm_except_dim(&v, 2, 0);
        let mut out = Tensor::empty([n, n], (Kind::Float, Device::Cpu));
        let mut group = c.benchmark_group(format!("weight_norm_out_{n}x{n}"));
        if n >= 4096 {
            group.sample_size(10);
        }
        group.bench_function("_weight_norm", |b| {
            b.iter(|| drop(compute_weight::<TchBackend>(&v, &g, dim).expect("_weight_norm")))
        });
        group.bench_function("weight_norm_out", |b| {
            b.iter(|| weight_norm_out(&v, &g, dim, &mut out).expect("weight_norm_out"))
        });
        group.finish();
    }
}

// criterion_group! makes an undocumented `pub fn`: a private module keeps it out of the docs lint.
mod group {
    use super::*;
    criterion_group!(benches, weight_norm_256, weight_norm_out_cpu);
}
criterion_main!(group::benches);
