//! `norm-bench convert` against live PyTorch (`norm-tch/tests/checkpoint.py`, run by the
//! repo venv's python; it needs the `safetensors` package from requirements.txt):
//!
//! - every PyTorch checkpoint (model `Conv1d → ConvTranspose1d → BatchNorm1d → Linear`; the
//!   weighted layers folded, weight_norm hooks/parametrizations, spectral_norm
//!   hooks/parametrizations, spectral_norm's legacy layout, or a mix of schemes) converted
//!   `--to hooks | parametrizations | folded`, `.pt → .pt`, `.safetensors → .pt` and
//!   `.pt → .safetensors`, loads into the PyTorch model of the target schemes with
//!   `strict=True` (`.pt` via `torch.load(weights_only=True)`, an `OrderedDict`) and gives
//!   the source model's eval output bit for bit;
//! - one stderr line per converted layer; every other entry (BatchNorm's, biases) is
//!   byte-identical and keeps its dtype (`num_batches_tracked` int64);
//! - the legacy layout is upgraded to PyTorch's own `weight_v` bits;
//! - a square spectral-norm weight (dim 0 vs 1) and a 1x1 weight-norm weight are refused
//!   without `--spectral-dim` / `--weight-norm-dim`, and with them fold to PyTorch's
//!   `remove_spectral_norm` / `remove_weight_norm` bits;
//! - a missing input, a non-checkpoint and an unknown output extension are errors naming
//!   the file;
//! - colliding keys (a stale `weight` beside `weight_g`/`weight_v`) are refused naming the
//!   key and the file, for both output formats, leaving an existing output byte-identical,
//!   creating no new one and no temporary.
//!
//! Without `.venv/bin/python` the test prints `SKIPPED` and passes, unless
//! `NORM_REQUIRE_PYTORCH=1` makes that a failure.

use anyhow::{ensure, Context, Result};
use norm_test_support::{python_or_skip, repo_root, scratch_dir};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SOURCES: [(&str, [&str; 3]); 7] = [
    ("folded", ["folded"; 3]),
    ("wn_hooks", ["wn_hooks"; 3]),
    ("wn_param", ["wn_param"; 3]),
    ("sn_hooks", ["sn_hooks"; 3]),
    ("sn_param", ["sn_param"; 3]),
    ("sn_legacy", ["sn_legacy"; 3]),
    ("mixed", ["wn_param", "sn_hooks", "wn_hooks"]),
];

fn norm_bench(args: &[&str]) -> Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_norm-bench")).args(args).output().context("running norm-bench")
}

/// Runs norm-tch's `tests/checkpoint.py` with the venv's python; its stdout.
fn run_python(python: &Path, args: &[&str], stdin: Option<&Value>) -> Result<Vec<u8>> {
    norm_test_support::run_python(python, &repo_root().join("norm-tch/tests/checkpoint.py"), args, stdin)
}

/// The scheme a layer of scheme `s` has after `--to target`.
fn target_scheme(s: &str, target: &str) -> &'static str {
    match (s.split('_').next().unwrap_or(""), target) {
        (_, "folded") | ("folded", _) => "folded",
        ("wn", "hooks") => "wn_hooks",
        ("wn", _) => "wn_param",
        ("sn", "hooks") => "sn_hooks",
        _ => "sn_param",
    }
}

