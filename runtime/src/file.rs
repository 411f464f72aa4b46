//! Writing files safely.
//!
//! Every file Xenon writes (weights, checkpoints, histories, compiled bundles, plots) goes
//! through [`write_atomic`]: the bytes go to a temporary file beside the target, are
//! flushed to disk, and the temporary file is renamed over the target, so a crash or a
//! `kill -9` mid-save leaves the old file intact.
//!
//! What the target may be:
//! - nothing yet, or a regular file: written (an existing file keeps its permissions);
//! - a symbolic link (or a chain of them) to a regular file: the file the link points to
//!   is replaced, in its own directory, and the link is kept;
//! - anything else (a directory, a FIFO, a socket, a device, a link to one of those or a
//!   dangling link): refused with an [`std::io::ErrorKind::InvalidInput`] error saying what
//!   it is (`a FIFO, not a regular file: refusing to replace it`; like the standard
//!   library's errors it does not repeat the path), and nothing is written.
//!
//! Temporary files are named `.NAME.tmp-PID-N`. One left behind by a process that died
//! mid-save (on Linux: whose process no longer runs; elsewhere: older than a day) is
//! removed by the next save of the same target.

use std::fs::{File, OpenOptions};
use std::io::{Error, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes `bytes` to `path` atomically (see the [module documentation](self) for what
/// `path` may be): to a temporary file in the target's directory, flushed to disk, then
/// renamed over the target. On failure the temporary file is removed and the target is
/// untouched.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("xenon-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("w.bin");
/// xenon_runtime::file::write_atomic(&path, b"new").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"new");
/// // A directory is not a file to replace.
/// let err = xenon_runtime::file::write_atomic(&dir, b"x").unwrap_err();
/// assert!(err.to_string().starts_with("a directory, not a regular file"), "{err}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (target, existing) = resolve_target(path)?;
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| invalid("the path does not name a file".to_string()))?;
    remove_stale_temporaries(dir, &name);
    let (tmp, mut f) = create_temporary(dir, &name)?;
    let result = (|| {
        if let Some(meta) = &existing {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &target)?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidInput, msg)
}

/// The file to replace for `path` (the end of its symlinks) and its metadata when it
/// exists; an error when it exists and is not a regular file.
fn resolve_target(path: &Path) -> std::io::Result<(PathBuf, Option<std::fs::Metadata>)> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((path.to_path_buf(), None)),
        Err(e) => return Err(e),
    };
    if meta.file_type().is_symlink() {
        // Where the link leads, refused unless it is a regular file.
        let target = match std::fs::canonicalize(path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(invalid(
                    "a symbolic link to a file that does not exist: refusing to write through it"
                        .to_string(),
                ));
            }
            Err(e) => return Err(e),
        };
        let meta = std::fs::metadata(&target)?;
        if !meta.is_file() {
            return Err(invalid(format!(
                "a symbolic link to {}, which is {}: refusing to replace it",
                target.display(),
                kind_of(&meta)
            )));
        }
        return Ok((target, Some(meta)));
    }
    if !meta.is_file() {
        return Err(invalid(format!(
            "{}, not a regular file: refusing to replace it",
            kind_of(&meta)
        )));
    }
    Ok((path.to_path_buf(), Some(meta)))
}

/// What a file that is not a regular file is, in words ("a directory", "a FIFO", …).
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "a device";
        }
    }
    "not a regular file"
}

/// A new temporary file beside `name` in `dir`, created exclusively (never through an
/// existing file or link).
fn create_temporary(dir: &Path, name: &str) -> std::io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes the temporary files of earlier saves of `name` in `dir` whose process died
/// mid-save. Best effort: a file that cannot be removed stays.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        // `PID` (older releases) or `PID-N`.
        let Ok(pid) = rest.split('-').next().unwrap_or("").parse::<u32>() else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && pid != std::process::id() && is_stale(pid, &entry.path()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a temporary file of process `pid` is left over from a save that died.
fn is_stale(pid: u32, path: &Path) -> bool {
    if cfg!(target_os = "linux") {
        return !Path::new("/proc").join(pid.to_string()).exists();
    }
    const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > DAY)
}

/// Flushes a directory's entries (the rename) to disk where the platform allows it.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xenon-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replaces_a_regular_file_and_keeps_its_permissions() {
        let dir = scratch("regular");
        let p = dir.join("w.st");
        std::fs::write(&p, b"old").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Nothing else is left in the directory.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn writes_through_a_symlink_to_a_regular_file_and_keeps_the_link() {
        let dir = scratch("symlink");
        let real = dir.join("real.st");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.join("link.st");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        // A dangling link and a link to a directory are refused.
        let dangling = dir.join("dangling.st");
        std::os::unix::fs::symlink(dir.join("missing"), &dangling).unwrap();
        let e = write_atomic(&dangling, b"x").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        let to_dir = dir.join("to_dir");
        std::os::unix::fs::symlink(&dir, &to_dir).unwrap();
        let e = write_atomic(&to_dir, b"x").unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_fifo_and_a_device() {
        use std::os::unix::fs::FileTypeExt;
        let dir = scratch("fifo");
        let fifo = dir.join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let e = write_atomic(&fifo, b"x").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(
                e.to_string().starts_with("a FIFO, not a regular file"),
                "{e}"
            );
            let meta = std::fs::symlink_metadata(&fifo).unwrap();
            assert!(meta.file_type().is_fifo(), "the FIFO is still there");
        }
        let e = write_atomic(Path::new("/dev/null"), b"x").unwrap_err();
        assert!(
            e.to_string().starts_with("a device, not a regular file"),
            "{e}"
        );
        assert!(
            std::fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn removes_the_temporaries_of_dead_saves_only() {
        let dir = scratch("stale");
        let p = dir.join("w.st");
        // A process id that does not run (above Linux's pid_max) and this process's own.
        let dead = dir.join(".w.st.tmp-4194305");
        let dead_new = dir.join(".w.st.tmp-4194306-3");
        let other = dir.join(".other.st.tmp-4194305");
        for f in [&dead, &dead_new, &other] {
            std::fs::write(f, b"partial").unwrap();
        }
        write_atomic(&p, b"new").unwrap();
        if cfg!(target_os = "linux") {
            assert!(!dead.exists() && !dead_new.exists());
        }
        assert!(other.exists(), "another target's temporary is not touched");
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = scratch("fail");
        let missing = dir.join("no-such-dir").join("w.st");
        let e = write_atomic(&missing, b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
