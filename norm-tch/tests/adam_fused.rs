//! The tch backend's one-call Adam update (`TchBackend::adam_update`, ATen calls made from
//! C++) must be bit-identical to norm-core's composition of the same ops
//! (`single_tensor_update`), for every option, over several steps; so must its packed
//! update of small parameters (`adam_update_many`, `csrc/adam.cpp`).

use norm_core::optim::{single_tensor_update, AdamConfig, AdamUpdate};
use norm_core::AutodiffBackend;
use norm_tch::TchBackend;
use norm_test_support::{f32_bits as bits, f64_bits as to_f64};
use tch::{Device, Kind, Tensor};

#[test]
fn fused_adam_equals_composed_adam_bit_for_bit() {
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(5);
    for config in norm_core::conformance::adam_test_configs() {
        // 37 elements: both ATen's vectorized body and its scalar tail run.
        let start = Tensor::randn([37], (Kind::Float, Device::Cpu));
        let mut p = [start.copy(), start.copy()];
        let mut m = [start.zeros_like(), start.zeros_like()];
        let mut s = [start.zeros_like(), start.zeros_like()];
        let mut smax = [start.zeros_like(), start.zeros_like()];
        for step in 1..=6 {
            let grad = Tensor::randn([37], (Kind::Float, Device::Cpu));
            let [p0, p1] = &mut p;
            let [m0, m1] = &mut m;
            let [s0, s1] = &mut s;
            let [x0, x1] = &mut smax;
            let (x0, x1) = if config.amsgrad { (Some(x0), Some(x1)) } else { (None, None) };
            TchBackend::adam_update(&config, step as f32, p0, grad.copy(), m0, s0, x0).unwrap();
            single_tensor_update::<TchBackend>(&config, step as f32, p1, grad.copy(), m1, s1, x1).unwrap();
            assert_eq!(bits(&p[0]), bits(&p[1]), "{config:?} step {step}: param");
            assert_eq!(bits(&m[0]), bits(&m[1]), "{config:?} step {step}: exp_avg");
            assert_eq!(bits(&s[0]), bits(&s[1]), "{config:?} step {step}: exp_avg_sq");
        }
        assert_ne!(bits(&p[0]), bits(&start), "{config:?}: the parameter moved");
    }
}

/// One parameter set for the packed-update test: the shapes and dtype of its parameters,
/// and how many packed groups the tch backend must form from them.
struct PackCase {
    shapes: &'static [&'static [i64]],
    kind: Kind,
    groups: usize,
}

const PACK_CASES: [PackCase; 5] = [
    // The seed document's weight-normed Linear(2, 3): v, g, bias = 24 + 12 + 12 bytes.
    PackCase { shapes: &[&[3, 2], &[3, 1], &[3]], kind: Kind::Float, groups: 1 },
    // Nine 8-byte parameters: 7 fit under 64 bytes, then the other 2.
    PackCase { shapes: &[&[2], &[2], &[2], &[2], &[2], &[2], &[2], &[2], &[2]], kind: Kind::Float, groups: 2 },
    // f64, with a 0-d parameter and a large one (37 elements: never packed) in between.
    PackCase { shapes: &[&[3], &[], &[37], &[2, 2]], kind: Kind::Double, groups: 1 },
    // Exactly 64 bytes together: too big for one group, each alone is not a group.
    PackCase { shapes: &[&[8], &[8]], kind: Kind::Float, groups: 0 },
    // 15 floats (60 bytes) and one more: the 15-element tensor alone, then the 1 alone.
    PackCase { shapes: &[&[15], &[1]], kind: Kind::Float, groups: 0 },
];

/// Twin copies of a parameter set and its Adam state, `[packed, one at a time]`.
struct Twins {
    p: [Vec<Tensor>; 2],
    m: [Vec<Tensor>; 2],
    s: [Vec<Tensor>; 2],
    x: [Vec<Tensor>; 2],
}

impl Twins {
    fn new(starts: &[Tensor]) -> Twins {
        let copies = || starts.iter().map(Tensor::copy).collect::<Vec<_>>();
        let zeros = || starts.iter().map(Tensor::zeros_like).collect::<Vec<_>>();
        Twins { p: [copies(), copies()], m: [zeros(), zeros()], s: [zeros(), zeros()], x: [zeros(), zeros()] }
    }

    /// One Adam step with `grads`, parameter `i` at `steps[i]`: the first twin through
    /// `adam_update_packed` (its count of packed groups is returned), the second one
    /// parameter at a time with `single_tensor_update`.
    fn step(&mut self, config: &AdamConfig, steps: &[f32], grads: &[Tensor]) -> usize {
        let [p0, p1] = &mut self.p;
        let [m0, m1] = &mut self.m;
        let [s0, s1] = &mut self.s;
        let [x0, x1] = &mut self.x;
        let updates: Vec<AdamUpdate<'_, TchBackend>> = p0
            .iter_mut()
            .zip(m0.iter_mut())
            .zip(s0.iter_mut())
            .zip(x0.iter_mut())
            .enumerate()
            .map(|(i, (((param, exp_avg), exp_avg_sq), max_exp_avg_sq))| AdamUpdate {
                step: steps[i],
                param,
                grad: grads[i].copy(),
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq: Some(max_exp_avg_sq).filter(|_| config.amsgrad),
            })
            .collect();
        let groups = norm_tch::backend::adam_update_packed(config, updates).unwrap();
        for i in 0..grads.len() {
            let max1 = if config.amsgrad { Some(&mut x1[i]) } else { None };
            single_tensor_update::<TchBackend>(
                config,
                steps[i],
                &mut p1[i],
                grads[i].copy(),
                &mut m1[i],
                &mut s1[i],
                max1,
            )
            .unwrap();
        }
        groups
    }

