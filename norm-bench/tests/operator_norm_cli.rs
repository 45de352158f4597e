//! `norm-bench operator-norm --spec FILE --json` end to end: the weights PyTorch draws after
//! `torch.manual_seed(seed)` (checked through `sigma_reshaped` against the venv's PyTorch,
//! `torch.linalg.matrix_norm`) and `sigma_operator` against the dense operator matrix's SVD
//! (norm-tch/tests/opnorm_reference.py, mode `layers`); a Linear's two σ agree; malformed or
//! out-of-range specs exit 2 naming the case and field.

use anyhow::{ensure, Result};
use norm_test_support::{python_or_skip, repo_root, run_python_json};
use serde_json::{json, Value};
use std::process::Command;

fn norm_bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_norm-bench")).args(args).output().expect("norm-bench runs")
}

fn write_spec(name: &str, spec: &Value) -> Result<std::path::PathBuf> {
    let dir = norm_test_support::scratch_dir!(name)?;
    let path = dir.join("spec.json");
    std::fs::write(&path, serde_json::to_string(spec)?)?;
    Ok(path)
}

fn cases() -> Value {
    json!([
        {"name": "conv2d", "seed": 0, "layer": {"kind": "conv2d", "in_channels": 2, "out_channels": 3,
          "kernel_size": [3, 3], "padding": [1, 1], "bias": true}, "input_size": [6, 5], "tolerance": 1e-10, "max_iterations": 100000},
        {"name": "conv_t1d", "seed": 4, "layer": {"kind": "conv_transpose1d", "in_channels": 3, "out_channels": 2,
          "kernel_size": [4], "stride": [2], "padding": [1], "bias": false}, "input_size": [8], "tolerance": 1e-10, "max_iterations": 100000},
        {"name": "conv3d", "seed": 9, "layer": {"kind": "conv3d", "in_channels": 1, "out_channels": 2,
          "kernel_size": [2, 2, 2], "stride": [2, 1, 1], "bias": true}, "input_size": [4, 3, 3], "tolerance": 1e-10, "max_iterations": 100000},
        {"name": "linear", "seed": 1, "layer": {"kind": "linear", "in_features": 6, "out_features": 4, "bias": true},
          "input_size": [6], "tolerance": 1e-12, "max_iterations": 100000}
    ])
}

#[test]
fn json_output_matches_pytorch_weights_and_the_dense_svd() -> Result<()> {
    let spec = write_spec("opnorm-cli", &json!({"cases": cases()}))?;
    let out = norm_bench(&["operator-norm", "--spec", spec.to_str().unwrap(), "--json"]);
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours: Value = serde_json::from_slice(&out.stdout)?;
    let ours = ours["cases"].as_array().unwrap();
    ensure!(ours.len() == 4);
    for r in ours {
        for key in ["name", "sigma_reshaped", "sigma_operator", "iterations", "bound"] {
            ensure!(r.get(key).is_some(), "missing {key} in {r}");
        }
    }
    let linear = &ours[3];
    let (a, b) = (linear["sigma_reshaped"].as_f64().unwrap(), linear["sigma_operator"].as_f64().unwrap());
    ensure!((a - b).abs() <= 1e-10 * a, "linear: {a} vs {b}");
    let Some(python) = python_or_skip("check operator-norm against PyTorch")? else { return Ok(()) };
    let script = repo_root().join("norm-tch/tests/opnorm_reference.py");
    let theirs: Value = run_python_json(&python, &script, &[], Some(&json!({"mode": "layers", "cases": cases()})))?;
    for (r, t) in ours.iter().zip(theirs["cases"].as_array().unwrap()) {
        for key in ["sigma_reshaped", "sigma_operator"] {
            let (x, y) = (r[key].as_f64().unwrap(), t[key].as_f64().unwrap());
            ensure!((x - y).abs() <= 1e-8 * y, "{}: {key} {x} vs PyTorch/NumPy {y}", r["name"]);
        }
    }
    Ok(())
}

#[test]
fn malformed_or_out_of_range_specs_exit_2() -> Result<()> {
    let base = cases()[0].clone();
    let with = |key: &str, value: Value| {
        let mut c = base.clone();
        c[key] = value;
        json!({"cases": [c]})
    };
    let bad = [
        (with("tolerance", json!(0.0)), "tolerance"),
        (with("tolerance", json!(2.0)), "tolerance"),
        (with("max_iterations", json!(0)), "max_iterations"),
        (with("max_iterations", json!(10_000_000)), "max_iterations"),
        (with("max_iterations", json!(1.5)), "max_iterations"),
        (with("input_size", json!([6])), "input_size"),
        (with("input_size", json!([0, 5])), "input_size"),
        (with("input_size", json!([100000, 5])), "input_size"),
        (with("seed", json!(-1)), "seed"),
        (with("extra", json!(1)), "extra"),
        (with("layer", json!({"kind": "embedding", "num_embeddings": 3, "embedding_dim": 2})), "layer.kind"),
        (
            with(
                "layer",
                json!({"kind": "conv2d", "in_channels": 2, "out_channels": 3, "kernel_size": [3], "bias": true}),
            ),
            "layer.kernel_size",
        ),
    ];
    for (i, (spec, field)) in bad.iter().enumerate() {
        let path = write_spec(&format!("opnorm-bad-{i}"), spec)?;
        let out = norm_bench(&["operator-norm", "--spec", path.to_str().unwrap(), "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.code() == Some(2), "{field}: exit {:?}: {stderr}", out.status.code());
        ensure!(stderr.contains(&format!("`{field}")) && stderr.contains("case 0"), "{field}: {stderr}");
    }
    Ok(())
}
