//! `WeightNorm` as a tch layer: PyTorch's names in the VarStore, registration values,
//! forward, `remove`, and errors for bad input.

use norm_core::optim::AdamConfig;
use norm_core::Error;
use norm_tch::layers::{linear, parametrizations, spectral_norm, weight_norm, LinearConfig, SpectralNormOptions};
use norm_tch::optim::Adam;
use norm_tch::var_store::path_at;
use norm_test_support::unseeded;
use norm_test_support::var_names as names;
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

fn layer(vs: &VarStore, prefix: &str, i: i64, o: i64) -> tch::nn::Linear {
    let _g = norm_tch::backend::lock_global_generator();
    tch::manual_seed(11);
    linear(&path_at(vs, prefix), i, o, LinearConfig::default()).unwrap()
}

#[test]
fn registers_weight_g_and_weight_v_under_pytorch_names() {
    let vs = VarStore::new(Device::Cpu);
    let lin = layer(&vs, "encoder.0", 4, 3);
    let w = lin.ws.detach().copy();
    assert_eq!(names(&vs), ["encoder.0.bias", "encoder.0.weight"]);
    let wn = weight_norm(&vs, lin, Some(0)).unwrap();
    assert_eq!(names(&vs), ["encoder.0.bias", "encoder.0.weight_g", "encoder.0.weight_v"]);
    assert_eq!(vs.trainable_variables().len(), 3, "weight is no longer trainable; g and v are");
    assert_eq!(wn.weight_g().size(), [3, 1]);
    assert_eq!(wn.weight_v().size(), [3, 4]);
    // v = w exactly; g = per-row 2-norm.
    assert!(wn.weight_v().equal(&w));
    let row_norms = w.norm_scalaropt_dim(2, [1], true);
    assert!(wn.weight_g().allclose(&row_norms, 1e-6, 1e-7, false));
    let x = unseeded(|| Tensor::randn([5, 4], (Kind::Float, Device::Cpu)));
    let y = wn.forward(&x);
    assert_eq!(y.size(), [5, 3]);
    assert!(y.allclose(&x.linear(&w, wn.layer().bs.as_ref()), 1e-5, 1e-6, false));
}

#[test]
fn dim_none_is_the_whole_tensor_norm_not_the_last_axis() {
    let vs = VarStore::new(Device::Cpu);
    let lin = layer(&vs, "fc", 4, 3);
    let whole = lin.ws.detach().norm();
    let wn = weight_norm(&vs, lin, None).unwrap();
    assert_eq!(wn.dim().value(), -1);
    assert_eq!(wn.weight_g().size(), Vec::<i64>::new(), "g is 0-dim");
    assert!(wn.weight_g().equal(&whole));
}

#[test]
fn remove_folds_back_to_a_plain_weight() {
    let vs = VarStore::new(Device::Cpu);
    let lin = layer(&vs, "fc", 4, 3);
    let wn = weight_norm(&vs, lin, Some(0)).unwrap();
    tch::no_grad(|| {
        let _ = wn.weight_g().shallow_clone().fill_(2.0);
    });
    let folded = wn.weight_t(false).unwrap().detach();
    let lin = wn.remove(false).unwrap();
    assert_eq!(names(&vs), ["fc.bias", "fc.weight"]);
    assert!(lin.ws.equal(&folded));
    assert!(lin.ws.requires_grad());
    let rows = lin.ws.norm_scalaropt_dim(2, [1], false);
    assert!(rows.allclose(&Tensor::from_slice(&[2.0f32, 2.0, 2.0]), 1e-6, 1e-6, false));
}

