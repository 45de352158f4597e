//! Bounded arguments (issue 13): every number of the command line and of a parity spec has
//! a range, checked before any work; a value outside it exits 2 with a message naming the
//! flag (or the case and field), the value and the range; data/parity.py refuses the same
//! specs as norm-bench (the size budget included).

use anyhow::Result;
use norm_test_support::{python_or_skip, repo_root, scratch_dir};
use serde_json::{json, Value};
use std::process::{Command, Output};

fn norm_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_norm-bench")).args(args).output().expect("norm-bench runs")
}

fn assert_usage_error(args: &[&str], needles: &[&str]) {
    let out = norm_bench(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{args:?}: {needle:?} not in {stderr}");
    }
}

#[test]
fn report_numbers_out_of_range_exit_2_naming_flag_value_and_range() -> Result<()> {
    let dir = scratch_dir!("limits-report")?;
    let out = dir.to_str().unwrap();
    let base = ["report", "--out", out, "--no-pytorch", "--no-plots", "--no-convergence", "--no-loss"];
    for (flags, needles) in [
        (&["--sizes", "64,8193"][..], &["--sizes", "8193", "[1, 8192]"][..]),
        (&["--rect-shapes", "100000x100000"], &["--rect-shapes", "100000x100000", "67108864"]),
        (&["--n-power-iterations", "10001"], &["--n-power-iterations", "10001", "[1, 10000]"]),
        (&["--rounds", "1001"], &["--rounds", "1001", "[1, 1000]"]),
        (&["--budget-ms", "3600001"], &["--budget-ms", "3600001", "[0, 3600000]"]),
        (&["--min-sample-us", "18446744073709551615"], &["--min-sample-us", "18446744073709551615"]),
        (&["--samples", "1000001"], &["--samples", "1000001", "[1, 1000000]"]),
        (&["--warmup", "4294967296"], &["--warmup", "4294967296"]),
        (&["--max-samples", "2000000"], &["--max-samples", "2000000"]),
    ] {
        let args: Vec<&str> = base.iter().chain(flags).copied().collect();
        assert_usage_error(&args, needles);
    }
    // The config file: the same ranges, named by field; a file that never ends is refused.
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"seed_loop_steps": 4294967296}"#)?;
    assert_usage_error(
        &["report", "--config", config.to_str().unwrap()],
        &["seed_loop_steps", "4294967296", "[1, 100000]"],
    );
    std::fs::write(&config, r#"{"sampling": {"warmup_ms": 3600001}}"#)?;
    assert_usage_error(&["report", "--config", config.to_str().unwrap()], &["warmup_ms"]);
    assert_usage_error(&["report", "--config", "/dev/zero"], &["larger than the limit of 1048576 bytes"]);
    let names: Vec<_> = std::fs::read_dir(&dir)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>()?;
    assert_eq!(names, ["config.json"], "no run folder was written");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn seed_loop_and_convert_numbers_out_of_range_exit_2() {
    assert_usage_error(&["seed-loop", "--example", "weight-norm", "--steps", "1000001"], &["--steps", "1000001"]);
    assert_usage_error(&["seed-loop", "--example", "weight-norm", "--steps", "18446744073709551616"], &["--steps"]);
    for (flag, value) in
        [("--spectral-dim", "64"), ("--weight-norm-dim", "0=-65"), ("--spectral-dim", "9223372036854775808")]
    {
        // Refused before the input is read: the input does not exist.
        assert_usage_error(
            &["convert", "/nonexistent/in.pt", "/nonexistent/out.pt", "--to", "folded", flag, value],
            &[flag, value.rsplit('=').next().unwrap(), "[-64, 63]"],
        );
    }
}

fn linear_case(in_features: i64, out_features: i64, input_shape: Value, steps: u64) -> Value {
    json!({"name": "c", "seed": 1, "layer": {"kind": "linear", "in_features": in_features, "out_features": out_features, "bias": true},
           "norm": {"kind": "spectral_norm", "api": "hooks"}, "mode": "train", "input_shape": input_shape, "steps": steps})
}

fn conv_case(kind: &str, channels: i64, kernel: Vec<i64>, padding: Vec<i64>, input_shape: Value) -> Value {
    json!({"name": "c", "seed": 1, "layer": {"kind": kind, "in_channels": channels, "out_channels": channels, "kernel_size": kernel,
           "padding": padding, "bias": false}, "norm": {"kind": "weight_norm", "api": "parametrizations"}, "mode": "eval",
           "input_shape": input_shape, "steps": 1})
}

/// (case, whether it is within the budget, the field a refusal names).
fn budget_cases() -> Vec<(Value, bool, &'static str)> {
    let mut npi = linear_case(4, 4, json!([1, 4]), 1);
    npi["norm"]["n_power_iterations"] = json!(10_001);
    let mut npi_negative = linear_case(4, 4, json!([1, 4]), 1);
    npi_negative["norm"]["n_power_iterations"] = json!(-5);
    vec![
        (linear_case(2048, 2048, json!([1, 2048]), 1), true, ""),
        (linear_case(4097, 4096, json!([1, 4097]), 0), false, "field `layer`"),
        (linear_case(1 << 40, 1 << 40, json!([1, 2]), 1), false, "field `layer`"),
        (linear_case(2, 2, json!([1 << 25, 2]), 1), false, "field `input_shape`"),
        (linear_case(2, 2, json!([1u64 << 62, 1u64 << 62, 2]), 1), false, "field `input_shape`"),
        (linear_case(2, 2, json!(vec![1; 17]), 1), false, "field `input_shape`"),
        (linear_case(2, 2, json!([1, 2]), 100_000), true, ""),
        (linear_case(64, 64, json!([4, 64]), 100_000), false, "field `steps`"),
        (linear_case(1024, 1024, json!([1024, 1024]), 16), false, "field `steps`"),
        (npi, false, "field `norm.n_power_iterations`"),
        (npi_negative, true, ""),
        (conv_case("conv2d", 1, vec![1, 1], vec![1 << 20, 1 << 20], json!([1, 1, 1, 1])), false, "field `input_shape`"),
        (conv_case("conv_transpose1d", 1, vec![1 << 30], vec![0], json!([1, 1, 1])), false, "field `layer`"),
        (conv_case("conv_transpose1d", 1, vec![3], vec![0], json!([1, 1, 1 << 24])), false, "field `input_shape`"),
        (conv_case("conv3d", 8, vec![5, 5, 5], vec![0, 0, 0], json!([1, 8, 16, 16, 16])), true, ""),
        (conv_case("conv2d", 1, vec![9, 9], vec![0, 0], json!([1, 1, 2, 2])), true, ""),
    ]
}

#[test]
fn the_size_budget_is_checked_before_anything_is_built() {
    for (case, ok, field) in budget_cases() {
        let text = json!({ "cases": [case] }).to_string();
        match norm_bench::parity::spec::parse_spec(&text) {
            Ok(_) => assert!(ok, "{text} was accepted"),
            Err(e) => {
                let e = e.to_string();
                assert!(!ok, "{text}: {e}");
                assert!(e.contains("case 0 (\"c\")") && e.contains(field), "{e}");
            }
        }
    }
}

#[test]
fn data_parity_py_refuses_the_same_specs() -> Result<()> {
    let Some(python) = python_or_skip("check data/parity.py's size budget")? else { return Ok(()) };
    let dir = scratch_dir!("limits-parity-py")?;
    let code = "import sys, json; sys.path.insert(0, sys.argv[1]); import parity\n\
                for line in sys.stdin:\n    try:\n        parity.validate_spec(parity.parse_spec_text(line)); print('ok')\n\
                \x20   except parity.SpecError as e:\n        print('refused', e)\n";
    let input: String =
        budget_cases().iter().map(|(case, _, _)| json!({ "cases": [case] }).to_string() + "\n").collect();
    let mut child = Command::new(&python)
        .args(["-c", code, repo_root().join("data").to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes())?;
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    let lines: Vec<String> = String::from_utf8(out.stdout)?.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), budget_cases().len(), "{lines:?}");
    for ((case, ok, _), line) in budget_cases().iter().zip(&lines) {
        assert_eq!(line == "ok", *ok, "{case}: parity.py said {line}");
    }
    let spec = dir.join("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &spec)?;
    assert_usage_error(
        &["parity", "--spec", spec.to_str().unwrap(), "--json"],
        &["larger than the limit of 67108864 bytes"],
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
