//! Forward time of a normalized layer in eval mode against the plain layer with the same
//! (folded) weight, under `tch::no_grad`, on one CPU thread:
//!
//! - `plain`: a plain layer (tch `Linear` / norm-tch `Conv1d`) holding the folded weight;
//! - `folded`: a `WeightNorm` layer after `fold` (its forward is the plain forward);
//! - `cached`: the `WeightNorm` layer, eval forward with the weight cache (hits);
//! - `uncached`: the same layer recomputing `_weight_norm(v, g, 0)` on every call;
//! - `sn_cached` / `sn_uncached`: the same for `SpectralNorm` (hooks, eval mode: σ from the
//!   stored u, v).
//!
//! Layers: Linear 16→16 (batch 1: the fixed per-call cost of the cache shows), 512→512 and
//! 4096→4096 (batch 1 and 64), Conv1d 128→128 (k 3, length 256, batch 8).
//!
//! `cargo bench -p norm-tch --bench cached_inference` runs criterion (results in
//! `target/criterion/<layer>/<variant>/new/estimates.json`; `NORM_BENCH_QUICK=1` for a short
//! run). `NORM_BENCH_TABLE=1` instead times the variants interleaved (round robin, so load
//! drift on a shared machine hits them alike) and prints the markdown table of
//! docs/fold_and_cache.md: time per call of the best and the median round, ratios to `plain`.

use criterion::{BenchmarkId, Criterion};
use norm_tch::layers::{
    conv1d, linear, spectral_norm, weight_norm, Conv1d, ConvOptions, LinearConfig, SpectralNormOptions, WeightedLayer,
};
use norm_test_support::{detached_copy as copy, one_thread};
use std::time::{Duration, Instant};
use tch::nn::{Linear, Module, VarStore};
use tch::{Device, Kind, Tensor};