#[test]
fn errors_name_the_problem() {
    let vs = VarStore::new(Device::Cpu);
    let lin = layer(&vs, "fc", 4, 3);
    match weight_norm(&vs, lin, Some(2)) {
        Err(Error::DimOutOfRange { dim: 2, rank: 2, .. }) => {}
        other => panic!("expected DimOutOfRange, got {other:?}"),
    }
    assert_eq!(names(&vs), ["fc.bias", "fc.weight"], "a failed registration leaves the store unchanged");

    // tch's own Linear over the same variable: the place is found from the weight itself.
    let lin = tch::nn::Linear { ws: vs.variables()["fc.weight"].shallow_clone(), bs: None };
    let wn = weight_norm(&vs, lin, Some(0)).unwrap();
    assert_eq!(wn.module_path().prefix(), "fc");
    // A second weight norm on that module (a layer over its `weight_v`): PyTorch's RuntimeError.
    let again = tch::nn::Linear { ws: wn.weight_v().shallow_clone(), bs: None };
    match weight_norm(&vs, again, Some(0)) {
        Err(Error::AlreadyRegistered { norm: "weight_norm", name }) => assert_eq!(name, "fc.weight"),
        other => panic!("expected AlreadyRegistered, got {other:?}"),
    }
    let names_now = names(&vs);

    // A layer whose weight is not a variable of the store.
    let other = tch::nn::Linear { ws: Tensor::zeros([3, 4], (Kind::Float, Device::Cpu)), bs: None };
    match weight_norm(&vs, other, Some(0)) {
        Err(Error::InvalidArgument { name: "layer", value, .. }) => {
            assert!(value.contains("not a variable"), "{value}")
        }
        other => panic!("expected InvalidArgument(layer), got {other:?}"),
    }
    assert_eq!(names(&vs), names_now, "failed registrations leave the store unchanged");

    // A layer whose weight is registered under another name than `weight`.
    drop(layer(&vs, "fc2", 4, 3));
    let names_now = names(&vs);
    let bias_as_weight = tch::nn::Linear { ws: vs.variables()["fc2.bias"].shallow_clone(), bs: None };
    match weight_norm(&vs, bias_as_weight, None) {
        Err(Error::InvalidArgument { name: "layer", value, .. }) => assert!(value.contains("`fc2.bias`"), "{value}"),
        other => panic!("expected InvalidArgument(layer), got {other:?}"),
    }
    assert_eq!(names(&vs), names_now, "failed registrations leave the store unchanged");

    // A second spectral norm, in either API, on a module that has one.
    // Registration draws u and v from the global generator: under the lock (`unseeded`, after
    // `layer`, which takes it itself; the lock is not re-entrant).
    let lin = layer(&vs, "sn", 4, 3);
    let sn = unseeded(|| spectral_norm(&vs, lin, SpectralNormOptions::default())).unwrap();
    let again = tch::nn::Linear { ws: sn.weight_orig().shallow_clone(), bs: None };
    match spectral_norm(&vs, again, SpectralNormOptions::default()) {
        Err(Error::AlreadyRegistered { norm: "spectral_norm", name }) => assert_eq!(name, "sn.weight"),
        other => panic!("expected AlreadyRegistered, got {other:?}"),
    }
    let lin = layer(&vs, "p", 4, 3);
    let p = unseeded(|| parametrizations::spectral_norm(&vs, lin, SpectralNormOptions::default())).unwrap();
    let again = tch::nn::Linear { ws: p.original().shallow_clone(), bs: None };
    match parametrizations::weight_norm(&vs, again, None) {
        Err(Error::AlreadyRegistered { norm: "weight_norm", name }) => assert_eq!(name, "p.weight"),
        other => panic!("expected AlreadyRegistered, got {other:?}"),
    }
    let message = Error::DimOutOfRange { dim: 2, rank: 2, expected: "x".into() }.to_string();
    assert!(message.contains("dim 2") && message.contains("rank 2"), "{message}");
}

