//! The PyTorch eager side of the report: runs `norm-bench/python/eager_timing.py` and
//! parses its answers.
//!
//! Protocol (JSON Lines both ways): Rust writes one request object per line to the
//! script's stdin and waits for its one answer line on stdout before sending the next,
//! so the two processes never compete for the CPU. Every request has a `"kind"`:
//!
//! - `{"kind":"env","threads":1}` → `{"kind":"env","torch_version":..,"python_version":..,"cpu_capability":..,"num_threads":..,"cuda_available":..,"cuda_device":..,...}`
//! - `{"kind":"open","threads":1,"sampling":{...},"case":{"op":..,"rows":..,"cols":..,"dtype":..,"device":..,"n_power_iterations":..},"pytorch_op":..}`
//!   → `{"kind":"open","case":{...},"threads":1,"warmup":N,"iterations_per_sample":B}`: the
//!   case set up (seeded) and warmed up under one round's rule; it stays open for bursts
//! - `{"kind":"burst","threads":1,"rewarm_us":5000,"min_samples":1,"max_samples":M,"budget_us":U}`
//!   → `{"kind":"burst","samples_ns":[...],"elapsed_ns":E}`: one burst of the open case
//!   ([`Burst`]; each sample the mean per iteration, in ns, of `B` back-to-back
//!   iterations; `E` the burst's wall clock, re-warm-up included)
//! - `{"kind":"close","threads":1}` → `{"kind":"close","warmup":W}`: the open case is dropped
//!   (its memory freed; opening another case also drops it); `W` its untimed iterations, the
//!   warm-up's and the bursts' re-warm-ups (no `warmup` when no case was open)
//! - `{"kind":"sigma","threads":1,"matrix":"random","rows":..,"cols":..,"seed":0,"spectrum":[..]|null,"iterations":[1,2,5]}`
//!   → `{"kind":"sigma",...,"sigma":[...]}`
//! - `{"kind":"loss","threads":1,"run":"seed_weight_norm","steps":100}` → `{"kind":"loss",...,"losses":[...]}`
//!
//! An answer may carry `"error": "..."` instead of its result (a case PyTorch cannot
//! run, e.g. an op without a kernel for a dtype); the script keeps serving. Raw durations
//! come back so both columns go through the same [`Summary`](super::stats::Summary) code.
//! The script sends its warnings to stderr, which is inherited. Closing stdin ends it.
//!
//! The script keeps no list of ops: a `time` request's `"pytorch_op"` is the case's
//! [`OpRow::pytorch_op`](super::ops::OpRow::pytorch_op) from the table of ops (the op
//! itself, or the op whose PyTorch program it shares, e.g. `weight_norm_forward` for
//! `weight_norm_forward_out`), and the script times the case with its function
//! `op_<pytorch_op>`.

use super::case::Case;
use super::convergence::{LossRun, MatrixKind};
use super::ops::Op;
use super::sampling::{Burst, Sampling, MAX_ITERATIONS_PER_SAMPLE};
use anyhow::{anyhow, bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// A Python script compiled into the binary, with the path it came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Script {
    /// The source, as compiled in.
    pub(crate) source: &'static str,
    /// Where it lives in the repository the binary was built from.
    pub(crate) path: &'static str,
}

impl Script {
    /// A command running the script with `python`: the repository's file when it is the
    /// compiled-in source (readable tracebacks), else the compiled-in source through `-c`
    /// (so the protocol always matches this binary).
    pub(crate) fn command(&self, python: &Path) -> Command {
        let mut command = Command::new(python);
        match std::fs::read_to_string(self.path) {
            Ok(on_disk) if on_disk == self.source => command.arg(self.path),
            _ => command.arg("-c").arg(self.source),
        };
        command
    }
}

/// The repository's `data/`, where the script finds the models' PyTorch twins
/// (`hifigan_block.py`, `sn_discriminator.py`).
pub(crate) const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data");

/// `norm-bench/python/eager_timing.py`.
pub(crate) const EAGER_TIMING: Script = Script {
    source: include_str!("../../python/eager_timing.py"),
    path: concat!(env!("CARGO_MANIFEST_DIR"), "/python/eager_timing.py"),
};

