//! The outcome of one fuzz case: what the child's exit, its stderr and the files around it
//! say. Two outcomes are good (a clean error, a success); every other one fails the run.

use super::child::Ended;

/// One case's outcome, worst first in [`Outcome::ALL`]'s order of precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Exit 1 or 2 with a message on stderr.
    CleanError,
    /// Exit 0.
    Success,
    /// Exit 101 or "panicked at" on stderr.
    Panic,
    /// Ended by a signal (abort, segfault, stack overflow).
    Crash,
    /// Killed after the timeout.
    Hang,
    /// Killed with resident memory over the limit.
    OutOfMemory,
    /// The input file's bytes differ after the run.
    InputChanged,
    /// After a failing exit, the output file is present (or a previous one changed), or a
    /// temporary file was left behind.
    PartialOutput,
    /// A success whose output repeats a key or cannot be read back.
    BadOutput,
    /// Any other exit: a status other than 0, 1, 2, or 1/2 without a message.
    OddExit,
}

impl Outcome {
    /// Every outcome, in table order.
    pub const ALL: [Outcome; 10] = [
        Outcome::CleanError,
        Outcome::Success,
        Outcome::Panic,
        Outcome::Crash,
        Outcome::Hang,
        Outcome::OutOfMemory,
        Outcome::InputChanged,
        Outcome::PartialOutput,
        Outcome::BadOutput,
        Outcome::OddExit,
    ];

    /// The column name (`clean_error`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::CleanError => "clean_error",
            Outcome::Success => "success",
            Outcome::Panic => "panic",
            Outcome::Crash => "crash",
            Outcome::Hang => "hang",
            Outcome::OutOfMemory => "out_of_memory",
            Outcome::InputChanged => "input_changed",
            Outcome::PartialOutput => "partial_output",
            Outcome::BadOutput => "bad_output",
            Outcome::OddExit => "odd_exit",
        }
    }

    /// Whether this outcome fails the run.
    pub fn is_bad(self) -> bool {
        !matches!(self, Outcome::CleanError | Outcome::Success)
    }
}

/// What the files around the case showed after the run.
#[derive(Clone, Debug, Default)]
pub struct FileChecks {
    /// The input file's bytes changed.
    pub input_changed: bool,
    /// The output file appeared (or a previous one changed) although the run failed.
    pub output_after_failure: bool,
    /// Files the command had no business leaving (temporary files).
    pub leftovers: bool,
    /// What is wrong with a successful run's output (a repeated key, unreadable).
    pub bad_output: Option<String>,
}

/// Classifies a run: the process first (hang, memory, signal, panic), then the files, then
/// the exit status.
pub fn classify(ended: &Ended, files: &FileChecks) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    if ended.timed_out {
        return Outcome::Hang;
    }
    if ended.over_memory {
        return Outcome::OutOfMemory;
    }
    let Some(status) = ended.status else { return Outcome::Hang };
    if status.signal().is_some() {
        return Outcome::Crash;
    }
    if status.code() == Some(101) || ended.stderr_tail.contains("panicked at") {
        return Outcome::Panic;
    }
    if files.input_changed {
        return Outcome::InputChanged;
    }
    let failed = !status.success();
    if files.leftovers || (failed && files.output_after_failure) {
        return Outcome::PartialOutput;
    }
    match status.code() {
        Some(0) if files.bad_output.is_some() => Outcome::BadOutput,
        Some(0) => Outcome::Success,
        Some(1 | 2) if !ended.stderr_tail.trim().is_empty() => Outcome::CleanError,
        _ => Outcome::OddExit,
    }
}
