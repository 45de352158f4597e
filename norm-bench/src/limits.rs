//! The ranges of the command line's numbers, checked before any work: a value outside its
//! range is a [`UsageError`] (exit status 2) naming the flag (or config/spec field), the
//! value and the allowed range. The ranges are far beyond what a real run asks for and
//! keep memory and time bounded (docs/reports.md, docs/parity.md, docs/checkpoints.md).

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;

/// A usage error: the command line or an input file asks for something out of range or
/// malformed; `norm-bench` exits with status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `Ok` when `lo <= value <= hi`, else a [`UsageError`]: "`name` must be in [lo, hi], got value".
pub fn check_range<T: PartialOrd + std::fmt::Display>(name: &str, value: T, lo: T, hi: T) -> Result<()> {
    if value < lo || value > hi {
        return Err(UsageError(format!("{name} must be in [{lo}, {hi}], got {value}")).into());
    }
    Ok(())
}

/// The most dims a `--spectral-dim`/`--weight-norm-dim` value may name: PyTorch tensors have
/// at most 64 dims, so a dim is in [-64, 63].
pub const MAX_TENSOR_DIMS: i64 = 64;

/// Checks the N of a `--spectral-dim`/`--weight-norm-dim` value (`N` or `PREFIX=N`).
pub fn check_dim_flag(flag: &str, text: &str) -> Result<()> {
    let value = text.rsplit_once('=').map_or(text, |(_, v)| v).trim();
    let n: i64 = value.parse().map_err(|_| {
        UsageError(format!("{flag}: expected N or PREFIX=N with an integer N in [-64, 63], got {text:?}"))
    })?;
    check_range(&format!("{flag} {text}: N"), n, -MAX_TENSOR_DIMS, MAX_TENSOR_DIMS - 1)
}

/// The largest parity spec `norm-bench parity` reads (64 MiB).
pub const MAX_SPEC_BYTES: u64 = 64 << 20;

/// The largest PyTorch parity output `--reference` reads (1 GiB).
pub const MAX_REFERENCE_BYTES: u64 = 1 << 30;

/// The largest report config file (1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The text of `path`, refused (a [`UsageError`]) beyond `max` bytes, without reading
/// more than that (`/dev/zero` is refused, not read forever).
pub fn read_text_bounded(path: &Path, max: u64, what: &str) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).with_context(|| format!("reading {what} {}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(UsageError(format!("{what} {} is larger than the limit of {max} bytes", path.display())).into());
    }
    String::from_utf8(bytes).map_err(|e| UsageError(format!("{what} {} is not UTF-8: {e}", path.display())).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_value_and_the_bounds() {
        assert!(check_range("x", 5u64, 1, 5).is_ok());
        let e = check_range("--steps", 0u64, 1, 100).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some());
        assert_eq!(e.to_string(), "--steps must be in [1, 100], got 0");
    }

    #[test]
    fn dim_flags_are_bounded() {
        for ok in ["0", "-1", "63", "-64", "conv.0=1", "a=b=-2"] {
            assert!(check_dim_flag("--spectral-dim", ok).is_ok(), "{ok}");
        }
        for bad in ["64", "-65", "2147483648", "9223372036854775808", "x", "0=", "1.5"] {
            let e = check_dim_flag("--weight-norm-dim", bad).unwrap_err().to_string();
            assert!(e.contains("--weight-norm-dim") && e.contains(bad.rsplit('=').next().unwrap()), "{e}");
        }
    }

    #[test]
    fn reading_is_bounded() {
        let e = read_text_bounded(Path::new("/dev/zero"), 1024, "spec").unwrap_err();
        assert!(e.to_string().contains("larger than the limit of 1024 bytes"), "{e}");
    }
}