/// The interpreter used when none is given: the repository's `.venv/bin/python`, found
/// relative to the running binary (`<exe dir>/../../.venv/bin/python`, i.e. from
/// `target/release/`), else `python3` from `PATH`.
pub fn default_python() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join(".venv/bin/python")))
        .filter(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Request<'a> {
    Env {
        threads: usize,
    },
    Open {
        threads: usize,
        sampling: &'a Sampling,
        case: &'a Case,
        pytorch_op: Op,
    },
    Burst {
        threads: usize,
        #[serde(flatten)]
        rule: &'a Burst,
    },
    Close {
        threads: usize,
    },
    Sigma {
        threads: usize,
        matrix: MatrixKind,
        rows: u64,
        cols: u64,
        seed: u64,
        spectrum: Option<&'a [f64]>,
        iterations: &'a [u64],
    },
    Loss {
        threads: usize,
        run: LossRun,
        steps: u64,
    },
    ModelLosses {
        threads: usize,
        case: &'a Case,
        steps: usize,
    },
}

/// The fields of any answer that Rust reads (others are kept in the raw value).
#[derive(Deserialize)]
struct Answer {
    kind: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    case: Option<Case>,
    #[serde(default)]
    threads: Option<usize>,
    #[serde(default)]
    warmup: Option<u64>,
    #[serde(default)]
    iterations_per_sample: Option<u64>,
    #[serde(default)]
    samples_ns: Option<Vec<u64>>,
    #[serde(default)]
    elapsed_ns: Option<u64>,
    #[serde(default)]
    sigma: Option<Vec<f64>>,
    #[serde(default)]
    losses: Option<Vec<f64>>,
    #[serde(default)]
    loss_bits: Option<Vec<u32>>,
}

/// What the script answered for one piece of work.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome<T> {
    /// The result.
    Done(T),
    /// The script could not do it (its message); it can still do other work.
    Failed(String),
}

/// A running `eager_timing.py`.
#[derive(Debug)]
pub(crate) struct PytorchRunner {
    python: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    threads: usize,
}

