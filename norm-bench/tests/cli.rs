//! The `norm-bench seed-loop` command line: JSON shape, human output, bad input.

use std::process::Command;

fn norm_bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_norm-bench")).args(args).output().expect("norm-bench runs")
}

#[test]
fn json_is_one_object_with_the_documented_fields() {
    let out = norm_bench(&["seed-loop", "--example", "weight-norm", "--seed", "5", "--steps", "3", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim_end().lines().count(), 1, "exactly one JSON line");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["example"], "weight-norm");
    assert_eq!(v["seed"], 5);
    assert_eq!(v["steps"], 3);
    let labels: Vec<&str> = v["snapshots"].as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["initial", "after_loop1", "final"]);
    let tensors = v["snapshots"][0]["tensors"].as_object().unwrap();
    let mut names: Vec<&str> = tensors.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["bias", "weight", "weight_g", "weight_v"]);
    assert_eq!(tensors["weight_g"]["shape"], serde_json::json!([3, 1]));
    assert_eq!(tensors["weight_v"]["f32_bits"].as_array().unwrap().len(), 6);
    // The document's initial weight, exactly: [[0, -2e-2], [0.3, 1.0], [1e-2, 0]] as float32.
    let weight: Vec<u32> =
        tensors["weight_v"]["f32_bits"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u32).collect();
    let expected: Vec<u32> = [0.0f64, -2e-2, 0.3, 1.0, 1e-2, 0.0].iter().map(|&x| (x as f32).to_bits()).collect();
    assert_eq!(weight, expected);
}

#[test]
fn seed_spectral_has_no_after_loop1() {
    let out = norm_bench(&["seed-loop", "--example", "seed-spectral", "--steps", "2", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels: Vec<&str> = v["snapshots"].as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["initial", "final"]);
}

#[test]
fn human_output_prints_what_the_document_prints() {
    let out = norm_bench(&["seed-loop", "--example", "weight-norm", "--steps", "2"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("################原始权重:################\nlinear_layer.weight_v:  Parameter containing:\ntensor([[ 0.0000, -0.0200],"), "{text}");
    assert!(text.contains("linear_layer.weight_g:  Parameter containing:\ntensor([[0.0200],\n        [1.0440],\n        [0.0100]], requires_grad=True)"), "{text}");
    assert!(text.contains("linear_layer.weight (effective):  tensor("), "{text}");
}

#[test]
fn bad_input_exits_2_with_a_message() {
    for (args, needle) in [
        (&["seed-loop", "--example", "spectral"][..], "invalid value 'spectral' for '--example"),
        (&["seed-loop", "--example", "weight-norm", "--steps", "0"][..], "--steps"),
        (&["seed-loop", "--example", "weight-norm", "--seed", "1.5"][..], "--seed"),
        (&["seed-loop", "--example", "weight-norm", "--seed", "-3"][..], "--seed"),
    ] {
        let out = norm_bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn report_refuses_thread_counts_out_of_range_before_running() {
    let out_dir = std::env::temp_dir().join(format!("norm-report-threads-{}", std::process::id()));
    let out_str = out_dir.to_str().expect("utf-8 temp path");
    for threads in ["100000", "2147483648", "4294967297", "18446744073709551615"] {
        let out = norm_bench(&["report", "--out", out_str, "--threads", threads]);
        assert_eq!(out.status.code(), Some(2), "--threads {threads}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("threads must be in [1, ") && stderr.contains(threads), "{threads}: {stderr}");
        assert!(!out_dir.exists(), "--threads {threads}: nothing written");
    }
}

#[test]
fn parity_refuses_repeated_keys_and_too_many_steps() {
    let dir = std::env::temp_dir().join(format!("norm-parity-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let case = |steps: &str| {
        format!(
            r#"{{"name": "c", "seed": 0, "layer": {{"kind": "linear", "in_features": 2, "out_features": 3, "bias": true}},
                "norm": {{"kind": "weight_norm", "api": "hooks"}}, "mode": "train", "input_shape": [4, 2], "steps": {steps}}}"#
        )
    };
    for (name, text, needle) in [
        ("dup_top", format!(r#"{{"cases": [{}], "cases": []}}"#, case("1")), "duplicate key `cases`"),
        ("dup_deep", format!(r#"{{"cases": [{}]}}"#, case(r#"1, "steps": 2"#)), "duplicate key `steps`"),
        ("steps_huge", format!(r#"{{"cases": [{}]}}"#, case("2147483648")), "field `steps`"),
    ] {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, &text).unwrap();
        let out = norm_bench(&["parity", "--spec", path.to_str().unwrap(), "--json"]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{name}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parity_records_an_out_of_range_eps_as_pytorchs_runtime_error() {
    let dir = std::env::temp_dir().join(format!("norm-parity-eps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("eps.json");
    let case = |name: &str, api: &str| {
        format!(
            r#"{{"name": "{name}", "seed": 0, "layer": {{"kind": "linear", "in_features": 2, "out_features": 3, "bias": true}},
                "norm": {{"kind": "spectral_norm", "api": "{api}", "eps": 1e39}}, "mode": "train", "input_shape": [4, 2], "steps": 1}}"#
        )
    };
    std::fs::write(&path, format!(r#"{{"cases": [{}, {}]}}"#, case("h", "hooks"), case("p", "parametrizations")))
        .unwrap();
    let out = norm_bench(&["parity", "--spec", path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for case in json["cases"].as_array().unwrap() {
        assert_eq!(case["error"]["type"], "RuntimeError", "{case}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn report_on_cuda_needs_a_cuda_device() {
    let out_dir = std::env::temp_dir().join(format!("norm-report-cuda-{}", std::process::id()));
    let out_str = out_dir.to_str().expect("utf-8 temp path");
    let tiny = [
        "report",
        "--out",
        out_str,
        "--run",
        "cuda",
        "--device",
        "cuda",
        "--ops",
        "copy,weight_norm_forward",
        "--sizes",
        "8",
        "--rect-shapes",
        "",
        "--dtypes",
        "",
        "--warmup",
        "1",
        "--samples",
        "2",
        "--no-convergence",
        "--no-loss",
        "--no-plots",
        "--no-pytorch",
    ];
    let out = norm_bench(&tiny);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if norm_tch::backend::cuda_device(0).is_none() {
        let required = std::env::var(norm_test_support::REQUIRE_CUDA);
        assert!(required.as_deref() != Ok("1"), "{}=1 but no CUDA device", norm_test_support::REQUIRE_CUDA);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--device cuda") && stderr.contains("no CUDA device"), "{stderr}");
        assert!(!out_dir.exists(), "nothing written");
        return;
    }
    // With a GPU: CUDA rows only, synchronized, the device in the CSV and run.json.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let csv = std::fs::read_to_string(out_dir.join("cuda/timing.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows.iter().all(|r| r.contains(",cuda,")), "{csv}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("cuda/run.json")).unwrap()).unwrap();
    assert_eq!(run["devices"], serde_json::json!(["cuda"]));
    assert_eq!(run["cuda_available"], true);
    std::fs::remove_dir_all(&out_dir).unwrap();
}
