//! `norm-bench fuzz` itself: a short run over the families that need no checkpoint corpus
//! passes and prints the family x outcome table; the same seed generates the same cases;
//! a replayed case prints its command line.

use norm_test_support::scratch_dir;
use std::process::Command;

fn fuzz(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_norm-bench")).arg("fuzz").args(args).output().expect("norm-bench runs")
}

#[test]
fn a_short_spec_run_passes_and_writes_the_table() -> anyhow::Result<()> {
    let dir = scratch_dir!("fuzz-short")?;
    let out =
        fuzz(&["--families", "spec", "--cases", "6", "--seed", "11", "--jobs", "1", "--out", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("fuzz: seed 11 "), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let table = String::from_utf8(out.stdout)?;
    assert!(table.starts_with("| family | clean_error | success | panic | crash | hang | out_of_memory |"), "{table}");
    let csv = std::fs::read_to_string(dir.join("summary.csv"))?;
    let row: Vec<u64> = csv.lines().nth(1).unwrap().split(',').skip(1).map(|n| n.parse().unwrap()).collect();
    assert_eq!(*row.last().unwrap(), 6, "{csv}");
    assert_eq!(row[0] + row[1], 6, "only clean errors and successes: {csv}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn a_seed_replays_the_same_cases() {
    let list = |seed: &str| fuzz(&["--families", "spec", "--cases", "40", "--seed", seed, "--dry-run"]).stdout;
    assert_eq!(list("5"), list("5"));
    assert_ne!(list("5"), list("6"));
    let one = fuzz(&["--families", "spec", "--seed", "5", "--case", "7", "--dry-run"]).stdout;
    let line = String::from_utf8_lossy(&list("5")).lines().nth(7).unwrap().to_string();
    assert_eq!(String::from_utf8_lossy(&one).trim_end(), line);
    assert!(line.contains("norm-bench parity --spec {dir}/spec.json --json"), "{line}");
}

#[test]
fn bad_fuzz_flags_exit_2() {
    for args in [&["--seconds", "0"][..], &["--families", "nope"], &["--jobs", "65"], &["--memory-mb", "1"]] {
        assert_eq!(fuzz(args).status.code(), Some(2), "{args:?}");
    }
}
