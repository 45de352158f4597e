//! Fold / unfold of normalized layers: the names in the VarStore, the bits of the folded
//! weight and forward, what unfold restores (g = ‖w‖, v = w; spectral norm's u, v as they
//! were), and that an Adam built before a fold keeps updating the tensors the model uses
//! after the fold and after the unfold.

use norm_core::optim::AdamConfig;
use norm_core::Error;
use norm_tch::layers::{
    conv1d, fold_all, linear, parametrizations, spectral_norm, unfold_all, weight_norm, Conv1d, ConvOptions, Foldable,
    LinearConfig, ParametrizedSpectralNorm, ParametrizedWeightNorm, SpectralNorm, SpectralNormOptions, WeightNorm,
    WeightedLayer,
};
use norm_tch::optim::Adam;
use norm_test_support::{detached_copy as copy, max_ulps, seeded, var_names as names};
use tch::nn::{Linear, Module, ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

fn trainable_names(vs: &VarStore) -> Vec<String> {
    let vars = vs.variables();
    let mut out: Vec<String> = vs
        .trainable_variables()
        .iter()
        .map(|t| vars.iter().find(|(_, v)| v.data_ptr() == t.data_ptr()).map(|(n, _)| n.clone()).unwrap_or_default())
        .collect();
    out.sort();
    out
}

fn same_storage(a: &Tensor, b: &Tensor) -> bool {
    a.data_ptr() == b.data_ptr() && a.size() == b.size()
}

fn mse(out: &Tensor, target: &Tensor) -> Tensor {
    (out - target).pow_tensor_scalar(2).mean(None::<Kind>)
}

fn step(opt: &mut Adam, loss: &Tensor) {
    opt.zero_grad().unwrap();
    loss.backward();
    opt.step().unwrap();
}

/// A weight-normed Linear(6 -> 4) at "fc" after a few Adam steps (so g != ‖v‖).
fn trained_weight_norm(vs: &VarStore, dim: Option<i64>) -> (WeightNorm<Linear>, Adam, Tensor, Tensor) {
    let (lin, x, target) = seeded(3, || {
        let lin = linear(&(vs.root() / "fc"), 6, 4, LinearConfig::default()).unwrap();
        (lin, Tensor::randn([8, 6], (Kind::Float, Device::Cpu)), Tensor::randn([8, 4], (Kind::Float, Device::Cpu)))
    });
    let wn = weight_norm(vs, lin, dim).unwrap();
    let mut opt = Adam::new(vs, AdamConfig::with_lr(1e-2)).unwrap();
    for _ in 0..3 {
        step(&mut opt, &mse(&wn.forward(&x), &target));
    }
    (wn, opt, x, target)
}

#[test]
fn weight_norm_fold_writes_the_normalized_weight_into_v_which_becomes_weight() {
    let vs = VarStore::new(Device::Cpu);
    let (mut wn, _opt, x, _) = trained_weight_norm(&vs, Some(0));
    let effective = tch::no_grad(|| wn.weight_t(false).unwrap());
    let y = tch::no_grad(|| wn.forward(&x));
    let (v, g) = (wn.weight_v().shallow_clone(), wn.weight_g().shallow_clone());
    let g_before = copy(&g);

    wn.fold().unwrap();
    assert!(wn.is_folded());
    assert_eq!(names(&vs), ["fc.bias", "fc.weight"]);
    assert_eq!(trainable_names(&vs), ["fc.bias", "fc.weight"]);
    let weight = &vs.variables()["fc.weight"];
    assert!(same_storage(weight, &v), "the folded weight is v's tensor");
    assert!(weight.equal(&effective), "fold writes g * v / ‖v‖ bit for bit");
    assert!(weight.requires_grad());
    assert!(same_storage(wn.layer().weight(), &v));
    assert!(g.equal(&g_before), "g is kept, untouched");
    // The folded layer is the plain layer with that weight.
    let plain = tch::no_grad(|| x.linear(&effective, wn.layer().bs.as_ref()));
    let folded_y = tch::no_grad(|| wn.forward(&x));
    assert!(folded_y.equal(&plain));
    assert!(folded_y.equal(&y), "same bits as the normalized forward");
    // Idempotent.
    wn.fold().unwrap();
    assert_eq!(names(&vs), ["fc.bias", "fc.weight"]);
}

#[test]
fn weight_norm_unfold_sets_v_to_w_and_g_to_its_norm() {
    for dim in [Some(0), Some(1), None] {
        let vs = VarStore::new(Device::Cpu);
        let (mut wn, _opt, x, _) = trained_weight_norm(&vs, dim);
        let effective = tch::no_grad(|| wn.weight_t(false).unwrap());
        let (v, g) = (wn.weight_v().shallow_clone(), wn.weight_g().shallow_clone());
        let g_before = copy(&g);
        wn.fold().unwrap();
        let w = copy(&vs.variables()["fc.weight"]);

        wn.unfold().unwrap();
        assert!(!wn.is_folded());
        assert_eq!(names(&vs), ["fc.bias", "fc.weight_g", "fc.weight_v"]);
        assert_eq!(trainable_names(&vs), ["fc.bias", "fc.weight_g", "fc.weight_v"]);
        let vars = vs.variables();
        assert!(
            same_storage(&vars["fc.weight_v"], &v) && same_storage(&vars["fc.weight_g"], &g),
            "the same tensors come back"
        );
        assert!(vars["fc.weight_v"].equal(&w), "v = w exactly");
        let norm = Tensor::norm_except_dim(&w, 2, dim.unwrap_or(-1));
        assert!(vars["fc.weight_g"].equal(&norm), "g = norm_except_dim(w, 2, dim) exactly");
        assert!(vars["fc.weight_g"].requires_grad());
        // g * w / ‖w‖ with g = ‖w‖: the effective weight is preserved up to rounding, and g
        // is the original g up to rounding (‖g v / ‖v‖‖ = g).
        let after = tch::no_grad(|| wn.weight_t(false).unwrap());
        assert!(max_ulps(&after, &effective) <= 4, "dim {dim:?}: {} ulps", max_ulps(&after, &effective));
        assert!(max_ulps(&g, &g_before) <= 4, "dim {dim:?}: g off by {} ulps", max_ulps(&g, &g_before));
        let y = tch::no_grad(|| wn.forward(&x));
        assert!(y.allclose(&x.linear(&effective, wn.layer().bs.as_ref()), 1e-5, 1e-6, false));
        // Idempotent.
        wn.unfold().unwrap();
        assert_eq!(names(&vs), ["fc.bias", "fc.weight_g", "fc.weight_v"]);
    }
}

#[test]
fn adam_built_before_fold_keeps_updating_the_tensors_the_model_uses() {
    let vs = VarStore::new(Device::Cpu);
    let (mut wn, mut opt, x, target) = trained_weight_norm(&vs, Some(0));
    // Adam's params are vs.trainable_variables() at creation: [bias, weight_g, weight_v].
    let (g, v) = (wn.weight_g().shallow_clone(), wn.weight_v().shallow_clone());
    let step_of = |opt: &Adam, i: usize| opt.state(i).map(|s| s.step).unwrap_or(0.0);
    assert_eq!((step_of(&opt, 1), step_of(&opt, 2)), (3.0, 3.0));
    let loss = |wn: &WeightNorm<Linear>| f64::try_from(tch::no_grad(|| mse(&wn.forward(&x), &target))).unwrap();

    let mut last = loss(&wn);
    wn.fold().unwrap();
    for i in 0..5 {
        let weight_before = copy(&vs.variables()["fc.weight"]);
        let g_before = copy(&g);
        let out = wn.forward(&x);
        step(&mut opt, &mse(&out, &target));
        let weight = &vs.variables()["fc.weight"];
        assert!(!weight.equal(&weight_before), "step {i}: the optimizer updated the folded weight");
        assert!(same_storage(weight, &v));
        assert!(g.equal(&g_before), "g is orphaned while folded: no gradient, no update");
        let now = loss(&wn);
        assert!(now < last, "folded step {i}: loss {now} not below {last}");
        last = now;
    }
    assert_eq!(
        (step_of(&opt, 1), step_of(&opt, 2)),
        (3.0, 8.0),
        "g's Adam state is frozen while folded, v's continues as the weight's"
    );

    wn.unfold().unwrap();
    for i in 0..5 {
        let (g_before, v_before) = (copy(&g), copy(&v));
        step(&mut opt, &mse(&wn.forward(&x), &target));
        assert!(!g.equal(&g_before) && !v.equal(&v_before), "unfolded step {i}: both g and v are updated");
        let now = loss(&wn);
        assert!(now < last, "unfolded step {i}: loss {now} not below {last}");
        last = now;
    }
    assert_eq!((step_of(&opt, 1), step_of(&opt, 2)), (8.0, 13.0));
}

#[test]
fn fold_and_unfold_clear_the_gradients_they_invalidate() {
    let vs = VarStore::new(Device::Cpu);
    let (mut wn, _opt, x, target) = trained_weight_norm(&vs, Some(0));
    mse(&wn.forward(&x), &target).backward();
    assert!(wn.weight_v().grad().defined() && wn.weight_g().grad().defined());
    wn.fold().unwrap();
    assert!(!wn.weight_v().grad().defined() && !wn.weight_g().grad().defined());
    mse(&wn.forward(&x), &target).backward();
    assert!(wn.weight_v().grad().defined(), "the folded weight gets the gradient");
    assert!(!wn.weight_g().grad().defined());
    wn.unfold().unwrap();
    assert!(!wn.weight_v().grad().defined());
}

#[test]
fn unfold_from_a_plain_weight_keeps_its_tensor_as_v() {
    let vs = VarStore::new(Device::Cpu);
    let (lin, x, target) = seeded(5, || {
        let lin = linear(&(vs.root() / "fc"), 5, 3, LinearConfig::default()).unwrap();
        (lin, Tensor::randn([6, 5], (Kind::Float, Device::Cpu)), Tensor::randn([6, 3], (Kind::Float, Device::Cpu)))
    });
    let w = lin.ws.shallow_clone();
    let mut opt = Adam::new(&vs, AdamConfig::with_lr(1e-2)).unwrap(); // [weight, bias]
    step(&mut opt, &mse(&lin.forward(&x), &target));

    let mut wn = WeightNorm::new_folded(&vs, lin, Some(0)).unwrap();
    assert!(wn.is_folded());
    assert_eq!(names(&vs), ["fc.bias", "fc.weight"], "a folded weight norm is the plain layer");
    let plain_y = tch::no_grad(|| x.linear(&w, wn.layer().bs.as_ref()));
    assert!(tch::no_grad(|| wn.forward(&x)).equal(&plain_y));
    let w_value = copy(&w);

    wn.unfold().unwrap();
    assert_eq!(names(&vs), ["fc.bias", "fc.weight_g", "fc.weight_v"]);
    assert!(same_storage(wn.weight_v(), &w) && wn.weight_v().equal(&w_value), "v = w, the same tensor");
    assert!(wn.weight_g().equal(&Tensor::norm_except_dim(&w_value, 2, 0)), "g = ‖w‖ per row");
    assert_eq!(wn.weight_g().size(), [3, 1]);
    assert!(max_ulps(&tch::no_grad(|| wn.weight_t(false).unwrap()), &w_value) <= 4);
    // The optimizer built on the plain layer still trains v (its param 0).
    let before = copy(&w);
    step(&mut opt, &mse(&wn.forward(&x), &target));
    assert!(!w.equal(&before));
    assert_eq!(opt.state(0).map(|s| s.step), Some(2.0));
}

#[test]
fn remove_of_a_folded_layer_returns_the_plain_layer() {
    let vs = VarStore::new(Device::Cpu);
    let (mut wn, _opt, _, _) = trained_weight_norm(&vs, Some(0));
    let v = wn.weight_v().shallow_clone();
    wn.fold().unwrap();
    let lin = wn.remove(false).unwrap();
    assert_eq!(names(&vs), ["fc.bias", "fc.weight"]);
    assert!(same_storage(&lin.ws, &v));
}

#[test]
fn fold_errors_leave_everything_unchanged() {
    let vs = VarStore::new(Device::Cpu);
    let (mut wn, _opt, _, _) = trained_weight_norm(&vs, Some(0));
    let taken = vs.root().sub("fc").zeros("weight", &[1]);
    let v_before = copy(wn.weight_v());
    match wn.fold() {
        Err(Error::InvalidArgument { name: "name", value, .. }) => assert_eq!(value, "fc.weight"),
        other => panic!("expected the taken name, got {other:?}"),
    }
    assert!(!wn.is_folded());
    assert!(wn.weight_v().equal(&v_before));
    assert_eq!(names(&vs), ["fc.bias", "fc.weight", "fc.weight_g", "fc.weight_v"]);
    drop(taken);

    // A store that no longer holds one of the layer's tensors: an error, nothing changed.
    let store = norm_tch::var_store::Store::of(&vs);
    let g = store.take("fc.weight_g").unwrap();
    match wn.fold() {
        Err(Error::MissingParameter { name, .. }) => assert_eq!(name, "fc.weight_g"),
        other => panic!("expected MissingParameter, got {other:?}"),
    }
    assert!(!wn.is_folded());
    assert_eq!(names(&vs), ["fc.bias", "fc.weight", "fc.weight_v"]);
    store.put("fc.weight_g", &g.tensor, g.group).unwrap();
    drop(store.take("fc.weight").unwrap()); // the stray `weight` registered above
    wn.fold().unwrap();
    assert_eq!(names(&vs), ["fc.bias", "fc.weight"]);
}

fn spectral_layer(vs: &VarStore) -> (SpectralNorm<Linear>, Tensor, Tensor) {
    seeded(7, || {
        let lin = linear(&(vs.root() / "sn"), 6, 4, LinearConfig::default()).unwrap();
        let sn = spectral_norm(vs, lin, SpectralNormOptions::default()).unwrap();
        (sn, Tensor::randn([8, 6], (Kind::Float, Device::Cpu)), Tensor::randn([8, 4], (Kind::Float, Device::Cpu)))
    })
}

#[test]
fn spectral_norm_fold_uses_the_stored_u_v_and_unfold_restores_them() {
    let vs = VarStore::new(Device::Cpu);
    let (mut sn, x, target) = spectral_layer(&vs);
    let mut opt = Adam::new(&vs, AdamConfig::with_lr(1e-2)).unwrap(); // [weight_orig, bias]
    for _ in 0..3 {
        step(&mut opt, &mse(&sn.forward_t(&x, true), &target));
    }
    let (orig, u, v) = (sn.weight_orig().shallow_clone(), sn.weight_u().shallow_clone(), sn.weight_v().shallow_clone());
    let (u_before, v_before) = (copy(&u), copy(&v));
    let effective = tch::no_grad(|| sn.weight_t(false).unwrap());
    let y_eval = tch::no_grad(|| sn.forward_t(&x, false));

    sn.fold().unwrap();
    assert_eq!(names(&vs), ["sn.bias", "sn.weight"]);
    let weight = vs.variables()["sn.weight"].shallow_clone();
    assert!(same_storage(&weight, &orig) && weight.equal(&effective), "weight_orig / σ with the stored u, v, in place");
    assert!(u.equal(&u_before) && v.equal(&v_before), "fold does not iterate");
    assert!(
        tch::no_grad(|| sn.forward_t(&x, true)).equal(&y_eval),
        "folded: the plain forward, no iteration in train mode"
    );
    assert!(u.equal(&u_before));
    // The optimizer keeps training the folded weight.
    let before = copy(&weight);
    step(&mut opt, &mse(&sn.forward_t(&x, true), &target));
    assert!(!weight.equal(&before));
    tch::no_grad(|| weight.shallow_clone().copy_(&before)); // undo, to compare with `effective`

    sn.unfold().unwrap();
    assert_eq!(names(&vs), ["sn.bias", "sn.weight_orig", "sn.weight_u", "sn.weight_v"]);
    assert_eq!(trainable_names(&vs), ["sn.bias", "sn.weight_orig"]);
    let vars = vs.variables();
    assert!(
        same_storage(&vars["sn.weight_orig"], &orig)
            && same_storage(&vars["sn.weight_u"], &u)
            && same_storage(&vars["sn.weight_v"], &v)
    );
    assert!(u.equal(&u_before) && v.equal(&v_before), "u, v come back unchanged");
    // σ(w / σ) = 1 up to rounding: the effective weight is preserved within ULPs.
    let after = tch::no_grad(|| sn.weight_t(false).unwrap());
    assert!(max_ulps(&after, &effective) <= 8, "{} ulps", max_ulps(&after, &effective));
}

#[test]
fn parametrized_weight_norm_and_spectral_norm_fold_and_unfold() {
    // weight norm: original1 (v) becomes weight; original0 (g) = ‖w‖ on unfold.
    let vs = VarStore::new(Device::Cpu);
    let (lin, x) = seeded(9, || {
        (
            linear(&(vs.root() / "p"), 6, 4, LinearConfig::default()).unwrap(),
            Tensor::randn([3, 6], (Kind::Float, Device::Cpu)),
        )
    });
    let mut p = parametrizations::weight_norm(&vs, lin, Some(0)).unwrap();
    drop(tch::no_grad(|| {
        vs.variables()["p.parametrizations.weight.original0"].shallow_clone().f_mul_scalar_(1.5).unwrap()
    }));
    let (g, v) = {
        let vars = vs.variables();
        (
            vars["p.parametrizations.weight.original0"].shallow_clone(),
            vars["p.parametrizations.weight.original1"].shallow_clone(),
        )
    };
    let effective = tch::no_grad(|| p.weight_t(false).unwrap());
    let y = tch::no_grad(|| p.forward_t(&x, false));
    p.fold().unwrap();
    assert_eq!(names(&vs), ["p.bias", "p.weight"]);
    assert!(same_storage(&vs.variables()["p.weight"], &v) && v.equal(&effective));
    assert!(tch::no_grad(|| p.forward_t(&x, true)).equal(&y));
    p.unfold().unwrap();
    assert_eq!(names(&vs), ["p.bias", "p.parametrizations.weight.original0", "p.parametrizations.weight.original1"]);
    assert!(same_storage(&vs.variables()["p.parametrizations.weight.original0"], &g));
    assert!(g.equal(&Tensor::norm_except_dim(&effective, 2, 0)) && v.equal(&effective));
    assert!(max_ulps(&tch::no_grad(|| p.weight_t(false).unwrap()), &effective) <= 4);

    // spectral norm: original becomes weight; _u, _v come back unchanged.
    let vs = VarStore::new(Device::Cpu);
    let (conv, x) = seeded(10, || {
        (
            conv1d(&(vs.root() / "c"), 3, 5, [3], ConvOptions::default()).unwrap(),
            Tensor::randn([2, 3, 9], (Kind::Float, Device::Cpu)),
        )
    });
    let mut p: ParametrizedSpectralNorm<Conv1d> =
        seeded(11, || parametrizations::spectral_norm(&vs, conv, SpectralNormOptions::default()).unwrap());
    let vars = vs.variables();
    let (orig, u, v) = (
        vars["c.parametrizations.weight.original"].shallow_clone(),
        vars["c.parametrizations.weight.0._u"].shallow_clone(),
        vars["c.parametrizations.weight.0._v"].shallow_clone(),
    );
    let (u_before, v_before) = (copy(&u), copy(&v));
    let effective = tch::no_grad(|| p.weight_t(false).unwrap());
    let y = tch::no_grad(|| p.forward_t(&x, false));
    p.fold().unwrap();
    assert_eq!(names(&vs), ["c.bias", "c.weight"]);
    assert!(same_storage(&vs.variables()["c.weight"], &orig) && orig.equal(&effective));
    assert!(tch::no_grad(|| p.forward_t(&x, true)).equal(&y));
    assert!(u.equal(&u_before) && v.equal(&v_before));
    p.unfold().unwrap();
    assert_eq!(
        names(&vs),
        [
            "c.bias",
            "c.parametrizations.weight.0._u",
            "c.parametrizations.weight.0._v",
            "c.parametrizations.weight.original"
        ]
    );
    assert_eq!(trainable_names(&vs), ["c.bias", "c.parametrizations.weight.original"]);
    assert!(same_storage(&vs.variables()["c.parametrizations.weight.0._u"], &u) && u.equal(&u_before));
    assert!(max_ulps(&tch::no_grad(|| p.weight_t(false).unwrap()), &effective) <= 8);
    // remove on a folded parametrized layer: the plain layer, whatever the mode.
    p.fold().unwrap();
    let conv = p.remove(true).unwrap();
    assert!(same_storage(&conv.weight, &orig) && orig.equal(&effective));
    assert_eq!(names(&vs), ["c.bias", "c.weight"]);
}

/// A model with one layer of each kind.
struct Model {
    a: WeightNorm<Linear>,
    b: SpectralNorm<Linear>,
    c: ParametrizedWeightNorm<Linear>,
}

impl Model {
    fn new(vs: &VarStore) -> Model {
        seeded(21, || {
            let a =
                weight_norm(vs, linear(&(vs.root() / "a"), 8, 16, LinearConfig::default()).unwrap(), Some(0)).unwrap();
            let b = SpectralNorm::new(
                vs,
                linear(&(vs.root() / "b"), 16, 16, LinearConfig::default()).unwrap(),
                SpectralNormOptions::default(),
            )
            .unwrap();
            let c = parametrizations::weight_norm(
                vs,
                linear(&(vs.root() / "c"), 16, 2, LinearConfig::default()).unwrap(),
                None,
            )
            .unwrap();
            Model { a, b, c }
        })
    }
    fn forward(&self, xs: &Tensor, train: bool) -> Tensor {
        let h = self.a.forward(xs).relu();
        let h = self.b.forward_t(&h, train).relu();
        self.c.forward_t(&h, train)
    }
    fn layers(&mut self) -> [&mut dyn Foldable; 3] {
        [&mut self.a, &mut self.b, &mut self.c]
    }
}

#[test]
fn a_whole_model_folds_and_unfolds_and_keeps_training() {
    let vs = VarStore::new(Device::Cpu);
    let mut model = Model::new(&vs);
    let (x, target) = seeded(22, || {
        (Tensor::randn([32, 8], (Kind::Float, Device::Cpu)), Tensor::randn([32, 2], (Kind::Float, Device::Cpu)))
    });
    let mut opt = Adam::new(&vs, AdamConfig::with_lr(3e-3)).unwrap();
    let loss = |m: &Model| f64::try_from(tch::no_grad(|| mse(&m.forward(&x, false), &target))).unwrap();
    for _ in 0..20 {
        step(&mut opt, &mse(&model.forward(&x, true), &target));
    }
    let normalized_names = names(&vs);
    let y_eval = tch::no_grad(|| model.forward(&x, false));

    fold_all(model.layers()).unwrap();
    assert!(model.layers().iter().all(|l| l.is_folded()));
    assert_eq!(
        names(&vs),
        ["a.bias", "a.weight", "b.bias", "b.weight", "c.bias", "c.weight"],
        "a plain model's state dict"
    );
    assert!(tch::no_grad(|| model.forward(&x, false)).equal(&y_eval), "folding changes no bits of the eval forward");
    let mut last = loss(&model);
    for i in 0..20 {
        step(&mut opt, &mse(&model.forward(&x, true), &target));
        let now = loss(&model);
        assert!(now < last, "folded step {i}: loss {now} not below {last}");
        last = now;
    }

    let plain: Vec<Tensor> = ["a.weight", "b.weight", "c.weight"].iter().map(|n| copy(&vs.variables()[*n])).collect();
    unfold_all(model.layers()).unwrap();
    assert!(model.layers().iter().all(|l| !l.is_folded()));
    assert_eq!(names(&vs), normalized_names);
    // Weight norm layers come back with the trained plain weight as their effective weight
    // (up to rounding); spectral norm's weight_orig is the trained plain weight itself, now
    // divided by its σ again.
    assert!(max_ulps(&tch::no_grad(|| model.a.weight_t(false).unwrap()), &plain[0]) <= 4);
    assert!(model.b.weight_orig().equal(&plain[1]));
    assert!(max_ulps(&tch::no_grad(|| model.c.weight_t(false).unwrap()), &plain[2]) <= 4);
    let mut last = loss(&model);
    let start = last;
    for i in 0..20 {
        step(&mut opt, &mse(&model.forward(&x, true), &target));
        let now = loss(&model);
        assert!(now.is_finite(), "unfolded step {i}");
        last = now;
    }
    assert!(last < start, "training after unfold: loss {last} not below {start}");
    // Idempotent at the model level.
    unfold_all(model.layers()).unwrap();
    assert_eq!(names(&vs), normalized_names);
}

#[test]
fn folding_twice_in_a_row_and_back_is_stable() {
    let vs = VarStore::new(Device::Cpu);
    let (mut wn, _opt, _, _) = trained_weight_norm(&vs, Some(0));
    let effective = tch::no_grad(|| wn.weight_t(false).unwrap());
    for round in 0..5 {
        wn.fold().unwrap();
        wn.unfold().unwrap();
        let now = tch::no_grad(|| wn.weight_t(false).unwrap());
        assert!(max_ulps(&now, &effective) <= 8, "round {round}: {} ulps", max_ulps(&now, &effective));
    }
}
