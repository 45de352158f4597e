//! The report's timing cases and their Rust timed bodies.
//!
//! Every case is timed the same way on both sides (here and in
//! `norm-bench/python/eager_timing.py`): the [`sampling`](super::sampling) rule decides
//! the warm-up and sample counts and how many iterations a sample batches (one for the
//! cases with untimed work between iterations), each sample is timed alone, and the
//! device is synchronized before each clock read. Whatever a body allocates (its result included)
//! is freed before its clock stops; work done "between samples" (clearing gradients) is
//! outside the timed window. Each case's setup starts with `torch.manual_seed(0)` (and
//! `random.seed(0)`) on both sides. Inputs are drawn as float32 on the CPU and then
//! converted to the case's dtype and device (`.to(dtype, device)`).
//!
//! | op | timed body (Rust: norm; PyTorch: the same program in eager) |
//! |---|---|
//! | `copy` | `dst.copy_(src)`: the bandwidth reference |
//! | `weight_norm_forward` | `torch._weight_norm(v, g, 0)` without autograd; Rust [`compute_weight`] (what `WeightNorm::weight()` runs) |
//! | `weight_norm_forward_out` | Rust [`norm_tch::weight_norm_out`] into an output allocated once; PyTorch `torch._weight_norm(v, g, 0)` (it has no `out=` variant). CPU, f32/f64/bf16 only |
//! | `weight_norm_forward_backward` | the same with `v`, `g` requiring grad, then `.sum().backward()` |
//! | `spectral_norm_forward_train` | `SpectralNorm.weight_t(m, do_power_iteration=True)` on `spectral_norm(nn.Linear(cols, rows))`, autograd recording (Rust `SpectralNorm::compute_weight(true)`) |
//! | `spectral_norm_forward_eval` | `compute_weight(m, do_power_iteration=False)` under `no_grad` |
//! | `spectral_norm_forward_backward` | the training forward, then `.sum().backward()` |
//! | `power_iteration` | `_SpectralNorm._power_method(W, k)` of the parametrization API alone (Rust `SpectralNormState::power_method`) |
//! | `spectral_norm_train_step` | `loss = m(x).pow(2).mean(); zero_grad; backward; Adam.step` on the spectral-normed Linear, `x = randn(32, cols)`, `Adam(lr=1e-3, foreach=False)` (Rust `norm_tch::optim::Adam`) |
//! | `seed_loop_step` | one iteration of the seed document's first weight-norm loop (3x2 weight, CPU, f32) |

use super::sampling::{time_adaptive, time_body, Sampling, Timed};
use crate::seed_loop::{Example, SeedModel};
use crate::seed_loop_cpp::SeedStepCpp;
use anyhow::{bail, Context, Result};
use norm_core::optim::AdamConfig;
use norm_core::random::PyRandom;
use norm_core::spectral_norm::parametrizations::{self as sn_param, SpectralNormState};
use norm_core::weight_norm::{compute_weight, WeightNormDim};
use norm_core::AutodiffBackend;
use norm_tch::layers::{linear, spectral_norm, LinearConfig, SpectralNorm, SpectralNormOptions};
use norm_tch::optim::Adam;
use norm_tch::{weight_norm_out, TchBackend};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use tch::nn::{Linear, VarStore};
use tch::{Device, Kind, Tensor};

/// The seed of `torch.manual_seed` (and `random.seed`) before each case's setup, on both sides.
pub const CASE_SEED: u64 = 0;

/// Rows of the input batch of `spectral_norm_train_step`.
pub const TRAIN_STEP_BATCH: i64 = 32;

/// Learning rate of `spectral_norm_train_step`'s Adam.
pub const TRAIN_STEP_LR: f64 = 1e-3;

/// `eps` of the spectral-norm cases (PyTorch's default).
pub const SPECTRAL_EPS: f64 = 1e-12;

