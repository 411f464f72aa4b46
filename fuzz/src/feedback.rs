//! A poor man's coverage signal for the built-in engine: targets [`note`] what happened
//! (which reader stage succeeded, the text of an error with its numbers blanked), and the
//! engine keeps an input that produced a note it had not seen. Outside the engine (tests,
//! AFL) notes cost one thread-local check.

use std::cell::RefCell;
use std::fmt::Display;

thread_local! {
    static NOTES: RefCell<Option<Vec<u64>>> = const { RefCell::new(None) };
    static OKS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Starts collecting notes on this thread (the engine, before each run).
pub fn start() {
    OKS.with(|o| o.set(0));
    NOTES.with(|n| {
        let mut n = n.borrow_mut();
        match n.as_mut() {
            Some(v) => v.clear(),
            None => *n = Some(Vec::new()),
        }
    });
}

/// The notes of the current run, as hashes (empty when not collecting).
pub fn take() -> Vec<u64> {
    NOTES.with(|n| {
        n.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    })
}

/// How many stages of the current run succeeded (how deep the input got: the engine
/// prefers deep inputs as parents).
pub fn oks() -> u32 {
    OKS.with(|o| o.get())
}

/// Whether notes are being collected on this thread.
pub fn enabled() -> bool {
    NOTES.with(|n| n.borrow().is_some())
}

/// `text` without what varies from input to input: digits, and whatever is quoted
/// (`"..."`, `'...'`, `` `...` ``) becomes `_`.
pub fn blank(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                out.push('_');
            }
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None if c.is_ascii_digit() => {}
            None => out.push(c),
        }
    }
    out
}

/// Records `what` (see [`blank`]: `"shape [3, 4]"` and `"shape [5, 6]"` are the same
/// note; at most the first 160 bytes count).
pub fn note(what: &str) {
    NOTES.with(|n| {
        if let Some(v) = n.borrow_mut().as_mut() {
            let blanked = blank(what);
            v.push(crate::fnv64(&blanked.as_bytes()[..blanked.len().min(160)]));
        }
    });
}

/// Whether `XENON_FUZZ_TRACE` is set: every outcome is then printed to stderr (to see
/// how far an input gets).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("XENON_FUZZ_TRACE").is_some())
}

/// Records a stage's outcome: `"<stage>: ok"` or `"<stage>: <error>"`.
pub fn outcome<T, E: Display>(stage: &str, r: &Result<T, E>) {
    if trace() {
        match r {
            Ok(_) => eprintln!("  {stage}: ok"),
            Err(e) => eprintln!("  {stage}: {e}"),
        }
    }
    if !enabled() {
        return;
    }
    match r {
        Ok(_) => {
            OKS.with(|o| o.set(o.get() + 1));
            note(&format!("{stage}: ok"))
        }
        Err(e) => note(&format!("{stage}: {e}")),
    }
}