type Variant = (&'static str, Box<dyn Fn() -> Tensor>);

/// The variants for one layer shape; `make` builds the layer at prefix "m" of a store,
/// `plain_of` a plain layer from it with the given weight. Run under `no_grad`.
fn variants<L, P>(
    seed: i64,
    make: impl Fn(&VarStore) -> L,
    plain_of: impl Fn(&L, &Tensor) -> P,
    x: Tensor,
) -> Vec<Variant>
where
    L: WeightedLayer + std::fmt::Debug + Send + 'static,
    P: Module + 'static,
{
    let weight_norm = |vs: &VarStore| {
        tch::manual_seed(seed);
        let wn = weight_norm(vs, make(vs), Some(0)).unwrap();
        // g != ‖v‖, as after training.
        let _ = wn.weight_g().shallow_clone().f_mul_scalar_(1.25).unwrap();
        wn
    };
    let (vs, vs_folded, vs_sn) = (VarStore::new(Device::Cpu), VarStore::new(Device::Cpu), VarStore::new(Device::Cpu));
    let wn = weight_norm(&vs);
    let mut folded = weight_norm(&vs_folded);
    folded.fold().unwrap();
    let plain = plain_of(wn.layer(), &wn.weight_t(false).unwrap());
    let sn = spectral_norm(&vs_sn, make(&vs_sn), SpectralNormOptions::default()).unwrap();
    let _ = sn.f_forward_t(&x, true).unwrap(); // one power iteration, as after a training step
                                               // Same bits all the way.
    assert!(wn.forward(&x).equal(&plain.forward(&x)) && folded.forward(&x).equal(&plain.forward(&x)));
    let x = std::rc::Rc::new(x);
    let (wn, sn) = (std::rc::Rc::new(wn), std::rc::Rc::new(sn));
    let (x1, x2, x3, x4, x5, x6) = (x.clone(), x.clone(), x.clone(), x.clone(), x.clone(), x);
    let (wn1, wn2, sn1, sn2) = (wn.clone(), wn, sn.clone(), sn);
    vec![
        ("plain", Box::new(move || plain.forward(&x1))),
        ("folded", Box::new(move || folded.forward(&x2))),
        ("cached", Box::new(move || wn1.forward(&x3))),
        ("uncached", Box::new(move || wn2.layer().forward_with_weight(&x4, &wn2.weight_t(false).unwrap()).unwrap())),
        ("sn_cached", Box::new(move || sn1.f_forward_t(&x5, false).unwrap())),
        ("sn_uncached", Box::new(move || sn2.layer().forward_with_weight(&x6, &sn2.weight_t(false).unwrap()).unwrap())),
    ]
}

fn linear_case(n: i64, batch: i64) -> (String, Vec<Variant>) {
    tch::manual_seed(100 + n + batch);
    let x = Tensor::randn([batch, n], (Kind::Float, Device::Cpu));
    let make = move |vs: &VarStore| linear(&(vs.root() / "m"), n, n, LinearConfig::default()).unwrap();
    let plain_of = |l: &Linear, w: &Tensor| Linear { ws: copy(w), bs: l.bs.as_ref().map(copy) };
    (format!("linear_{n}x{n}_batch{batch}"), variants(n, make, plain_of, x))
}

fn conv_case() -> (String, Vec<Variant>) {
    let (cin, cout, k, len, batch) = (128, 128, 3, 256, 8);
    tch::manual_seed(7);
    let x = Tensor::randn([batch, cin, len], (Kind::Float, Device::Cpu));
    let options = ConvOptions { padding: [1], ..Default::default() };
    let make = move |vs: &VarStore| conv1d(&(vs.root() / "m"), cin, cout, [k], options).unwrap();
    let plain_of = move |l: &Conv1d, w: &Tensor| {
        let vs = VarStore::new(Device::Cpu);
        let mut p = conv1d(&(vs.root() / "p"), cin, cout, [k], options).unwrap();
        p.weight = copy(w);
        p.bias = l.bias.as_ref().map(copy);
        p
    };
    (format!("conv1d_{cin}x{cout}_k{k}_len{len}_batch{batch}"), variants(1, make, plain_of, x))
}

fn cases() -> Vec<(String, Vec<Variant>)> {
    vec![
        linear_case(16, 1),
        linear_case(512, 1),
        linear_case(512, 64),
        linear_case(4096, 1),
        linear_case(4096, 64),
        conv_case(),
    ]
}

fn criterion_benches(c: &mut Criterion) {
    for (name, variants) in cases() {
        let mut g = c.benchmark_group(&name);
        for (variant, f) in &variants {
            g.bench_function(BenchmarkId::from_parameter(variant), |b| b.iter(f));
        }
        g.finish();
    }
}

/// Seconds per call of each variant, timed round robin: `rounds` rounds, each timing every
/// variant over enough calls to last about `slice`; the best round (other processes on a
/// shared machine only ever add time) and the median round.
fn interleaved(variants: &[Variant], rounds: usize, slice: Duration) -> Vec<(f64, f64)> {
    let calls: Vec<u32> = variants
        .iter()
        .map(|(_, f)| {
            let start = Instant::now();
            drop(f());
            let once = start.elapsed().max(Duration::from_nanos(100));
            (slice.as_secs_f64() / once.as_secs_f64()).clamp(1.0, 1e6) as u32
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (i, (_, f)) in variants.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..calls[i] {
                drop(f());
            }
            samples[i].push(start.elapsed().as_secs_f64() / f64::from(calls[i]));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            (s[0], s[s.len() / 2])
        })
        .collect()
}

fn fmt_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

fn table() {
    let quick = std::env::var_os("NORM_BENCH_QUICK").is_some();
    let (rounds, slice) = if quick { (5, Duration::from_millis(20)) } else { (41, Duration::from_millis(50)) };
    println!(
        "threads: 1, cpu capability: {}, {rounds} interleaved rounds; best round (median round in parentheses)",
        norm_tch::backend::cpu_capability()
    );
    println!();
    println!("| layer | plain (a) | folded | cached (b) | uncached (c) | folded/a | b/a | c/a | SN cached/a | SN uncached/a |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, variants) in cases() {
        let t = interleaved(&variants, rounds, slice);
        let names: Vec<&str> = variants.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["plain", "folded", "cached", "uncached", "sn_cached", "sn_uncached"]);
        let time = |i: usize| format!("{} ({})", fmt_time(t[i].0), fmt_time(t[i].1));
        let ratio = |i: usize, digits: usize| format!("{:.digits$} ({:.digits$})", t[i].0 / t[0].0, t[i].1 / t[0].1);
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            time(0),
            time(1),
            time(2),
            time(3),
            ratio(1, 2),
            ratio(2, 2),
            ratio(3, 1),
            ratio(4, 2),
            ratio(5, 1)
        );
    }
}

fn main() {
    one_thread();
    let _no_grad = tch::no_grad_guard();
    if std::env::var_os("NORM_BENCH_TABLE").is_some() {
        table();
        return;
    }
    let quick = std::env::var_os("NORM_BENCH_QUICK").is_some();
    let (warm, measure) = if quick {
        (Duration::from_millis(200), Duration::from_millis(600))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    };
    let mut c = Criterion::default().sample_size(20).warm_up_time(warm).measurement_time(measure).configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}
