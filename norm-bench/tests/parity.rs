//! `norm-bench parity` end to end: the shipped spec against the committed PyTorch output,
//! and specs nobody has seen — random cases drawn from a clock seed — against live PyTorch.

use anyhow::{bail, ensure, Context, Result};
use norm_bench::golden::{Golden, GoldenStatus};
use norm_bench::parity::{compare, run, spec};
use norm_core::random::PyRandom;
use norm_test_support::{parity_test_seed, python_or_skip, repo_root, scratch_dir};
use serde_json::{json, Value};

fn assert_all_equal(rows: &[compare::Row]) -> Result<()> {
    let bad: Vec<&compare::Row> = rows.iter().filter(|r| !r.equal).collect();
    if !bad.is_empty() {
        let shown: Vec<compare::Row> = bad.iter().take(40).map(|r| (*r).clone()).collect();
        bail!("{} of {} comparisons differ from PyTorch:\n{}", bad.len(), rows.len(), compare::render(&shown, false));
    }
    Ok(())
}

#[test]
fn shipped_spec_matches_committed_pytorch_output() -> Result<()> {
    let golden = match Golden::open()? {
        GoldenStatus::Applies(g) => g,
        GoldenStatus::OtherMachine { made_on, here } => {
            eprintln!("SKIPPED: golden data was made on {made_on}, this machine has {here}; the live parity test covers this machine");
            return Ok(());
        }
    };
    let spec = spec::parse_spec(&std::fs::read_to_string(repo_root().join("data/parity_spec.json"))?)?;
    let expected: run::ParityOutput = golden.read("parity_output.json")?;
    let ours = run::run_spec(&spec, |_, _| {})?;
    let rows = compare::compare(&ours, &expected);
    ensure!(rows.len() > spec.cases.len(), "suspiciously few comparisons: {}", rows.len());
    let errors = expected.cases.iter().filter(|c| c.error.is_some()).count();
    ensure!(errors > 0 && errors < spec.cases.len(), "the shipped spec must have both error cases and running cases");
    assert_all_equal(&rows)
}

/// A random but valid case: any layer, either norm, either API, any dim form.
fn random_case(rng: &mut PyRandom, index: usize) -> Value {
    let pick = |rng: &mut PyRandom, n: u32| -> i64 { (rng.random() * n as f64) as i64 };
    let kinds = [
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "embedding",
    ];
    let kind = kinds[pick(rng, kinds.len() as u32) as usize];
    let batch = 1 + pick(rng, 3);
    let (layer, input_shape, rank) = match kind {
        "linear" => {
            let (i, o) = (1 + pick(rng, 6), 1 + pick(rng, 6));
            (
                json!({"kind": kind, "in_features": i, "out_features": o, "bias": pick(rng, 2) == 1}),
                json!([batch, i]),
                2,
            )
        }
        "embedding" => {
            let (n, d) = (2 + pick(rng, 8), 1 + pick(rng, 5));
            (json!({"kind": kind, "num_embeddings": n, "embedding_dim": d}), json!([batch, 1 + pick(rng, 4)]), 2)
        }
        _ => {
            let spatial =
                kind.trim_end_matches('d').chars().last().and_then(|c| c.to_digit(10)).expect("conv kinds end in <n>d")
                    as usize;
            let (c_in, c_out) = (1 + pick(rng, 3), 1 + pick(rng, 3));
            let kernel: Vec<i64> = (0..spatial).map(|_| 1 + pick(rng, 3)).collect();
            let stride: Vec<i64> = (0..spatial).map(|_| 1 + pick(rng, 2)).collect();
            let padding: Vec<i64> = kernel.iter().map(|&k| pick(rng, k as u32)).collect();
            let mut shape = vec![batch, c_in];
            shape.extend(kernel.iter().map(|&k| k + 1 + pick(rng, 3)));
            let layer = json!({"kind": kind, "in_channels": c_in, "out_channels": c_out, "kernel_size": kernel, "stride": stride, "padding": padding, "bias": pick(rng, 2) == 1});
            (layer, json!(shape), 2 + spatial as i64)
        }
    };
    let spectral = pick(rng, 2) == 1;
    let api = if pick(rng, 2) == 1 { "hooks" } else { "parametrizations" };
    let mut norm = json!({"kind": if spectral { "spectral_norm" } else { "weight_norm" }, "api": api});
    match pick(rng, 4) {
        0 => {}
        1 => norm["dim"] = Value::Null,
        _ => {
            // Any dim in [-rank, rank): invalid ones are error cases on both sides.
            norm["dim"] = json!(pick(rng, 2 * rank as u32) - rank);
        }
    }
    if spectral {
        if pick(rng, 2) == 1 {
            norm["n_power_iterations"] = json!(1 + pick(rng, 4));
        }
        if pick(rng, 2) == 1 {
            let eps = [1e-12, 1e-6, 1e-3][pick(rng, 3) as usize];
            norm["eps"] = json!(eps);
        }
    }
    let optimizer = if pick(rng, 3) == 0 {
        Value::Null
    } else {
        let lr = [1e-3, 1e-2, 0.05][pick(rng, 3) as usize];
        let beta2 = [0.999, 0.99][pick(rng, 2) as usize];
        let weight_decay = [0.0, 0.01][pick(rng, 2) as usize];
        // Any path PyTorch accepts: (foreach, fused) but never both true.
        let paths = [
            (Value::Null, Value::Null),
            (json!(true), Value::Null),
            (Value::Null, json!(true)),
            (json!(false), json!(true)),
            (json!(true), json!(false)),
            (json!(false), json!(false)),
        ];
        let (foreach, fused) = paths[pick(rng, paths.len() as u32) as usize].clone();
        let kind = if pick(rng, 2) == 1 { "adamw" } else { "adam" };
        json!({"kind": kind, "lr": lr, "betas": [0.9, beta2], "eps": 1e-8, "weight_decay": weight_decay, "amsgrad": pick(rng, 2) == 1,
               "maximize": pick(rng, 2) == 1, "foreach": foreach, "fused": fused})
    };
    json!({"name": format!("random-{index}-{kind}-{}-{api}", if spectral { "spectral" } else { "weight" }),
           "seed": (rng.random() * 9.0e15) as u64, "layer": layer, "norm": norm,
           "mode": if pick(rng, 3) == 0 { "eval" } else { "train" }, "input_shape": input_shape,
           "steps": 1 + pick(rng, 3), "optimizer": optimizer})
}

