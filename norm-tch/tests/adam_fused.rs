//! The tch backend's one-call Adam update (`TchBackend::adam_update`, ATen calls made from
//! C++) must be bit-identical to norm-core's composition of the same ops
//! (`single_tensor_update`), for every option, over several steps.

use norm_core::optim::single_tensor_update;
use norm_core::AutodiffBackend;
use norm_tch::TchBackend;
use tch::{Device, Kind, Tensor};

fn bits(t: &Tensor) -> Vec<u32> {
    Vec::<f32>::try_from(t.flatten(0, -1)).unwrap().into_iter().map(f32::to_bits).collect()
}

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