    /// Both twins bit for bit equal: every parameter and its state (`at` names the step).
    fn assert_equal(&self, at: &str) {
        for i in 0..self.p[0].len() {
            assert_eq!(to_f64(&self.p[0][i]), to_f64(&self.p[1][i]), "{at} parameter {i}: param");
            assert_eq!(to_f64(&self.m[0][i]), to_f64(&self.m[1][i]), "{at} parameter {i}: exp_avg");
            assert_eq!(to_f64(&self.s[0][i]), to_f64(&self.s[1][i]), "{at} parameter {i}: exp_avg_sq");
            assert_eq!(to_f64(&self.x[0][i]), to_f64(&self.x[1][i]), "{at} parameter {i}: max_exp_avg_sq");
        }
    }
}

#[test]
fn packed_small_parameters_update_bit_for_bit_like_one_at_a_time() {
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(11);
    for config in norm_core::conformance::adam_test_configs() {
        for case in &PACK_CASES {
            let starts: Vec<Tensor> = case.shapes.iter().map(|s| Tensor::randn(*s, (case.kind, Device::Cpu))).collect();
            let mut twins = Twins::new(&starts);
            for step in 1..=6 {
                // Gradients over many magnitudes, so every rounding path is exercised.
                let grads: Vec<Tensor> = starts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| t.randn_like() * 10f64.powi((step + i as i32) % 7 - 3))
                    .collect();
                let groups = twins.step(&config, &vec![step as f32; grads.len()], &grads);
                assert_eq!(groups, case.groups, "{:?}", case.shapes);
                twins.assert_equal(&format!("{config:?} {:?} step {step}", case.shapes));
            }
            for (i, (moved, start)) in twins.p[0].iter().zip(&starts).enumerate() {
                assert_ne!(to_f64(moved), to_f64(start), "{config:?} {:?}: parameter {i} moved", case.shapes);
            }
        }
    }
}

#[test]
fn parameters_sharing_storage_are_not_packed() {
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(12);
    let config = AdamConfig::with_lr(1e-2);
    // Two views of one 4-float storage: packing them would read both before writing.
    let base = Tensor::randn([4], (Kind::Float, Device::Cpu));
    let reference = base.copy();
    let mut params = [base.narrow(0, 0, 2), base.narrow(0, 2, 2)];
    let mut state: Vec<Tensor> = (0..4).map(|_| Tensor::zeros([2], (Kind::Float, Device::Cpu))).collect();
    let (m, s) = state.split_at_mut(2);
    let grad = Tensor::randn([2], (Kind::Float, Device::Cpu));
    let [a, b] = &mut params;
    let [m0, m1] = m else { unreachable!() };
    let [s0, s1] = s else { unreachable!() };
    let updates = vec![
        AdamUpdate { step: 1.0, param: a, grad: grad.copy(), exp_avg: m0, exp_avg_sq: s0, max_exp_avg_sq: None },
        AdamUpdate { step: 1.0, param: b, grad: grad.copy(), exp_avg: m1, exp_avg_sq: s1, max_exp_avg_sq: None },
    ];
    assert_eq!(norm_tch::backend::adam_update_packed(&config, updates).unwrap(), 0);
    for i in 0..2 {
        let (mut p, mut m, mut s) = (
            reference.narrow(0, 2 * i, 2),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
            Tensor::zeros([2], (Kind::Float, Device::Cpu)),
        );
        single_tensor_update::<TchBackend>(&config, 1.0, &mut p, grad.copy(), &mut m, &mut s, None).unwrap();
    }
    assert_eq!(bits(&base), bits(&reference));
}

#[test]
fn interleaved_keys_are_packed_per_key_bit_for_bit_like_one_at_a_time() {
    // Parameters whose keys (dtype, step) alternate: f32 at steps s and s + 3, one f64 at
    // step s. Each key's parameters are packed together however they interleave (two f32
    // groups of three; the f64 parameter alone is no group), each with its own step.
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(23);
    let kinds = [Kind::Float, Kind::Float, Kind::Double, Kind::Float, Kind::Float, Kind::Float, Kind::Float];
    let later = [false, true, false, false, true, false, true];
    let config = AdamConfig { weight_decay: 0.1, ..AdamConfig::with_lr(0.01) };
    let starts: Vec<Tensor> = kinds.iter().map(|&k| Tensor::randn([2], (k, Device::Cpu))).collect();
    let mut twins = Twins::new(&starts);
    for s0 in 1..=4 {
        let steps: Vec<f32> = later.iter().map(|&l| (if l { s0 + 3 } else { s0 }) as f32).collect();
        let grads: Vec<Tensor> = starts.iter().map(Tensor::randn_like).collect();
        assert_eq!(twins.step(&config, &steps, &grads), 2, "step {s0}");
        twins.assert_equal(&format!("step {s0}"));
    }
}
