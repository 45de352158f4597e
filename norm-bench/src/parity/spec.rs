//! The parity spec (docs/parity.md): JSON cases describing a layer, a normalization and a
//! short training run. Parsed strictly: an unknown key, a float where an integer belongs,
//! or a kernel size of the wrong length is an error naming the case and the field.

use super::unique_keys::UniqueKeys;
use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

/// A whole spec: `{"cases": [CASE, ...]}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Unique name.
    pub name: String,
    /// `torch.manual_seed(seed)`, 0 <= seed < 2^63.
    pub seed: u64,
    /// The layer to build.
    pub layer: LayerSpec,
    /// The normalization applied to its `weight`.
    pub norm: NormSpec,
    /// `layer.train(train)` after the norm is applied.
    pub train: bool,
    /// The shape of each step's input.
    pub input_shape: Vec<i64>,
    /// Number of steps.
    pub steps: u64,
    /// Adam or AdamW, or `None` for plain backward passes.
    pub optimizer: Option<AdamSpec>,
    /// Where the layer, its parameters and the inputs live (`"device"`, omitted = CPU).
    pub device: SpecDevice,
}

/// A case's `"device"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpecDevice {
    /// `"cpu"` (the default when the key is omitted).
    #[default]
    Cpu,
    /// `"cuda"`: CUDA device 0.
    Cuda,
}

impl SpecDevice {
    /// The name as the spec spells it.
    pub fn name(self) -> &'static str {
        match self {
            SpecDevice::Cpu => "cpu",
            SpecDevice::Cuda => "cuda",
        }
    }
}

/// The layer kinds of the spec.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSpec {
    /// `nn.Linear(in_features, out_features, bias)`.
    Linear {
        /// Input features.
        in_features: i64,
        /// Output features.
        out_features: i64,
        /// Whether there is a bias.
        bias: bool,
    },
    /// `nn.Conv{1,2,3}d` or `nn.ConvTranspose{1,2,3}d`.
    Conv {
        /// 1, 2 or 3 spatial dims.
        spatial_dims: usize,
        /// ConvTranspose rather than Conv.
        transposed: bool,
        /// Input channels.
        in_channels: i64,
        /// Output channels.
        out_channels: i64,
        /// One entry per spatial dim.
        kernel_size: Vec<i64>,
        /// One entry per spatial dim (default 1).
        stride: Vec<i64>,
        /// One entry per spatial dim (default 0).
        padding: Vec<i64>,
        /// Whether there is a bias.
        bias: bool,
    },
    /// `nn.Embedding(num_embeddings, embedding_dim)`.
    Embedding {
        /// Rows.
        num_embeddings: i64,
        /// Columns.
        embedding_dim: i64,
    },
}

/// Which normalization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// `weight_norm`.
    WeightNorm,
    /// `spectral_norm`.
    SpectralNorm,
}

/// Which PyTorch API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `torch.nn.utils.weight_norm` / `spectral_norm`.
    Hooks,
    /// `torch.nn.utils.parametrizations.*`.
    Parametrizations,
}

/// A `dim` argument: omitted (PyTorch's default), `null` (`dim=None`) or an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimArg {
    /// The key is absent: the default applies.
    Omitted,
    /// `"dim": null`: `dim=None` is passed.
    Null,
    /// `"dim": n`.
    Value(i64),
}

/// The normalization of a case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormSpec {
    /// weight_norm or spectral_norm.
    pub kind: NormKind,
    /// hooks or parametrizations.
    pub api: Api,
    /// The `dim` argument.
    pub dim: DimArg,
    /// spectral_norm's `n_power_iterations` (`None`: default 1).
    pub n_power_iterations: Option<i64>,
    /// spectral_norm's `eps` (`None`: default 1e-12).
    pub eps: Option<f64>,
}

/// `torch.optim.Adam` / `torch.optim.AdamW` arguments (omitted keys take the constructor's
/// defaults: AdamW's `weight_decay` is `1e-2`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamSpec {
    /// `"adamw"`: `torch.optim.AdamW` (decoupled weight decay); `"adam"`: `torch.optim.Adam`.
    pub adamw: bool,
    /// Learning rate.
    pub lr: f64,
    /// Betas.
    pub betas: (f64, f64),
    /// Epsilon.
    pub eps: f64,
    /// L2 penalty.
    pub weight_decay: f64,
    /// AMSGrad.
    pub amsgrad: bool,
    /// Maximize.
    pub maximize: bool,
    /// `foreach` (`None`: omitted or `null`, PyTorch's default).
    pub foreach: Option<bool>,
    /// `fused` (`None`: omitted or `null`, PyTorch's default).
    pub fused: Option<bool>,
}