#[test]
fn adam_zero_grad_sets_none_and_trains_g_and_v() {
    let vs = VarStore::new(Device::Cpu);
    let lin = layer(&vs, "fc", 2, 3);
    let wn = weight_norm(&vs, lin, Some(0)).unwrap();
    let mut adam = Adam::new(&vs, AdamConfig::with_lr(1e-2)).unwrap();
    let before = wn.weight_v().detach().copy();
    let x = Tensor::ones([4, 2], (Kind::Float, Device::Cpu));
    wn.forward(&x).sum(None).backward();
    assert!(wn.weight_v().grad().defined());
    adam.step().unwrap();
    assert!(!wn.weight_v().equal(&before), "v was updated in place");
    adam.zero_grad().unwrap();
    assert!(!wn.weight_v().grad().defined(), "zero_grad sets grads to None");
    assert!(!wn.weight_g().grad().defined());
    assert_eq!(adam.state(0).map(|s| s.step), Some(1.0));
    match Adam::new(&vs, AdamConfig::with_lr(-1.0)) {
        Err(Error::InvalidArgument { name: "lr", value, .. }) => assert_eq!(value, "-1"),
        other => panic!("expected InvalidArgument lr, got {other:?}"),
    }
}

#[test]
fn taken_names_are_refused_before_anything_changes() {
    let vs = VarStore::new(Device::Cpu);
    // Registration: a stray buffer where the parametrization's `_u` goes. Refused before the
    // registration draws u and v: the generator is where it was, the store unchanged.
    let lin = layer(&vs, "p", 4, 3);
    drop((vs.root() / "p" / "parametrizations" / "weight" / "0").zeros_no_train("_u", &[3]));
    let before = names(&vs);
    let next = norm_test_support::seeded(5, || {
        match parametrizations::spectral_norm(&vs, lin, SpectralNormOptions::default()) {
            Err(Error::InvalidArgument { name: "name", value, .. }) => {
                assert_eq!(value, "p.parametrizations.weight.0._u")
            }
            other => panic!("expected the taken name, got {other:?}"),
        }
        Tensor::randn([4], (Kind::Float, Device::Cpu))
    });
    let first = norm_test_support::seeded(5, || Tensor::randn([4], (Kind::Float, Device::Cpu)));
    assert!(next.equal(&first), "nothing was drawn");
    assert_eq!(names(&vs), before);

    // remove_weight_norm with a stray `fc.weight`: refused, g and v still registered.
    let wn = weight_norm(&vs, layer(&vs, "fc", 4, 3), Some(0)).unwrap();
    drop((vs.root() / "fc").zeros("weight", &[3, 4]));
    let before = names(&vs);
    match wn.remove(false) {
        Err(Error::InvalidArgument { name: "name", value, .. }) => assert_eq!(value, "fc.weight"),
        other => panic!("expected the taken name, got {other:?}"),
    }
    assert_eq!(names(&vs), before);
}

#[test]
fn a_scalar_out_of_the_dtypes_range_is_an_error_not_a_panic() {
    // PyTorch raises RuntimeError ("value cannot be converted to type float without
    // overflow") for eps = 1e39 on a float32 weight; tch's own scalar wrappers panic there.
    let vs = VarStore::new(Device::Cpu);
    let options = SpectralNormOptions { eps: 1e39, ..Default::default() };
    let before = names(&vs);
    // The registrations draw u and v before ATen refuses eps: under the lock (`unseeded`,
    // after `layer`, which takes it itself).
    let lin = layer(&vs, "a", 2, 3);
    match unseeded(|| spectral_norm(&vs, lin, options)) {
        Err(Error::Backend { message, .. }) => assert!(message.contains("overflow"), "{message}"),
        other => panic!("expected ATen's error, got {other:?}"),
    }
    let lin = layer(&vs, "b", 2, 3);
    match unseeded(|| parametrizations::spectral_norm(&vs, lin, options)) {
        Err(Error::Backend { message, .. }) => assert!(message.contains("overflow"), "{message}"),
        other => panic!("expected ATen's error, got {other:?}"),
    }
    let mut after = names(&vs);
    after.retain(|n| !n.starts_with("a.") && !n.starts_with("b."));
    assert_eq!(after, before);
    assert!(vs.variables().contains_key("a.weight"), "the failed registration left the layer as it was");
}
