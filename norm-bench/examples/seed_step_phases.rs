//! Per-phase profile of the seed document's training step (`seed_loop_step`,
//! [`SeedModel::train_step`]): the input draw, the weight (`_weight_norm`), the linear
//! forward, the loss (`1 - mean`), `zero_grad`, `backward` and Adam's `step`, each timed on
//! its own with one intra-op thread. The layer's forward computes the weight and the output
//! in one call (one autograd node, `csrc/weight_norm_linear.cpp`), timed as "forward";
//! "weight" is then empty. `examples/seed_step_phases.py` times PyTorch eager's
//! same phases.
//!
//! `cargo run --release -p norm-bench --example seed_step_phases [-- ROUNDS STEPS]`: prints
//! per phase the lowest over ROUNDS (default 7) of the mean over STEPS (default 3000) steps,
//! in microseconds, and the step's total.

use anyhow::{Context, Result};
use norm_bench::seed_loop::{Example, SeedModel};
use norm_bench::seed_loop_cpp::SeedStepCpp;
use norm_core::random::PyRandom;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

const PHASES: [&str; 7] = ["input", "weight", "forward", "loss", "zero_grad", "backward", "step"];

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let rounds = args.next().transpose().context("ROUNDS")?.unwrap_or(7);
    let steps = args.next().transpose().context("STEPS")?.unwrap_or(3000);
    norm_tch::backend::set_num_threads(1)?;
    tch::manual_seed(0);
    let mut random = PyRandom::new(0);
    let mut model = SeedModel::new(Example::WeightNorm)?;
    let mut best = [f64::INFINITY; PHASES.len()];
    for round in 0..=rounds {
        let mut sums = [0u128; PHASES.len()];
        for _ in 0..steps {
            let mut marks = [Instant::now(); PHASES.len() + 1];
            let x = Tensor::f_randn([10, 2], (Kind::Float, Device::Cpu))?
                .f_mul_scalar(random.random())?
                .f_mul_scalar(10.0)?;
            marks[1] = Instant::now();
            // The layer's forward computes weight and output in one call (one autograd node,
            // `Normalized::f_forward_t_and_weight`): "weight" is empty, "forward" holds both.
            marks[2] = Instant::now();
            let (output, weight) = model.layer.f_forward_t_and_weight(&x)?;
            model.weight_attr = weight;
            marks[3] = Instant::now();
            let loss = output.f_mean(None::<Kind>)?.f_rsub_scalar(1.0)?;
            marks[4] = Instant::now();
            model.adam.zero_grad()?;
            marks[5] = Instant::now();
            loss.f_backward()?;
            marks[6] = Instant::now();
            model.adam.step()?;
            marks[7] = Instant::now();
            for (i, sum) in sums.iter_mut().enumerate() {
                *sum += (marks[i + 1] - marks[i]).as_nanos();
            }
        }
        if round == 0 {
            continue; // warm-up
        }
        for (b, s) in best.iter_mut().zip(sums) {
            *b = b.min(s as f64 / steps as f64 / 1e3);
        }
    }
    for (name, us) in PHASES.iter().zip(best) {
        println!("{name:>10} {us:8.2} us");
    }
    println!("{:>10} {:8.2} us", "total", best.iter().sum::<f64>());
    // The floor: the same step as one C++ call (seed_loop_step_cpp's program).
    let bias = model.layer.layer().bs.as_ref().context("Linear(2, 3) has a bias")?;
    let mut cpp = SeedStepCpp::new(model.layer.weight_v(), model.layer.weight_g(), bias, model.adam.config().lr)?;
    let mut floor = f64::INFINITY;
    for round in 0..=rounds {
        let start = Instant::now();
        for _ in 0..steps {
            cpp.step(random.random())?;
        }
        if round > 0 {
            floor = floor.min(start.elapsed().as_nanos() as f64 / steps as f64 / 1e3);
        }
    }
    println!("{:>10} {floor:8.2} us (the same step in C++, seed_loop_step_cpp)", "c++ floor");
    Ok(())
}
