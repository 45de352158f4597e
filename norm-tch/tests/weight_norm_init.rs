//! `norm_tch::weight_norm_init::data_dependent_init` (Salimans & Kingma 2016, section 3)
//! against an independent NumPy computation (`tests/opnorm_reference.py`, mode `wn_init`:
//! `t = (v/‖v‖)·x` by explicit loops, biased mean and std) for Linear (hook API), Conv1d with
//! stride and padding (parametrization API) and ConvTranspose1d (dim 1, hook API), and by
//! re-running the batch: every output channel's pre-activation then has mean 0 and std
//! `init_scale`. Also the typed errors: no bias, a constant channel (naming the layer and the
//! channel), a wrong input shape, a dim that is not the output channels, a bad init_scale.

mod support;

use anyhow::{ensure, Result};
use norm_core::Error;
use norm_tch::layers::{
    conv1d, conv_transpose1d, linear, parametrizations, weight_norm, ConvOptions, ConvTransposeOptions, LinearConfig,
    WeightedLayer,
};
use norm_tch::weight_norm_init::{data_dependent_init, DataInitLayer, DataInitOptions, WeightNormReparametrization};
use norm_test_support::{run_python_json, seeded};
use serde::Deserialize;
use serde_json::{json, Value};
use support::python_or_skip;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn flat(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

#[derive(Deserialize)]
struct Reference {
    cases: Vec<GB>,
}
#[derive(Deserialize)]
struct GB {
    g: Vec<f64>,
    b: Vec<f64>,
}

fn max_rel(got: &[f64], expected: &[f64]) -> f64 {
    got.iter().zip(expected).map(|(a, b)| (a - b).abs() / b.abs().max(1e-3)).fold(0.0, f64::max)
}

/// Runs the init on `layer` with `xs`, re-runs the batch, checks the statistics; returns
/// (g, b) after the init and the reference request for NumPy.
fn init_and_rerun<L: DataInitLayer, R: WeightNormReparametrization>(
    layer: &norm_tch::layers::Normalized<L, R>,
    xs: &Tensor,
    g: &Tensor,
    bias: &Tensor,
    init_scale: f64,
    channel_axis: i64,
    case: Value,
) -> Result<(Vec<f64>, Vec<f64>, Value)> {
    let v_before = layer.entry(R::V).unwrap().copy();
    let stats = data_dependent_init(layer, xs, DataInitOptions { init_scale, eps: 0.0 })?;
    ensure!(stats.std.iter().all(|s| *s > 0.0) && stats.count > 0);
    ensure!(layer.entry(R::V).unwrap().equal(&v_before), "v changed");
    let ys = tch::no_grad(|| layer.layer().forward_with_weight(xs, &layer.weight_t(false).unwrap()))?;
    let ys = ys.to_kind(Kind::Double).movedim(&[channel_axis][..], &[0][..]);
    let channels = ys.size()[0];
    let ys = ys.reshape([channels, -1]);
    let (std, mean) = ys.std_mean_correction(&[1i64][..], 0, false);
    let worst_mean = mean.abs().max().double_value(&[]);
    let worst_std = (std / init_scale - 1.0).abs().max().double_value(&[]);
    ensure!(worst_mean <= 1e-5 * init_scale, "re-run mean {worst_mean}");
    ensure!(worst_std <= 1e-5, "re-run std relative error {worst_std}");
    let mut case = case;
    case["v"] = json!(flat(&v_before));
    case["v_shape"] = json!(v_before.size());
    case["x"] = json!(flat(xs));
    case["x_shape"] = json!(xs.size());
    case["init_scale"] = json!(init_scale);
    case["eps"] = json!(0.0);
    Ok((flat(g), flat(bias), case))
}

#[test]
fn init_matches_numpy_and_the_rerun_batch_has_the_asked_statistics() -> Result<()> {
    let vs = VarStore::new(Device::Cpu);
    let mut got = Vec::new();
    let mut cases = Vec::new();
    seeded(7, || -> Result<()> {
        // Linear, hook API, over a [batch, seq, in] input.
        let l = weight_norm(&vs, linear(&(vs.root() / "fc"), 5, 4, LinearConfig::default())?, Some(0))?;
        let xs = Tensor::randn([6, 3, 5], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let (g, b, case) =
            init_and_rerun(&l, &xs, l.weight_g(), l.layer().bs.as_ref().unwrap(), 0.1, 2, json!({"kind": "linear"}))?;
        got.push((g, b));
        cases.push(case);
        // Conv1d stride 2 padding 1, parametrization API.
        let opts = ConvOptions { stride: [2], padding: [1], ..Default::default() };
        let c = parametrizations::weight_norm(&vs, conv1d(&(vs.root() / "conv"), 3, 4, [3], opts)?, Some(0))?;
        let xs = Tensor::randn([4, 3, 11], (Kind::Float, Device::Cpu)) - 0.5;
        let (g, b, case) = init_and_rerun(
            &c,
            &xs,
            c.original0(),
            c.layer().bias.as_ref().unwrap(),
            1.0,
            1,
            json!({"kind": "conv1d", "stride": 2, "padding": 1}),
        )?;
        got.push((g, b));
        cases.push(case);
        // ConvTranspose1d stride 2 padding 1, hook API with dim 1 (its output channels).
        let opts = ConvTransposeOptions { stride: [2], padding: [1], ..Default::default() };
        let t = weight_norm(&vs, conv_transpose1d(&(vs.root() / "up"), 4, 3, [4], opts)?, Some(1))?;
        let xs = Tensor::randn([3, 4, 6], (Kind::Float, Device::Cpu));
        let (g, b, case) = init_and_rerun(
            &t,
            &xs,
            t.weight_g(),
            t.layer().bias.as_ref().unwrap(),
            2.0,
            1,
            json!({"kind": "conv_transpose1d", "stride": 2, "padding": 1}),
        )?;
        got.push((g, b));
        cases.push(case);
        Ok(())
    })?;
    let Some(python) = python_or_skip("check the data-dependent init against NumPy")? else { return Ok(()) };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/opnorm_reference.py");
    let reference: Reference =
        run_python_json(&python, &script, &[], Some(&json!({"mode": "wn_init", "cases": cases})))?;
    for ((kind, (g, b)), r) in ["linear", "conv1d", "conv_transpose1d"].iter().zip(&got).zip(&reference.cases) {
        let (eg, eb) = (max_rel(g, &r.g), max_rel(b, &r.b));
        eprintln!("{kind}: g rel {eg:.2e}, b rel {eb:.2e}");
        ensure!(eg <= 1e-5 && eb <= 1e-5, "{kind}: g {g:?} vs {:?}, b {b:?} vs {:?}", r.g, r.b);
    }
    Ok(())
}

fn invalid_named(r: norm_core::Result<impl std::fmt::Debug>, name: &str, contains: &[&str]) -> Result<()> {
    match r {
        Err(e @ Error::InvalidArgument { .. }) => {
            let Error::InvalidArgument { name: n, .. } = &e else { unreachable!() };
            let message = e.to_string();
            ensure!(*n == name, "expected `{name}`, got {message}");
            for c in contains {
                ensure!(message.contains(c), "`{message}` lacks `{c}`");
            }
            Ok(())
        }
        other => anyhow::bail!("expected InvalidArgument `{name}`, got {other:?}"),
    }
}

#[test]
fn errors_are_typed_and_change_nothing() -> Result<()> {
    let vs = VarStore::new(Device::Cpu);
    seeded(3, || -> Result<()> {
        let opts = ConvOptions::default();
        let c = weight_norm(&vs, conv1d(&(vs.root() / "enc" / "c"), 2, 3, [3], opts)?, Some(0))?;
        let (g0, b0) = (c.weight_g().copy(), c.layer().bias.as_ref().unwrap().copy());
        // A constant batch: every channel has std 0; the error names the layer and channel 0.
        let zeros = Tensor::zeros([2, 2, 8], (Kind::Float, Device::Cpu));
        invalid_named(data_dependent_init(&c, &zeros, DataInitOptions::default()), "xs", &["channel 0", "enc.c"])?;
        // Wrong shapes.
        let xs = Tensor::randn([2, 3, 8], (Kind::Float, Device::Cpu));
        invalid_named(data_dependent_init(&c, &xs, DataInitOptions::default()), "xs", &["in_channels = 2"])?;
        invalid_named(data_dependent_init(&c, &xs.flatten(0, 1), DataInitOptions::default()), "xs", &[])?;
        let xs = Tensor::randn([2, 2, 8], (Kind::Float, Device::Cpu));
        invalid_named(data_dependent_init(&c, &xs, DataInitOptions { init_scale: 0.0, eps: 0.0 }), "init_scale", &[])?;
        invalid_named(data_dependent_init(&c, &xs, DataInitOptions { init_scale: 1.0, eps: -1.0 }), "eps", &[])?;
        ensure!(c.weight_g().equal(&g0) && c.layer().bias.as_ref().unwrap().equal(&b0), "an error changed g or b");
        // eps > 0 makes the constant batch valid: g = 1/sqrt(eps), b = 0.
        let stats = data_dependent_init(&c, &zeros, DataInitOptions { init_scale: 1.0, eps: 0.25 })?;
        ensure!(stats.std == vec![0.5; 3]);
        ensure!(c.weight_g().flatten(0, -1).equal(&Tensor::from_slice(&[2.0f32; 3])));
        // No bias.
        let nb = ConvOptions { bias: false, ..Default::default() };
        let c = weight_norm(&vs, conv1d(&(vs.root() / "nb"), 2, 3, [3], nb)?, Some(0))?;
        invalid_named(data_dependent_init(&c, &xs, DataInitOptions::default()), "layer", &["nb", "without a bias"])?;
        // A ConvTranspose under PyTorch's default dim 0 (input channels): refused.
        let t = weight_norm(&vs, conv_transpose1d(&(vs.root() / "t"), 2, 3, [3], Default::default())?, Some(0))?;
        invalid_named(data_dependent_init(&t, &xs, DataInitOptions::default()), "dim", &["dim 1"])?;
        // Whole-tensor weight norm: refused.
        let l = weight_norm(&vs, linear(&(vs.root() / "l"), 2, 3, LinearConfig::default())?, None)?;
        invalid_named(data_dependent_init(&l, &xs.select(2, 0), DataInitOptions::default()), "dim", &[])?;
        let _ = l.layer().weight();
        Ok(())
    })
}