impl AdamSpec {
    /// The norm configuration for the same constructor call.
    pub fn config(&self) -> norm_core::optim::AdamConfig {
        norm_core::optim::AdamConfig {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
            maximize: self.maximize,
            decoupled_weight_decay: self.adamw,
            foreach: self.foreach,
            fused: self.fused,
        }
    }
}

/// The most steps a case may ask for (both sides refuse more): a parity case compares every
/// tensor after every step, so more is a mistake, not a test.
pub const MAX_STEPS: i64 = 100_000;

/// Parses a spec from JSON text.
pub fn parse_spec(text: &str) -> Result<Spec> {
    Ok(Spec { cases: parse_case_list(text, parse_case, |case| &case.name)? })
}

/// The cases of a `{"cases": [...]}` spec (a parity spec, or another spec of named cases such
/// as `norm-bench operator-norm`'s), each parsed by `parse_case`: strictly, as JSON without
/// repeated keys, no key besides `cases`, case names unique; an error names the case (index
/// and name) and the field.
pub fn parse_case_list<T>(
    text: &str,
    parse_case: impl Fn(&Value) -> Result<T>,
    name_of: impl Fn(&T) -> &str,
) -> Result<Vec<T>> {
    serde_json::from_str::<UniqueKeys>(text).map_err(|e| anyhow!("spec is not valid JSON: {e}"))?;
    let root: Value = serde_json::from_str(text).map_err(|e| anyhow!("spec is not valid JSON: {e}"))?;
    let root = root.as_object().ok_or_else(|| anyhow!("spec: expected an object {{\"cases\": [...]}}"))?;
    if let Some(key) = root.keys().find(|k| *k != "cases") {
        bail!("spec: unknown key `{key}` (expected only `cases`)");
    }
    let cases = root.get("cases").and_then(Value::as_array).ok_or_else(|| anyhow!("spec: `cases` must be an array"))?;
    let mut names = std::collections::HashSet::new();
    let mut parsed = Vec::with_capacity(cases.len());
    for (index, case) in cases.iter().enumerate() {
        let label = match case.get("name").and_then(Value::as_str) {
            Some(name) => format!("case {index} (\"{name}\")"),
            None => format!("case {index}"),
        };
        let case = parse_case(case).map_err(|e| anyhow!("{label}: {e}"))?;
        if !names.insert(name_of(&case).to_string()) {
            bail!("{label}: field `name`: duplicate case name");
        }
        parsed.push(case);
    }
    Ok(parsed)
}

struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, path: &str, allowed: &[&str]) -> Result<Self> {
        let map = value.as_object().ok_or_else(|| anyhow!("field `{path}`: expected an object, got {value}"))?;
        let prefix = if path.is_empty() { String::new() } else { format!("{path}.") };
        if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            bail!("field `{prefix}{key}`: unknown key (allowed: {})", allowed.join(", "));
        }
        Ok(Fields { map, path: prefix })
    }
    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.path)
    }
    fn get(&self, key: &str) -> Result<&'a Value> {
        self.map.get(key).ok_or_else(|| anyhow!("field `{}`: missing", self.name(key)))
    }
    fn opt(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }
    fn int_value(&self, key: &str, v: &Value) -> Result<i64> {
        v.as_i64()
            .filter(|_| v.is_i64() || v.is_u64())
            .ok_or_else(|| anyhow!("field `{}`: expected an integer, got {v}", self.name(key)))
    }
    fn int(&self, key: &str) -> Result<i64> {
        self.int_value(key, self.get(key)?)
    }
    /// A size: a non-negative integer (whether the layer accepts it is the layer's call,
    /// as in PyTorch, where e.g. `nn.Embedding(0, 3)` builds and fails only when used).
    fn size(&self, key: &str) -> Result<i64> {
        let n = self.int(key)?;
        if n < 0 {
            bail!("field `{}`: expected a non-negative integer, got {n}", self.name(key));
        }
        Ok(n)
    }
    fn float_value(&self, key: &str, v: &Value) -> Result<f64> {
        v.as_f64()
            .filter(|_| v.is_number())
            .ok_or_else(|| anyhow!("field `{}`: expected a number, got {v}", self.name(key)))
    }
    fn float(&self, key: &str) -> Result<f64> {
        self.float_value(key, self.get(key)?)
    }
    fn boolean(&self, key: &str) -> Result<bool> {
        let v = self.get(key)?;
        v.as_bool().ok_or_else(|| anyhow!("field `{}`: expected true or false, got {v}", self.name(key)))
    }
    fn string(&self, key: &str) -> Result<&'a str> {
        let v = self.get(key)?;
        v.as_str().ok_or_else(|| anyhow!("field `{}`: expected a string, got {v}", self.name(key)))
    }
    fn int_list(&self, key: &str) -> Result<Vec<i64>> {
        let v = self.get(key)?;
        let items =
            v.as_array().ok_or_else(|| anyhow!("field `{}`: expected a list of integers, got {v}", self.name(key)))?;
        items.iter().map(|item| self.int_value(key, item)).collect()
    }
}