impl PytorchRunner {
    /// Starts the script with `python` (it then imports torch and waits for requests);
    /// every request asks for `threads` intra-op threads.
    ///
    /// Errors: the interpreter cannot be started.
    pub(crate) fn start(python: &Path, threads: usize) -> Result<Self> {
        let mut command = EAGER_TIMING.command(python);
        command
            .arg("--quiet")
            .arg("--data-dir")
            .arg(DATA_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().with_context(|| format!("cannot run `{}`", python.display()))?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin pipe to the script"))?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout pipe from the script"))?);
        Ok(PytorchRunner { python: python.to_path_buf(), child, stdin: Some(stdin), stdout, threads })
    }

    /// The interpreter running the script.
    pub(crate) fn python(&self) -> &Path {
        &self.python
    }

    /// Sends one request and reads its answer line (checked to be of the same kind).
    fn ask(&mut self, request: &Request) -> Result<(Answer, Value)> {
        let line = serde_json::to_string(request)?;
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("the script's stdin is closed"))?;
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            return Err(self.exited_early(Some(e)));
        }
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => return Err(self.exited_early(None)),
            Ok(_) => {}
            Err(e) => return Err(self.exited_early(Some(e))),
        }
        let raw: Value = serde_json::from_str(line.trim_end())
            .with_context(|| format!("the script's answer is not JSON: {:?}", line.trim_end()))?;
        let answer: Answer = serde_json::from_value(raw.clone())
            .with_context(|| format!("the script's answer is not protocol JSON: {:?}", line.trim_end()))?;
        let expected = serde_json::to_value(request)?;
        ensure!(
            Some(answer.kind.as_str()) == expected["kind"].as_str(),
            "the script answered a {:?} request with kind {:?}",
            expected["kind"],
            answer.kind
        );
        Ok((answer, raw))
    }

    /// The script's environment: torch and Python versions, CPU capability, CUDA, ...
    pub(crate) fn env(&mut self) -> Result<Value> {
        let (answer, raw) = self.ask(&Request::Env { threads: self.threads })?;
        if let Some(e) = answer.error {
            bail!("the script could not describe its environment: {e}");
        }
        Ok(raw)
    }

    /// Has the script set `case` up and warm it up under one round's rule `sampling`; it
    /// then holds the case open for [`PytorchRunner::burst`]. Returns the warm-up
    /// iterations and the iterations per sample.
    ///
    /// Errors (the script is unusable from then on): it exited or closed stdout, or
    /// answered something that is not the protocol.
    pub(crate) fn open(&mut self, case: &Case, sampling: &Sampling) -> Result<Outcome<(u64, u64)>> {
        let (answer, _) =
            self.ask(&Request::Open { threads: self.threads, sampling, case, pytorch_op: case.op.row().pytorch_op })?;
        ensure!(
            answer.case.as_ref() == Some(case),
            "the script answered for {:?} instead of {}",
            answer.case,
            case.label()
        );
        if let Some(message) = answer.error {
            return Ok(Outcome::Failed(message));
        }
        if let Some(got) = answer.threads {
            ensure!(got == self.threads, "the script ran with {got} threads instead of {}", self.threads);
        }
        let iterations_per_sample =
            answer.iterations_per_sample.ok_or_else(|| anyhow!("the script's answer has no iterations_per_sample"))?;
        ensure!(
            (1..=MAX_ITERATIONS_PER_SAMPLE).contains(&iterations_per_sample),
            "the script batched {iterations_per_sample} iterations per sample, outside [1, {}]",
            MAX_ITERATIONS_PER_SAMPLE
        );
        Ok(Outcome::Done((answer.warmup.unwrap_or(0), iterations_per_sample)))
    }

    /// One burst of the open case under `rule`: its samples (ns per iteration) and how
    /// long it lasted on the script's clock.
    ///
    /// Errors (the script is unusable from then on): as [`PytorchRunner::open`], or a
    /// sample count outside the rule's.
    pub(crate) fn burst(&mut self, rule: &Burst) -> Result<Outcome<(Vec<u64>, Duration)>> {
        let (answer, _) = self.ask(&Request::Burst { threads: self.threads, rule })?;
        if let Some(message) = answer.error {
            return Ok(Outcome::Failed(message));
        }
        let Some(nanos) = answer.samples_ns else { bail!("the script's answer has neither samples_ns nor error") };
        let n = nanos.len() as u64;
        ensure!(
            n >= rule.min_samples && n <= rule.max_samples,
            "the script sent {n} samples, outside [{}, {}]",
            rule.min_samples,
            rule.max_samples
        );
        let elapsed = answer.elapsed_ns.ok_or_else(|| anyhow!("the script's burst answer has no elapsed_ns"))?;
        Ok(Outcome::Done((nanos, Duration::from_nanos(elapsed))))
    }

    /// Has the script drop the open case; returns its untimed iterations (warm-up and
    /// re-warm-ups), `None` when no case was open.
    pub(crate) fn close(&mut self) -> Result<Option<u64>> {
        let (answer, _) = self.ask(&Request::Close { threads: self.threads })?;
        match answer.error {
            Some(message) => bail!("the script could not close its case: {message}"),
            None => Ok(answer.warmup),
        }
    }

    /// PyTorch's σ estimates (hook API) for the study's matrix, one per iteration count.
    pub(crate) fn sigma(
        &mut self,
        matrix: MatrixKind,
        rows: u64,
        cols: u64,
        seed: u64,
        spectrum: Option<&[f64]>,
        iterations: &[u64],
    ) -> Result<Outcome<Vec<f64>>> {
        let (answer, _) =
            self.ask(&Request::Sigma { threads: self.threads, matrix, rows, cols, seed, spectrum, iterations })?;
        if let Some(message) = answer.error {
            return Ok(Outcome::Failed(message));
        }
        let sigma = answer.sigma.ok_or_else(|| anyhow!("the script's sigma answer has neither sigma nor error"))?;
        ensure!(
            sigma.len() == iterations.len(),
            "the script sent {} σ estimates for {} iteration counts",
            sigma.len(),
            iterations.len()
        );
        Ok(Outcome::Done(sigma))
    }

    /// PyTorch's per-step losses of `run`.
    pub(crate) fn losses(&mut self, run: LossRun, steps: u64) -> Result<Outcome<Vec<f64>>> {
        let (answer, _) = self.ask(&Request::Loss { threads: self.threads, run, steps })?;
        if let Some(message) = answer.error {
            return Ok(Outcome::Failed(message));
        }
        Ok(Outcome::Done(
            answer.losses.ok_or_else(|| anyhow!("the script's loss answer has neither losses nor error"))?,
        ))
    }

    /// The float32 bits of the losses of `steps` training steps of a model op's case
    /// ([`model_rows`](super::model_rows)), from the same setup as its timing.
    pub(crate) fn model_losses(&mut self, case: &Case, steps: usize) -> Result<Outcome<Vec<u32>>> {
        let (answer, _) = self.ask(&Request::ModelLosses { threads: self.threads, case, steps })?;
        if let Some(message) = answer.error {
            return Ok(Outcome::Failed(message));
        }
        Ok(Outcome::Done(
            answer
                .loss_bits
                .ok_or_else(|| anyhow!("the script's model_losses answer has neither loss_bits nor error"))?,
        ))
    }

    /// Closes the script's stdin (which ends it) and waits for it to exit.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.stdin = None;
        let status = self.child.wait()?;
        ensure!(status.success(), "the script exited with {status}");
        Ok(())
    }

    /// The error for a script that stopped answering (`cause`: the pipe error, if any),
    /// with its exit status.
    fn exited_early(&mut self, cause: Option<std::io::Error>) -> anyhow::Error {
        self.stdin = None;
        let status = match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("exit status unknown: {e}"),
        };
        let error = anyhow!("eager_timing.py ended without answering ({status}; its stderr is above)");
        match cause {
            Some(io) => error.context(io),
            None => error,
        }
    }
}

