//! Every path of `torch.optim.Adam` / `AdamW` against live PyTorch (`tests/adam_paths.py`,
//! run by the repo venv's python), bit for bit, one intra-op thread on both sides:
//! - every combination PyTorch accepts on CPU (kind x foreach x fused x amsgrad x maximize x
//!   weight decay 0 / non-0) over 120 steps, with parameters of several shapes and dtypes
//!   (float32 and float64: two device/dtype groups), some parameters without a gradient on
//!   some steps (so step counts differ within a group);
//! - 40 random configurations (lr, betas incl. 0, eps, weight decay, every option, 1-5
//!   parameters of random shapes incl. 0-d, 1-element and > 32768 elements, mixed dtypes,
//!   100-130 steps) from a clock seed, printed (replay with `NORM_PARITY_SEED`);
//! - the validation errors: `fused` with `foreach` (RuntimeError at construction), `fused`
//!   on a complex parameter (RuntimeError at the first step), the ValueErrors of the
//!   hyper-parameters, on every path;
//! - and, without PyTorch, that the tch backend's one-call foreach (ATen `_foreach_*` ops)
//!   gives the bits of norm-core's composition of the same ops on CPU.
//!
//! Without `.venv/bin/python` the live tests print `SKIPPED` and pass, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

mod support;

use anyhow::{bail, ensure, Context, Result};
use norm_core::optim::{multi_tensor_update, AdamConfig, AdamGroup, AdamPath};
use norm_core::{AutodiffBackend, Error};
use norm_tch::optim::Adam;
use norm_tch::TchBackend;
use norm_test_support::{f32_bits, f64_bits, parity_test_seed, run_python_json};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use support::python_or_skip;
use tch::{Device, Kind, Tensor};

/// One optimizer run, as `adam_paths.py` reads it.
#[derive(Clone, Debug)]
struct Run {
    seed: u64,
    adamw: bool,
    /// The keyword arguments given (omitted ones take the constructor's defaults).
    options: Map<String, Value>,
    params: Vec<(Vec<i64>, Kind)>,
    steps: u64,
    skip: u64,
    checks: Vec<u64>,
}

impl Run {
    fn to_json(&self) -> Value {
        let params: Vec<Value> =
            self.params.iter().map(|(shape, kind)| json!({"shape": shape, "dtype": dtype_name(*kind)})).collect();
        json!({"seed": self.seed, "kind": if self.adamw { "adamw" } else { "adam" }, "options": self.options,
               "params": params, "steps": self.steps, "skip": self.skip, "checks": self.checks})
    }

    /// The norm configuration for the same constructor call.
    fn config(&self) -> Result<AdamConfig> {
        let mut c = if self.adamw { AdamConfig::adamw(1e-3) } else { AdamConfig::default() };
        for (key, v) in &self.options {
            let f = || v.as_f64().context("a number");
            let b = || v.as_bool().context("a bool");
            let ob = || if v.is_null() { Ok(None) } else { b().map(Some) };
            match key.as_str() {
                "lr" => c.lr = f()?,
                "eps" => c.eps = f()?,
                "weight_decay" => c.weight_decay = f()?,
                "betas" => c.betas = (v[0].as_f64().context("beta1")?, v[1].as_f64().context("beta2")?),
                "amsgrad" => c.amsgrad = b()?,
                "maximize" => c.maximize = b()?,
                "foreach" => c.foreach = ob()?,
                "fused" => c.fused = ob()?,
                other => bail!("unknown option {other}"),
            }
        }
        Ok(c)
    }
}

fn dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Float => "float32",
        Kind::Double => "float64",
        Kind::ComplexFloat => "complex64",
        other => panic!("no dtype name for {other:?}"),
    }
}

#[derive(Debug, Deserialize)]
struct PyError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
    stage: String,
}

#[derive(Debug, Deserialize)]
struct PyCheck {
    step: u64,
    tensors: BTreeMap<String, String>,
    steps: BTreeMap<String, f64>,
}

#[derive(Debug, Deserialize)]
struct PyResult {
    error: Option<PyError>,
    checks: Option<Vec<PyCheck>>,
}

