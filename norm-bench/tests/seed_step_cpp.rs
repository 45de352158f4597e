//! The libtorch C++ seed step (PyTorch's own ATen call sequence, Adam one parameter at a
//! time) and norm's `SeedModel` step (Adam packed into one update) give the same bits,
//! step for step, from the same parameters and generator state: the report's
//! `seed_loop_step_cpp` row times the same computation as `seed_loop_step`.

use norm_bench::seed_loop::{Example, SeedModel};
use norm_bench::seed_loop_cpp::SeedStepCpp;
use norm_core::random::PyRandom;
use norm_test_support::{f32_bits as bits, one_thread};
use tch::{Device, Kind, Tensor};

#[test]
fn the_cpp_step_equals_norms_step_bit_for_bit() {
    one_thread();
    let _generator = norm_tch::backend::lock_global_generator();
    for (seed, steps) in [(0u64, 1usize), (7, 40), (1234567, 300)] {
        tch::manual_seed(seed as i64);
        let mut model = SeedModel::new(Example::WeightNorm).unwrap();
        let bias = model.layer.layer().bs.as_ref().unwrap().shallow_clone();
        let mut cpp = SeedStepCpp::new(model.layer.weight_v(), model.layer.weight_g(), &bias, 2e-3).unwrap();
        let mut random = PyRandom::new(seed);
        let rs: Vec<f64> = (0..steps).map(|_| random.random()).collect();
        // The same generator state for both: norm's steps first, then the C++ ones.
        tch::manual_seed(seed as i64 + 1);
        for &r in &rs {
            let x = Tensor::randn([10, 2], (Kind::Float, Device::Cpu)) * r * 10.0;
            model.train_step(&x).unwrap();
        }
        tch::manual_seed(seed as i64 + 1);
        for &r in &rs {
            cpp.step(r).unwrap();
        }
        let [v, g, b] = cpp.params().unwrap();
        let at = format!("seed {seed}, {steps} steps");
        assert_eq!(bits(&v), bits(model.layer.weight_v()), "{at}: weight_v");
        assert_eq!(bits(&g), bits(model.layer.weight_g()), "{at}: weight_g");
        assert_eq!(bits(&b), bits(&bias), "{at}: bias");
        assert_ne!(
            bits(&b),
            bits(&SeedModel::new(Example::WeightNorm).unwrap().layer.layer().bs.as_ref().unwrap().shallow_clone()),
            "{at}: trained"
        );
    }
}

#[test]
fn a_libtorch_error_comes_back_as_an_error() {
    let v = Tensor::ones([3, 2], (Kind::Float, Device::Cpu));
    let g = Tensor::ones([3, 1], (Kind::Float, Device::Cpu));
    // A bias of 5 for 3 outputs: libtorch's linear throws inside the step.
    let mut cpp = SeedStepCpp::new(&v, &g, &Tensor::zeros([5], (Kind::Float, Device::Cpu)), 1e-3).unwrap();
    let message = format!("{:#}", cpp.step(0.5).unwrap_err());
    assert!(message.starts_with("libtorch C++ seed step: step: "), "{message}");
    assert!(message.len() > "libtorch C++ seed step: step: ".len() + 10, "{message}");
}
