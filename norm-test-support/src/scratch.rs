//! Scratch folders for tests that write files.

use anyhow::Result;
use std::path::{Path, PathBuf};

/// An empty folder `<parent>/<name>-<pid>`: whatever an earlier run left there is removed
/// first. The test removes it when it passes (`std::fs::remove_dir_all(&dir).ok()`), so a
/// failing run leaves its files behind for inspection. [`scratch_dir!`](crate::scratch_dir)
/// puts it under cargo's target tmp folder.
pub fn fresh_dir(parent: impl AsRef<Path>, name: &str) -> Result<PathBuf> {
    let dir = parent.as_ref().join(format!("{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `scratch_dir!("name")`: [`fresh_dir`] under the calling test's or bench's
/// `CARGO_TARGET_TMPDIR` (`target/tmp`), i.e. an empty `target/tmp/name-<pid>`.
#[macro_export]
macro_rules! scratch_dir {
    ($name:expr) => {
        $crate::fresh_dir(env!("CARGO_TARGET_TMPDIR"), $name)
    };
}
