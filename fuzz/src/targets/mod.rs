//! The target functions, one module per family of formats, and what they share: scratch
//! files for readers that only take a path, and the size caps that keep a target from
//! building what no test machine could hold.

pub mod aot;
pub mod data;
pub mod graph;
pub mod model_file;
pub mod weights;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most parameter elements a target builds a model with (`Model::new` fills every
/// one from its initializer): 2M, 8 MB of f32. Larger models are only built as graphs.
pub const MAX_MODEL_PARAMS: u128 = 2_000_000;

/// The most elements of one example a target builds a model for.
pub const MAX_EXAMPLE: u128 = 1 << 24;

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SCRATCH: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Where scratch folders go: `$XENON_FUZZ_SCRATCH`, else `/dev/shm` where it exists (a
/// memory file system: rewriting a file on ext4 flushes it to disk on every close), else
/// the system's temporary folder.
fn scratch_root() -> PathBuf {
    if let Some(d) = std::env::var_os("XENON_FUZZ_SCRATCH") {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && std::fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly()) {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// This thread's scratch folder (made on first use, under [`scratch_root`], named by
/// process and thread so that parallel tests do not share files).
pub fn scratch_dir() -> PathBuf {
    SCRATCH.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
                let dir = scratch_root().join(format!("xenon-fuzz-{}-{n}", std::process::id()));
                if std::fs::create_dir_all(&dir).is_err() {
                    let fallback =
                        std::env::temp_dir().join(format!("xenon-fuzz-{}-{n}", std::process::id()));
                    std::fs::create_dir_all(&fallback).expect("the temporary folder is writable");
                    return fallback;
                }
                dir
            })
            .clone()
    })
}

/// Writes `bytes` to the scratch file `name` (the same path every time) and returns it.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, bytes).expect("the scratch folder is writable");
    path
}

/// Removes this thread's scratch folder (at the end of a run).
pub fn remove_scratch() {
    SCRATCH.with(|s| {
        if let Some(dir) = s.borrow_mut().take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    });
}

/// The repository's root folder.
pub fn repo_dir() -> &'static Path {
    crate::fuzz_dir()
        .parent()
        .expect("fuzz/ lies in the repository")
}

/// The product of `dims`, saturating (a shape's element count without overflow).
pub fn elements(dims: &[usize]) -> u128 {
    dims.iter().fold(1u128, |a, &d| a.saturating_mul(d as u128))
}

/// Splits `bytes` at form feeds (`\x0c`) into exactly `n` parts (missing ones empty, the
/// last one keeping any further form feeds): how one input holds several files.
pub fn split_parts(bytes: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = bytes.splitn(n, |&b| b == 0x0c).collect();
    parts.resize(n, &[]);
    parts
}