fn hex_to_u32(hex: &str) -> Result<Vec<u32>> {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<std::result::Result<_, _>>()?;
    Ok(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn expected_bits(v: &Value) -> Result<Vec<u32>> {
    v["bits"]
        .as_array()
        .context("bits")?
        .iter()
        .map(|b| b.as_u64().map(|b| b as u32).context("a bit pattern"))
        .collect()
}

#[test]
fn converted_checkpoints_load_in_pytorch_strict_with_the_same_outputs() -> Result<()> {
    let Some(python) = python_or_skip("check norm-bench convert against live PyTorch")? else { return Ok(()) };
    let dir = scratch_dir!("convert")?;
    run_python(&python, &["make", dir.to_str().context("utf-8 dir")?], None)?;
    let expected: Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json"))?)?;

    // (output path, model schemes, source name, source file) to check in PyTorch.
    let mut items: Vec<(PathBuf, Vec<&str>, &str, PathBuf)> = Vec::new();
    for (source, schemes) in SOURCES {
        // The sources themselves, to compare the untouched entries against (the legacy file
        // loads into a hook-API model through PyTorch's upgrade hook).
        let source_schemes: Vec<&str> =
            schemes.iter().map(|s| if *s == "sn_legacy" { "sn_hooks" } else { s }).collect();
        items.push((dir.join(format!("{source}.pt")), source_schemes, source, dir.join(format!("{source}.pt"))));
        for target in ["hooks", "parametrizations", "folded"] {
            let targets: Vec<&str> = schemes.iter().map(|s| target_scheme(s, target)).collect();
            let converted_layers = schemes.iter().zip(&targets).filter(|(s, t)| s != t).count();
            for (in_ext, out_ext) in [("pt", "pt"), ("safetensors", "pt"), ("pt", "safetensors")] {
                let input = dir.join(format!("{source}.{in_ext}"));
                let output = dir.join(format!("{source}-{in_ext}-to-{target}.{out_ext}"));
                let out = norm_bench(&[
                    "convert",
                    input.to_str().context("utf-8")?,
                    output.to_str().context("utf-8")?,
                    "--to",
                    target,
                ])?;
                let stderr = String::from_utf8_lossy(&out.stderr);
                ensure!(out.status.success(), "convert {source}.{in_ext} --to {target}: {stderr}");
                let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" -> ")).collect();
                ensure!(lines.len() == converted_layers, "convert {source}.{in_ext} --to {target}: {} layer lines for {converted_layers} converted layers:\n{stderr}", lines.len());
                for (i, (s, t)) in schemes.iter().zip(&targets).enumerate().filter(|(_, (s, t))| s != t) {
                    let prefix = [0, 1, 3][i];
                    ensure!(
                        lines.iter().any(|l| l.starts_with(&format!("{prefix}: "))),
                        "no line for layer {prefix} ({s} -> {t}):\n{stderr}"
                    );
                }
                items.push((output, targets.clone(), source, input));
            }
        }
    }
    let request = json!({
        "input": expected["input"],
        "items": items.iter().map(|(p, s, _, _)| json!({"path": p, "model": "main", "schemes": s})).collect::<Vec<_>>(),
    });
    let checked: Value = serde_json::from_slice(&run_python(&python, &["check"], Some(&request))?)?;
    let results = checked["results"].as_array().context("results")?;
    ensure!(results.len() == items.len(), "{} results for {} files", results.len(), items.len());
    let by_path: BTreeMap<&Path, &Value> = items.iter().zip(results).map(|((p, ..), r)| (p.as_path(), r)).collect();
    let mut checked_files = 0;
    for ((path, schemes, source, input), r) in items.iter().zip(results) {
        let what = format!("PyTorch loading {} into a {schemes:?} model", path.display());
        ensure!(r.get("error").is_none(), "{what}: {}", r["error"]);
        let want = expected_bits(&expected["outputs"][*source])?;
        ensure!(expected_bits(&r["output"])? == want, "{what}: output differs from the source model's");
        ensure!(
            r["entries"]["2.num_batches_tracked"]["dtype"] == "torch.int64",
            "{what}: num_batches_tracked is {}",
            r["entries"]["2.num_batches_tracked"]["dtype"]
        );
        if path.extension().is_some_and(|e| e == "pt") {
            ensure!(r["type"] == "OrderedDict", "{what}: torch.load(weights_only=True) gave a {}", r["type"]);
        }
        // Entries of other layers pass through byte for byte (inputs are checked as .pt).
        let pt_input = input.with_extension("pt");
        let source_entries = &by_path[pt_input.as_path()]["entries"];
        for key in [
            "0.bias",
            "1.bias",
            "3.bias",
            "2.weight",
            "2.bias",
            "2.running_mean",
            "2.running_var",
            "2.num_batches_tracked",
        ] {
            ensure!(r["entries"][key] == source_entries[key], "{what}: `{key}` changed");
        }
        if *source == "sn_legacy" && schemes[0] == "sn_hooks" && path != input {
            for (key, want) in expected["upgraded"].as_object().context("upgraded")? {
                ensure!(
                    hex_to_u32(r["entries"][key]["hex"].as_str().context("hex")?)? == expected_bits(want)?,
                    "{what}: upgraded `{key}` differs from PyTorch's hook"
                );
            }
        }
        checked_files += 1;
    }
    eprintln!("convert: {checked_files} files (7 sources and 63 conversions) loaded by PyTorch strict with the source's output bits");
    ensure!(checked_files == 7 + 7 * 3 * 3);
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

#[test]
fn undecidable_dims_need_a_flag_and_then_match_pytorch() -> Result<()> {
    let Some(python) = python_or_skip("check norm-bench convert against live PyTorch")? else { return Ok(()) };
    let dir = scratch_dir!("convert-dims")?;
    run_python(&python, &["make", dir.to_str().context("utf-8 dir")?], None)?;
    let expected: Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json"))?)?;
    let path = |name: &str| dir.join(name).to_str().map(str::to_string).context("utf-8");

    // Refused without the flag, naming the layer and the flag.
    for (input, flag) in [("square_sn.pt", "--spectral-dim"), ("tiny_wn.pt", "--weight-norm-dim")] {
        let out = norm_bench(&["convert", &path(input)?, &path("never.pt")?, "--to", "folded"])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success() && stderr.contains(flag) && stderr.contains("layer `0`"),
            "{input} without {flag}: {stderr}"
        );
        ensure!(!dir.join("never.pt").exists(), "{input}: an output was written after a refusal");
    }
    // Renames need no dim.
    let out = norm_bench(&["convert", &path("square_sn.pt")?, &path("square_param.pt")?, "--to", "parametrizations"])?;
    ensure!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut items = Vec::new();
    for (input, args, output, model, key, want) in [
        ("square_sn.pt", vec!["--spectral-dim", "1"], "square_1.pt", "square", "0.weight", Some("square_sn_weight")),
        (
            "square_sn.pt",
            vec!["--spectral-dim", "0=1"],
            "square_01.safetensors",
            "square",
            "0.weight",
            Some("square_sn_weight"),
        ),
        ("square_sn.pt", vec!["--spectral-dim", "0"], "square_0.pt", "square", "0.weight", None),
        ("tiny_wn.pt", vec!["--weight-norm-dim", "1"], "tiny_1.pt", "tiny", "0.weight", Some("tiny_wn_weight")),
    ] {
        let mut argv = vec!["convert".to_string(), path(input)?, path(output)?, "--to".into(), "folded".into()];
        argv.extend(args.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = norm_bench(&argv)?;
        ensure!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
        items.push((path(output)?, model, key, want, argv.join(" ")));
    }
    let request = json!({"items": items.iter().map(|(p, m, ..)| json!({"path": p, "model": m, "schemes": ["folded"]})).collect::<Vec<_>>()});
    let checked: Value = serde_json::from_slice(&run_python(&python, &["check"], Some(&request))?)?;
    let results = checked["results"].as_array().context("results")?;
    for ((_, _, key, want, argv), r) in items.iter().zip(results) {
        ensure!(r.get("error").is_none(), "{argv}: PyTorch strict load: {}", r["error"]);
        let got = hex_to_u32(r["entries"][*key]["hex"].as_str().context("hex")?)?;
        let reference = expected_bits(&expected[want.unwrap_or("square_sn_weight")])?;
        match want {
            Some(_) => ensure!(got == reference, "{argv}: the folded weight differs from PyTorch's remove_*_norm"),
            None => ensure!(got != reference, "{argv}: dim 0 folded like dim 1"),
        }
    }

    // Bad files and names.
    for (args, needle) in [
        (vec!["convert", "/nonexistent/in.pt", "/tmp/out.pt", "--to", "hooks"], "/nonexistent/in.pt"),
        (vec!["convert", env!("CARGO_MANIFEST_DIR"), "/tmp/out.pt", "--to", "hooks"], env!("CARGO_MANIFEST_DIR")),
        (vec!["convert", "/nonexistent/in.pt", "/tmp/out.txt", "--to", "hooks"], "/tmp/out.txt"),
    ] {
        let out = norm_bench(&args)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.code() == Some(1) && stderr.contains(needle), "{args:?}: {stderr}");
    }
    let notes = dir.join("notes.pt");
    std::fs::write(&notes, "not a checkpoint\n")?;
    let out = norm_bench(&["convert", notes.to_str().context("utf-8")?, &path("x.pt")?, "--to", "folded"])?;
    ensure!(
        out.status.code() == Some(1) && String::from_utf8_lossy(&out.stderr).contains("notes.pt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok(); // kept on failure for inspection
    Ok(())
}

/// A converted key meeting a stale entry (a leftover `weight` beside `weight_g`/`weight_v`,
/// made by torch.save): exit 1 naming the key and the file, for `.pt` and `.safetensors`
/// outputs (no panic inside the safetensors writer, no key written twice); an existing
/// output stays byte-identical, a new one is never created, and no temporary is left.
#[test]
fn colliding_keys_are_refused_and_leave_outputs_untouched() -> Result<()> {
    let Some(python) = python_or_skip("norm-bench convert, colliding keys")? else { return Ok(()) };
    let dir = scratch_dir!("convert-collide")?;
    let input = dir.join("stale.pt");
    let script = "import sys, torch\n\
        from torch import nn\n\
        m = torch.nn.utils.weight_norm(nn.Linear(3, 2))\n\
        sd = m.state_dict()\n\
        sd['weight'] = torch.zeros(2, 3)\n\
        torch.save(sd, sys.argv[1])\n";
    let status = Command::new(&python).args(["-c", script]).arg(&input).status()?;
    ensure!(status.success(), "making the checkpoint");
    let input_bytes = std::fs::read(&input)?;
    let s = |p: &Path| p.to_str().context("utf-8").map(str::to_string);
    for ext in ["pt", "safetensors"] {
        let existing = dir.join(format!("existing.{ext}"));
        std::fs::write(&existing, b"the previous output")?;
        let fresh = dir.join(format!("fresh.{ext}"));
        for output in [&existing, &fresh] {
            let out = norm_bench(&["convert", &s(&input)?, &s(output)?, "--to", "folded"])?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            ensure!(
                out.status.code() == Some(1) && stderr.contains("`weight` twice") && stderr.contains("stale.pt"),
                "{ext}: {:?} {stderr}",
                out.status
            );
        }
        ensure!(std::fs::read(&existing)? == b"the previous output", "{ext}: the existing output changed");
        ensure!(!fresh.exists(), "{ext}: a failed convert created its output");
    }
    ensure!(std::fs::read(&input)? == input_bytes, "the input changed");
    let mut names: Vec<String> =
        std::fs::read_dir(&dir)?.map(|e| Ok(e?.file_name().to_string_lossy().into_owned())).collect::<Result<_>>()?;
    names.sort();
    ensure!(names == ["existing.pt", "existing.safetensors", "stale.pt"], "left behind: {names:?}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
