//! One child process under watch: started in its own process group, polled every few
//! milliseconds for its exit, its wall clock (a timeout) and its resident memory (VmRSS in
//! `/proc/PID/status`, no cgroup and no RLIMIT_AS, which libtorch's mapped CUDA libraries
//! would trip); on a timeout or over the memory limit the whole group is killed.

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The limits one child runs under.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Resident-memory limit, in bytes.
    pub max_rss: u64,
}

/// How the child ended.
#[derive(Debug)]
pub struct Ended {
    /// Its exit status (`None` when the watch killed it).
    pub status: Option<ExitStatus>,
    /// Killed for running past the timeout.
    pub timed_out: bool,
    /// Killed for resident memory over the limit.
    pub over_memory: bool,
    /// The highest VmRSS seen, in bytes.
    pub peak_rss: u64,
    /// Wall clock.
    pub elapsed: Duration,
    /// The last few KiB of its stderr.
    pub stderr_tail: String,
}

/// VmRSS of `pid`, in bytes (`None` once it is gone).
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Kills the process group `pgid` (the child and whatever it started).
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The last `max` bytes of a file, as text.
fn tail(path: &Path, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(path) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = file.take(max).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs `program args` in `cwd` with stdout and stderr to `stdout`/`stderr` files, under
/// `limits`.
pub fn run(
    program: &Path,
    args: &[String],
    cwd: &Path,
    stdout: &Path,
    stderr: &Path,
    limits: Limits,
) -> std::io::Result<Ended> {
    use std::os::unix::process::CommandExt;
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(File::create(stdout)?)
        .stderr(File::create(stderr)?)
        .env("RUST_BACKTRACE", "0")
        .process_group(0)
        .spawn()?;
    let pid = child.id();
    let mut peak_rss = 0;
    let mut poll = Duration::from_millis(2);
    let (status, timed_out, over_memory) = loop {
        if let Some(status) = child.try_wait()? {
            break (Some(status), false, false);
        }
        peak_rss = peak_rss.max(rss_bytes(pid).unwrap_or(0));
        let over_memory = peak_rss > limits.max_rss;
        let timed_out = start.elapsed() > limits.timeout;
        if over_memory || timed_out {
            kill_group(pid);
            let _ = child.kill();
            let _ = child.wait();
            break (None, timed_out && !over_memory, over_memory);
        }
        std::thread::sleep(poll);
        poll = (poll * 2).min(Duration::from_millis(20));
    };
    // Whatever the child started in its group does not outlive the case.
    kill_group(pid);
    Ok(Ended { status, timed_out, over_memory, peak_rss, elapsed: start.elapsed(), stderr_tail: tail(stderr, 4096) })
}
