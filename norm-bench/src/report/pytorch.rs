//! The PyTorch eager side of the report: runs `norm-bench/python/eager_timing.py` and
//! parses its answers.
//!
//! Protocol (JSON Lines both ways): for each case Rust writes one request line
//! `{"threads":1,"warmup":20,"samples":200,"cases":[{"op":"weight_norm_forward","rows":64,"cols":64}]}`
//! to the script's stdin; the script prints one JSON line per finished case to stdout,
//! `{"op":...,"rows":...,"cols":...,"threads":...,"warmup":...,"samples":...,"torch_version":"...","samples_ns":[...]}`
//! (or the same keys with `"error": "..."` instead of `samples_ns`). The raw durations come
//! back so both columns go through the same [`Summary`](super::stats::Summary) code. The
//! script sends its progress and warnings to stderr, which is inherited. Closing stdin
//! ends it.
//!
//! Requests go one case at a time, and Rust waits for each answer before timing its own
//! side, so the two processes never compete for the CPU.

use super::cases::Case;
use anyhow::{anyhow, bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The script's source, compiled in so the binary works away from the repository.
pub const SCRIPT_SOURCE: &str = include_str!("../../python/eager_timing.py");

/// Where the script lives in the repository the binary was built from.
pub const SCRIPT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/eager_timing.py");

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

/// One request: the cases to time and how.
#[derive(Serialize)]
struct Request<'a> {
    threads: usize,
    warmup: u64,
    samples: u64,
    cases: &'a [Case],
}

/// One answer line of the script.
#[derive(Deserialize)]
struct Answer {
    op: String,
    rows: u64,
    cols: u64,
    #[serde(default)]
    threads: Option<usize>,
    #[serde(default)]
    torch_version: Option<String>,
    #[serde(default)]
    samples_ns: Option<Vec<u64>>,
    #[serde(default)]
    error: Option<String>,
}

/// What the script answered for one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PytorchOutcome {
    /// One duration in nanoseconds per timed sample.
    Timed(Vec<u64>),
    /// The script could not time this case (its message); it can still time others.
    Failed(String),
}

/// A running `eager_timing.py`.
#[derive(Debug)]
pub struct PytorchRunner {
    python: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    torch_version: Option<String>,
}

impl PytorchRunner {
    /// Starts the script with `python` (it then imports torch and waits for requests).
    ///
    /// Errors: the interpreter cannot be started.
    pub fn start(python: &Path) -> Result<Self> {
        let mut command = Command::new(python);
        // Run the repository's file when it is the compiled-in script (readable tracebacks),
        // the compiled-in source otherwise (so the protocol always matches this binary).
        match std::fs::read_to_string(SCRIPT_PATH) {
            Ok(on_disk) if on_disk == SCRIPT_SOURCE => command.arg(SCRIPT_PATH),
            _ => command.arg("-c").arg(SCRIPT_SOURCE),
        };
        command.arg("--quiet").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn().with_context(|| format!("cannot run `{}`", python.display()))?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin pipe to the script"))?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout pipe from the script"))?);
        Ok(PytorchRunner { python: python.to_path_buf(), child, stdin: Some(stdin), stdout, torch_version: None })
    }

    /// The interpreter running the script.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// `torch.__version__`, once the script has answered.
    pub fn torch_version(&self) -> Option<&str> {
        self.torch_version.as_deref()
    }

    /// Has the script time `case` and waits for its answer.
    ///
    /// Errors (the script is unusable from then on): it exited or closed stdout, or
    /// answered something that is not the protocol.
    pub fn time_case(&mut self, case: &Case, threads: usize, warmup: u64, samples: u64) -> Result<PytorchOutcome> {
        let request = serde_json::to_string(&Request { threads, warmup, samples, cases: std::slice::from_ref(case) })?;
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("the script's stdin is closed"))?;
        if let Err(e) = writeln!(stdin, "{request}").and_then(|()| stdin.flush()) {
            return Err(self.exited_early(Some(e)));
        }
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => return Err(self.exited_early(None)),
            Ok(_) => {}
            Err(e) => return Err(self.exited_early(Some(e))),
        }
        let answer: Answer = serde_json::from_str(line.trim_end()).with_context(|| format!("the script's answer is not protocol JSON: {:?}", line.trim_end()))?;
        ensure!(
            (answer.op.as_str(), answer.rows, answer.cols) == (case.op.name(), case.rows, case.cols),
            "the script answered for {} {}x{} instead of {} {}",
            answer.op,
            answer.rows,
            answer.cols,
            case.op.name(),
            case.shape()
        );
        if answer.torch_version.is_some() {
            self.torch_version = answer.torch_version;
        }
        if let Some(message) = answer.error {
            return Ok(PytorchOutcome::Failed(message));
        }
        if let Some(got) = answer.threads {
            ensure!(got == threads, "the script ran with {got} threads instead of {threads}");
        }
        let Some(nanos) = answer.samples_ns else { bail!("the script's answer has neither samples_ns nor error") };
        ensure!(nanos.len() as u64 == samples, "the script sent {} samples instead of {samples}", nanos.len());
        Ok(PytorchOutcome::Timed(nanos))
    }

    /// Closes the script's stdin (which ends it) and waits for it to exit.
    pub fn finish(mut self) -> Result<()> {
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

    #[test]
    fn a_missing_interpreter_is_an_error_at_start() {
        let err = PytorchRunner::start(Path::new("/nonexistent/python")).unwrap_err();
        assert!(format!("{err:#}").contains("cannot run `/nonexistent/python`"), "{err:#}");
    }
}