#[test]
fn random_specs_match_live_pytorch() -> Result<()> {
    let Some(python) = python_or_skip("compare random parity specs against live PyTorch")? else { return Ok(()) };
    let seed = parity_test_seed()?;
    eprintln!("random parity spec from seed {seed} (replay with NORM_PARITY_SEED={seed})");
    let mut rng = PyRandom::new(seed);
    let cases: Vec<Value> = (0..40).map(|i| random_case(&mut rng, i)).collect();
    let spec_text = serde_json::to_string_pretty(&json!({"cases": cases}))?;
    let dir = scratch_dir!("parity-random-spec")?;
    let spec_path = dir.join(format!("spec-{seed}.json"));
    std::fs::write(&spec_path, &spec_text)?;
    let spec = spec::parse_spec(&spec_text)?;
    let theirs = norm_bench::parity::run_pytorch(&python, &spec_path);
    let _ = std::fs::remove_dir_all(&dir);
    let theirs = theirs?;
    let ours = run::run_spec(&spec, |_, _| {})?;
    let rows = compare::compare(&ours, &theirs);
    let ran = theirs.cases.iter().filter(|c| c.steps.is_some()).count();
    ensure!(ran >= 20, "only {ran} of 40 random cases ran in PyTorch; the generator makes too many invalid cases");
    assert_all_equal(&rows).with_context(|| format!("random spec seed {seed}:\n{spec_text}"))
}

