//! The authoritative parity test: the seed document's programs run by live PyTorch (the
//! repo venv's torch, data/seed_loop.py) and by norm on this machine, for seeds and step
//! counts that are not in data/golden, compared bit for bit.
//!
//! One seed is drawn from the clock on every run and printed; set `NORM_PARITY_SEED` to
//! replay it. Without the venv the test skips, unless `NORM_REQUIRE_PYTORCH=1` (set by
//! `make test`) makes that a failure.

use anyhow::{ensure, Context, Result};
use norm_bench::seed_loop::{self, Example};
use norm_bench::snapshot::Snapshot;
use norm_test_support::{parity_test_seed, python_or_skip, repo_root, run_python};
use serde::Deserialize;

#[derive(Deserialize)]
struct PyRun {
    example: Example,
    seed: u64,
    steps: u64,
    snapshots: Vec<Snapshot>,
}

#[test]
fn seed_loop_matches_live_pytorch() -> Result<()> {
    let Some(python) = python_or_skip("compare the seed loop against live PyTorch")? else { return Ok(()) };
    let random_seed = parity_test_seed()?;
    eprintln!("live parity: clock seed {random_seed} (replay with NORM_PARITY_SEED={random_seed})");
    let runs: Vec<(Example, u64, u64)> = vec![
        (Example::WeightNorm, 3, 2),
        (Example::WeightNorm, 987_654_321_987, 37),
        (Example::WeightNorm, random_seed, 23),
        (Example::SeedSpectral, (1 << 40) + 17, 250),
        (Example::SeedSpectral, random_seed, 11),
        (Example::SeedSpectral, u64::MAX >> 1, 3),
    ];
    let batch: Vec<(&str, u64, u64)> = runs.iter().map(|&(e, s, k)| (e.name(), s, k)).collect();
    let stdout =
        run_python(&python, &repo_root().join("data/seed_loop.py"), &["--batch"], Some(&serde_json::json!(batch)))?;
    let lines: Vec<&str> = std::str::from_utf8(&stdout)?.lines().collect();
    ensure!(lines.len() == runs.len(), "expected {} JSON lines from PyTorch, got {}", runs.len(), lines.len());
    for (&(example, seed, steps), line) in runs.iter().zip(lines) {
        let expected: PyRun = serde_json::from_str(line)?;
        ensure!(
            (expected.example, expected.seed, expected.steps) == (example, seed, steps),
            "PyTorch answered for another run"
        );
        let replay = seed_loop::replay(example, seed, steps)?;
        ensure!(replay.snapshots.len() == expected.snapshots.len(), "{example:?} seed {seed}: snapshot count");
        for (got, want) in replay.snapshots.iter().zip(&expected.snapshots) {
            ensure!(got.label == want.label, "snapshot labels {} vs {}", got.label, want.label);
            for (name, bits) in &want.tensors {
                let ours = got.tensors.get(name).with_context(|| format!("missing {name}"))?;
                ensure!(
                    ours == bits,
                    "{} seed {seed} steps {steps} {} {name}: bits differ from live PyTorch (max {:?} ULP)",
                    example.name(),
                    got.label,
                    ours.max_ulp(bits)
                );
            }
        }
    }
    Ok(())
}
