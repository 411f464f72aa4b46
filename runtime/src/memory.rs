//! Checking a size before allocating it.
//!
//! Sizes that come from a model file, a flag or a data header (parameters, a program's
//! arena, optimizer state) are checked with [`check`] before anything is allocated, so a
//! model with `nout: 1000000000000` is a clear error naming what needed the memory rather
//! than an abort in the allocator.

use std::fmt;

/// A request for more memory than the machine has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} would take {}, more than this machine's {} of memory",
    human(*.bytes),
    human(*.available)
)]
pub struct MemoryError {
    /// What needed the memory (`"the parameters of the model (largest: …)"`).
    pub what: String,
    /// The bytes asked for (`u128`, so that a sum of huge sizes does not overflow).
    pub bytes: u128,
    /// The limit it was checked against, in bytes.
    pub available: u128,
}

/// The machine's physical memory in bytes (Linux: `MemTotal` of `/proc/meminfo`), or
/// `None` where it cannot be read.
pub fn physical_memory() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u128 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The most bytes one process may allocate at once: the machine's physical memory, or,
/// where that is unknown, `isize::MAX` (what Rust's allocations allow).
pub fn limit() -> u128 {
    physical_memory().unwrap_or(isize::MAX as u128)
}

/// `Ok` when `bytes` fit in [`limit`]; otherwise the error naming `what`.
///
/// ```
/// use xenon_runtime::memory;
/// assert!(memory::check("a small buffer", 1 << 20).is_ok());
/// let e = memory::check("the parameters", u128::MAX).unwrap_err();
/// assert!(e.to_string().starts_with("the parameters would take "), "{e}");
/// ```
pub fn check(what: impl fmt::Display, bytes: u128) -> Result<(), MemoryError> {
    let available = limit();
    if bytes > available {
        return Err(MemoryError {
            what: what.to_string(),
            bytes,
            available,
        });
    }
    Ok(())
}

/// A byte count for people: `512 bytes`, `3.1 MiB`, `29.2 TiB`.
pub fn human(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machines_memory() {
        if cfg!(target_os = "linux") {
            let m = physical_memory().expect("/proc/meminfo has MemTotal");
            assert!(m > 1 << 26, "{m}");
        }
        assert!(check("x", limit()).is_ok());
        assert!(check("x", limit() + 1).is_err());
    }

    #[test]
    fn names_sizes_for_people() {
        assert_eq!(human(1000), "1000 bytes");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(human(29 << 40), "29.0 TiB");
        assert_eq!(
            human(u128::MAX),
            format!("{:.1} EiB", u128::MAX as f64 / 2f64.powi(60))
        );
    }
}