impl Drop for PytorchRunner {
    fn drop(&mut self) {
        // Closing stdin ends the script at its next read; reap it so no zombie is left.
        self.stdin = None;
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::case::{DType, Shape};
    use crate::report::sampling::REWARM;

    #[test]
    fn a_missing_interpreter_is_an_error_at_start() {
        let err = PytorchRunner::start(Path::new("/nonexistent/python"), 1).unwrap_err();
        assert!(format!("{err:#}").contains("cannot run `/nonexistent/python`"), "{err:#}");
    }

    #[test]
    fn requests_carry_their_kind() {
        let case = Case::cpu_f32(Op::WeightNormForwardOut, Shape::square(4));
        let sampling = Sampling::fixed(1, 2);
        let request = Request::Open { threads: 1, sampling: &sampling, case: &case, pytorch_op: Op::WeightNormForward };
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"kind":"open","threads":1,"sampling":{"warmup_min":1,"warmup_ms":0,"min_samples":2,"max_samples":2,"budget_ms":0,"rounds":1,"min_sample_us":0,"burst_ms":0},"case":{"op":"weight_norm_forward_out","rows":4,"cols":4,"dtype":"f32","device":"cpu","n_power_iterations":null},"pytorch_op":"weight_norm_forward"}"#
        );
        let rule = Burst { rewarm: REWARM, min_samples: 1, max_samples: 5, budget: Duration::from_millis(50) };
        assert_eq!(
            serde_json::to_string(&Request::Burst { threads: 1, rule: &rule }).unwrap(),
            r#"{"kind":"burst","threads":1,"rewarm_us":5000,"min_samples":1,"max_samples":5,"budget_us":50000}"#
        );
        assert_eq!(serde_json::to_string(&Request::Close { threads: 1 }).unwrap(), r#"{"kind":"close","threads":1}"#);
        let text =
            serde_json::to_string(&Request::Loss { threads: 2, run: LossRun::SeedWeightNorm, steps: 3 }).unwrap();
        assert_eq!(text, r#"{"kind":"loss","threads":2,"run":"seed_weight_norm","steps":3}"#);
    }

    /// One round of `case` on the script alone: open, bursts until the round is over, close;
    /// (warm-up, iterations per sample, samples, burst count, untimed iterations at close).
    fn round_alone(
        runner: &mut PytorchRunner,
        case: &Case,
        sampling: &Sampling,
    ) -> Result<(u64, u64, Vec<u64>, u64, u64)> {
        let Outcome::Done((warmup, batch)) = runner.open(case, sampling)? else { bail!("{} failed", case.label()) };
        let (mut nanos, mut spent, mut bursts) = (Vec::new(), Duration::ZERO, 0);
        while let Some(rule) = sampling.next_burst(nanos.len() as u64, spent) {
            let Outcome::Done((samples, lasted)) = runner.burst(&rule)? else { bail!("a burst failed") };
            nanos.extend(samples);
            spent += lasted;
            bursts += 1;
        }
        let untimed = runner.close()?.context("close after an open case says its warm-up")?;
        Ok((warmup, batch, nanos, bursts, untimed))
    }

    #[test]
    fn the_script_samples_by_the_same_rule() -> Result<()> {
        let Some(python) = crate::golden::venv_python_for_tests()? else { return Ok(()) };
        let mut runner = PytorchRunner::start(&python, 1)?;
        // Fixed counts: one iteration per sample, exactly as asked, in one burst.
        let case = Case::cpu_f32(Op::WeightNormForwardOut, Shape::square(8));
        let (warmup, batch, nanos, bursts, untimed) = round_alone(&mut runner, &case, &Sampling::fixed(2, 3))?;
        assert_eq!((warmup, batch, nanos.len(), bursts, untimed), (2, 1, 3, 1, 2));
        // A tiny op with 1 ms samples batches many iterations; its samples are per iteration.
        let batched = Sampling {
            warmup_min: 1,
            warmup_ms: 20,
            min_samples: 3,
            max_samples: 40,
            budget_ms: 30,
            rounds: 1,
            min_sample_us: 1000,
            burst_ms: 0,
        };
        let (_, batch, nanos, bursts, _) = round_alone(&mut runner, &case, &batched)?;
        assert!(batch >= 5, "{batch} iterations per sample");
        assert!(nanos.iter().all(|&ns| ns < 500_000), "{nanos:?}");
        assert_eq!(bursts, 1, "burst_ms 0: one burst");
        // Bursts of 5 ms: several in the 30 ms round, each re-warmed (untimed iterations, at
        // least one per burst) and at most about 5 ms of 1 ms samples.
        let (warmup, _, nanos, bursts, untimed) =
            round_alone(&mut runner, &case, &Sampling { burst_ms: 5, ..batched })?;
        assert!(bursts >= 3 && nanos.len() >= 3, "{bursts} bursts, {} samples", nanos.len());
        assert!(untimed >= warmup + bursts, "{untimed} untimed iterations, {warmup} + {bursts} at least");
        // An iteration longer than burst_ms (a 2048² copy, 1 ms bursts): no re-warm-ups.
        let long = Case::cpu_f32(Op::Copy, Shape::square(2048));
        let rule = Sampling { warmup_ms: 0, min_sample_us: 0, budget_ms: 10, burst_ms: 1, ..batched };
        let (warmup, _, _, bursts, untimed) = round_alone(&mut runner, &long, &rule)?;
        assert!(bursts >= 3, "{bursts} bursts");
        assert_eq!(untimed, warmup, "no re-warm-up when one iteration outlasts a burst");
        // An op with untimed work between iterations never batches.
        let between = Case::cpu_f32(Op::WeightNormForwardBackward, Shape::square(8));
        let (_, batch, _, _, _) = round_alone(&mut runner, &between, &batched)?;
        assert_eq!(batch, 1);
        // The out op's PyTorch side is _weight_norm, so it runs in f16 too (Rust's side does not).
        let f16 = Case { dtype: DType::F16, ..case };
        assert_eq!(round_alone(&mut runner, &f16, &Sampling::fixed(1, 1))?.2.len(), 1);
        // A burst with no open case is an error answer, and the script keeps serving.
        let rule = Burst { rewarm: Duration::ZERO, min_samples: 1, max_samples: 1, budget: Duration::ZERO };
        let Outcome::Failed(message) = runner.burst(&rule)? else { panic!("a burst without an open case ran") };
        assert!(message.contains("no open case"), "{message}");
        assert!(matches!(runner.open(&case, &Sampling::fixed(1, 1))?, Outcome::Done((1, 1))));
        runner.finish()
    }
}
