//! `operator_norm.csv`: `σ_operator / σ_reshaped` for every normalized layer of the two
//! example models ([`norm_tch::models`]), Rust only (issue 11, item 7).
//!
//! For each layer ([`norm_tch::models::layer_operators`]): `sigma_reshaped` is the largest
//! singular value of the weight reshaped as PyTorch's `spectral_norm` reshapes it, in float64
//! (`reshaped_sigma`: what PyTorch's power iteration converges to), and `sigma_operator` the
//! norm of the layer's convolution itself on the input size it sees in the model (power
//! iteration on the convolution and its exact adjoint, `operator_norm`, relative tolerance
//! [`TOLERANCE`], at most [`MAX_ITERATIONS`] iterations, start vector of seed 0), with its
//! `bound` (some singular value of the operator lies within it of `sigma_operator`).
//!
//! The models are those of the whole-model rows, built the same way after
//! `torch.manual_seed(0)`: the HiFi-GAN-style generator (weight norm: its effective weight
//! `g · v/‖v‖`) on [`HIFIGAN_FRAMES`] input frames (the model rows' length; the lengths
//! follow its upsampling), the SN-GAN discriminator (`weight_orig` / `original`) on 16×16
//! images. The ratio does not depend on the weight's scale.

use super::model_rows::HIFIGAN_SHAPE;
use super::rust_side::CASE_SEED;
use anyhow::Result;
use norm_tch::models::hifigan::{self, Config};
use norm_tch::models::layer_operators::{hifigan_layer_operators, sn_discriminator_layer_operators, LayerOperator};
use norm_tch::models::sn_discriminator::Discriminator;
use norm_tch::operator_norm::OperatorNormOptions;
use tch::nn::VarStore;
use tch::Device;

/// The generator's input frames (the whole-model rows' length).
pub(crate) const HIFIGAN_FRAMES: i64 = HIFIGAN_SHAPE.1 as i64;
/// Relative tolerance of the operator's power iteration (`bound ≤ TOLERANCE · σ`).
pub(crate) const TOLERANCE: f64 = 1e-4;
/// The most power iterations per layer.
pub(crate) const MAX_ITERATIONS: u64 = 3_000;

/// The models of `operator_norm.csv`, in run order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OperatorNormModel {
    /// The HiFi-GAN-style generator (weight norm).
    Hifigan,
    /// The SN-GAN discriminator (spectral norm).
    SnDiscriminator,
}

impl OperatorNormModel {
    /// Both models.
    pub(crate) const ALL: [OperatorNormModel; 2] = [OperatorNormModel::Hifigan, OperatorNormModel::SnDiscriminator];

    /// The CSV's `model` column.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OperatorNormModel::Hifigan => "hifigan",
            OperatorNormModel::SnDiscriminator => "sn_discriminator",
        }
    }
}

/// One line of `operator_norm.csv`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OperatorNormRow {
    /// The model.
    pub(crate) model: OperatorNormModel,
    /// The layer's state-dict prefix.
    pub(crate) layer: String,
    /// The layer's PyTorch class (`Conv1d`, `ConvTranspose1d`, `Conv2d`, `Linear`).
    pub(crate) kind: &'static str,
    /// The spatial input size (empty for a Linear).
    pub(crate) input_size: Vec<i64>,
    /// The reshaped weight's largest singular value (float64).
    pub(crate) sigma_reshaped: f64,
    /// The operator norm's estimate.
    pub(crate) sigma_operator: f64,
    /// Power iterations run.
    pub(crate) iterations: u64,
    /// The estimate's bound.
    pub(crate) bound: f64,
    /// Whether `bound ≤ TOLERANCE · sigma_operator` was reached.
    pub(crate) converged: bool,
}

impl OperatorNormRow {
    /// `σ_operator / σ_reshaped`.
    pub(crate) fn ratio(&self) -> f64 {
        self.sigma_operator / self.sigma_reshaped
    }
}

fn options() -> OperatorNormOptions {
    OperatorNormOptions { tolerance: TOLERANCE, max_iterations: MAX_ITERATIONS, seed: 0 }
}

fn row(model: OperatorNormModel, layer: &LayerOperator) -> Result<OperatorNormRow> {
    let norms = layer.norms(options())?;
    Ok(OperatorNormRow {
        model,
        layer: layer.layer.clone(),
        kind: layer.kind,
        input_size: layer.input_size.clone(),
        sigma_reshaped: norms.sigma_reshaped,
        sigma_operator: norms.operator.sigma,
        iterations: norms.operator.iterations,
        bound: norms.operator.bound,
        converged: norms.operator.converged,
    })
}

/// The rows of `model`, one per normalized layer in module order. The caller holds the
/// global generator's lock (the models are drawn after `torch.manual_seed(0)`).
pub(crate) fn operator_norm_rows(model: OperatorNormModel) -> Result<Vec<OperatorNormRow>> {
    let vs = VarStore::new(Device::Cpu);
    let layers = match model {
        OperatorNormModel::Hifigan => {
            let config = Config::default();
            let (generator, _) = hifigan::seeded_while_locked(&vs, &config, CASE_SEED, 1, HIFIGAN_FRAMES)?;
            hifigan_layer_operators(&generator, &config, HIFIGAN_FRAMES)?
        }
        OperatorNormModel::SnDiscriminator => {
            tch::manual_seed(CASE_SEED as i64);
            sn_discriminator_layer_operators(&Discriminator::new(&vs)?)?
        }
    };
    layers.iter().map(|layer| row(model, layer)).collect()
}

/// The smallest and largest ratio of `model`'s rows, and how many rows it has.
pub(crate) fn ratio_range(rows: &[OperatorNormRow], model: OperatorNormModel) -> Option<(f64, f64, usize)> {
    let ratios: Vec<f64> = rows.iter().filter(|r| r.model == model).map(OperatorNormRow::ratio).collect();
    let lo = ratios.iter().copied().reduce(f64::min)?;
    let hi = ratios.iter().copied().reduce(f64::max)?;
    Some((lo, hi, ratios.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_discriminator_rows_bound_the_operator_norm_from_the_reshaped_sigma() {
        let _generator = norm_tch::backend::lock_global_generator();
        let rows = operator_norm_rows(OperatorNormModel::SnDiscriminator).unwrap();
        let layers: Vec<&str> = rows.iter().map(|r| r.layer.as_str()).collect();
        assert_eq!(layers, ["convs.0", "convs.1", "convs.2", "fc"]);
        let sizes: Vec<&[i64]> = rows.iter().map(|r| r.input_size.as_slice()).collect();
        assert_eq!(sizes, [&[16, 16][..], &[8, 8], &[4, 4], &[]]);
        for r in &rows {
            assert!(r.converged && r.bound <= TOLERANCE * r.sigma_operator, "{r:?}");
            // A convolution's operator norm is at least its reshaped kernel's σ (up to the bound).
            assert!(r.sigma_operator + r.bound >= r.sigma_reshaped * (1.0 - 1e-12), "{r:?}");
        }
        // The Linear's two σ are the same matrix norm.
        let fc = &rows[3];
        assert!((fc.ratio() - 1.0).abs() < 1e-6, "{fc:?}");
        assert_eq!(operator_norm_rows(OperatorNormModel::SnDiscriminator).unwrap(), rows, "seeded");
        let (lo, hi, n) = ratio_range(&rows, OperatorNormModel::SnDiscriminator).unwrap();
        assert_eq!(n, 4);
        assert!(lo <= hi && hi > 1.05, "{lo} {hi}");
        assert!(ratio_range(&rows, OperatorNormModel::Hifigan).is_none());
    }
}
