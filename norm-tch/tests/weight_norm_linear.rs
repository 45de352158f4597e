//! The fused weight-normed Linear forward (`csrc/weight_norm_linear.cpp`, one
//! `WeightNormLinearBackward` node) against the unfused ops PyTorch runs
//! (`torch._weight_norm(v, g, dim)` then `F.linear`): outputs, every gradient and the
//! parameters after several Adam steps, bit for bit, over shapes, dims, dtypes and losses;
//! double backward (create_graph); the cases the rule declines; and the tiny-kernel replays
//! (`csrc/tiny_kernels.h`) against the ATen kernels they replace.

use anyhow::Result;
use norm_core::optim::AdamConfig;
use norm_tch::backend::{set_tiny_kernels, tiny_kernels};
use norm_tch::layers::{linear, weight_norm, LinearConfig, WeightNorm};
use norm_tch::optim::Adam;
use norm_test_support::bits::{f32_bits, f64_bits};
use norm_test_support::seeded;
use tch::nn::{Linear, VarStore};
use tch::{Device, Kind, Tensor};

fn bits(t: &Tensor) -> Vec<u64> {
    match t.kind() {
        Kind::Float => f32_bits(t).into_iter().map(u64::from).collect(),
        _ => f64_bits(t),
    }
}

fn same(what: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    anyhow::ensure!(a.size() == b.size(), "{what}: shapes {:?} vs {:?}", a.size(), b.size());
    anyhow::ensure!(bits(a) == bits(b), "{what}: bits differ\nfused   {a}\nunfused {b}");
    Ok(())
}

/// A weight-normed `Linear(in_f, out_f)` in `kind`, its parameters and an Adam over them.
struct Model {
    _vs: VarStore,
    layer: WeightNorm<Linear>,
    adam: Adam,
}

fn model(kind: Kind, in_f: i64, out_f: i64, dim: Option<i64>) -> Result<Model> {
    let mut vs = VarStore::new(Device::Cpu);
    let fc = linear(&(vs.root() / "fc"), in_f, out_f, LinearConfig::default())?;
    vs.set_kind(kind);
    let layer = weight_norm(&vs, fc, dim)?;
    let adam = Adam::new(&vs, AdamConfig::with_lr(1e-2))?;
    Ok(Model { _vs: vs, layer, adam })
}

#[derive(Clone, Copy, Debug)]
enum Loss {
    Mean,
    Square,
    /// `(out * out).mean()`'s gradient w.r.t. the parameters, squared and summed, backpropagated
    /// (create_graph: the node's backward recorded and differentiated).
    GradNorm,
}

/// Runs `steps` training steps and returns, per step: output, the three gradients, and the
/// parameters after Adam. `fused`: the layer's forward; else the unfused ops.
fn run(
    kind: Kind,
    (batch, in_f, out_f): (i64, i64, i64),
    dim: Option<i64>,
    loss: Loss,
    fused: bool,
) -> Result<Vec<(String, Tensor)>> {
    seeded(7, || -> Result<Vec<(String, Tensor)>> {
        let mut m = model(kind, in_f, out_f, dim)?;
        let mut record = Vec::new();
        for step in 0..3 {
            let x = Tensor::f_randn([batch, in_f], (kind, Device::Cpu))?;
            let out = if fused {
                let (out, weight) = m.layer.f_forward_t_and_weight(&x)?;
                anyhow::ensure!(!weight.requires_grad(), "the fused path was not taken ({kind:?}, {dim:?})");
                out
            } else {
                let v = m.layer.weight_v();
                let g = m.layer.weight_g();
                let w = Tensor::f_internal_weight_norm(v, g, dim.unwrap_or(-1))?;
                x.f_linear(&w, m.layer.layer().bs.as_ref())?
            };
            m.adam.zero_grad()?;
            let params = [m.layer.weight_v(), m.layer.weight_g(), m.layer.layer().bs.as_ref().expect("bias")];
            match loss {
                Loss::Mean => out.f_mean(None::<Kind>)?.f_rsub_scalar(1.0)?.f_backward()?,
                Loss::Square => out.f_mul(&out)?.f_sum(None::<Kind>)?.f_backward()?,
                Loss::GradNorm => {
                    let l = out.f_mul(&out)?.f_mean(None::<Kind>)?;
                    let grads = Tensor::f_run_backward(&[l], &params, true, true)?;
                    let mut penalty = Tensor::f_zeros([], (kind, Device::Cpu))?;
                    for gr in &grads {
                        penalty = penalty.f_add(&gr.f_mul(gr)?.f_sum(None::<Kind>)?)?;
                    }
                    penalty.f_backward()?;
                }
            }
            record.push((format!("step {step} output"), out.detach()));
            for (name, p) in ["v", "g", "bias"].iter().zip(params) {
                record.push((format!("step {step} {name}.grad"), p.grad().copy()));
            }
            m.adam.step()?;
            let bias = m.layer.layer().bs.as_ref().expect("bias");
            for (name, p) in ["v", "g", "bias"].iter().zip([m.layer.weight_v(), m.layer.weight_g(), bias]) {
                record.push((format!("step {step} {name}"), p.detach().copy()));
            }
        }
        Ok(record)
    })
}

