//! σ_operator / σ_reshaped for every convolution of the HiFi-GAN-style generator
//! (`data/hifigan_block.py`, seed 0, its default toy sizes, on a 256-frame input) and of the
//! SN-GAN discriminator (`data/sn_discriminator.py`, seed 0, 16×16 images): the convolution's
//! true operator norm (`norm_tch::operator_norm`, power iteration on the convolution and its
//! exact adjoint, relative tolerance 1e-4, at most 3,000 iterations (σ converges about twice as fast as the first-order bound)) over the largest singular value of the reshaped
//! weight, which is what PyTorch's `spectral_norm` normalizes by. Weight-norm layers use their
//! effective weight `g · v/‖v‖`; spectral-norm layers their `weight_orig` (the ratio does not
//! depend on the weight's scale). Prints a Markdown table (docs/operator_norm.md).
//!
//! ```text
//! cargo run --release -p norm-tch --example operator_norm_figure
//! ```

use anyhow::Result;
use norm_tch::models::hifigan::{seeded, Config};
use norm_tch::models::layer_operators::{hifigan_layer_operators, sn_discriminator_layer_operators};
use norm_tch::models::sn_discriminator::Discriminator;
use norm_tch::operator_norm::OperatorNormOptions;
use tch::nn::VarStore;
use tch::Device;

fn main() -> Result<()> {
    println!("| layer | weight | input size | σ reshaped | σ operator | ratio | iterations | bound |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let options = OperatorNormOptions { tolerance: 1e-4, max_iterations: 3_000, seed: 0 };
    let vs = VarStore::new(Device::Cpu);
    let config = Config::default();
    let (model, _) = seeded(&vs, &config, 0, 1, 256)?;
    let mut layers: Vec<(&str, _)> =
        hifigan_layer_operators(&model, &config, 256)?.into_iter().map(|l| ("hifigan", l)).collect();
    let vs = VarStore::new(Device::Cpu);
    let disc = {
        let _generator = norm_tch::backend::lock_global_generator();
        tch::manual_seed(0);
        Discriminator::new(&vs)?
    };
    layers.extend(sn_discriminator_layer_operators(&disc)?.into_iter().map(|l| ("sn-gan", l)));
    let mut ratios = Vec::new();
    for (model, layer) in &layers {
        let norms = layer.norms(options)?;
        println!(
            "| {model} {} | {:?} | {:?} | {:.5} | {:.5} | {:.4} | {} | {:.1e} |",
            layer.layer,
            layer.weight.size(),
            layer.input_size,
            norms.sigma_reshaped,
            norms.operator.sigma,
            norms.ratio(),
            norms.operator.iterations,
            norms.operator.bound
        );
        ratios.push(norms.ratio());
    }
    let (lo, hi) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    println!("\nσ_operator / σ_reshaped: min {lo:.4}, max {hi:.4} over {} layers", ratios.len());
    Ok(())
}