/// The raw little-endian bytes of `t` as hex (as `adam_paths.py` writes them).
fn hex(t: &Tensor) -> String {
    let bytes: Vec<u8> = match t.kind() {
        Kind::Float => f32_bits(t).iter().flat_map(|b| b.to_le_bytes()).collect(),
        Kind::Double => f64_bits(t).iter().flat_map(|b| b.to_le_bytes()).collect(),
        other => panic!("no bits for {other:?}"),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Python exception PyTorch raises for what `e` reports.
fn python_type(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument { .. } => "ValueError",
        _ => "RuntimeError",
    }
}

/// One check: the step, the tensors' hex bytes by name, the state steps by parameter index.
type Check = (u64, BTreeMap<String, String>, BTreeMap<String, f64>);

/// What norm gives for `run`: its checks, or (stage, Python type, message) of its error.
enum Outcome {
    Checks(Vec<Check>),
    Failed(String, &'static str, String),
}

fn run_norm(run: &Run) -> Result<Outcome> {
    let config = run.config()?;
    let params: Vec<Tensor> = norm_test_support::seeded(run.seed as i64, || -> Result<Vec<Tensor>> {
        let params: Vec<Tensor> = run
            .params
            .iter()
            .map(|(shape, kind)| Tensor::randn(shape.as_slice(), (*kind, Device::Cpu)).set_requires_grad(true))
            .collect();
        Ok(params)
    })?;
    // The gradients are drawn inside the same seeded stream: draw them all now, in PyTorch's order.
    let grads: Vec<Vec<Tensor>> = norm_test_support::seeded(run.seed as i64, || {
        for (shape, kind) in &run.params {
            let _ = Tensor::randn(shape.as_slice(), (*kind, Device::Cpu));
        }
        (0..run.steps)
            .map(|_| {
                run.params.iter().map(|(shape, kind)| Tensor::randn(shape.as_slice(), (*kind, Device::Cpu))).collect()
            })
            .collect()
    });
    let handles: Vec<Tensor> = params.iter().map(Tensor::shallow_clone).collect();
    let mut opt = match Adam::from_params(handles, config) {
        Ok(opt) => opt,
        Err(e) => return Ok(Outcome::Failed("construction".into(), python_type(&e), e.to_string())),
    };
    let mut checks = Vec::new();
    for (step, step_grads) in (1..=run.steps).zip(grads) {
        for (i, (p, g)) in params.iter().zip(step_grads).enumerate() {
            let mut p = p.shallow_clone();
            if run.skip > 0 && (step + i as u64).is_multiple_of(run.skip) {
                TchBackend::clear_grad(&mut p)?;
            } else {
                TchBackend::set_grad(&p, g)?;
            }
        }
        if let Err(e) = opt.step() {
            return Ok(Outcome::Failed(format!("step {step}"), python_type(&e), e.to_string()));
        }
        if run.checks.contains(&step) {
            let (mut tensors, mut steps) = (BTreeMap::new(), BTreeMap::new());
            for (i, p) in params.iter().enumerate() {
                tensors.insert(format!("param.{i}"), hex(p));
                if let Some(state) = opt.state(i) {
                    tensors.insert(format!("exp_avg.{i}"), hex(&state.exp_avg));
                    tensors.insert(format!("exp_avg_sq.{i}"), hex(&state.exp_avg_sq));
                    if let Some(m) = &state.max_exp_avg_sq {
                        tensors.insert(format!("max_exp_avg_sq.{i}"), hex(m));
                    }
                    steps.insert(i.to_string(), state.step as f64);
                }
            }
            checks.push((step, tensors, steps));
        }
    }
    Ok(Outcome::Checks(checks))
}

/// Runs every run in PyTorch and in norm and compares them bit for bit; returns how many
/// ran (rather than failed as PyTorch failed).
fn compare_with_pytorch(python: &std::path::Path, runs: &[Run], label: &str) -> Result<usize> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/adam_paths.py");
    let input = Value::Array(runs.iter().map(Run::to_json).collect());
    let expected: Vec<PyResult> = run_python_json(python, &script, &[], Some(&input))?;
    ensure!(expected.len() == runs.len(), "{label}: {} results for {} runs", expected.len(), runs.len());
    let mut ran = 0;
    for (index, (run, want)) in runs.iter().zip(&expected).enumerate() {
        let at = format!(
            "{label} run {index} ({} {:?}, params {:?})",
            if run.adamw { "AdamW" } else { "Adam" },
            run.options,
            run.params
        );
        match (run_norm(run)?, want) {
            (Outcome::Failed(stage, kind, message), PyResult { error: Some(e), .. }) => {
                ensure!(
                    stage == e.stage && kind == e.kind,
                    "{at}: norm failed at {stage} with {kind} ({message}), PyTorch at {} with {} ({})",
                    e.stage,
                    e.kind,
                    e.message
                );
            }
            (Outcome::Checks(got), PyResult { checks: Some(checks), error: None }) => {
                ensure!(got.len() == checks.len(), "{at}: {} checks, PyTorch {}", got.len(), checks.len());
                for ((step, tensors, steps), c) in got.iter().zip(checks) {
                    ensure!(*step == c.step, "{at}: check at step {step}, PyTorch's at {}", c.step);
                    ensure!(
                        tensors.keys().eq(c.tensors.keys()),
                        "{at} step {step}: tensors {:?}, PyTorch {:?}",
                        tensors.keys(),
                        c.tensors.keys()
                    );
                    for (name, bits) in &c.tensors {
                        ensure!(&tensors[name] == bits, "{at} step {step}: {name} differs from PyTorch's bits");
                    }
                    ensure!(steps == &c.steps, "{at} step {step}: state steps {steps:?}, PyTorch {:?}", c.steps);
                }
                ran += 1;
            }
            (Outcome::Failed(stage, kind, message), _) => {
                bail!("{at}: norm failed at {stage} ({kind}: {message}), PyTorch ran")
            }
            (Outcome::Checks(_), PyResult { error: Some(e), .. }) => {
                bail!("{at}: norm ran, PyTorch raised {} at {}: {}", e.kind, e.stage, e.message)
            }
            (Outcome::Checks(_), _) => bail!("{at}: PyTorch gave neither checks nor an error"),
        }
    }
    Ok(ran)
}

fn options(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

const TRI: [Option<bool>; 3] = [None, Some(true), Some(false)];

#[test]
fn every_cpu_combination_matches_pytorch_over_120_steps() -> Result<()> {
    let Some(python) = python_or_skip("compare every Adam path against live PyTorch")? else { return Ok(()) };
    norm_test_support::one_thread();
    let params = vec![
        (vec![3, 2], Kind::Float),
        (vec![5], Kind::Double),
        (vec![], Kind::Float),
        (vec![37], Kind::Float),
        (vec![2, 3, 2], Kind::Double),
    ];
    let mut runs = Vec::new();
    for adamw in [false, true] {
        for foreach in TRI {
            for fused in TRI {
                for amsgrad in [false, true] {
                    for maximize in [false, true] {
                        for weight_decay in [0.0, 0.05] {
                            let mut o = options(&[
                                ("lr", json!(0.01)),
                                ("betas", json!([0.8, 0.99])),
                                ("weight_decay", json!(weight_decay)),
                                ("amsgrad", json!(amsgrad)),
                                ("maximize", json!(maximize)),
                            ]);
                            o.insert("foreach".into(), json!(foreach));
                            o.insert("fused".into(), json!(fused));
                            runs.push(Run {
                                seed: runs.len() as u64 + 100,
                                adamw,
                                options: o,
                                params: params.clone(),
                                steps: 120,
                                skip: 7,
                                checks: vec![1, 2, 60, 120],
                            });
                        }
                    }
                }
            }
        }
    }
    let ran = compare_with_pytorch(&python, &runs, "combinations")?;
    // foreach=True with fused=True is refused: 2 kinds x 8 option sets.
    ensure!(ran == runs.len() - 16, "{ran} of {} runs ran", runs.len());
    Ok(())
}

/// Python's `random.Random`-free splitmix64, enough for drawing configurations.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn random_run(rng: &mut SplitMix, index: usize) -> Run {
    let mut o = Map::new();
    o.insert("lr".into(), json!(10f64.powf(-4.0 + 3.0 * rng.unit())));
    let (u1, u2, u3) = (rng.unit(), rng.unit(), rng.unit());
    let beta1 = rng.pick(&[0.0, 0.5, 0.8, 0.9, u1 * 0.999]);
    let beta2 = rng.pick(&[0.9, 0.99, 0.999, 0.5 + u2 * 0.4999]);
    o.insert("betas".into(), json!([beta1, beta2]));
    o.insert("eps".into(), json!(rng.pick(&[0.0, 1e-8, 1e-6, 1e-3])));
    o.insert("weight_decay".into(), json!(rng.pick(&[0.0, 1e-2, 0.1, u3])));
    o.insert("amsgrad".into(), json!(rng.below(2) == 1));
    o.insert("maximize".into(), json!(rng.below(2) == 1));
    // Valid combinations only (the refused one is the validation test's).
    let (foreach, fused) = loop {
        let pair = (rng.pick(&TRI), rng.pick(&TRI));
        if pair != (Some(true), Some(true)) {
            break pair;
        }
    };
    o.insert("foreach".into(), json!(foreach));
    o.insert("fused".into(), json!(fused));
    let n = 1 + rng.below(5) as usize;
    let big = index.is_multiple_of(4); // every fourth run has a parameter past ATen's 32768-element grain
    let params = (0..n)
        .map(|i| {
            let kind = rng.pick(&[Kind::Float, Kind::Float, Kind::Double]);
            let shape = if big && i == 0 {
                [vec![33_000], vec![190, 180], vec![32_769]][rng.below(3) as usize].clone()
            } else {
                match rng.below(5) {
                    0 => vec![],
                    1 => vec![1],
                    2 => vec![1 + rng.below(17) as i64],
                    3 => vec![1 + rng.below(6) as i64, 1 + rng.below(6) as i64],
                    _ => vec![2, 1 + rng.below(4) as i64, 1 + rng.below(9) as i64],
                }
            };
            (shape, kind)
        })
        .collect();
    let steps = 100 + rng.below(31);
    Run {
        seed: rng.below(1 << 40),
        adamw: rng.below(2) == 1,
        options: o,
        params,
        steps,
        skip: rng.pick(&[0, 0, 3, 5]),
        checks: vec![1, steps / 2, steps],
    }
}

#[test]
fn random_configurations_match_pytorch() -> Result<()> {
    let Some(python) = python_or_skip("compare random Adam configurations against live PyTorch")? else {
        return Ok(());
    };
    norm_test_support::one_thread();
    let seed = parity_test_seed()?;
    eprintln!("adam paths: clock seed {seed} (replay with NORM_PARITY_SEED={seed})");
    let mut rng = SplitMix(seed);
    let runs: Vec<Run> = (0..40).map(|i| random_run(&mut rng, i)).collect();
    let ran = compare_with_pytorch(&python, &runs, &format!("seed {seed}"))?;
    ensure!(ran == runs.len(), "seed {seed}: {ran} of {} runs ran", runs.len());
    Ok(())
}

#[test]
fn validation_errors_match_pytorch() -> Result<()> {
    let Some(python) = python_or_skip("compare Adam's validation errors with live PyTorch")? else { return Ok(()) };
    norm_test_support::one_thread();
    let f32_params = vec![(vec![3], Kind::Float), (vec![2, 2], Kind::Float)];
    let complex = vec![(vec![3], Kind::Float), (vec![2], Kind::ComplexFloat)];
    let mut runs = Vec::new();
    for adamw in [false, true] {
        type Params = Vec<(Vec<i64>, Kind)>;
        let bad: Vec<(Vec<(&str, Value)>, &Params)> = vec![
            (vec![("foreach", json!(true)), ("fused", json!(true))], &f32_params),
            (vec![("foreach", json!(true)), ("fused", json!(true)), ("amsgrad", json!(true))], &f32_params),
            (vec![("fused", json!(true))], &complex),
            (vec![("fused", json!(true)), ("foreach", json!(false))], &complex),
            (vec![("lr", json!(-1.0)), ("fused", json!(true)), ("foreach", json!(true))], &f32_params),
            (vec![("eps", json!(-1e-8)), ("foreach", json!(true))], &f32_params),
            (vec![("betas", json!([1.0, 0.999])), ("fused", json!(true))], &f32_params),
            (vec![("betas", json!([0.9, -0.1])), ("foreach", json!(false))], &f32_params),
            (vec![("weight_decay", json!(-0.5)), ("fused", json!(false))], &f32_params),
        ];
        for (pairs, params) in bad {
            runs.push(Run {
                seed: 3,
                adamw,
                options: options(&pairs),
                params: params.clone(),
                steps: 2,
                skip: 0,
                checks: vec![],
            });
        }
    }
    let ran = compare_with_pytorch(&python, &runs, "validation")?;
    ensure!(ran == 0, "every validation run must fail ({ran} ran)");
    // The messages name what was wrong.
    let fused_foreach = AdamConfig { fused: Some(true), foreach: Some(true), ..Default::default() };
    let message = fused_foreach.validate().expect_err("refused").to_string();
    ensure!(message.contains("`fused` and `foreach` cannot be `True` together"), "{message}");
    let c = Tensor::zeros([2], (Kind::ComplexFloat, Device::Cpu)).set_requires_grad(true);
    TchBackend::set_grad(&c, c.zeros_like())?;
    let mut opt = Adam::from_params(vec![c], AdamConfig { fused: Some(true), ..Default::default() })?;
    let message = opt.step().expect_err("refused").to_string();
    ensure!(
        message.contains("torch.complex64") && message.contains("cpu") && message.contains("floating point"),
        "{message}"
    );
    ensure!(opt.state(0).is_none(), "no state is created for a refused parameter");
    Ok(())
}

#[test]
fn paths_are_chosen_per_device_as_pytorch_chooses_them() {
    let cpu = Tensor::zeros([2], (Kind::Float, Device::Cpu));
    let opt = |foreach, fused| {
        Adam::from_params(vec![cpu.shallow_clone()], AdamConfig { foreach, fused, ..Default::default() }).unwrap()
    };
    assert_eq!(opt(None, None).path(), AdamPath::SingleTensor, "CPU default");
    assert_eq!(opt(Some(true), None).path(), AdamPath::ForEach);
    assert_eq!(opt(Some(false), Some(true)).path(), AdamPath::Fused);
    assert_eq!(opt(None, Some(false)).path(), AdamPath::SingleTensor);
    assert_eq!(AdamPath::choose(&AdamConfig::default(), ["cuda", "cuda"]), AdamPath::ForEach, "CUDA default");
    assert_eq!(AdamPath::choose(&AdamConfig::default(), ["cuda", "cpu"]), AdamPath::SingleTensor, "mixed devices");
    assert_eq!(AdamPath::choose(&AdamConfig::default(), Vec::<&str>::new()), AdamPath::ForEach, "all([]) is True");
    assert_eq!(
        AdamPath::choose(&AdamConfig { foreach: Some(false), ..Default::default() }, ["cuda"]),
        AdamPath::SingleTensor
    );
}

#[test]
fn tch_foreach_equals_composed_foreach_bit_for_bit() {
    let _generator = norm_tch::backend::lock_global_generator();
    tch::manual_seed(21);
    let shapes: [&[i64]; 4] = [&[37], &[3, 2], &[], &[40_000]];
    for config in norm_core::conformance::adam_test_configs() {
        for kind in [Kind::Float, Kind::Double] {
            let starts: Vec<Tensor> = shapes.iter().map(|s| Tensor::randn(*s, (kind, Device::Cpu))).collect();
            let fresh = || starts.iter().map(Tensor::zeros_like).collect::<Vec<_>>();
            let mut sides: Vec<[Vec<Tensor>; 4]> =
                (0..2).map(|_| [starts.iter().map(Tensor::copy).collect(), fresh(), fresh(), fresh()]).collect();
            for step in 1..=5u32 {
                let grads: Vec<Tensor> = starts.iter().map(Tensor::randn_like).collect();
                // Different step counts within the group, as after skipped gradients.
                let steps: Vec<f32> = (0..starts.len()).map(|i| (step + i as u32) as f32).collect();
                for (side, tensors) in sides.iter_mut().enumerate() {
                    let share = |ts: &Vec<Tensor>| ts.iter().map(Tensor::shallow_clone).collect::<Vec<_>>();
                    let group = AdamGroup::<TchBackend> {
                        params: share(&tensors[0]),
                        grads: grads.iter().map(Tensor::copy).collect(),
                        exp_avgs: share(&tensors[1]),
                        exp_avg_sqs: share(&tensors[2]),
                        max_exp_avg_sqs: if config.amsgrad { share(&tensors[3]) } else { Vec::new() },
                        steps: steps.clone(),
                    };
                    if side == 0 {
                        TchBackend::adam_foreach_update(&config, group).unwrap();
                    } else {
                        multi_tensor_update::<TchBackend>(&config, group).unwrap();
                    }
                }
                for (which, name) in ["param", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"].iter().enumerate() {
                    for (i, (ours, composed)) in sides[0][which].iter().zip(&sides[1][which]).enumerate() {
                        assert_eq!(
                            f64_bits(&ours.to_kind(Kind::Double)),
                            f64_bits(&composed.to_kind(Kind::Double)),
                            "{config:?} {kind:?} step {step}: {name} {i}"
                        );
                    }
                }
            }
            assert_ne!(f64_bits(&sides[0][0][0].to_kind(Kind::Double)), f64_bits(&starts[0].to_kind(Kind::Double)));
        }
    }
}