#[test]
fn fused_weight_norm_linear_matches_the_unfused_ops_bit_for_bit() -> Result<()> {
    norm_test_support::one_thread();
    let shapes = [(10, 2, 3), (1, 1, 1), (7, 5, 1), (1, 9, 4), (33, 17, 8), (4, 64, 40), (16, 3, 130)];
    let mut cases = 0;
    for kind in [Kind::Float, Kind::Double] {
        for shape in shapes {
            for dim in [Some(0), Some(1)] {
                for loss in [Loss::Mean, Loss::Square, Loss::GradNorm] {
                    let fused = run(kind, shape, dim, loss, true)?;
                    let unfused = run(kind, shape, dim, loss, false)?;
                    for ((name, a), (_, b)) in fused.iter().zip(&unfused) {
                        same(&format!("{kind:?} {shape:?} dim {dim:?} {loss:?}: {name}"), a, b)?;
                    }
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 2 * 7 * 2 * 3);
    Ok(())
}

#[test]
fn the_rule_declines_what_pytorch_runs_otherwise() -> Result<()> {
    let declined = |kind: Kind, dim: Option<i64>, x: &Tensor, bias: bool| -> Result<bool> {
        seeded(3, || -> Result<bool> {
            let mut vs = VarStore::new(Device::Cpu);
            let config = LinearConfig { bias };
            let fc = linear(&(vs.root() / "fc"), 4, 3, config)?;
            vs.set_kind(kind);
            let layer = weight_norm(&vs, fc, dim)?;
            let (out, weight) = layer.f_forward_t_and_weight(x)?;
            // Declined: the unfused weight, with its history, and the same output.
            let expected = x.f_linear(&layer.weight_t(false)?, layer.layer().bs.as_ref())?;
            same("declined output", &out, &expected)?;
            Ok(weight.requires_grad())
        })
    };
    let x = |shape: &[i64], kind: Kind| Tensor::ones(shape, (kind, Device::Cpu));
    assert!(!declined(Kind::Float, Some(0), &x(&[2, 4], Kind::Float), true)?, "the fused case");
    assert!(declined(Kind::Float, Some(0), &x(&[2, 4], Kind::Float), false)?, "no bias: mm, not addmm");
    assert!(declined(Kind::Float, Some(0), &x(&[2, 5, 4], Kind::Float), true)?, "3-D input");
    assert!(declined(Kind::Float, None, &x(&[2, 4], Kind::Float), true)?, "dim None: not the fused kernel");
    let xg = x(&[2, 4], Kind::Float).set_requires_grad(true);
    assert!(declined(Kind::Float, Some(0), &xg, true)?, "x requiring grad");
    // No graph needed: the plain ops (and the eval cache) run.
    let no_grad = tch::no_grad(|| declined(Kind::Float, Some(0), &x(&[2, 4], Kind::Float), true))?;
    assert!(!no_grad, "under no_grad the weight has no history either way");
    Ok(())
}

#[test]
fn tiny_kernel_replays_give_the_bits_of_the_aten_kernels_and_run() -> Result<()> {
    norm_test_support::one_thread();
    let probed = tiny_kernels()?;
    assert!(probed.enabled, "the replays are on by default: {probed:?}");
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipping: the tiny-kernel replays are checked on x86-64 only (ATen's vector width); {probed:?}");
        return Ok(());
    }
    for verdict in [probed.float32, probed.float64] {
        assert!(
            verdict.weight_norm && verdict.weight_norm_backward && verdict.bias_sum,
            "the probe found a kernel whose replay does not match ATen on this machine: {probed:?}"
        );
    }
    // (batch, in, out): rows under 32 bytes (float in < 8, double in < 4), and bias sums of
    // 2 <= out < 8 (double 4) columns over batch >= 2 rows; plus shapes where one replay
    // declines (out 1, batch 1, a long row) and the ATen call runs beside the others.
    let shapes: [(Kind, (i64, i64, i64)); 10] = [
        (Kind::Float, (10, 2, 3)),
        (Kind::Float, (2, 1, 2)),
        (Kind::Float, (64, 7, 5)),
        (Kind::Float, (300, 3, 7)),
        (Kind::Float, (1, 4, 3)),
        (Kind::Float, (9, 8, 3)),
        (Kind::Double, (10, 2, 3)),
        (Kind::Double, (33, 3, 2)),
        (Kind::Double, (5, 1, 1)),
        (Kind::Double, (6, 4, 3)),
    ];
    let mut replayed_cases = 0;
    for (kind, shape) in shapes {
        for loss in [Loss::Mean, Loss::Square, Loss::GradNorm] {
            let before = tiny_kernels()?.replays;
            let replayed = run(kind, shape, Some(0), loss, true)?;
            let taken = tiny_kernels()?.replays - before;
            set_tiny_kernels(false)?;
            let through_aten = run(kind, shape, Some(0), loss, true);
            set_tiny_kernels(true)?;
            for ((name, a), (_, b)) in replayed.iter().zip(&through_aten?) {
                same(&format!("{kind:?} {shape:?} {loss:?}: {name}"), a, b)?;
            }
            replayed_cases += usize::from(taken > 0);
        }
    }
    // Every case replays its forward weight norm, its bias sum or both ((9, 8, 3) float, whose
    // rows of 32 bytes decline the weight norm, its bias sum: under GradNorm in the second
    // backward, which runs this node's backward again without create_graph).
    assert_eq!(replayed_cases, 10 * 3, "cases that ran a replay");
    // Non-finite values decline: an input with a NaN and one with an infinity give ATen's bits.
    for poison in [f64::NAN, f64::INFINITY] {
        let record = |on: bool| -> Result<Vec<Tensor>> {
            set_tiny_kernels(on)?;
            let out = seeded(11, || -> Result<Vec<Tensor>> {
                let mut m = model(Kind::Float, 2, 3, Some(0))?;
                let x = Tensor::f_randn([10, 2], (Kind::Float, Device::Cpu))?;
                let _ = x.narrow(0, 3, 1).fill_(poison);
                let (out, _) = m.layer.f_forward_t_and_weight(&x)?;
                m.adam.zero_grad()?;
                out.f_mean(None::<Kind>)?.f_rsub_scalar(1.0)?.f_backward()?;
                let bias = m.layer.layer().bs.as_ref().expect("bias");
                Ok(vec![out.detach(), m.layer.weight_v().grad(), m.layer.weight_g().grad(), bias.grad()])
            });
            set_tiny_kernels(true)?;
            out
        };
        for (a, b) in record(true)?.iter().zip(&record(false)?) {
            same(&format!("input with {poison}"), a, b)?;
        }
    }
    Ok(())
}
