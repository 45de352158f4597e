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