#[test]
fn malformed_specs_name_the_case_and_field() {
    let base = r#"{"name": "c", "seed": 1, "layer": {"kind": "linear", "in_features": 2, "out_features": 3, "bias": true},
                  "norm": {"kind": "weight_norm", "api": "hooks"}, "mode": "train", "input_shape": [1, 2], "steps": 1}"#;
    let case: Value = serde_json::from_str(base).unwrap();
    let bad = [
        ("seed", json!(1.0), "field `seed`"),
        ("seed", json!(-1), "field `seed`"),
        ("mode", json!("training"), "field `mode`"),
        ("steps", json!("2"), "field `steps`"),
        (
            "norm",
            json!({"kind": "weight_norm", "api": "hooks", "n_power_iterations": 2}),
            "field `norm.n_power_iterations`",
        ),
        (
            "layer",
            json!({"kind": "conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": [3], "bias": true}),
            "field `layer.kernel_size`",
        ),
        ("layer", json!({"kind": "lstm"}), "field `layer.kind`"),
        ("optimizer", json!({"kind": "adam", "betas": [0.9]}), "field `optimizer.betas`"),
        ("optimizer", json!({"kind": "sgd"}), "field `optimizer.kind`"),
        ("optimizer", json!({"kind": "adamw", "foreach": 1}), "field `optimizer.foreach`"),
        ("optimizer", json!({"kind": "adam", "fused": "true"}), "field `optimizer.fused`"),
        ("optimizer", json!({"kind": "adam", "maximize": null}), "field `optimizer.maximize`"),
        ("optimizer", json!({"kind": "adam", "capturable": false}), "field `optimizer.capturable`"),
        ("device", json!("tpu"), "field `device`"),
        ("device", json!(0), "field `device`"),
        ("device", json!(null), "field `device`"),
        ("extra", json!(1), "field `extra`"),
    ];
    for (key, value, needle) in bad {
        let mut c = case.clone();
        c[key] = value;
        let mut first = case.clone();
        first["name"] = json!("ok");
        let text = json!({"cases": [first, c]}).to_string();
        let err = spec::parse_spec(&text).expect_err(key).to_string();
        assert!(err.contains("case 1 (\"c\")") && err.contains(needle), "{key}: {err}");
    }
    assert!(spec::parse_spec(&json!({"cases": [case.clone(), case]}).to_string())
        .unwrap_err()
        .to_string()
        .contains("duplicate"));
}

/// The optimizer keys' defaults: AdamW's weight decay, `foreach`/`fused` omitted = `null` =
/// PyTorch's choice, the device omitted = CPU.
#[test]
fn optimizer_and_device_keys_take_pytorchs_defaults() -> Result<()> {
    let case = |optimizer: Value, device: Option<&str>| -> Result<spec::Case> {
        let mut c = json!({"name": "c", "seed": 1, "layer": {"kind": "linear", "in_features": 2, "out_features": 3, "bias": true},
                           "norm": {"kind": "weight_norm", "api": "hooks"}, "mode": "train", "input_shape": [1, 2], "steps": 1,
                           "optimizer": optimizer});
        if let Some(d) = device {
            c["device"] = json!(d);
        }
        Ok(spec::parse_spec(&json!({"cases": [c]}).to_string())?.cases.remove(0))
    };
    let adamw = case(json!({"kind": "adamw"}), None)?;
    let o = adamw.optimizer.expect("an optimizer");
    assert_eq!(o.config(), norm_core::optim::AdamConfig::adamw(1e-3));
    assert_eq!(adamw.device, spec::SpecDevice::Cpu);
    let explicit = case(json!({"kind": "adam", "foreach": null, "fused": true, "maximize": true}), Some("cuda"))?;
    let o = explicit.optimizer.expect("an optimizer");
    assert_eq!((o.foreach, o.fused, o.maximize, o.adamw, o.weight_decay), (None, Some(true), true, false, 0.0));
    assert_eq!(explicit.device, spec::SpecDevice::Cuda);
    assert_eq!(case(json!({"kind": "adam"}), Some("cpu"))?.optimizer.expect("opt").config(), Default::default());
    Ok(())
}

