//! `weight_norm_out` runs ATen's fused `_weight_norm` kernel into a reused tensor: the
//! same bits as `torch._weight_norm` for every dtype and fused dim, on every call, and a
//! clear error (with nothing written) for every input it cannot take.

use norm_core::weight_norm::WeightNormDim;
use norm_core::Error;
use norm_tch::layers::{linear, weight_norm, LinearConfig};
use norm_tch::weight_norm_out;
// Every dtype here fits f64 exactly.
use norm_test_support::f64_bits as bits;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// `g` for weight norm along `dim` of `v`: its norms times a random scale.
fn g_for(v: &Tensor, dim: i64) -> Tensor {
    Tensor::f_norm_except_dim(v, 2, dim).unwrap()
        * (Tensor::rand_like(&Tensor::f_norm_except_dim(v, 2, dim).unwrap()) + 0.5)
}

#[test]
fn equals_weight_norm_bit_for_bit_on_every_fused_dim_and_dtype() {
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(21);
    let shapes: [&[i64]; 5] = [&[7], &[3, 2], &[64, 33], &[16, 5, 3], &[8, 4, 3, 3]];
    let mut checked = 0;
    for kind in [Kind::Float, Kind::Double, Kind::BFloat16] {
        for shape in shapes {
            let rank = shape.len() as i64;
            for dim in [0, rank - 1] {
                let v = Tensor::randn(shape, (Kind::Float, Device::Cpu)).to_kind(kind);
                let g = g_for(&v.to_kind(Kind::Float), dim).to_kind(kind);
                let expected = Tensor::f_internal_weight_norm(&v, &g, dim).unwrap();
                let mut out = v.empty_like();
                for call in 0..2 {
                    weight_norm_out(&v, &g, WeightNormDim::new(Some(dim)), &mut out).unwrap();
                    assert_eq!(bits(&out), bits(&expected), "{kind:?} {shape:?} dim {dim} call {call}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 5 * 2);
}

#[test]
fn a_non_contiguous_v_and_a_tracked_v_under_no_grad_give_the_same_bits() {
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(22);
    // v transposed (non-contiguous) and requiring grad; g requiring grad.
    let v = Tensor::randn([12, 9], (Kind::Float, Device::Cpu)).tr().set_requires_grad(true);
    let g = g_for(&v.detach(), 0).set_requires_grad(true);
    let expected = tch::no_grad(|| Tensor::f_internal_weight_norm(&v, &g, 0).unwrap());
    let mut out = Tensor::zeros([9, 12], (Kind::Float, Device::Cpu));
    tch::no_grad(|| weight_norm_out(&v, &g, WeightNormDim::new(Some(0)), &mut out)).unwrap();
    assert_eq!(bits(&out), bits(&expected));
}

#[test]
fn the_layer_writes_its_weight_into_out() {
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(23);
    let vs = VarStore::new(Device::Cpu);
    let mut wn =
        weight_norm(&vs, linear(&(vs.root() / "fc"), 33, 17, LinearConfig::default()).unwrap(), Some(0)).unwrap();
    let mut out = Tensor::zeros([17, 33], (Kind::Float, Device::Cpu));
    tch::no_grad(|| wn.weight_out(&mut out)).unwrap();
    assert_eq!(bits(&out), bits(&wn.weight_t(false).unwrap()));
    // With grad mode on, the parameters require grad: refused, out untouched.
    let before = out.copy();
    assert!(matches!(wn.weight_out(&mut out), Err(Error::Unsupported { .. })));
    assert_eq!(bits(&out), bits(&before));
    // Folded: the plain weight, copied.
    wn.fold().unwrap();
    let mut folded = Tensor::zeros([17, 33], (Kind::Float, Device::Cpu));
    tch::no_grad(|| wn.weight_out(&mut folded)).unwrap();
    assert_eq!(bits(&folded), bits(&before));
}

#[test]
fn bad_inputs_are_errors_that_name_them_and_write_nothing() {
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(24);
    let v = Tensor::randn([6, 4], (Kind::Float, Device::Cpu));
    let g0 = g_for(&v, 0);
    let dim0 = WeightNormDim::new(Some(0));
    let sentinel = || Tensor::full([6, 4], 7.0, (Kind::Float, Device::Cpu));
    let check = |result: norm_core::Result<()>, out: &Tensor, needle: &str| {
        let message = result.expect_err(needle).to_string();
        assert!(message.contains(needle), "{message:?} should mention {needle:?}");
        assert_eq!(bits(out), bits(&sentinel()), "nothing written ({needle})");
    };
    let mut out = sentinel();
    // dim: the whole-tensor -1, a negative spelling, a middle dim of a 3-d v, out of range.
    check(
        weight_norm_out(&v, &Tensor::f_norm_except_dim(&v, 2, -1).unwrap(), WeightNormDim::WHOLE, &mut out),
        &out,
        "`dim`",
    );
    check(weight_norm_out(&v, &g_for(&v, 1), WeightNormDim::new(Some(-2)), &mut out), &out, "`dim`");
    check(weight_norm_out(&v, &g0, WeightNormDim::new(Some(5)), &mut out), &out, "`dim`");
    let v3 = Tensor::randn([3, 4, 5], (Kind::Float, Device::Cpu));
    let mut out3 = Tensor::full([3, 4, 5], 7.0, (Kind::Float, Device::Cpu));
    let message = weight_norm_out(&v3, &g_for(&v3, 1), WeightNormDim::new(Some(1)), &mut out3).unwrap_err().to_string();
    assert!(message.contains("0 or 2"), "{message}");
    // g of the wrong shape; out of the wrong shape; out not contiguous.
    check(weight_norm_out(&v, &g_for(&v, 1), dim0, &mut out), &out, "g for dim 0");
    let mut small = Tensor::full([4, 6], 7.0, (Kind::Float, Device::Cpu));
    let message = weight_norm_out(&v, &g0, dim0, &mut small).unwrap_err().to_string();
    assert!(message.contains("out") && message.contains("[6, 4]"), "{message}");
    let mut strided = Tensor::full([4, 6], 7.0, (Kind::Float, Device::Cpu)).tr();
    let message = weight_norm_out(&v, &g0, dim0, &mut strided).unwrap_err().to_string();
    assert!(message.contains("contiguous"), "{message}");
    // dtypes: Half v; g or out of another dtype than v.
    let vh = v.to_kind(Kind::Half);
    let mut outh = vh.full_like(7.0);
    let message = weight_norm_out(&vh, &g0.to_kind(Kind::Half), dim0, &mut outh).unwrap_err().to_string();
    assert!(message.contains("Half") && message.contains("Float, Double or BFloat16"), "{message}");
    check(weight_norm_out(&v, &g0.to_kind(Kind::Double), dim0, &mut out), &out, "weight_norm_out's g");
    let mut outd = Tensor::full([6, 4], 7.0, (Kind::Double, Device::Cpu));
    let message = weight_norm_out(&v, &g0, dim0, &mut outd).unwrap_err().to_string();
    assert!(message.contains("weight_norm_out's out") && message.contains("Double"), "{message}");
    // out sharing memory with v.
    let mut alias = v.shallow_clone();
    let message = weight_norm_out(&v, &g0, dim0, &mut alias).unwrap_err().to_string();
    assert!(message.contains("weight_norm_out") && message.contains("memory"), "{message}");
    // Grad mode on while v requires grad: refused.
    let tracked = v.copy().set_requires_grad(true);
    check(weight_norm_out(&tracked, &g0, dim0, &mut out), &out, "no autograd graph");
    // CUDA, where there is one: refused (the kernel is ATen's CPU one).
    if let Some(cuda) = norm_tch::backend::cuda_device(0) {
        let vc = v.to_device(cuda);
        let mut oc = vc.full_like(7.0);
        let message = weight_norm_out(&vc, &g0.to_device(cuda), dim0, &mut oc).unwrap_err().to_string();
        assert!(message.contains("CPU"), "{message}");
    } else {
        eprintln!("SKIPPED: no CUDA device; the CUDA refusal of weight_norm_out is not checked");
    }
}
