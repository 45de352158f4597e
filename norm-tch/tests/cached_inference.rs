//! The eval-mode weight cache: a hit recomputes nothing and gives the uncached bits; an
//! Adam step, a `copy_` into a parameter, `set_data`, `VarStore::copy` and a training
//! forward each invalidate it; a forward that needs a graph bypasses it, so gradients stay
//! exact.

use norm_core::optim::AdamConfig;
use norm_tch::layers::{
    conv1d, linear, parametrizations, spectral_norm, weight_norm, CacheStats, ConvOptions, LinearConfig,
    ParametrizedSpectralNorm, ParametrizedWeightNorm, SpectralNorm, SpectralNormOptions, WeightNorm, WeightedLayer,
};
use norm_tch::optim::Adam;
use norm_test_support::{seeded, unseeded};
use tch::nn::{Linear, Module, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

fn randn(shape: &[i64]) -> Tensor {
    Tensor::randn(shape, (Kind::Float, Device::Cpu))
}

fn stats(hits: u64, computed: u64, bypassed: u64) -> CacheStats {
    CacheStats { hits, computed, bypassed }
}

fn wn_linear(vs: &VarStore) -> (WeightNorm<Linear>, Tensor) {
    weight_norm_sized(vs, 16, 8)
}

fn weight_norm_sized(vs: &VarStore, in_dim: i64, out_dim: i64) -> (WeightNorm<Linear>, Tensor) {
    seeded(1, || {
        let lin = linear(&(vs.root() / "fc"), in_dim, out_dim, LinearConfig::default()).unwrap();
        (weight_norm(vs, lin, Some(0)).unwrap(), randn(&[4, in_dim]))
    })
}

/// The uncached eval forward: the weight recomputed now.
fn uncached(wn: &WeightNorm<Linear>, x: &Tensor) -> Tensor {
    tch::no_grad(|| wn.layer().forward_with_weight(x, &wn.weight_t(false).unwrap()).unwrap())
}

#[test]
fn a_hit_recomputes_nothing_and_gives_the_uncached_bits() {
    let vs = VarStore::new(Device::Cpu);
    let (wn, x) = wn_linear(&vs);
    let first = tch::no_grad(|| wn.forward(&x));
    assert_eq!(wn.cache_stats(), stats(0, 1, 0));
    for i in 0..3 {
        let again = tch::no_grad(|| wn.forward(&x));
        assert!(again.equal(&first), "hit {i}");
    }
    assert_eq!(wn.cache_stats(), stats(3, 1, 0), "three hits, one computation");
    assert!(first.equal(&uncached(&wn, &x)), "cached bits = recomputed bits");
    assert!(!first.requires_grad());
    // f_forward_t(xs, false) is the same path.
    assert!(tch::no_grad(|| wn.f_forward_t(&x, false).unwrap()).equal(&first));
    assert_eq!(wn.cache_stats(), stats(4, 1, 0));
}

#[test]
fn an_adam_step_invalidates_the_cache() {
    // 16 -> 8: each parameter updated by its own ATen calls; 2 -> 3: the three parameters
    // (48 bytes) packed into one update whose copies back must bump the versions too.
    for (in_dim, out_dim) in [(16, 8), (2, 3)] {
        adam_step_invalidates_the_cache(in_dim, out_dim);
    }
}

fn adam_step_invalidates_the_cache(in_dim: i64, out_dim: i64) {
    let vs = VarStore::new(Device::Cpu);
    let (wn, x) = weight_norm_sized(&vs, in_dim, out_dim);
    let mut opt = Adam::new(&vs, AdamConfig::with_lr(1e-2)).unwrap();
    let before = tch::no_grad(|| wn.forward(&x));
    // The loss from the weight directly, not through the layer's forward, so the cached
    // weight stays in place and only the step's version bumps can invalidate it.
    let loss = wn
        .layer()
        .forward_with_weight(&x, &wn.weight_t(false).unwrap())
        .unwrap()
        .pow_tensor_scalar(2)
        .sum(None::<Kind>);
    opt.zero_grad().unwrap();
    loss.backward();
    opt.step().unwrap();
    assert_eq!(wn.cache_stats(), stats(0, 1, 0));
    let after = tch::no_grad(|| wn.forward(&x));
    assert_eq!(wn.cache_stats(), stats(0, 2, 0), "{in_dim}->{out_dim}: the step bumped the versions: recomputed");
    assert!(!after.equal(&before));
    assert!(after.equal(&uncached(&wn, &x)));
    let _ = tch::no_grad(|| wn.forward(&x));
    assert_eq!(wn.cache_stats(), stats(1, 2, 0));
    // A training forward (grad on, parameters requiring grad) bypasses the cache.
    let _ = wn.forward(&x);
    assert_eq!(wn.cache_stats(), stats(1, 2, 1));
}

#[test]
fn writes_into_a_parameter_invalidate_the_cache() {
    let vs = VarStore::new(Device::Cpu);
    let (wn, x) = wn_linear(&vs);
    let y0 = tch::no_grad(|| wn.forward(&x));
    // copy_ into g (what VarStore::load does).
    tch::no_grad(|| wn.weight_g().shallow_clone().copy_(&wn.weight_g().full_like(2.0)));
    let y = tch::no_grad(|| wn.forward(&x));
    assert_eq!(wn.cache_stats(), stats(0, 2, 0));
    assert!(y.equal(&uncached(&wn, &x)) && !y.equal(&y0));
    // An in-place op on v.
    drop(tch::no_grad(|| wn.weight_v().shallow_clone().f_mul_scalar_(0.5).unwrap()));
    let y2 = tch::no_grad(|| wn.forward(&x));
    assert_eq!(wn.cache_stats(), stats(0, 3, 0));
    assert!(y2.equal(&uncached(&wn, &x)));
    // set_data (VarStore::set_kind and friends): new storage, same version counter.
    let mut v = wn.weight_v().shallow_clone();
    // An unseeded draw, under the lock so it never lands inside another test's seeded run.
    unseeded(|| tch::no_grad(|| v.set_data(&randn(&[8, 16]))));
    let y3 = tch::no_grad(|| wn.forward(&x));
    assert_eq!(wn.cache_stats(), stats(0, 4, 0));
    assert!(y3.equal(&uncached(&wn, &x)) && !y3.equal(&y2));
    // VarStore::copy from another store (copy_ into every variable).
    let mut target = VarStore::new(Device::Cpu);
    let source = VarStore::new(Device::Cpu);
    let (wn2, _) = {
        let (lin, x2) =
            seeded(2, || (linear(&(source.root() / "fc"), 16, 8, LinearConfig::default()).unwrap(), randn(&[1, 16])));
        (weight_norm(&source, lin, Some(0)).unwrap(), x2)
    };
    let (wn_t, _) = wn_linear(&target);
    let y_t = tch::no_grad(|| wn_t.forward(&x));
    target.copy(&source).unwrap();
    let y_t2 = tch::no_grad(|| wn_t.forward(&x));
    assert_eq!(wn_t.cache_stats(), stats(0, 2, 0));
    assert!(!y_t2.equal(&y_t) && y_t2.equal(&tch::no_grad(|| wn2.forward(&x))));
}

#[test]
fn a_training_forward_recomputes_and_drops_the_cached_weight() {
    let vs = VarStore::new(Device::Cpu);
    let (sn, x) = seeded(3, || {
        let lin = linear(&(vs.root() / "sn"), 16, 8, LinearConfig::default()).unwrap();
        (spectral_norm(&vs, lin, SpectralNormOptions::default()).unwrap(), randn(&[4, 16]))
    });
    let eval = |sn: &SpectralNorm<Linear>| tch::no_grad(|| sn.forward_t(&x, false));
    let reference = |sn: &SpectralNorm<Linear>| {
        tch::no_grad(|| sn.layer().forward_with_weight(&x, &sn.weight_t(false).unwrap()).unwrap())
    };
    let y0 = eval(&sn);
    assert!(eval(&sn).equal(&y0));
    assert_eq!(sn.cache_stats(), stats(1, 1, 0));
    assert!(y0.equal(&reference(&sn)));
    // A training forward iterates (u, v change) even under no_grad, and is never cached.
    let u = sn.weight_u().detach().copy();
    let _ = tch::no_grad(|| sn.forward_t(&x, true));
    assert!(!sn.weight_u().equal(&u), "the training forward iterated");
    assert_eq!(sn.cache_stats(), stats(1, 1, 1));
    let y1 = eval(&sn);
    assert_eq!(sn.cache_stats(), stats(1, 2, 1));
    assert!(!y1.equal(&y0) && y1.equal(&reference(&sn)));
    assert!(eval(&sn).equal(&y1));
    assert_eq!(sn.cache_stats(), stats(2, 2, 1));
    // A WeightNorm training forward (no iteration there) also recomputes.
    let vs = VarStore::new(Device::Cpu);
    let (wn, x) = wn_linear(&vs);
    let _ = tch::no_grad(|| wn.forward(&x));
    let _ = tch::no_grad(|| wn.f_forward_t(&x, true).unwrap());
    let _ = tch::no_grad(|| wn.forward(&x));
    assert_eq!(wn.cache_stats(), stats(0, 2, 1));
}

#[test]
fn an_eval_forward_with_grad_on_bypasses_the_cache_and_gives_exact_gradients() {
    let vs = VarStore::new(Device::Cpu);
    let (wn, x) = wn_linear(&vs);
    let _ = tch::no_grad(|| wn.forward(&x)); // fill the cache
    let x = x.set_requires_grad(true);
    let y = wn.forward(&x);
    assert_eq!(wn.cache_stats(), stats(0, 1, 1));
    y.sum(None::<Kind>).backward();
    let (gg, gv, gx) = (wn.weight_g().grad().copy(), wn.weight_v().grad().copy(), x.grad().copy());
    // The same backward through the explicitly recomputed weight.
    for t in [wn.weight_g(), wn.weight_v(), &x] {
        let _ = t.grad().zero_();
    }
    wn.layer().forward_with_weight(&x, &wn.weight_t(false).unwrap()).unwrap().sum(None::<Kind>).backward();
    assert!(wn.weight_g().grad().equal(&gg) && wn.weight_v().grad().equal(&gv) && x.grad().equal(&gx));

    // Parameters not requiring grad (a frozen store): the cache is used and the input
    // still gets its exact gradient.
    let mut vs = vs;
    vs.freeze();
    let x2 = x.detach().set_requires_grad(true);
    let y_frozen = wn.forward(&x2);
    let y_frozen2 = wn.forward(&x2);
    assert_eq!(wn.cache_stats(), stats(1, 2, 1), "frozen parameters: cached even with grad on");
    assert!(y_frozen.equal(&y_frozen2) && y_frozen.equal(&y.detach()));
    y_frozen2.sum(None::<Kind>).backward();
    assert!(x2.grad().equal(&gx), "d(sum)/dx through the cached weight is exact");
}

#[test]
fn parametrizations_cache_in_eval_mode_too() {
    let vs = VarStore::new(Device::Cpu);
    let (p, x) = seeded(4, || {
        let conv = conv1d(&(vs.root() / "c"), 4, 6, [3], ConvOptions::default()).unwrap();
        (parametrizations::spectral_norm(&vs, conv, SpectralNormOptions::default()).unwrap(), randn(&[2, 4, 10]))
    });
    let reference = || tch::no_grad(|| p.layer().forward_with_weight(&x, &p.weight_t(false).unwrap()).unwrap());
    let y = tch::no_grad(|| p.forward_t(&x, false));
    let y2 = tch::no_grad(|| p.forward_t(&x, false));
    assert_eq!(p.cache_stats(), stats(1, 1, 0));
    assert!(y.equal(&y2) && y.equal(&reference()));
    let _ = tch::no_grad(|| p.forward_t(&x, true)); // iterates _u, _v
    let y3 = tch::no_grad(|| p.forward_t(&x, false));
    assert_eq!(p.cache_stats(), stats(1, 2, 1));
    assert!(y3.equal(&reference()));

    let vs = VarStore::new(Device::Cpu);
    let (p, x) = seeded(5, || {
        let lin = linear(&(vs.root() / "p"), 16, 8, LinearConfig::default()).unwrap();
        (parametrizations::weight_norm(&vs, lin, None).unwrap(), randn(&[4, 16]))
    });
    let y = tch::no_grad(|| p.forward_t(&x, false));
    assert!(tch::no_grad(|| p.forward_t(&x, false)).equal(&y));
    assert_eq!(p.cache_stats(), stats(1, 1, 0));
    assert!(y.equal(&tch::no_grad(|| p.layer().forward_with_weight(&x, &p.weight_t(false).unwrap()).unwrap())));
}

#[test]
fn folded_layers_do_not_use_the_cache() {
    let vs = VarStore::new(Device::Cpu);
    let (mut wn, x) = wn_linear(&vs);
    let y = tch::no_grad(|| wn.forward(&x));
    wn.fold().unwrap();
    let y_folded = tch::no_grad(|| wn.forward(&x));
    assert!(y_folded.equal(&y));
    assert_eq!(wn.cache_stats(), stats(0, 1, 0));
    wn.unfold().unwrap();
    let _ = tch::no_grad(|| wn.forward(&x));
    let _ = tch::no_grad(|| wn.forward(&x));
    assert_eq!(wn.cache_stats(), stats(1, 2, 0), "unfold starts a fresh cache");
}

#[test]
fn layers_stay_send() {
    // tch's Module requires Send (tch tensors are Send, not Sync; so are the layers).
    fn send<T: Send>() {}
    send::<WeightNorm<Linear>>();
    send::<SpectralNorm<Linear>>();
    send::<ParametrizedWeightNorm<Linear>>();
    send::<ParametrizedSpectralNorm<Linear>>();
    let vs = VarStore::new(Device::Cpu);
    let (wn, x) = wn_linear(&vs);
    let reference = uncached(&wn, &x);
    let (wn, y) = std::thread::spawn(move || {
        let y = tch::no_grad(|| wn.forward(&x));
        (wn, y)
    })
    .join()
    .unwrap();
    assert!(y.equal(&reference));
    assert_eq!(wn.cache_stats(), stats(0, 1, 0));
}

#[test]
fn clear_cache_forces_a_recomputation() {
    let vs = VarStore::new(Device::Cpu);
    let (wn, x) = wn_linear(&vs);
    let y = tch::no_grad(|| wn.forward(&x));
    wn.clear_cache();
    assert!(tch::no_grad(|| wn.forward(&x)).equal(&y));
    assert_eq!(wn.cache_stats(), stats(0, 2, 0));
}
