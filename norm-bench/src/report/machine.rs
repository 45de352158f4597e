//! What `run.json` and `summary.md` say about the machine and the clock: the CPU, memory
//! and OS (read from `/proc` and `/etc/os-release` on Linux, `unknown` elsewhere), and
//! UTC timestamps without a date library.

use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// The machine a report ran on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Machine {
    /// The CPU's model name.
    pub(crate) cpu_model: String,
    /// Logical CPUs available to this process.
    pub(crate) logical_cpus: usize,
    /// Total memory in GiB, if known.
    pub(crate) memory_gib: Option<f64>,
    /// The OS (`PRETTY_NAME` of `/etc/os-release`) and kernel release.
    pub(crate) os: String,
    /// `std::env::consts::ARCH`.
    pub(crate) arch: String,
}

impl Machine {
    /// Reads what it can; unknown values are `"unknown"` / `None`.
    pub(crate) fn detect() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                matches!(key.trim(), "model name" | "Model" | "cpu model").then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let memory_gib = read("/proc/meminfo").lines().find_map(|line| {
            let rest = line.strip_prefix("MemTotal:")?;
            let kib: f64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib / (1024.0 * 1024.0))
        });
        let os_release = read("/etc/os-release");
        let pretty = os_release
            .lines()
            .find_map(|line| line.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
        let os = if kernel.is_empty() { pretty } else { format!("{pretty}, kernel {kernel}") };
        Machine {
            cpu_model,
            logical_cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            memory_gib,
            os,
            arch: std::env::consts::ARCH.to_string(),
        }
    }
}

/// `(year, month, day, hour, minute, second)` in UTC of `secs` seconds after the Unix epoch.
pub(crate) fn utc_parts(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A run folder name: `2026-11-28T19-05-00Z` (UTC, no colons, so it is a valid file name everywhere).
pub(crate) fn run_folder_name(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}-{mi:02}-{s:02}Z")
}

/// An ISO 8601 UTC timestamp: `2026-11-28T19:05:00Z`.
pub(crate) fn iso_utc(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(run_folder_name(1_795_892_700), "2026-11-28T19-05-00Z");
        assert_eq!(iso_utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn the_machine_is_described() {
        let m = Machine::detect();
        assert!(m.logical_cpus >= 1);
        assert!(!m.cpu_model.is_empty() && !m.os.is_empty());
    }
}
