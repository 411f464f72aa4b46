//! What turns a dying process into a saved input: an allocator that refuses huge
//! allocations, signal handlers, and a watchdog for hangs.
//!
//! The engine tells this module which input is running ([`begin`], [`end`]). Then
//!
//! * [`CappedAlloc`] (the engine binary's global allocator): an allocation larger than the
//!   single-allocation cap, or one that takes the live total above the total cap, writes
//!   the running input to `fuzz/artifacts/<target>/.pending-alloc` and aborts;
//! * fatal signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT: a stack overflow, an abort)
//!   write the running input to `.pending-signal`, then let the previous handler (Rust's
//!   stack-overflow report) or the default action end the process;
//! * the [`watchdog`] thread saves an input that runs longer than the timeout as
//!   `hang-<hash>` and exits with status [`HANG_EXIT`].
//!
//! The allocator and the signal handlers only use async-signal-safe calls (`open`,
//! `write`, `close`) on paths prepared by [`arm`], so they neither allocate nor lock. The
//! parent process (or the next run) renames a `.pending-*` file to `<kind>-<hash>`
//! ([`collect_pending`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

/// The exit status after a hang.
pub const HANG_EXIT: i32 = 70;

/// The default cap on one allocation: 2 GiB.
pub const DEFAULT_SINGLE_CAP: usize = 2 << 30;
/// The default cap on all live allocations together: 8 GiB.
pub const DEFAULT_TOTAL_CAP: usize = 8 << 30;

static SINGLE_CAP: AtomicUsize = AtomicUsize::new(usize::MAX);
static TOTAL_CAP: AtomicUsize = AtomicUsize::new(usize::MAX);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static TRIPPED: AtomicBool = AtomicBool::new(false);

static INPUT_PTR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static INPUT_LEN: AtomicUsize = AtomicUsize::new(0);
/// Milliseconds since [`epoch`] when the running input started, plus one; 0 when idle.
static STARTED: AtomicU64 = AtomicU64::new(0);
/// Counts runs, so that the watchdog can tell one run from the next.
static RUN: AtomicU64 = AtomicU64::new(0);

static PENDING_ALLOC: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
static PENDING_SIGNAL: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// The allocator of the engine and AFL binaries: [`System`], with the caps described in the
/// module docs (none until [`arm`] sets them).
pub struct CappedAlloc;

unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            if new_size > SINGLE_CAP.load(Relaxed) {
                huge(new_size, b"one allocation above the cap");
            }
            let grow = new_size - layout.size();
            if LIVE.load(Relaxed).saturating_add(grow) > TOTAL_CAP.load(Relaxed) {
                huge(new_size, b"live allocations above the total cap");
            }
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Relaxed);
            LIVE.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
}

#[inline]
fn check(size: usize) {
    if size > SINGLE_CAP.load(Relaxed) {
        huge(size, b"one allocation above the cap");
    }
    if LIVE.load(Relaxed).saturating_add(size) > TOTAL_CAP.load(Relaxed) {
        huge(size, b"live allocations above the total cap");
    }
}

#[cold]
fn huge(size: usize, why: &[u8]) {
    if TRIPPED.swap(true, SeqCst) {
        return; // already on the way out
    }
    if STARTED.load(SeqCst) == 0 {
        // Not inside a run (the engine's own work): let it through.
        TRIPPED.store(false, SeqCst);
        return;
    }
    save_raw(PENDING_ALLOC.load(SeqCst));
    let mut buf = [0u8; 20];
    write_stderr(b"\nxenon-fuzz: allocation of ");
    write_stderr(itoa(size, &mut buf));
    write_stderr(b" bytes (");
    write_stderr(why);
    write_stderr(b"); the input is saved as .pending-alloc, aborting\n");
    unsafe { libc::abort() };
}

