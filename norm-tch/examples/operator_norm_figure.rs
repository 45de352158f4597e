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
use norm_tch::models::sn_discriminator::{Discriminator, SnConv};
use norm_tch::operator_norm::{operator_norm, reshaped_sigma, AsOperator, OperatorNormOptions};
use tch::nn::VarStore;
use tch::{Device, Tensor};

fn row<L: AsOperator>(name: &str, layer: &L, weight: &Tensor, input_size: &[i64]) -> Result<f64> {
    let op = layer.operator_with_weight(weight, input_size)?;
    let options = OperatorNormOptions { tolerance: 1e-4, max_iterations: 3_000, seed: 0 };
    let norm = operator_norm(&op, options)?;
    let reshaped = reshaped_sigma(weight, layer.default_spectral_norm_dim())?;
    let ratio = norm.sigma / reshaped;
    println!(
        "| {name} | {:?} | {input_size:?} | {reshaped:.5} | {:.5} | {ratio:.4} | {} | {:.1e} |",
        weight.size(),
        norm.sigma,
        norm.iterations,
        norm.bound
    );
    Ok(ratio)
}

fn main() -> Result<()> {
    println!("| layer | weight | input size | σ reshaped | σ operator | ratio | iterations | bound |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut ratios = Vec::new();
    let vs = VarStore::new(Device::Cpu);
    let config = Config::default();
    let (model, _) = seeded(&vs, &config, 0, 1, 256)?;
    let mut length = 256;
    let w = model.conv_pre.weight_t(false)?;
    ratios.push(row("hifigan conv_pre", model.conv_pre.layer(), &w, &[length])?);
    let k = config.resblock_kernel_sizes.len();
    for (i, up) in model.ups.iter().enumerate() {
        let w = up.weight_t(false)?;
        ratios.push(row(&format!("hifigan ups.{i}"), up.layer(), &w, &[length])?);
        length *= config.upsample_rates[i];
        for j in 0..k {
            let block = &model.resblocks[i * k + j];
            for (name, convs) in [("convs1", &block.convs1), ("convs2", &block.convs2)] {
                for (m, c) in convs.iter().enumerate() {
                    let w = c.weight_t(false)?;
                    ratios.push(row(&format!("hifigan resblocks.{}.{name}.{m}", i * k + j), c.layer(), &w, &[length])?);
                }
            }
        }
    }
    let w = model.conv_post.weight_t(false)?;
    ratios.push(row("hifigan conv_post", model.conv_post.layer(), &w, &[length])?);

    let vs = VarStore::new(Device::Cpu);
    let disc = {
        let _generator = norm_tch::backend::lock_global_generator();
        tch::manual_seed(0);
        Discriminator::new(&vs)?
    };
    for (i, (conv, size)) in disc.convs.iter().zip([16, 8, 4]).enumerate() {
        let name = format!("sn-gan convs.{i}");
        match conv {
            SnConv::Hooks(c) => ratios.push(row(&name, c.layer(), c.weight_orig(), &[size, size])?),
            SnConv::Param(c) => ratios.push(row(&name, c.layer(), c.original(), &[size, size])?),
        }
    }
    ratios.push(row("sn-gan fc", disc.fc.layer(), disc.fc.weight_orig(), &[])?);
    let (lo, hi) = ratios.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    println!("\nσ_operator / σ_reshaped: min {lo:.4}, max {hi:.4} over {} layers", ratios.len());
    Ok(())
}