/// What a case times. The serde names are the ones in the CSV, the config file and the
/// Python protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `dst.copy_(src)`, the bandwidth reference.
    Copy,
    /// `torch._weight_norm(v, g, 0)` without autograd.
    WeightNormForward,
    /// The same result written into a reused output (`norm_tch::weight_norm_out`); the
    /// PyTorch side is `_weight_norm`, which has no `out=` variant. CPU; f32, f64, bf16.
    WeightNormForwardOut,
    /// `_weight_norm(v, g, 0).sum().backward()` with `v`, `g` requiring grad.
    WeightNormForwardBackward,
    /// The hook API's training forward: power iteration, then `weight_orig / σ`.
    SpectralNormForwardTrain,
    /// The hook API's eval forward: `weight_orig / σ` with the stored `u`, `v`, under `no_grad`.
    SpectralNormForwardEval,
    /// The training forward, then `.sum().backward()`.
    SpectralNormForwardBackward,
    /// The parametrization API's `_power_method` alone.
    PowerIteration,
    /// A full training step (forward, zero_grad, backward, Adam) of a spectral-normed Linear.
    SpectralNormTrainStep,
    /// One training step of the seed document's weight-norm program.
    SeedLoopStep,
    /// The same step written directly against libtorch in C++ (`csrc/seed_step_cpp.cpp`):
    /// PyTorch's own ATen call sequence without Python or Rust, the floor for both sides.
    /// Its "Rust" columns hold the C++ program; the PyTorch side is `seed_loop_step`'s.
    SeedLoopStepCpp,
}

impl Op {
    /// Every op, in run order.
    pub const ALL: [Op; 11] = [
        Op::Copy,
        Op::WeightNormForward,
        Op::WeightNormForwardOut,
        Op::WeightNormForwardBackward,
        Op::SpectralNormForwardTrain,
        Op::SpectralNormForwardEval,
        Op::SpectralNormForwardBackward,
        Op::PowerIteration,
        Op::SpectralNormTrainStep,
        Op::SeedLoopStep,
        Op::SeedLoopStepCpp,
    ];