fn itoa(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn write_stderr(bytes: &[u8]) {
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// Writes the running input to the NUL-terminated `path` with plain system calls.
fn save_raw(path: *const libc::c_char) {
    let (ptr, len) = (INPUT_PTR.load(SeqCst), INPUT_LEN.load(SeqCst));
    if path.is_null() || ptr.is_null() {
        return;
    }
    unsafe {
        let fd = libc::open(path, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, 0o644);
        if fd < 0 {
            return;
        }
        let mut done = 0;
        while done < len {
            let n = libc::write(fd, ptr.add(done).cast(), len - done);
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
        libc::close(fd);
    }
}

const SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
];

/// The handlers in place before [`arm`] (index as in [`SIGNALS`]).
static mut PREVIOUS: [Option<libc::sigaction>; 5] = [None; 5];

extern "C" fn on_signal(sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if !TRIPPED.load(SeqCst) && STARTED.load(SeqCst) != 0 {
        save_raw(PENDING_SIGNAL.load(SeqCst));
        let mut buf = [0u8; 20];
        write_stderr(b"\nxenon-fuzz: signal ");
        write_stderr(itoa(sig as usize, &mut buf));
        write_stderr(b" while running an input; it is saved as .pending-signal\n");
    }
    // Hand the signal to the handler that was there before (Rust's stack-overflow report,
    // or the default action): returning re-runs a faulting instruction, and abort()
    // raises SIGABRT again.
    let i = SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    unsafe {
        let prev = (*std::ptr::addr_of!(PREVIOUS))[i];
        match prev {
            Some(p) => libc::sigaction(sig, &p, std::ptr::null_mut()),
            None => {
                libc::signal(sig, libc::SIG_DFL);
                0
            }
        };
    }
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

/// Prepares to guard runs of target `name`: the caps (`None`: no cap), the `.pending-*`
/// paths in `artifacts`, and the signal handlers (installed once per process).
pub fn arm(artifacts: &Path, single_cap: Option<usize>, total_cap: Option<usize>) {
    let _ = std::fs::create_dir_all(artifacts);
    let leak = |name: &str| {
        let p = artifacts.join(name);
        CString::new(p.as_os_str().as_encoded_bytes())
            .expect("artifact paths have no NUL")
            .into_raw()
    };
    PENDING_ALLOC.store(leak(".pending-alloc"), SeqCst);
    PENDING_SIGNAL.store(leak(".pending-signal"), SeqCst);
    let _ = epoch();
    SINGLE_CAP.store(single_cap.unwrap_or(usize::MAX), SeqCst);
    TOTAL_CAP.store(total_cap.unwrap_or(usize::MAX), SeqCst);
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, SeqCst) {
        return;
    }
    for (i, &sig) in SIGNALS.iter().enumerate() {
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, &action, &mut old) == 0 {
                (*std::ptr::addr_of_mut!(PREVIOUS))[i] = Some(old);
            }
        }
    }
}

/// Marks `input` as running (its bytes must stay in place until [`end`]).
pub fn begin(input: &[u8]) {
    INPUT_PTR.store(input.as_ptr() as *mut u8, SeqCst);
    INPUT_LEN.store(input.len(), SeqCst);
    RUN.fetch_add(1, SeqCst);
    STARTED.store(now_ms(), SeqCst);
}

/// Marks the running input as done.
pub fn end() {
    STARTED.store(0, SeqCst);
}

/// Starts the watchdog thread: an input running longer than `timeout` is saved as
/// `hang-<hash>` in `artifacts` and the process exits with [`HANG_EXIT`].
pub fn watchdog(artifacts: PathBuf, timeout: Duration) {
    std::thread::Builder::new()
        .name("xenon-fuzz watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let started = STARTED.load(SeqCst);
                if started == 0 || now_ms().saturating_sub(started) < timeout.as_millis() as u64 {
                    continue;
                }
                let run = RUN.load(SeqCst);
                let (ptr, len) = (INPUT_PTR.load(SeqCst), INPUT_LEN.load(SeqCst));
                // SAFETY: the engine keeps the running input's bytes in place until `end`
                // (its buffer never reallocates); the run is checked again after the copy.
                let bytes = unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
                if RUN.load(SeqCst) != run || STARTED.load(SeqCst) != started {
                    continue;
                }
                let path = artifacts.join(format!("hang-{:016x}", crate::fnv64(&bytes)));
                let _ = std::fs::write(&path, &bytes);
                eprintln!(
                    "\nxenon-fuzz: an input ran longer than {:.1} s; saved as {}",
                    timeout.as_secs_f64(),
                    path.display()
                );
                println!("hang {}", path.display());
                use std::io::Write;
                let _ = std::io::stdout().flush();
                unsafe { libc::_exit(HANG_EXIT) };
            }
        })
        .expect("a thread starts");
}

/// Renames the `.pending-*` files of `artifacts` to `<kind>-<hash>` (`alloc`, `crash`);
/// returns the new paths.
pub fn collect_pending(artifacts: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (pending, kind) in [(".pending-alloc", "alloc"), (".pending-signal", "crash")] {
        let p = artifacts.join(pending);
        if let Ok(bytes) = std::fs::read(&p) {
            let to = artifacts.join(format!("{kind}-{:016x}", crate::fnv64(&bytes)));
            if std::fs::rename(&p, &to).is_ok() {
                out.push(to);
            }
        }
    }
    out
}

/// Bytes allocated and not yet freed (through [`CappedAlloc`]).
pub fn live_bytes() -> usize {
    LIVE.load(Relaxed)
}
