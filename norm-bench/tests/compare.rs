//! `norm-bench compare RUN_A RUN_B`: two synthetic report folders give the expected table,
//! CSV and exit status (0 without a regression, 1 with one beyond the threshold); missing or
//! malformed folders exit 2 naming the folder.

use norm_test_support::scratch_dir;
use std::path::Path;
use std::process::{Command, Output};

const HEADER: &str = "op,shape,rows,cols,dtype,device,n_power_iterations,threads,rust_status,rust_warmup,\
rust_iterations_per_sample,rust_samples,rust_min_us,rust_median_us,rust_mean_us,rust_max_us,rust_stddev_us,\
pytorch_status,pytorch_warmup,pytorch_iterations_per_sample,pytorch_samples,pytorch_min_us,pytorch_median_us,\
pytorch_mean_us,pytorch_max_us,pytorch_stddev_us,ratio_median_rust_over_pytorch,ratio_low,ratio_high,ratio_settled,\
rounds,bytes_moved,rust_bandwidth_gbps,pytorch_bandwidth_gbps,note";

/// A timing.csv line: op, shape, k, Rust and PyTorch medians (µs), the ratio's interval.
fn line(op: &str, n: u64, k: &str, rust: f64, pytorch: f64, interval: Option<(f64, f64)>) -> String {
    let ratio = rust / pytorch;
    let (low, high) = interval.map(|(l, h)| (format!("{l:.4}"), format!("{h:.4}"))).unwrap_or_default();
    format!(
        "{op},{n}x{n},{n},{n},f32,cpu,{k},1,ok,3,1,6,{rust:.3},{rust:.3},{rust:.3},{rust:.3},0.000,\
         ok,3,1,6,{pytorch:.3},{pytorch:.3},{pytorch:.3},{pytorch:.3},0.000,{ratio:.4},{low},{high},true,2,,,,"
    )
}

fn write_run(dir: &Path, lines: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = format!("{HEADER}\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(dir.join("timing.csv"), text).unwrap();
}

fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_norm-bench"))
        .arg("compare")
        .args(args)
        .arg("--no-plot")
        .output()
        .expect("norm-bench runs")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn two_runs_give_the_table_and_the_exit_status() {
    let root = scratch_dir!("compare-runs").unwrap();
    let (a, b) = (root.join("a"), root.join("b"));
    write_run(
        &a,
        &[
            line("weight_norm_forward", 64, "", 10.0, 10.0, Some((0.98, 1.02))),
            line("spectral_norm_forward_train", 1024, "1", 90.0, 100.0, Some((0.88, 0.92))),
            line("copy", 64, "", 5.0, 5.0, None),
        ],
    );
    write_run(
        &b,
        &[
            // Ratio 1.00 -> 1.30, intervals apart: a regression beyond x1.10.
            line("weight_norm_forward", 64, "", 13.0, 10.0, Some((1.25, 1.35))),
            // 0.90 -> 0.72: an improvement.
            line("spectral_norm_forward_train", 1024, "1", 72.0, 100.0, Some((0.70, 0.74))),
            line("power_iteration", 64, "10", 1.0, 1.0, None),
        ],
    );
    let out_dir = root.join("out");
    let out = compare(&[path(&a), path(&b), "--out", path(&out_dir)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a regression exits 1\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("**1 regression(s)**, 1 improvement(s)"), "{stdout}");
    assert!(
        stdout.contains(
            "| weight_norm_forward 64x64 f32 cpu t=1 | 1.00 [0.98, 1.02] | 1.30 [1.25, 1.35] | ×1.30 | 10.0 µs | 13.0 µs | ×1.30 | 10.0 µs | 10.0 µs | ×1.00 | **regression** |"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("| copy 64x64 f32 cpu t=1 | 1.00 | – | – |") && stdout.contains("only in A"), "{stdout}");
    assert!(stdout.contains("| power_iteration 64x64 f32 cpu k=10 t=1 |") && stdout.contains("only in B"), "{stdout}");
    let csv = std::fs::read_to_string(out_dir.join("compare.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("op,shape,dtype,device,n_power_iterations,threads,ratio_a,"), "{csv}");
    assert!(
        csv.contains(
            "spectral_norm_forward_train,1024x1024,f32,cpu,1,1,0.9000,0.8800,0.9200,0.7200,0.7000,0.7400,0.8000,90.000,72.000,0.8000,100.000,100.000,1.0000,true,improvement"
        ),
        "{csv}"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("compare.md")).unwrap().trim_end(),
        stdout.split("\nwrote ").next().unwrap().trim_end()
    );

    // A looser threshold: the same move is no regression (it is still beyond the intervals).
    let out = compare(&[path(&a), path(&b), "--out", path(&out_dir), "--threshold", "1.5"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| moved |"));
    // A run against itself: nothing moved; the default output folder is <RUN_B>/compare.
    let out = compare(&[path(&a), path(&a)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("**0 regression(s)**, 0 improvement(s), 0 moved"));
    assert!(a.join("compare/compare.csv").is_file());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn missing_or_malformed_folders_exit_2_naming_them() {
    let root = scratch_dir!("compare-bad").unwrap();
    let good = root.join("good");
    write_run(&good, &[line("copy", 64, "", 5.0, 5.0, None)]);
    let check = |a: &Path, b: &Path, extra: &[&str], needle: &str| {
        let mut args = vec![path(a), path(b)];
        args.extend_from_slice(extra);
        let out = compare(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: expected {needle:?} in {stderr}");
    };
    let missing = root.join("nope");
    check(&good, &missing, &[], &format!("{}: not a report folder", missing.display()));
    check(&missing, &good, &[], "nope: not a report folder");
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    check(&good, &empty, &[], "empty: not a report folder (cannot read timing.csv)");
    let no_column = root.join("no-column");
    std::fs::create_dir_all(&no_column).unwrap();
    std::fs::write(no_column.join("timing.csv"), "op,shape\ncopy,8x8\n").unwrap();
    check(&good, &no_column, &[], "no-column/timing.csv is malformed: no column dtype");
    let bad_cell = root.join("bad-cell");
    write_run(&bad_cell, &[line("copy", 64, "", 5.0, 5.0, None).replacen(",5.000,5.000,", ",5.000,fast,", 1)]);
    check(
        &bad_cell,
        &good,
        &[],
        "bad-cell/timing.csv is malformed: line 2: column rust_median_us: 'fast' is not a number",
    );
    let twice = root.join("twice");
    write_run(&twice, &[line("copy", 64, "", 5.0, 5.0, None), line("copy", 64, "", 6.0, 5.0, None)]);
    check(&good, &twice, &[], "line 3: copy 64x64 f32 cpu t=1 appears twice");
    check(&good, &good, &["--threshold", "0.9"], "--threshold 0.9: expected a number in [1, 100]");
    check(&good, &good, &["--threshold", "NaN"], "--threshold NaN: expected a number in [1, 100]");
    std::fs::remove_dir_all(&root).ok();
}