    /// The name in the CSV's `op` column and in the Python protocol.
    pub fn name(self) -> &'static str {
        match self {
            Op::Copy => "copy",
            Op::WeightNormForward => "weight_norm_forward",
            Op::WeightNormForwardOut => "weight_norm_forward_out",
            Op::WeightNormForwardBackward => "weight_norm_forward_backward",
            Op::SpectralNormForwardTrain => "spectral_norm_forward_train",
            Op::SpectralNormForwardEval => "spectral_norm_forward_eval",
            Op::SpectralNormForwardBackward => "spectral_norm_forward_backward",
            Op::PowerIteration => "power_iteration",
            Op::SpectralNormTrainStep => "spectral_norm_train_step",
            Op::SeedLoopStep => "seed_loop_step",
            Op::SeedLoopStepCpp => "seed_loop_step_cpp",
        }
    }

    /// Whether the op is one step of the seed document's loop (a fixed 3x2 f32 CPU case,
    /// outside the size sweeps).
    pub fn is_seed_loop(self) -> bool {
        matches!(self, Op::SeedLoopStep | Op::SeedLoopStepCpp)
    }

    /// Whether the op runs power iterations (its rows carry `n_power_iterations`).
    pub fn has_power_iterations(self) -> bool {
        matches!(
            self,
            Op::SpectralNormForwardTrain
                | Op::SpectralNormForwardBackward
                | Op::PowerIteration
                | Op::SpectralNormTrainStep
        )
    }

    /// Bytes the op must move at least, for the bandwidth columns: `copy`,
    /// `weight_norm_forward` and `weight_norm_forward_out` read one `rows x cols` tensor
    /// and write one (`2 · rows · cols · sizeof(dtype)`); `None` for the other ops.
    pub fn bytes_moved(self, rows: u64, cols: u64, dtype: DType) -> Option<u64> {
        matches!(self, Op::Copy | Op::WeightNormForward | Op::WeightNormForwardOut)
            .then(|| 2 * rows * cols * dtype.size_bytes())
    }

    /// Whether the op has cases on `device` in `dtype`: `weight_norm_forward_out` only on
    /// the CPU in f32, f64 and bf16 (ATen's fused CPU kernel); the seed-loop ops only on
    /// the CPU in f32; the others everywhere (a dtype without a kernel is then recorded
    /// as `unsupported`).
    pub fn runs_on(self, device: DeviceKind, dtype: DType) -> bool {
        match self {
            Op::WeightNormForwardOut => {
                device == DeviceKind::Cpu && matches!(dtype, DType::F32 | DType::F64 | DType::Bf16)
            }
            Op::SeedLoopStep | Op::SeedLoopStepCpp => device == DeviceKind::Cpu && dtype == DType::F32,
            _ => true,
        }
    }

    /// A rough single-thread CPU cost in nanoseconds per weight element and iteration,
    /// only for the progress bar's time estimate.
    pub fn rough_ns_per_element(self, n_power_iterations: u64) -> f64 {
        match self {
            Op::Copy => 1.5,
            Op::WeightNormForward => 4.5,
            Op::WeightNormForwardOut => 1.0,
            Op::WeightNormForwardBackward => 14.0,
            Op::SpectralNormForwardTrain => 3.0 + 2.5 * n_power_iterations as f64,
            Op::SpectralNormForwardEval => 4.0,
            Op::SpectralNormForwardBackward => 10.0 + 2.5 * n_power_iterations as f64,
            Op::PowerIteration => 2.5 * n_power_iterations as f64,
            Op::SpectralNormTrainStep => 30.0,
            Op::SeedLoopStep | Op::SeedLoopStepCpp => 0.0,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        Op::ALL.into_iter().find(|op| op.name() == text).ok_or_else(|| {
            let names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
            format!("unknown op '{text}' (known: {})", names.join(", "))
        })
    }
}

/// A case's dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// `torch.float32`.
    F32,
    /// `torch.float64`.
    F64,
    /// `torch.bfloat16`.
    Bf16,
    /// `torch.float16`.
    F16,
}

impl DType {
    /// Every dtype.
    pub const ALL: [DType; 4] = [DType::F32, DType::F64, DType::Bf16, DType::F16];

    /// The name in the CSV and the protocol (`f32`, `f64`, `bf16`, `f16`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::Bf16 => "bf16",
            DType::F16 => "f16",
        }
    }

    /// The libtorch kind.
    pub fn kind(self) -> Kind {
        match self {
            DType::F32 => Kind::Float,
            DType::F64 => Kind::Double,
            DType::Bf16 => Kind::BFloat16,
            DType::F16 => Kind::Half,
        }
    }

    /// `sizeof` one element.
    pub fn size_bytes(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
            DType::Bf16 | DType::F16 => 2,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        DType::ALL
            .into_iter()
            .find(|d| d.name() == text)
            .ok_or_else(|| format!("unknown dtype '{text}' (known: f32, f64, bf16, f16)"))
    }
}

/// A case's device: the CPU or the first CUDA device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The CPU.
    Cpu,
    /// CUDA device 0 (`cuda:0`).
    Cuda,
}

impl DeviceKind {
    /// The name in the CSV and the protocol (`cpu`, `cuda`).
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Cuda => "cuda",
        }
    }

    /// The libtorch device.
    pub fn device(self) -> Device {
        match self {
            DeviceKind::Cpu => Device::Cpu,
            DeviceKind::Cuda => Device::Cuda(0),
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" => Ok(DeviceKind::Cuda),
            other => Err(format!("unknown device '{other}' (known: cpu, cuda)")),
        }
    }
}

/// A weight shape `rows x cols`, written `512x2048` (a bare `512` means `512x512`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape {
    /// The first dimension (output features of a Linear).
    pub rows: u64,
    /// The second dimension (input features).
    pub cols: u64,
}