fn parse_case(value: &Value) -> Result<Case> {
    let f = Fields::new(
        value,
        "",
        &["name", "seed", "layer", "norm", "mode", "input_shape", "steps", "optimizer", "device"],
    )?;
    let name = f.string("name")?.to_string();
    let seed_value = f.get("seed")?;
    let seed = seed_value
        .as_u64()
        .filter(|&s| seed_value.is_u64() && s < (1u64 << 63))
        .ok_or_else(|| anyhow!("field `seed`: expected an integer in [0, 2^63), got {seed_value}"))?;
    let layer = parse_layer(f.get("layer")?)?;
    let norm = parse_norm(f.get("norm")?)?;
    let train = match f.string("mode")? {
        "train" => true,
        "eval" => false,
        other => bail!("field `mode`: expected \"train\" or \"eval\", got \"{other}\""),
    };
    let input_shape = f.int_list("input_shape")?;
    if input_shape.iter().any(|&d| d < 0) {
        bail!("field `input_shape`: sizes must be non-negative, got {input_shape:?}");
    }
    let steps = f.int("steps")?;
    if !(0..=MAX_STEPS).contains(&steps) {
        bail!("field `steps`: expected an integer in [0, {MAX_STEPS}], got {steps}");
    }
    let optimizer = match f.opt("optimizer") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_adam(v)?),
    };
    let device = match f.opt("device") {
        None => SpecDevice::Cpu,
        Some(_) => match f.string("device")? {
            "cpu" => SpecDevice::Cpu,
            "cuda" => SpecDevice::Cuda,
            other => bail!("field `device`: expected \"cpu\" or \"cuda\", got \"{other}\""),
        },
    };
    let case = Case { name, seed, layer, norm, train, input_shape, steps: steps as u64, optimizer, device };
    super::budget::check(&case)?;
    Ok(case)
}

/// Parses one `layer` object of the spec (also `norm-bench operator-norm`'s `layer`), strictly.
pub fn parse_layer(value: &Value) -> Result<LayerSpec> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("field `layer.kind`: missing or not a string"))?;
    match kind {
        "linear" => {
            let f = Fields::new(value, "layer", &["kind", "in_features", "out_features", "bias"])?;
            Ok(LayerSpec::Linear {
                in_features: f.size("in_features")?,
                out_features: f.size("out_features")?,
                bias: f.boolean("bias")?,
            })
        }
        "embedding" => {
            let f = Fields::new(value, "layer", &["kind", "num_embeddings", "embedding_dim"])?;
            Ok(LayerSpec::Embedding {
                num_embeddings: f.size("num_embeddings")?,
                embedding_dim: f.size("embedding_dim")?,
            })
        }
        _ => {
            let (spatial_dims, transposed) = match kind {
                "conv1d" => (1, false),
                "conv2d" => (2, false),
                "conv3d" => (3, false),
                "conv_transpose1d" => (1, true),
                "conv_transpose2d" => (2, true),
                "conv_transpose3d" => (3, true),
                other => bail!("field `layer.kind`: unknown layer \"{other}\" (expected linear, conv1d/2d/3d, conv_transpose1d/2d/3d or embedding)"),
            };
            let f = Fields::new(
                value,
                "layer",
                &["kind", "in_channels", "out_channels", "kernel_size", "stride", "padding", "bias"],
            )?;
            let per_dim = |key: &str, default: i64| -> Result<Vec<i64>> {
                let list = if f.opt(key).is_some() { f.int_list(key)? } else { vec![default; spatial_dims] };
                if list.len() != spatial_dims {
                    bail!("field `layer.{key}`: expected {spatial_dims} entries for {kind}, got {}", list.len());
                }
                Ok(list)
            };
            Ok(LayerSpec::Conv {
                spatial_dims,
                transposed,
                in_channels: f.size("in_channels")?,
                out_channels: f.size("out_channels")?,
                kernel_size: per_dim("kernel_size", 0).and_then(|k| {
                    if f.opt("kernel_size").is_none() {
                        Err(anyhow!("field `layer.kernel_size`: missing"))
                    } else {
                        Ok(k)
                    }
                })?,
                stride: per_dim("stride", 1)?,
                padding: per_dim("padding", 0)?,
                bias: f.boolean("bias")?,
            })
        }
    }
}

