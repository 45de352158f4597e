//! The sweep: the timing cases a [`ReportOptions`] makes, in run order
//! ([`ReportOptions::timing_cases`]). What each op gets (its shapes, its power-iteration
//! counts, the devices and dtypes it runs on) is its row of [`OPS`](super::ops::OPS).

use super::case::{Case, DType, DeviceKind, Shape};
use super::ops::{Op, OpShapes, PowerIterations};
use super::options::ReportOptions;

/// The seed document's weight, the one shape of the seed-loop ops.
const SEED_LOOP_SHAPE: Shape = Shape { rows: 3, cols: 2 };

impl ReportOptions {
    /// The timing cases in run order, for the devices in `available`: per device, op by
    /// op, the square sizes then the rectangular shapes, then the extra dtypes; the
    /// seed-loop ops (3x2, CPU, f32) last. An op gets no cases where it does not run
    /// ([`Op::runs_on`]: `weight_norm_forward_out` is CPU-only, without f16).
    pub(crate) fn timing_cases(&self, available: &[DeviceKind]) -> Vec<Case> {
        let mut devices: Vec<DeviceKind> = Vec::new();
        for device in self.devices.iter().copied().filter(|d| available.contains(d)) {
            if !devices.contains(&device) {
                devices.push(device);
            }
        }
        let mut cases = Vec::new();
        for &device in &devices {
            for &op in self.ops.iter().filter(|op| op.runs_on(device, DType::F32)) {
                cases.extend(self.f32_cases(op, device));
            }
            for &op in self.dtype_ops.iter().filter(|op| self.ops.contains(op) && !op.is_seed_loop()) {
                cases.extend(self.dtype_subset_cases(op, device));
            }
        }
        if devices.contains(&DeviceKind::Cpu) {
            for op in Op::all().filter(|op| op.is_seed_loop() && self.ops.contains(op)) {
                cases.push(Case::cpu_f32(op, SEED_LOOP_SHAPE));
            }
        }
        cases
    }

    /// `op`'s f32 cases on `device`: its square sizes, then `rect_shapes` if it is in
    /// `rect_ops`, each at each of its power-iteration counts (none for the seed-loop ops).
    fn f32_cases(&self, op: Op, device: DeviceKind) -> Vec<Case> {
        let counts: Vec<Option<u64>> = match op.row().power_iterations {
            PowerIterations::EachCount => self.power_iteration_counts.iter().map(|&k| Some(k)).collect(),
            PowerIterations::PerEvaluation => vec![Some(self.n_power_iterations)],
            PowerIterations::None => vec![None],
        };
        let mut shapes: Vec<Shape> = match op.row().shapes {
            OpShapes::SeedLoop => return Vec::new(),
            OpShapes::CopySizes => {
                self.copy_sizes.as_ref().unwrap_or(&self.sizes).iter().map(|&n| Shape::square(n)).collect()
            }
            OpShapes::Sweep => self.sizes.iter().map(|&n| Shape::square(n)).collect(),
            OpShapes::Model(rows, cols) => vec![Shape { rows, cols }],
        };
        if self.rect_ops.contains(&op) {
            shapes.extend(self.rect_shapes.iter().copied());
        }
        let case = |shape: Shape, k: Option<u64>| Case {
            op,
            rows: shape.rows,
            cols: shape.cols,
            dtype: DType::F32,
            device,
            n_power_iterations: k,
        };
        shapes.into_iter().flat_map(|shape| counts.iter().map(move |&k| case(shape, k))).collect()
    }

