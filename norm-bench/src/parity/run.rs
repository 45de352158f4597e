//! Runs spec cases in Rust with PyTorch's semantics (docs/parity.md) and records every
//! tensor after every step, in the output format both sides share.

use super::layer::{build_layer, Normalized};
use super::spec::{Case, LayerSpec, Spec, SpecDevice};
use crate::snapshot::TensorBits;
use anyhow::Result;
use norm_core::AutodiffBackend;
use norm_tch::optim::Adam;
use norm_tch::TchBackend;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// A whole run's output: `{"torch": str, "cases": [...]}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParityOutput {
    /// Who produced it (`torch.__version__` on the PyTorch side).
    pub torch: String,
    /// One entry per spec case, in spec order.
    pub cases: Vec<CaseOutput>,
}

/// One case's result: its steps, or the error it raised.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseOutput {
    /// The case name.
    pub name: String,
    /// Every step's tensors (absent for an error case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepOutput>>,
    /// The error raised (construction or a step), as a Python exception type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorOutput>,
}

/// The tensors after step `step`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepOutput {
    /// 1-based step number.
    pub step: u64,
    /// `out`, `loss`, the state dict entries and `grad.<name>` for parameters with a gradient.
    pub tensors: BTreeMap<String, TensorBits>,
}

/// An error, typed as the Python exception PyTorch raises for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorOutput {
    /// `ValueError`, `IndexError`, `RuntimeError`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The message (informative only; never compared).
    pub message: String,
}

/// The Python exception type PyTorch raises for the condition `error` reports.
pub fn python_exception_type(error: &anyhow::Error) -> &'static str {
    use norm_core::Error as E;
    match error.downcast_ref::<E>() {
        Some(E::InvalidArgument { .. } | E::MissingParameter { .. }) => "ValueError",
        Some(E::DimOutOfRange { .. }) => "IndexError",
        Some(
            E::ShapeMismatch { .. }
            | E::UnsupportedDType { .. }
            | E::AlreadyRegistered { .. }
            | E::Unsupported { .. }
            | E::Backend { .. },
        ) => "RuntimeError",
        Some(_) | None => "RuntimeError", // norm_core::Error is #[non_exhaustive]
    }
}

/// Runs every case of `spec` (1 intra-op thread), one after another.
pub fn run_spec(spec: &Spec, mut progress: impl FnMut(usize, &CaseOutput)) -> Result<ParityOutput> {
    norm_tch::backend::set_num_threads(1)?;
    let mut cases = Vec::with_capacity(spec.cases.len());
    for (i, case) in spec.cases.iter().enumerate() {
        let output = match run_case(case) {
            Ok(steps) => CaseOutput { name: case.name.clone(), steps: Some(steps), error: None },
            Err(e) => CaseOutput {
                name: case.name.clone(),
                steps: None,
                error: Some(ErrorOutput { kind: python_exception_type(&e).to_string(), message: format!("{e:#}") }),
            },
        };
        progress(i, &output);
        cases.push(output);
    }
    Ok(ParityOutput {
        torch: format!(
            "norm {} (tch 0.24.0, libtorch {})",
            env!("CARGO_PKG_VERSION"),
            norm_tch::backend::cpu_capability()
        ),
        cases,
    })
}

/// The tch device of a spec device, or the message `norm-bench parity` exits 2 with when this
/// machine has none.
pub fn device_of(device: SpecDevice) -> std::result::Result<Device, String> {
    match device {
        SpecDevice::Cpu => Ok(Device::Cpu),
        SpecDevice::Cuda => norm_tch::backend::cuda_device(0).ok_or_else(|| {
            "device \"cuda\" is not available on this machine (libtorch sees no CUDA device: \
             tch::Cuda::is_available() is false)"
                .to_string()
        }),
    }
}

/// Every device the spec's cases ask for must exist here: the first case that names a missing
/// one, as `case N ("name"): field `device`: ...` (a spec problem of this machine: exit 2).
pub fn check_devices(spec: &Spec) -> std::result::Result<(), String> {
    for (index, case) in spec.cases.iter().enumerate() {
        device_of(case.device).map_err(|e| format!("case {index} (\"{}\"): field `device`: {e}", case.name))?;
    }
    Ok(())
}

/// One case: seed, build, normalize, set the mode, then `steps` training steps.
pub fn run_case(case: &Case) -> Result<Vec<StepOutput>> {
    let device = device_of(case.device).map_err(|e| anyhow::anyhow!(e))?;
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(case.seed as i64);
    let vs = VarStore::new(device);
    let layer = build_layer(&vs, &case.layer)?;
    let model = Normalized::apply(&vs, layer, &case.norm)?;
    let mut optimizer = match case.optimizer {
        Some(o) => Some(Adam::new(&vs, o.config())?),
        None => None,
    };
    let mut steps = Vec::new(); // grows with the steps run, never sized from the spec up front
    for step in 1..=case.steps {
        let x = match case.layer {
            LayerSpec::Embedding { num_embeddings, .. } => {
                Tensor::f_randint_low(0, num_embeddings, case.input_shape.as_slice(), (Kind::Int64, device))?
            }
            _ => Tensor::f_randn(case.input_shape.as_slice(), (Kind::Float, device))?,
        };
        let out = model.forward_t(&x, case.train)?;
        let loss = out.f_sum(None::<Kind>)?;
        match optimizer.as_mut() {
            Some(opt) => {
                opt.zero_grad()?;
                loss.f_backward()?;
                opt.step()?;
            }
            None => {
                for mut p in vs.trainable_variables() {
                    TchBackend::clear_grad(&mut p)?;
                }
                loss.f_backward()?;
            }
        }
        let mut tensors = BTreeMap::new();
        tensors.insert("out".to_string(), TensorBits::from_tensor(&out)?);
        tensors.insert("loss".to_string(), TensorBits::from_tensor(&loss)?);
        for (name, t) in vs.variables() {
            if t.requires_grad() {
                if let Some(grad) = TchBackend::grad(&t) {
                    tensors.insert(format!("grad.{name}"), TensorBits::from_tensor(&grad)?);
                }
            }
            tensors.insert(name, TensorBits::from_tensor(&t)?);
        }
        steps.push(StepOutput { step, tensors });
    }
    Ok(steps)
}