impl Shape {
    /// `n x n`.
    pub fn square(n: u64) -> Self {
        Shape { rows: n, cols: n }
    }

    /// Elements of the weight.
    pub fn elements(&self) -> u64 {
        self.rows * self.cols
    }

    /// Whether `rows == cols`.
    pub fn is_square(&self) -> bool {
        self.rows == self.cols
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

impl FromStr for Shape {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let dim = |part: &str| match part.trim().parse::<u64>() {
            Ok(0) => Err(format!("a dimension must be at least 1 in shape '{text}'")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("expected a shape like 512x2048 or 512, got '{text}'")),
        };
        match text.split_once('x') {
            Some((rows, cols)) => Ok(Shape { rows: dim(rows)?, cols: dim(cols)? }),
            None => Ok(Shape::square(dim(text)?)),
        }
    }
}

impl Serialize for Shape {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Square(u64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Raw::Square(0) => Err(serde::de::Error::custom("a shape's size must be at least 1")),
            Raw::Square(n) => Ok(Shape::square(n)),
        }
    }
}

/// One timed case: an op on a `rows x cols` weight of a dtype on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Case {
    /// What is timed.
    pub op: Op,
    /// The weight's first dimension.
    pub rows: u64,
    /// The weight's second dimension.
    pub cols: u64,
    /// The dtype of the weight (and of every tensor of the case).
    pub dtype: DType,
    /// Where the case runs.
    pub device: DeviceKind,
    /// Power iterations per evaluation, for the ops that iterate; `None` for the others.
    pub n_power_iterations: Option<u64>,
}

impl Case {
    /// A case on the CPU in float32 without power iterations.
    pub fn cpu_f32(op: Op, shape: Shape) -> Self {
        Case {
            op,
            rows: shape.rows,
            cols: shape.cols,
            dtype: DType::F32,
            device: DeviceKind::Cpu,
            n_power_iterations: None,
        }
    }

    /// The weight's shape.
    pub fn shape(&self) -> Shape {
        Shape { rows: self.rows, cols: self.cols }
    }

    /// `weight_norm_forward 512x512 f32 cpu` (with ` k=10` for iterating ops).
    pub fn label(&self) -> String {
        let mut label = format!("{} {} {} {}", self.op, self.shape(), self.dtype, self.device);
        if let Some(k) = self.n_power_iterations {
            label.push_str(&format!(" k={k}"));
        }
        label
    }

    /// Bytes moved per iteration for the bandwidth columns (see [`Op::bytes_moved`]).
    pub fn bytes_moved(&self) -> Option<u64> {
        self.op.bytes_moved(self.rows, self.cols, self.dtype)
    }

    fn dims(&self) -> Result<[i64; 2]> {
        Ok([i64::try_from(self.rows)?, i64::try_from(self.cols)?])
    }

    fn k(&self) -> Result<usize> {
        match self.n_power_iterations {
            Some(k) if k >= 1 => Ok(k as usize),
            _ => bail!("{} needs n_power_iterations >= 1", self.op),
        }
    }
}

/// `randn(dims)` drawn as float32 on the CPU, then converted to the case's dtype and device.
fn randn(case: &Case, dims: [i64; 2]) -> Result<Tensor> {
    Ok(Tensor::f_randn(dims, (Kind::Float, Device::Cpu))?
        .f_to_kind(case.dtype.kind())?
        .f_to_device(case.device.device())?)
}

/// `v = randn(rows, cols)` and `g = norm_except_dim(v, 2, 0)`, as leaves requiring grad or not.
fn weight_norm_leaves(case: &Case, requires_grad: bool) -> Result<(Tensor, Tensor)> {
    let v = randn(case, case.dims()?)?;
    let g = Tensor::f_norm_except_dim(&v, 2, 0)?;
    Ok((v.f_set_requires_grad(requires_grad)?, g.f_set_requires_grad(requires_grad)?))
}

