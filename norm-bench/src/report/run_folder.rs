//! The run folder `<out>/<run>/` ([`create_run_dir`]) and the pointers at the newest run,
//! `<out>/latest` (a symlink) and `<out>/LATEST` (a text file) ([`update_latest`]).

use super::export;
use super::machine;
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// Creates `<out>/<name>` (the UTC time of `now` unless `name` is given; a time that is
/// taken gets `-2`, `-3`, ...). Errors if a given name is taken.
pub(crate) fn create_run_dir(out: &Path, name: Option<&str>, now: u64) -> Result<(String, PathBuf)> {
    fs::create_dir_all(out).with_context(|| format!("creating the output folder {}", out.display()))?;
    let base = name.map(str::to_string).unwrap_or_else(|| machine::run_folder_name(now));
    for attempt in 1.. {
        let candidate = if attempt == 1 { base.clone() } else { format!("{base}-{attempt}") };
        let dir = out.join(&candidate);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok((candidate, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && name.is_none() => continue,
            Err(e) => return Err(e).with_context(|| format!("creating the run folder {}", dir.display())),
        }
    }
    unreachable!("the loop only ends by returning")
}

/// Points `<out>/latest` (a relative symlink, replaced atomically) and `<out>/LATEST` (a
/// text file with the name) at the run `name`.
pub(crate) fn update_latest(out: &Path, name: &str) -> Result<()> {
    export::write_atomic(&out.join("LATEST"), format!("{name}\n").as_bytes())?;
    #[cfg(unix)]
    {
        let tmp = out.join(".latest.tmp");
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(name, &tmp).with_context(|| format!("creating the symlink {}", tmp.display()))?;
        fs::rename(&tmp, out.join("latest")).with_context(|| format!("replacing {}", out.join("latest").display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("norm-bench-run-folder-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn run_folders_are_timestamps_and_latest_follows_them() {
        let out = scratch_dir("folders");
        let (first, dir) = create_run_dir(&out, None, 1_795_892_700).unwrap();
        assert_eq!(first, "2026-11-28T19-05-00Z");
        assert!(dir.is_dir());
        let (second, _) = create_run_dir(&out, None, 1_795_892_700).unwrap();
        assert_eq!(second, "2026-11-28T19-05-00Z-2");
        assert!(create_run_dir(&out, Some(&first), 0).is_err(), "a given name that is taken is an error");
        update_latest(&out, &first).unwrap();
        update_latest(&out, &second).unwrap();
        assert_eq!(fs::read_to_string(out.join("LATEST")).unwrap(), format!("{second}\n"));
        assert_eq!(fs::read_link(out.join("latest")).unwrap(), PathBuf::from(&second));
        fs::remove_dir_all(&out).unwrap();
    }
}
