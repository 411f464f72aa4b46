//! What the executors of one process share: one OpenCL context per device, and every
//! program built in it, keyed by the generated source and the build options.
//!
//! A second executor for the same device and the same kernels — the evaluation program
//! next to a training program, a model compiled again, the parity tests — then builds
//! nothing: OpenCL C compilation is the slowest part of creating an executor (hundreds of
//! milliseconds per program on some drivers). Builds happen under one lock, which also
//! keeps drivers that are not thread-safe during compilation out of trouble. Failed builds
//! are not kept (the next attempt reports the build log again). The cache holds at most
//! [`MAX_PROGRAMS`] programs; when full it starts over.

use super::{device_error, ocl_error};
use crate::exec::ExecError;
use ocl::core::{self, Context, DeviceId, PlatformId};
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The most programs kept (a few per model; more means many different models in one
/// process, and starting over costs only rebuilds).
pub const MAX_PROGRAMS: usize = 512;

/// `(context, build options, source)`.
type Key = (usize, String, String);

#[derive(Default)]
struct Shared {
    /// By device handle.
    contexts: HashMap<usize, Context>,
    programs: HashMap<Key, core::Program>,
}

fn shared() -> MutexGuard<'static, Shared> {
    static S: OnceLock<Mutex<Shared>> = OnceLock::new();
    S.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The process's context for `device` of `platform`, created on first use.
pub(super) fn context(platform: PlatformId, device: DeviceId) -> Result<Context, ExecError> {
    let mut s = shared();
    let key = device.as_raw() as usize;
    if let Some(c) = s.contexts.get(&key) {
        return Ok(c.clone());
    }
    let props = core::ContextProperties::new().platform(platform);
    let context = core::create_context(Some(&props), &[device], None, None)
        .map_err(|e| ocl_error("creating the context", &e))?;
    s.contexts.insert(key, context.clone());
    Ok(context)
}

/// `source` built with `options` for `device` in `context`: the cached program, or one
/// built now (and kept). The flag says whether it came from the cache. A failed build is an
/// error naming `what`, with the compiler's log.
pub(super) fn program(
    context: &Context,
    device: DeviceId,
    source: &str,
    options: &str,
    what: &str,
) -> Result<(core::Program, bool), ExecError> {
    let mut s = shared();
    let key: Key = (
        context.as_ptr() as usize,
        options.to_string(),
        source.to_string(),
    );
    if let Some(p) = s.programs.get(&key) {
        return Ok((p.clone(), true));
    }
    let program = build(context, device, source, options, what)?;
    if s.programs.len() >= MAX_PROGRAMS {
        s.programs.clear();
    }
    s.programs.insert(key, program.clone());
    Ok((program, false))
}

/// Builds `source` for `device`, or an error with the build log that names `what`.
fn build(
    context: &Context,
    device: DeviceId,
    source: &str,
    options: &str,
    what: &str,
) -> Result<core::Program, ExecError> {
    let src = CString::new(source)
        .map_err(|_| device_error(format!("{what}: the source holds a NUL byte")))?;
    let opts = CString::new(options)
        .map_err(|_| device_error(format!("{what}: the build options hold a NUL byte")))?;
    let program = core::create_program_with_source(context, &[src])
        .map_err(|e| ocl_error(&format!("{what}: creating the program"), &e))?;
    if let Err(e) = core::build_program(&program, Some(&[device]), &opts, None, None) {
        let log = match core::get_program_build_info(
            &program,
            device,
            core::ProgramBuildInfo::BuildLog,
        ) {
            Ok(core::ProgramBuildInfoResult::BuildLog(log)) => log,
            _ => e.to_string(),
        };
        let mut reason = format!("{what} failed to build:\n{}", log.trim());
        if let Some((line, text)) = first_error_line(&log, source) {
            reason.push_str(&format!("\ngenerated line {line}: {}", text.trim()));
        }
        return Err(device_error(reason));
    }
    Ok(program)
}

/// The line number and text of the source line the first error of a build log points at
/// (compilers write `FILE:LINE:COLUMN: error: …` or `error: FILE:LINE:COLUMN: …`).
fn first_error_line<'s>(log: &str, source: &'s str) -> Option<(usize, &'s str)> {
    log.lines().filter(|l| l.contains("error")).find_map(|l| {
        let parts: Vec<&str> = l.split(':').collect();
        let line = parts.windows(2).skip(1).find_map(|w| {
            let line = w[0].trim().parse::<usize>().ok()?;
            w[1].trim().parse::<usize>().ok()?;
            Some(line)
        })?;
        Some((line, source.lines().nth(line.checked_sub(1)?)?))
    })
}

#[cfg(test)]
mod tests {
    use super::first_error_line;

    #[test]
    fn the_first_error_names_its_source_line() {
        let source = "__kernel void xk() {\n  float a = 1;\n  b = a;\n}";
        let log = "<source>:3:3: error: use of undeclared identifier 'b'\n  b = a;\n  ^\n\
                   <source>:2:9: error: later";
        assert_eq!(first_error_line(log, source), Some((3, "  b = a;")));
        let pocl = "error: /tmp/kcache/k.cl:3:5: use of undeclared identifier 'b'";
        assert_eq!(first_error_line(pocl, source), Some((3, "  b = a;")));
        assert_eq!(first_error_line("warning: nothing", source), None);
        assert_eq!(first_error_line("<source>:9:1: error: x", source), None);
        assert_eq!(first_error_line("<source>:0:1: error: x", source), None);
    }
}
