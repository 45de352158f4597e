//! `norm-bench operator-norm --spec FILE [--json]`: per case, PyTorch's `spectral_norm` σ
//! (the largest singular value of the reshaped weight, [`reshaped_sigma`]) beside the
//! convolution's true operator norm ([`norm_tch::operator_norm::operator_norm`]) on the case's
//! input size (docs/operator_norm.md).
//!
//! Spec: `{"cases": [{"name", "seed", "layer", "input_size", "tolerance", "max_iterations"}]}`,
//! `layer` in the parity spec's format (parsed by [`crate::parity::spec::parse_layer`]; not
//! `embedding`), built with PyTorch's init right after `torch.manual_seed(seed)`
//! ([`crate::parity::layer::build_layer`]). `input_size` is the spatial size (Linear: `[]` or
//! `[in_features]`). Parsed strictly; every bound is checked before anything runs
//! ([`MAX_INPUT_ELEMENTS`], ...). The power iteration starts from a splitmix64 vector of `seed`.

use crate::parity::layer::{build_layer, AnyLayer};
use crate::parity::spec::{parse_layer, LayerSpec};
use anyhow::{anyhow, bail, Result};
use norm_tch::layers::WeightedLayer;
use norm_tch::operator_norm::{operator_norm, reshaped_sigma, AsOperator, ConvOperator, OperatorNormOptions};
use serde_json::Value;
use tch::nn::VarStore;
use tch::Device;

/// The most input elements (channels × spatial positions) a case may ask for.
pub const MAX_INPUT_ELEMENTS: i64 = 1 << 22;
/// The largest spatial size per dimension.
pub const MAX_INPUT_SIZE: i64 = 1 << 16;
/// The most weight elements a case's layer may have.
pub const MAX_WEIGHT_ELEMENTS: i64 = 1 << 24;
/// The most iterations a case may ask for.
pub const MAX_ITERATIONS: i64 = 1_000_000;
/// The smallest tolerance (relative: `bound ≤ tolerance · σ`), about float64's resolution.
pub const MIN_TOLERANCE: f64 = 1e-15;

/// One case of the spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Unique name.
    pub name: String,
    /// `torch.manual_seed(seed)` before the layer's init, and the start vector's seed; `[0, 2^63)`.
    pub seed: u64,
    /// The layer (parity spec format).
    pub layer: LayerSpec,
    /// Spatial input size.
    pub input_size: Vec<i64>,
    /// Relative tolerance, `[1e-15, 1]`.
    pub tolerance: f64,
    /// `[1, 1_000_000]`.
    pub max_iterations: u64,
}

/// One case's result: the fields `--json` prints.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Largest singular value of the reshaped weight (what PyTorch's spectral_norm converges to).
    pub sigma_reshaped: f64,
    /// The operator norm's estimate (a lower bound; see `bound`).
    pub sigma_operator: f64,
    /// Iterations run.
    pub iterations: u64,
    /// Some singular value of the operator lies within `bound` of `sigma_operator`
    /// (`‖Aᵀu − σv‖/√2`).
    pub bound: f64,
    /// Whether `bound ≤ tolerance · sigma_operator` was reached.
    pub converged: bool,
}

fn field<'a>(case: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a Value> {
    case.get(key).ok_or_else(|| anyhow!("field `{key}`: missing"))
}

fn spatial_dims(layer: &LayerSpec) -> Result<Option<usize>> {
    match layer {
        LayerSpec::Linear { .. } => Ok(None),
        LayerSpec::Conv { spatial_dims, .. } => Ok(Some(*spatial_dims)),
        LayerSpec::Embedding { .. } => {
            bail!("field `layer.kind`: embedding has no operator norm (a lookup, not a linear map of its input)")
        }
    }
}

fn check_layer_sizes(layer: &LayerSpec) -> Result<i64> {
    let (channels, weight) = match layer {
        LayerSpec::Linear { in_features, out_features, .. } => (
            [("in_features", *in_features), ("out_features", *out_features)],
            in_features.saturating_mul(*out_features),
        ),
        LayerSpec::Conv { in_channels, out_channels, kernel_size, .. } => {
            if let Some(k) = kernel_size.iter().find(|&&k| k < 1) {
                bail!("field `layer.kernel_size`: expected entries >= 1, got {k}");
            }
            let w = kernel_size.iter().fold(in_channels.saturating_mul(*out_channels), |a, &k| a.saturating_mul(k));
            ([("in_channels", *in_channels), ("out_channels", *out_channels)], w)
        }
        LayerSpec::Embedding { .. } => unreachable!("refused by spatial_dims"),
    };
    for (name, n) in channels {
        if n < 1 {
            bail!("field `layer.{name}`: expected an integer >= 1, got {n}");
        }
    }
    if weight > MAX_WEIGHT_ELEMENTS {
        bail!("field `layer`: a weight of {weight} elements, expected at most {MAX_WEIGHT_ELEMENTS}");
    }
    Ok(match layer {
        LayerSpec::Linear { in_features, .. } => *in_features,
        LayerSpec::Conv { in_channels, .. } => *in_channels,
        LayerSpec::Embedding { .. } => 0,
    })
}