/// data/parity.py refuses what norm-bench parity refuses (exit 2, the case and field named).
#[test]
fn parity_py_refuses_the_same_optimizer_and_device_keys() -> Result<()> {
    let Some(python) = python_or_skip("check data/parity.py's spec validation")? else { return Ok(()) };
    let dir = scratch_dir!("parity-py-strict")?;
    let base = json!({"name": "c", "seed": 1, "layer": {"kind": "linear", "in_features": 2, "out_features": 3, "bias": true},
                      "norm": {"kind": "weight_norm", "api": "hooks"}, "mode": "train", "input_shape": [1, 2], "steps": 1});
    let bad = [
        ("optimizer", json!({"kind": "sgd"}), "optimizer.kind"),
        ("optimizer", json!({"kind": "adamw", "foreach": 1}), "optimizer.foreach"),
        ("optimizer", json!({"kind": "adam", "fused": "true"}), "optimizer.fused"),
        ("optimizer", json!({"kind": "adam", "maximize": null}), "optimizer.maximize"),
        ("device", json!("tpu"), "device"),
        ("device", json!(null), "device"),
    ];
    for (key, value, field) in bad {
        let mut c = base.clone();
        c[key] = value.clone();
        let text = json!({"cases": [c]}).to_string();
        spec::parse_spec(&text).expect_err(field);
        let path = dir.join("bad.json");
        std::fs::write(&path, &text)?;
        let out = std::process::Command::new(&python).arg(repo_root().join("data/parity.py")).arg(&path).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.code() == Some(2), "parity.py accepted {key}={value}: {stderr}");
        ensure!(stderr.contains(&format!("field '{field}'")), "{key}={value}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A `"device": "cuda"` case on a machine without CUDA: both sides exit 2 naming the device.
#[test]
fn cuda_cases_without_cuda_exit_2_naming_the_device() -> Result<()> {
    if norm_tch::backend::cuda_device(0).is_some() {
        eprintln!("SKIPPED: this machine has CUDA; the GPU check runs data/parity_cuda_spec.json");
        return Ok(());
    }
    let spec_path = repo_root().join("data/parity_cuda_spec.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_norm-bench"))
        .args(["parity", "--json", "--spec"])
        .arg(&spec_path)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(2), "norm-bench: {:?} {stderr}", out.status);
    ensure!(stderr.contains("field `device`") && stderr.contains("\"cuda\" is not available"), "{stderr}");
    ensure!(out.stdout.is_empty(), "nothing on stdout");
    let Some(python) = python_or_skip("check data/parity.py without CUDA")? else { return Ok(()) };
    let out = std::process::Command::new(&python).arg(repo_root().join("data/parity.py")).arg(&spec_path).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(2), "parity.py: {:?} {stderr}", out.status);
    ensure!(stderr.contains("field 'device'") && stderr.contains("\"cuda\" is not available"), "{stderr}");
    Ok(())
}

#[test]
fn cli_exit_codes() -> Result<()> {
    let bin = env!("CARGO_BIN_EXE_norm-bench");
    let dir = scratch_dir!("parity-cli")?;
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"cases": [{"name": "x", "seed": 0.5}]}"#)?;
    let out = std::process::Command::new(bin).args(["parity", "--spec"]).arg(&bad).arg("--json").output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("case 0 (\"x\")"));

    // A reference that differs in one bit makes the command exit 1 and say where.
    let spec_path = dir.join("spec.json");
    std::fs::write(
        &spec_path,
        r#"{"cases": [{"name": "one", "seed": 3, "layer": {"kind": "linear", "in_features": 2, "out_features": 2, "bias": true},
        "norm": {"kind": "spectral_norm", "api": "parametrizations"}, "mode": "train", "input_shape": [1, 2], "steps": 1}]}"#,
    )?;
    let json_out = std::process::Command::new(bin).args(["parity", "--spec"]).arg(&spec_path).arg("--json").output()?;
    assert!(json_out.status.success());
    let mut reference: run::ParityOutput = serde_json::from_slice(&json_out.stdout)?;
    let ref_path = dir.join("ref.json");
    std::fs::write(&ref_path, serde_json::to_string(&reference)?)?;
    let same = std::process::Command::new(bin)
        .args(["parity", "--spec"])
        .arg(&spec_path)
        .arg("--reference")
        .arg(&ref_path)
        .output()?;
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stdout));
    let step = &mut reference.cases[0].steps.as_mut().unwrap()[0];
    step.tensors.get_mut("loss").unwrap().f32_bits[0] ^= 1;
    std::fs::write(&ref_path, serde_json::to_string(&reference)?)?;
    let differ = std::process::Command::new(bin)
        .args(["parity", "--spec"])
        .arg(&spec_path)
        .arg("--reference")
        .arg(&ref_path)
        .output()?;
    assert_eq!(differ.status.code(), Some(1));
    let table = String::from_utf8_lossy(&differ.stdout);
    assert!(
        table.lines().any(|l| l.contains("one") && l.contains("loss") && l.contains("NO") && l.contains(" 1 ")),
        "{table}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
