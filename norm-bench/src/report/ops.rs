//! The report's timed ops: one row each in [`OPS`], the one table that everything else
//! about an op derives from.
//!
//! A row says what the sweep does with the op ([`OpShapes`], [`PowerIterations`],
//! [`RunsOn`], the default dtype subset), how many bytes it moves (the bandwidth columns),
//! its rough cost (the progress bar's time estimate), which PyTorch program times its
//! PyTorch side, and which Rust function times its Rust side. From the table come
//! [`Op`]'s names (CSV, config file, `--ops` and its help text, the Python protocol), the
//! default `ops`, `rect_ops` and `dtype_ops`, [`Op::bytes_moved`] and the cost estimate.
//!
//! The PyTorch side keeps no list of its own: each `open` request names, in its
//! `"pytorch_op"` field, the row's [`OpRow::pytorch_op`], and `eager_timing.py` runs its
//! function `op_<that name>`. So a new op is a variant of [`Op`], one row here, its Rust
//! timed body in [`rust_side`](super::rust_side), and its PyTorch timed body
//! `op_<name>` in `norm-bench/python/eager_timing.py` (unless it reuses another op's).

use super::case::{Case, DType, DeviceKind};
use super::model_rows::{self, HIFIGAN_SHAPE, SN_DISCRIMINATOR_SHAPE};
use super::rust_side;
use super::sampling::Body;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a case times; its properties are its row of [`OPS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Op {
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
    /// A training step of the examples' HiFi-GAN-style generator ([`model_rows`](super::model_rows)).
    HifiganTrainStep,
    /// The generator's eval forward with norm's cached weights (PyTorch: the weight-normed model).
    HifiganEvalCached,
    /// The generator's eval forward after norm's `fold` (PyTorch: after `remove_weight_norm`).
    HifiganEvalFolded,
    /// A training step of the examples' SN-GAN discriminator.
    SnDiscriminatorTrainStep,
    /// The discriminator's eval forward with norm's cached weights.
    SnDiscriminatorEvalCached,
    /// The discriminator's eval forward after norm's `fold` (PyTorch: after `remove_spectral_norm`/`remove_parametrizations`).
    SnDiscriminatorEvalFolded,
}

/// The shapes the sweep gives an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpShapes {
    /// The square `sizes`, then `rect_shapes` when the op is in `rect_ops` (by default it is).
    Sweep,
    /// The square `copy_sizes` (the bandwidth reference), then `rect_shapes` when the op is
    /// in `rect_ops` (by default it is not).
    CopySizes,
    /// The seed document's 3x2 weight, after every other case; never in `rect_ops` or the
    /// dtype subset.
    SeedLoop,
    /// A whole model's one shape, `batch x length` ([`model_rows`](super::model_rows)).
    Model(u64, u64),
}

/// The power iterations of an op's cases (the `n_power_iterations` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PowerIterations {
    /// The op does not iterate: the column is empty.
    None,
    /// The options' `n_power_iterations` per evaluation.
    PerEvaluation,
    /// One case per `power_iteration_counts` value (the dtype subset: the first one).
    EachCount,
}

/// Where an op has cases (elsewhere the sweep leaves it out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RunsOn {
    /// Every device and dtype (a dtype without a kernel is then recorded as `unsupported`).
    Everywhere,
    /// The CPU in f32, f64 and bf16: ATen's fused CPU kernel of `_weight_norm`.
    CpuFusedKernelDtypes,
    /// The CPU in f32 only.
    CpuF32,
    /// Every device, in f32 only (the whole models).
    F32,
}

/// One op's row of [`OPS`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct OpRow {
    /// The op.
    pub(crate) op: Op,
    /// Its name in the CSV's `op` column, the config file, `--ops` and the Python protocol.
    pub(crate) name: &'static str,
    /// The shapes of its cases.
    pub(crate) shapes: OpShapes,
    /// The power iterations of its cases.
    pub(crate) power_iterations: PowerIterations,
    /// Where it has cases.
    pub(crate) runs_on: RunsOn,
    /// Whether it is in the default dtype subset (`dtype_ops`).
    pub(crate) in_dtype_subset: bool,
    /// Whether it reads one `rows x cols` tensor and writes one, the bytes of the bandwidth
    /// columns ([`Op::bytes_moved`]).
    pub(crate) moves_one_weight: bool,
    /// A rough single-thread CPU cost in nanoseconds per weight element and iteration,
    /// plus this much per power iteration: only for the progress bar's time estimate.
    pub(crate) rough_ns_per_element: (f64, f64),
    /// The op whose PyTorch program (`op_<name>` in `eager_timing.py`) times this op's
    /// PyTorch side: the op itself, or the op whose program it shares.
    pub(crate) pytorch_op: Op,
    /// Sets the Rust side up: its timed body (the generators are seeded and the threads
    /// pinned before).
    pub(crate) rust_body: fn(&Case) -> Result<Body>,
}

/// Every op, in run order (the default `ops`). Row `i` is the op with discriminant `i`.
pub(crate) const OPS: [OpRow; 17] = {
    use OpShapes::{CopySizes, SeedLoop, Sweep};
    use PowerIterations::{EachCount, PerEvaluation};
    use RunsOn::{CpuF32, CpuFusedKernelDtypes, Everywhere};
    const fn row(op: Op, name: &'static str, rust_body: fn(&Case) -> Result<Body>) -> OpRow {
        OpRow {
            op,
            name,
            shapes: Sweep,
            power_iterations: PowerIterations::None,
            runs_on: Everywhere,
            in_dtype_subset: false,
            moves_one_weight: false,
            rough_ns_per_element: (0.0, 0.0),
            pytorch_op: op,
            rust_body,
        }
    }
    /// A whole model's row: its one shape, f32 on every device, timed by [`model_rows`](super::model_rows).
    const fn model_row(op: Op, name: &'static str, (batch, length): (u64, u64), ns_per_element: f64) -> OpRow {
        OpRow {
            shapes: OpShapes::Model(batch, length),
            runs_on: RunsOn::F32,
            rough_ns_per_element: (ns_per_element, 0.0),
            ..row(op, name, model_rows::body_model)
        }
    }
    [
        OpRow {
            shapes: CopySizes,
            moves_one_weight: true,
            rough_ns_per_element: (1.5, 0.0),
            ..row(Op::Copy, "copy", rust_side::body_copy)
        },
        OpRow {
            in_dtype_subset: true,
            moves_one_weight: true,
            rough_ns_per_element: (4.5, 0.0),
            ..row(Op::WeightNormForward, "weight_norm_forward", rust_side::body_weight_norm_forward)
        },
        OpRow {
            runs_on: CpuFusedKernelDtypes,
            in_dtype_subset: true,
            moves_one_weight: true,
            rough_ns_per_element: (1.0, 0.0),
            pytorch_op: Op::WeightNormForward,
            ..row(Op::WeightNormForwardOut, "weight_norm_forward_out", rust_side::body_weight_norm_forward_out)
        },
        OpRow {
            rough_ns_per_element: (14.0, 0.0),
            ..row(
                Op::WeightNormForwardBackward,
                "weight_norm_forward_backward",
                rust_side::body_weight_norm_forward_backward,
            )
        },
        OpRow {
            power_iterations: PerEvaluation,
            in_dtype_subset: true,
            rough_ns_per_element: (3.0, 2.5),
            ..row(
                Op::SpectralNormForwardTrain,
                "spectral_norm_forward_train",
                rust_side::body_spectral_norm_forward_train,
            )
        },
        OpRow {
            rough_ns_per_element: (4.0, 0.0),
            ..row(Op::SpectralNormForwardEval, "spectral_norm_forward_eval", rust_side::body_spectral_norm_forward_eval)
        },
        OpRow {
            power_iterations: PerEvaluation,
            rough_ns_per_element: (10.0, 2.5),
            ..row(
                Op::SpectralNormForwardBackward,
                "spectral_norm_forward_backward",
                rust_side::body_spectral_norm_forward_backward,
            )
        },
        OpRow {
            power_iterations: EachCount,
            rough_ns_per_element: (0.0, 2.5),
            ..row(Op::PowerIteration, "power_iteration", rust_side::body_power_iteration)
        },
        OpRow {
            power_iterations: PerEvaluation,
            rough_ns_per_element: (30.0, 0.0),
            ..row(Op::SpectralNormTrainStep, "spectral_norm_train_step", rust_side::body_spectral_norm_train_step)
        },
        OpRow {
            shapes: SeedLoop,
            runs_on: CpuF32,
            ..row(Op::SeedLoopStep, "seed_loop_step", rust_side::body_seed_loop_step)
        },
        OpRow {
            shapes: SeedLoop,
            runs_on: CpuF32,
            pytorch_op: Op::SeedLoopStep,
            ..row(Op::SeedLoopStepCpp, "seed_loop_step_cpp", rust_side::body_seed_loop_step_cpp)
        },
        model_row(Op::HifiganTrainStep, "hifigan_train_step", HIFIGAN_SHAPE, 20_000.0),
        model_row(Op::HifiganEvalCached, "hifigan_eval_cached", HIFIGAN_SHAPE, 5_000.0),
        model_row(Op::HifiganEvalFolded, "hifigan_eval_folded", HIFIGAN_SHAPE, 5_000.0),
        model_row(Op::SnDiscriminatorTrainStep, "sn_discriminator_train_step", SN_DISCRIMINATOR_SHAPE, 800.0),
        model_row(Op::SnDiscriminatorEvalCached, "sn_discriminator_eval_cached", SN_DISCRIMINATOR_SHAPE, 150.0),
        model_row(Op::SnDiscriminatorEvalFolded, "sn_discriminator_eval_folded", SN_DISCRIMINATOR_SHAPE, 150.0),
    ]
};

// Row `i` of the table is the op with discriminant `i` (what `Op::row` relies on).
const _: () = {
    let mut i = 0;
    while i < OPS.len() {
        assert!(OPS[i].op as usize == i, "OPS is not in the order of Op's variants");
        i += 1;
    }
};

impl Op {
    /// Every op, in run order.
    pub(crate) fn all() -> impl Iterator<Item = Op> {
        OPS.iter().map(|row| row.op)
    }

    /// The op's row of [`OPS`].
    pub(crate) fn row(self) -> &'static OpRow {
        &OPS[self as usize]
    }

    /// The name in the CSV's `op` column and in the Python protocol.
    pub(crate) fn name(self) -> &'static str {
        self.row().name
    }

    /// Whether the op is one step of the seed document's loop (a fixed 3x2 f32 CPU case,
    /// outside the size sweeps).
    pub(crate) fn is_seed_loop(self) -> bool {
        self.row().shapes == OpShapes::SeedLoop
    }

    /// Whether the op times a whole model ([`model_rows`](super::model_rows)): its rows
    /// get the summary's own section, not the ratio tables.
    pub(crate) fn is_model(self) -> bool {
        matches!(self.row().shapes, OpShapes::Model(..))
    }

    /// Whether the op runs power iterations (its rows carry `n_power_iterations`).
    #[cfg(test)]
    pub(crate) fn has_power_iterations(self) -> bool {
        self.row().power_iterations != PowerIterations::None
    }

    /// Bytes the op must move at least, for the bandwidth columns: `copy`,
    /// `weight_norm_forward` and `weight_norm_forward_out` read one `rows x cols` tensor
    /// and write one (`2 · rows · cols · sizeof(dtype)`); `None` for the other ops.
    pub(crate) fn bytes_moved(self, rows: u64, cols: u64, dtype: DType) -> Option<u64> {
        self.row().moves_one_weight.then(|| 2 * rows * cols * dtype.size_bytes())
    }

    /// Whether the op has cases on `device` in `dtype` ([`OpRow::runs_on`]).
    pub(crate) fn runs_on(self, device: DeviceKind, dtype: DType) -> bool {
        match self.row().runs_on {
            RunsOn::Everywhere => true,
            RunsOn::CpuFusedKernelDtypes => {
                device == DeviceKind::Cpu && matches!(dtype, DType::F32 | DType::F64 | DType::Bf16)
            }
            RunsOn::CpuF32 => device == DeviceKind::Cpu && dtype == DType::F32,
            RunsOn::F32 => dtype == DType::F32,
        }
    }

    /// A rough single-thread CPU cost in nanoseconds per weight element and iteration,
    /// only for the progress bar's time estimate.
    pub(crate) fn rough_ns_per_element(self, n_power_iterations: u64) -> f64 {
        let (base, per_iteration) = self.row().rough_ns_per_element;
        base + per_iteration * n_power_iterations as f64
    }

    /// The known names, comma-separated, in run order (`--ops`'s help, error messages).
    pub(crate) fn names() -> String {
        Op::all().map(Op::name).collect::<Vec<_>>().join(", ")
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
        Op::all().find(|op| op.name() == text).ok_or_else(|| format!("unknown op '{text}' (known: {})", Op::names()))
    }
}

impl Serialize for Op {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for op in Op::all() {
            assert_eq!(op.name().parse::<Op>().unwrap(), op);
            assert_eq!(serde_json::to_string(&op).unwrap(), format!("\"{}\"", op.name()));
            assert_eq!(serde_json::from_str::<Op>(&format!("\"{}\"", op.name())).unwrap(), op);
        }
        assert!("weight_norm".parse::<Op>().unwrap_err().contains("known: copy"));
        assert!(serde_json::from_str::<Op>("\"nope\"").is_err());
    }

    #[test]
    fn weight_norm_forward_out_is_a_cpu_op_of_the_fused_dtypes() {
        assert!(Op::WeightNormForwardOut.runs_on(DeviceKind::Cpu, DType::Bf16));
        assert!(!Op::WeightNormForwardOut.runs_on(DeviceKind::Cpu, DType::F16));
        assert!(!Op::WeightNormForwardOut.runs_on(DeviceKind::Cuda, DType::F32));
        assert!(Op::WeightNormForward.runs_on(DeviceKind::Cuda, DType::F16));
        assert_eq!(
            Op::WeightNormForwardOut.bytes_moved(8, 8, DType::F64),
            Op::WeightNormForward.bytes_moved(8, 8, DType::F64)
        );
    }

    #[test]
    fn the_table_keeps_the_previous_costs_and_programs() {
        assert_eq!(Op::SpectralNormForwardTrain.rough_ns_per_element(10), 28.0);
        assert_eq!(Op::PowerIteration.rough_ns_per_element(2), 5.0);
        assert_eq!(Op::SeedLoopStepCpp.rough_ns_per_element(1), 0.0);
        let shared: Vec<(Op, Op)> = OPS.iter().filter(|r| r.pytorch_op != r.op).map(|r| (r.op, r.pytorch_op)).collect();
        assert_eq!(
            shared,
            [(Op::WeightNormForwardOut, Op::WeightNormForward), (Op::SeedLoopStepCpp, Op::SeedLoopStep)]
        );
    }
}