fn parse_case(value: &Value) -> Result<Case> {
    const KEYS: [&str; 6] = ["name", "seed", "layer", "input_size", "tolerance", "max_iterations"];
    let map = value.as_object().ok_or_else(|| anyhow!("expected an object, got {value}"))?;
    if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        bail!("field `{key}`: unknown key (allowed: {})", KEYS.join(", "));
    }
    let name = field(map, "name")?.as_str().ok_or_else(|| anyhow!("field `name`: expected a string"))?.to_string();
    let seed_value = field(map, "seed")?;
    let seed = seed_value
        .as_u64()
        .filter(|&s| seed_value.is_u64() && s < (1u64 << 63))
        .ok_or_else(|| anyhow!("field `seed`: expected an integer in [0, 2^63), got {seed_value}"))?;
    let layer = parse_layer(field(map, "layer")?)?;
    let dims = spatial_dims(&layer)?;
    let in_channels = check_layer_sizes(&layer)?;
    let sizes = field(map, "input_size")?;
    let input_size = sizes
        .as_array()
        .ok_or_else(|| anyhow!("field `input_size`: expected a list of integers, got {sizes}"))?
        .iter()
        .map(|v| v.as_i64().filter(|_| v.is_i64() || v.is_u64()))
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(|| anyhow!("field `input_size`: expected a list of integers, got {sizes}"))?;
    match dims {
        None if !(input_size.is_empty() || input_size == [in_channels]) => {
            bail!("field `input_size`: expected [] or [{in_channels}] (in_features) for linear, got {input_size:?}")
        }
        Some(n) if input_size.len() != n => {
            bail!("field `input_size`: expected {n} entries (one per spatial dimension), got {}", input_size.len())
        }
        _ => {}
    }
    if dims.is_some() {
        if let Some(s) = input_size.iter().find(|&&s| !(1..=MAX_INPUT_SIZE).contains(&s)) {
            bail!("field `input_size`: expected entries in [1, {MAX_INPUT_SIZE}], got {s}");
        }
        let elements = input_size.iter().fold(in_channels, |a, &s| a.saturating_mul(s));
        if elements > MAX_INPUT_ELEMENTS {
            bail!("field `input_size`: {elements} input elements, expected at most {MAX_INPUT_ELEMENTS}");
        }
    }
    let tol_value = field(map, "tolerance")?;
    let tolerance = tol_value
        .as_f64()
        .filter(|t| tol_value.is_number() && (MIN_TOLERANCE..=1.0).contains(t))
        .ok_or_else(|| anyhow!("field `tolerance`: expected a number in [{MIN_TOLERANCE:e}, 1], got {tol_value}"))?;
    let it_value = field(map, "max_iterations")?;
    let max_iterations = it_value
        .as_i64()
        .filter(|n| (it_value.is_i64() || it_value.is_u64()) && (1..=MAX_ITERATIONS).contains(n))
        .ok_or_else(|| {
            anyhow!("field `max_iterations`: expected an integer in [1, {MAX_ITERATIONS}], got {it_value}")
        })?;
    Ok(Case { name, seed, layer, input_size, tolerance, max_iterations: max_iterations as u64 })
}

/// Parses a spec (strictly: unknown or repeated keys, wrong types and out-of-range values
/// are errors naming the case and the field).
pub fn parse_spec(text: &str) -> Result<Vec<Case>> {
    crate::parity::spec::parse_case_list(text, parse_case, |case| &case.name)
}

fn operator_of(layer: &AnyLayer, input_size: &[i64]) -> norm_core::Result<ConvOperator> {
    match layer {
        AnyLayer::Linear(l) => l.operator(input_size),
        AnyLayer::Conv1d(l) => l.operator(input_size),
        AnyLayer::Conv2d(l) => l.operator(input_size),
        AnyLayer::Conv3d(l) => l.operator(input_size),
        AnyLayer::ConvTranspose1d(l) => l.operator(input_size),
        AnyLayer::ConvTranspose2d(l) => l.operator(input_size),
        AnyLayer::ConvTranspose3d(l) => l.operator(input_size),
        AnyLayer::Embedding(_) => Err(norm_core::Error::invalid("layer", "embedding", "a linear or convolution layer")),
    }
}

/// Builds the case's layer after `torch.manual_seed(seed)` and computes both σ.
pub fn run_case(case: &Case) -> Result<CaseResult> {
    let layer = {
        let _generator = norm_tch::backend::lock_global_generator();
        tch::manual_seed(case.seed as i64);
        // The layer's tensors outlive the VarStore (they are reference counted).
        build_layer(&VarStore::new(Device::Cpu), &case.layer)?
    };
    let sigma_reshaped = reshaped_sigma(layer.weight(), layer.default_spectral_norm_dim())?;
    let op = operator_of(&layer, &case.input_size)?;
    let options =
        OperatorNormOptions { tolerance: case.tolerance, max_iterations: case.max_iterations, seed: case.seed };
    let norm = operator_norm(&op, options)?;
    Ok(CaseResult {
        name: case.name.clone(),
        sigma_reshaped,
        sigma_operator: norm.sigma,
        iterations: norm.iterations,
        bound: norm.bound,
        converged: norm.converged,
    })
}

/// The text table (without `--json`).
pub fn render(results: &[CaseResult]) -> String {
    let mut out = format!(
        "{:<28} {:>14} {:>14} {:>8} {:>10} {:>10}\n",
        "case", "sigma_reshaped", "sigma_operator", "ratio", "iterations", "bound"
    );
    for r in results {
        out += &format!(
            "{:<28} {:>14.8} {:>14.8} {:>8.4} {:>10} {:>10.2e}{}\n",
            r.name,
            r.sigma_reshaped,
            r.sigma_operator,
            r.sigma_operator / r.sigma_reshaped,
            r.iterations,
            r.bound,
            if r.converged { "" } else { "  (not converged)" }
        );
    }
    out
}