fn parse_norm(value: &Value) -> Result<NormSpec> {
    let kind = match value.get("kind").and_then(Value::as_str) {
        Some("weight_norm") => NormKind::WeightNorm,
        Some("spectral_norm") => NormKind::SpectralNorm,
        Some(other) => bail!("field `norm.kind`: expected \"weight_norm\" or \"spectral_norm\", got \"{other}\""),
        None => bail!("field `norm.kind`: missing or not a string"),
    };
    let allowed: &[&str] = match kind {
        NormKind::WeightNorm => &["kind", "api", "dim"],
        NormKind::SpectralNorm => &["kind", "api", "dim", "n_power_iterations", "eps"],
    };
    let f = Fields::new(value, "norm", allowed)?;
    let api = match f.string("api")? {
        "hooks" => Api::Hooks,
        "parametrizations" => Api::Parametrizations,
        other => bail!("field `norm.api`: expected \"hooks\" or \"parametrizations\", got \"{other}\""),
    };
    let dim = match f.opt("dim") {
        None => DimArg::Omitted,
        Some(Value::Null) => DimArg::Null,
        Some(v) => DimArg::Value(f.int_value("dim", v)?),
    };
    let n_power_iterations = f.opt("n_power_iterations").map(|v| f.int_value("n_power_iterations", v)).transpose()?;
    let eps = f.opt("eps").map(|v| f.float_value("eps", v)).transpose()?;
    Ok(NormSpec { kind, api, dim, n_power_iterations, eps })
}

fn parse_adam(value: &Value) -> Result<AdamSpec> {
    let f = Fields::new(
        value,
        "optimizer",
        &["kind", "lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "fused"],
    )?;
    let defaults = match f.string("kind")? {
        "adam" => norm_core::optim::AdamConfig::default(),
        "adamw" => norm_core::optim::AdamConfig::adamw(1e-3),
        other => bail!("field `optimizer.kind`: expected \"adam\" or \"adamw\", got \"{other}\""),
    };
    let num = |key: &str, default: f64| -> Result<f64> {
        if f.opt(key).is_some() {
            f.float(key)
        } else {
            Ok(default)
        }
    };
    let flag = |key: &str, default: bool| -> Result<bool> {
        if f.opt(key).is_some() {
            f.boolean(key)
        } else {
            Ok(default)
        }
    };
    // `true`, `false` or `null`; omitted is `null` (PyTorch's default `None`).
    let tri = |key: &str| -> Result<Option<bool>> {
        match f.opt(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => f.boolean(key).map(Some).map_err(|_| {
                anyhow!("field `optimizer.{key}`: expected true, false or null, got {}", f.opt(key).expect("present"))
            }),
        }
    };
    let betas = match f.opt("betas") {
        None => defaults.betas,
        Some(v) => match v.as_array().map(Vec::as_slice) {
            Some([b1, b2]) => (f.float_value("betas", b1)?, f.float_value("betas", b2)?),
            _ => bail!("field `optimizer.betas`: expected [float, float], got {v}"),
        },
    };
    Ok(AdamSpec {
        adamw: defaults.decoupled_weight_decay,
        lr: num("lr", defaults.lr)?,
        betas,
        eps: num("eps", defaults.eps)?,
        weight_decay: num("weight_decay", defaults.weight_decay)?,
        amsgrad: flag("amsgrad", defaults.amsgrad)?,
        maximize: flag("maximize", defaults.maximize)?,
        foreach: tri("foreach")?,
        fused: tri("fused")?,
    })
}