/// `spectral_norm(nn.Linear(cols, rows).to(dtype, device), n_power_iterations=k)` with
/// norm-tch's layers: the VarStore and the layer.
fn spectral_linear(case: &Case, k: usize) -> Result<(VarStore, SpectralNorm<Linear>)> {
    let mut vs = VarStore::new(case.device.device());
    let [rows, cols] = case.dims()?;
    let layer = linear(&vs.root(), cols, rows, LinearConfig::default())?;
    if case.dtype != DType::F32 {
        vs.set_kind(case.dtype.kind());
    }
    let options = SpectralNormOptions { n_power_iterations: k as i64, eps: SPECTRAL_EPS, dim: None };
    let layer = spectral_norm(&vs, layer, options)?;
    Ok((vs, layer))
}

/// Times `case` in Rust under `sampling`.
///
/// Seeds the generators with [`CASE_SEED`] first; the caller pins the thread count.
/// Errors: the case cannot run here (e.g. an op that libtorch does not implement for
/// the dtype), with libtorch's message.
pub fn time_rust(case: &Case, sampling: &Sampling) -> Result<Timed> {
    tch::manual_seed(CASE_SEED as i64);
    let device = case.device.device();
    let timed = match case.op {
        Op::Copy => {
            let src = randn(case, case.dims()?)?;
            let mut dst = src.f_empty_like()?;
            time_body(sampling, device, || {
                dst.f_copy_(&src)?;
                Ok(())
            })
        }
        Op::WeightNormForward => {
            let (v, g) = weight_norm_leaves(case, false)?;
            let dim = WeightNormDim::new(Some(0));
            time_body(sampling, device, || {
                drop(compute_weight::<TchBackend>(&v, &g, dim)?);
                Ok(())
            })
        }
        Op::WeightNormForwardOut => {
            // As weight_norm_forward (grad mode on, v and g not requiring grad), into an
            // output allocated once: contiguous, v's shape, dtype and device.
            let (v, g) = weight_norm_leaves(case, false)?;
            let dim = WeightNormDim::new(Some(0));
            let mut out = Tensor::f_empty(v.size(), (v.kind(), v.device()))?;
            time_body(sampling, device, || Ok(weight_norm_out(&v, &g, dim, &mut out)?))
        }
        Op::WeightNormForwardBackward => {
            let (mut v, mut g) = weight_norm_leaves(case, true)?;
            let (v_handle, g_handle) = (v.shallow_clone(), g.shallow_clone());
            let dim = WeightNormDim::new(Some(0));
            time_adaptive(
                sampling,
                device,
                || {
                    TchBackend::clear_grad(&mut v)?;
                    TchBackend::clear_grad(&mut g)?;
                    Ok(())
                },
                || {
                    let weight = compute_weight::<TchBackend>(&v_handle, &g_handle, dim)?;
                    weight.f_sum(None::<Kind>)?.f_backward()?;
                    Ok(())
                },
            )
        }
        Op::SpectralNormForwardTrain => {
            let (_vs, layer) = spectral_linear(case, case.k()?)?;
            time_body(sampling, device, || {
                drop(layer.weight_t(true)?);
                Ok(())
            })
        }
        Op::SpectralNormForwardEval => {
            let (_vs, layer) = spectral_linear(case, 1)?;
            time_body(sampling, device, || {
                drop(tch::no_grad(|| layer.weight_t(false))?);
                Ok(())
            })
        }
        Op::SpectralNormForwardBackward => {
            let (_vs, layer) = spectral_linear(case, case.k()?)?;
            let mut weight_orig = layer.weight_orig().shallow_clone();
            time_adaptive(
                sampling,
                device,
                || Ok(TchBackend::clear_grad(&mut weight_orig)?),
                || {
                    layer.weight_t(true)?.f_sum(None::<Kind>)?.f_backward()?;
                    Ok(())
                },
            )
        }
        Op::PowerIteration => {
            let k = case.k()?;
            let weight = randn(case, case.dims()?)?;
            let mut state = SpectralNormState::<TchBackend>::new(&weight, k as i64, 0, SPECTRAL_EPS)?;
            let w_mat = sn_param::weight_to_matrix::<TchBackend>(&weight, 0)?;
            time_body(sampling, device, || Ok(state.power_method(&w_mat, k)?))
        }
        Op::SpectralNormTrainStep => {
            let (vs, layer) = spectral_linear(case, case.k()?)?;
            let x = randn(case, [TRAIN_STEP_BATCH, case.dims()?[1]])?;
            let mut adam = Adam::new(&vs, AdamConfig::with_lr(TRAIN_STEP_LR))?;
            time_body(sampling, device, || {
                let loss = layer.f_forward_t(&x, true)?.f_pow_tensor_scalar(2)?.f_mean(None::<Kind>)?;
                adam.zero_grad()?;
                loss.f_backward()?;
                adam.step()?;
                Ok(())
            })
        }
        Op::SeedLoopStep | Op::SeedLoopStepCpp => {
            anyhow::ensure!(
                (case.rows, case.cols, case.dtype, case.device) == (3, 2, DType::F32, DeviceKind::Cpu),
                "{} is a 3x2 float32 weight on the CPU, got {}",
                case.op,
                case.label()
            );
            let mut random = PyRandom::new(CASE_SEED);
            let mut model = SeedModel::new(Example::WeightNorm)?;
            if case.op == Op::SeedLoopStepCpp {
                let bias = model.layer.layer().bs.as_ref().context("Linear(2, 3) has a bias")?;
                let mut cpp =
                    SeedStepCpp::new(model.layer.weight_v(), model.layer.weight_g(), bias, model.adam.config().lr)?;
                return time_body(sampling, device, || cpp.step(random.random()))
                    .with_context(|| format!("timing {} in C++", case.label()));
            }
            time_body(sampling, device, || {
                let x = Tensor::f_randn([10, 2], (Kind::Float, Device::Cpu))?
                    .f_mul_scalar(random.random())?
                    .f_mul_scalar(10.0)?;
                model.train_step(&x)
            })
        }
    };
    timed.with_context(|| format!("timing {} in Rust", case.label()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for op in Op::ALL {
            assert_eq!(op.name().parse::<Op>().unwrap(), op);
            assert_eq!(serde_json::to_string(&op).unwrap(), format!("\"{}\"", op.name()));
        }
        for dtype in DType::ALL {
            assert_eq!(dtype.name().parse::<DType>().unwrap(), dtype);
            assert_eq!(serde_json::to_string(&dtype).unwrap(), format!("\"{}\"", dtype.name()));
        }
        assert!("weight_norm".parse::<Op>().unwrap_err().contains("known: copy"));
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda);
        assert_eq!("512x2048".parse::<Shape>().unwrap(), Shape { rows: 512, cols: 2048 });
        assert_eq!("64".parse::<Shape>().unwrap(), Shape::square(64));
        assert!("0x4".parse::<Shape>().is_err());
        assert!("4xq".parse::<Shape>().is_err());
        assert_eq!(
            serde_json::from_str::<Vec<Shape>>(r#"["3x2", 8]"#).unwrap(),
            [Shape { rows: 3, cols: 2 }, Shape::square(8)]
        );
    }

    #[test]
    fn a_case_serializes_as_the_protocol_names_it() {
        let case =
            Case { n_power_iterations: Some(5), ..Case::cpu_f32(Op::PowerIteration, Shape { rows: 8, cols: 16 }) };
        assert_eq!(
            serde_json::to_string(&case).unwrap(),
            r#"{"op":"power_iteration","rows":8,"cols":16,"dtype":"f32","device":"cpu","n_power_iterations":5}"#
        );
        assert_eq!(case.label(), "power_iteration 8x16 f32 cpu k=5");
        assert_eq!(Case::cpu_f32(Op::WeightNormForward, Shape::square(4096)).bytes_moved(), Some(2 * 4096 * 4096 * 4));
        assert_eq!(Case::cpu_f32(Op::PowerIteration, Shape::square(8)).bytes_moved(), None);
    }

    #[test]
    fn clearing_a_leaf_clears_the_handle_that_backward_went_through() {
        // time_rust clears `v` while the body differentiates through `v.shallow_clone()`.
        let case = Case::cpu_f32(Op::WeightNormForwardBackward, Shape::square(4));
        let (mut v, g) = weight_norm_leaves(&case, true).unwrap();
        let handle = v.shallow_clone();
        compute_weight::<TchBackend>(&handle, &g, WeightNormDim::new(Some(0))).unwrap().sum(Kind::Float).backward();
        assert!(TchBackend::grad(&v).is_some());
        TchBackend::clear_grad(&mut v).unwrap();
        assert!(TchBackend::grad(&handle).is_none());
    }

    #[test]
    fn every_op_times_the_requested_sample_count() {
        let _generator = norm_tch::backend::lock_global_generator();
        for op in Op::ALL {
            let shape = if op.is_seed_loop() { Shape { rows: 3, cols: 2 } } else { Shape { rows: 4, cols: 6 } };
            let case = Case { n_power_iterations: op.has_power_iterations().then_some(2), ..Case::cpu_f32(op, shape) };
            let timed = time_rust(&case, &Sampling::fixed(1, 3)).unwrap();
            assert_eq!((timed.warmup, timed.iterations_per_sample, timed.nanos.len()), (1, 1, 3), "{case:?}");
        }
    }

    #[test]
    fn weight_norm_forward_out_is_a_cpu_op_of_the_fused_dtypes() {
        let _generator = norm_tch::backend::lock_global_generator();
        assert!(Op::WeightNormForwardOut.runs_on(DeviceKind::Cpu, DType::Bf16));
        assert!(!Op::WeightNormForwardOut.runs_on(DeviceKind::Cpu, DType::F16));
        assert!(!Op::WeightNormForwardOut.runs_on(DeviceKind::Cuda, DType::F32));
        assert!(Op::WeightNormForward.runs_on(DeviceKind::Cuda, DType::F16));
        assert_eq!(
            Op::WeightNormForwardOut.bytes_moved(8, 8, DType::F64),
            Op::WeightNormForward.bytes_moved(8, 8, DType::F64)
        );
        for dtype in [DType::F64, DType::Bf16] {
            let case = Case { dtype, ..Case::cpu_f32(Op::WeightNormForwardOut, Shape { rows: 5, cols: 7 }) };
            assert_eq!(time_rust(&case, &Sampling::fixed(1, 2)).unwrap().nanos.len(), 2, "{dtype}");
        }
        // Half has no fused kernel: weight_norm_out refuses it with a message.
        let case = Case { dtype: DType::F16, ..Case::cpu_f32(Op::WeightNormForwardOut, Shape::square(4)) };
        assert!(format!("{:#}", time_rust(&case, &Sampling::fixed(1, 2)).unwrap_err()).contains("Half"));
    }

    #[test]
    fn other_dtypes_run_or_fail_with_a_message() {
        let _generator = norm_tch::backend::lock_global_generator();
        let case = Case {
            dtype: DType::F64,
            n_power_iterations: Some(1),
            ..Case::cpu_f32(Op::SpectralNormForwardTrain, Shape::square(4))
        };
        assert_eq!(time_rust(&case, &Sampling::fixed(0, 1)).unwrap().nanos.len(), 1);
        let bad = Case { n_power_iterations: None, ..case };
        assert!(format!("{:#}", time_rust(&bad, &Sampling::fixed(0, 1)).unwrap_err()).contains("n_power_iterations"));
    }
}