    /// `op`'s cases of the dtype subset on `device`: each `dtype_shapes` shape in each of
    /// `extra_dtypes` (but f32) where the op runs, at one power-iteration count.
    fn dtype_subset_cases(&self, op: Op, device: DeviceKind) -> Vec<Case> {
        let k = match op.row().power_iterations {
            PowerIterations::EachCount => self.power_iteration_counts.first().copied(),
            PowerIterations::PerEvaluation => Some(self.n_power_iterations),
            PowerIterations::None => None,
        };
        let mut cases = Vec::new();
        for &shape in &self.dtype_shapes {
            for &dtype in self.extra_dtypes.iter().filter(|&&d| d != DType::F32 && op.runs_on(device, d)) {
                cases.push(Case { op, rows: shape.rows, cols: shape.cols, dtype, device, n_power_iterations: k });
            }
        }
        cases
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sampling::Sampling;
    use std::path::PathBuf;

    #[test]
    fn the_default_sweep_has_every_op_at_the_summary_sizes() {
        let options = ReportOptions::default();
        options.validate().unwrap();
        let cases = options.timing_cases(&[DeviceKind::Cpu]);
        for op in Op::all().filter(|&op| !op.is_seed_loop() && !op.is_model() && op != Op::Copy) {
            for n in [64, 512, 2048, 4096] {
                assert!(
                    cases.iter().any(|c| c.op == op && c.rows == n && c.cols == n && c.dtype == DType::F32),
                    "{op} {n}"
                );
            }
        }
        assert!(cases.iter().any(|c| c.op == Op::Copy && c.rows == 4096));
        let last: Vec<Op> = cases[cases.len() - 2..].iter().map(|c| c.op).collect();
        assert_eq!(last, [Op::SeedLoopStep, Op::SeedLoopStepCpp]);
        assert!(cases.iter().all(|c| c.device == DeviceKind::Cpu));
        assert!(cases.iter().any(|c| c.dtype == DType::Bf16 && c.op == Op::WeightNormForward));
        let k: Vec<Option<u64>> = cases
            .iter()
            .filter(|c| c.op == Op::PowerIteration && c.rows == 64 && c.cols == 64)
            .map(|c| c.n_power_iterations)
            .collect();
        assert_eq!(k, [Some(1), Some(10)]);
        assert!(cases.iter().filter(|c| c.op == Op::WeightNormForward).all(|c| c.n_power_iterations.is_none()));
        // weight_norm_forward_out: every f32 shape weight_norm_forward has, and its f64 and bf16 rows (no f16).
        let shapes = |op: Op, dtype: DType| {
            cases.iter().filter(|c| c.op == op && c.dtype == dtype).map(Case::shape).collect::<Vec<_>>()
        };
        for dtype in [DType::F32, DType::F64, DType::Bf16] {
            assert_eq!(shapes(Op::WeightNormForwardOut, dtype), shapes(Op::WeightNormForward, dtype), "{dtype}");
            assert!(!shapes(Op::WeightNormForwardOut, dtype).is_empty(), "{dtype}");
        }
        assert!(shapes(Op::WeightNormForwardOut, DType::F16).is_empty());
        assert_eq!(
            cases.iter().position(|c| c.op == Op::WeightNormForwardOut),
            Some(cases.iter().rposition(|c| c.op == Op::WeightNormForward && c.dtype == DType::F32).unwrap() + 1)
        );
        // CUDA rows only when a CUDA device is available; not for the CPU-only ops.
        let with_cuda = options.timing_cases(&[DeviceKind::Cpu, DeviceKind::Cuda]);
        let cpu_only = cases.iter().filter(|c| c.op.is_seed_loop() || c.op == Op::WeightNormForwardOut).count();
        assert_eq!(with_cuda.iter().filter(|c| c.device == DeviceKind::Cuda).count(), cases.len() - cpu_only);
        assert!(with_cuda.iter().all(|c| c.device == DeviceKind::Cpu || c.op.runs_on(DeviceKind::Cuda, c.dtype)));
    }

    #[test]
    fn copy_runs_at_copy_sizes_and_rect_shapes_only_for_rect_ops() {
        let options = ReportOptions {
            ops: vec![Op::Copy, Op::WeightNormForward, Op::SeedLoopStep],
            sizes: vec![32],
            copy_sizes: Some(vec![16]),
            rect_shapes: vec![Shape { rows: 4, cols: 8 }],
            rect_ops: vec![Op::WeightNormForward, Op::SeedLoopStep],
            extra_dtypes: vec![],
            sampling: Sampling::fixed(1, 1),
            out: PathBuf::from("unused"),
            ..ReportOptions::default()
        };
        let labels: Vec<String> = options.timing_cases(&[DeviceKind::Cpu]).iter().map(Case::label).collect();
        assert_eq!(
            labels,
            [
                "copy 16x16 f32 cpu",
                "weight_norm_forward 32x32 f32 cpu",
                "weight_norm_forward 4x8 f32 cpu",
                "seed_loop_step 3x2 f32 cpu"
            ]
        );
    }
}
