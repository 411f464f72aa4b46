//! Xenon's C API: the functions a bundle's C header declares (see `xenon compile`).
//!
//! Build the static library with `cargo build --release -p xenon-capi`
//! (`target/release/libxenon_capi.a`) and link it with the bundle's object file:
//!
//! ```text
//! cc -O2 main.c bundle/mnist_mlp.o target/release/libxenon_capi.a -lm -lpthread -ldl
//! ```
//!
//! Every function returns a [`Status`] and never unwinds into C: a panic inside becomes
//! `XENON_ERR_INTERNAL`. Null pointers, wrong counts, sizes and misaligned buffers are
//! errors (`XENON_ERR_ARGUMENT`, `XENON_ERR_SIZE`); the failure's message is kept per
//! thread for [`xenon_last_error`].

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use xenon_runtime::DType;
use xenon_runtime::aot::artifact::ContainerError;
use xenon_runtime::aot::{BundleDesc, BundleError, CompiledModel, LoadOptions, TensorInfo};
use xenon_runtime::exec::{ExecError, Slice, SliceMut};

/// A status code (`xenon_status` in C).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    Argument = 1,
    Io = 2,
    Truncated = 3,
    NotABundle = 4,
    FormatVersion = 5,
    XenonVersion = 6,
    Checksum = 7,
    Isa = 8,
    Object = 9,
    Malformed = 10,
    Weights = 11,
    Size = 12,
    NonFinite = 13,
    Run = 14,
    Internal = 15,
}

/// The names of the statuses, as in the C header.
const NAMES: [&CStr; 16] = [
    c"XENON_OK",
    c"XENON_ERR_ARGUMENT",
    c"XENON_ERR_IO",
    c"XENON_ERR_TRUNCATED",
    c"XENON_ERR_NOT_A_BUNDLE",
    c"XENON_ERR_FORMAT_VERSION",
    c"XENON_ERR_XENON_VERSION",
    c"XENON_ERR_CHECKSUM",
    c"XENON_ERR_ISA",
    c"XENON_ERR_OBJECT",
    c"XENON_ERR_MALFORMED",
    c"XENON_ERR_WEIGHTS",
    c"XENON_ERR_SIZE",
    c"XENON_ERR_NON_FINITE",
    c"XENON_ERR_RUN",
    c"XENON_ERR_INTERNAL",
];

/// The status for a bundle error.
pub fn status_of(e: &BundleError) -> Status {
    match e {
        BundleError::Io { .. } => Status::Io,
        BundleError::Container(c) => match c {
            ContainerError::Truncated { .. } => Status::Truncated,
            ContainerError::BadMagic => Status::NotABundle,
            ContainerError::FormatVersion { .. } => Status::FormatVersion,
            ContainerError::Checksum { .. } => Status::Checksum,
            ContainerError::Header(_) | ContainerError::MissingSection(_) => Status::Malformed,
        },
        BundleError::FormatVersion { .. } => Status::FormatVersion,
        BundleError::XenonVersion { .. } => Status::XenonVersion,
        BundleError::Isa { .. } => Status::Isa,
        BundleError::Object(_) => Status::Object,
        BundleError::Malformed(_) | BundleError::Program(_) => Status::Malformed,
        BundleError::Weights(_) => Status::Weights,
        BundleError::Exec(x) => match x {
            ExecError::Arity { .. }
            | ExecError::InputType { .. }
            | ExecError::OutputType { .. } => Status::Size,
            ExecError::NonFinite { .. } => Status::NonFinite,
            _ => Status::Run,
        },
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs `f`, turning an error or a panic into a status and the thread's last error.
fn guard(f: impl FnOnce() -> Result<(), (Status, String)>) -> Status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error("");
            Status::Ok
        }
        Ok(Err((s, msg))) => {
            set_error(&msg);
            s
        }
        Err(_) => {
            set_error("internal error (a panic in the Xenon runtime)");
            Status::Internal
        }
    }
}

fn bundle_err(e: BundleError) -> (Status, String) {
    (status_of(&e), e.to_string())
}

fn arg(msg: impl Into<String>) -> (Status, String) {
    (Status::Argument, msg.into())
}

/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn path_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, (Status, String)> {
    if p.is_null() {
        return Err(arg(format!("{what} is null")));
    }
    // SAFETY: non-null and NUL-terminated (the caller's contract).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| arg(format!("{what} is not UTF-8")))
}

/// A loaded model (`xenon_model` in C).
pub struct XenonModel(CompiledModel);

/// Writes a new model to `*out`.
///
/// # Safety
/// `out` is null or valid for writing one pointer.
unsafe fn put(out: *mut *mut XenonModel, m: CompiledModel) -> Result<(), (Status, String)> {
    // SAFETY: checked non-null by the callers before loading.
    unsafe { *out = Box::into_raw(Box::new(XenonModel(m))) };
    Ok(())
}

/// Opens a bundle linked into this program (`&<name>_bundle`) with its weights file.
///
/// # Safety
/// `bundle` is null or the descriptor a Xenon bundle object exports; `weights_path` is
/// null or NUL-terminated; `out` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xenon_open_linked(
    bundle: *const BundleDesc,
    weights_path: *const c_char,
    out: *mut *mut XenonModel,
) -> Status {
    guard(|| {
        if bundle.is_null() || out.is_null() {
            return Err(arg("bundle or out is null"));
        }
        // SAFETY: caller's contract.
        let path = unsafe { path_arg(weights_path, "weights_path") }?;
        let bytes = std::fs::read(path).map_err(|e| (Status::Io, format!("{path}: {e}")))?;
        // SAFETY: a linked descriptor lives as long as the program (caller's contract).
        let desc: &'static BundleDesc = unsafe { &*bundle };
        let m = unsafe { CompiledModel::from_linked(desc, &bytes, &LoadOptions::default()) }
            .map_err(bundle_err)?;
        unsafe { put(out, m) }
    })
}

/// Opens a self-contained artifact (`<name>.xnb`) from a path.
///
/// # Safety
/// `path` is null or NUL-terminated; `out` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xenon_open(path: *const c_char, out: *mut *mut XenonModel) -> Status {
    guard(|| {
        if out.is_null() {
            return Err(arg("out is null"));
        }
        let path = unsafe { path_arg(path, "artifact_path") }?;
        let m = CompiledModel::open(path, &LoadOptions::default()).map_err(bundle_err)?;
        unsafe { put(out, m) }
    })
}

/// Checks one buffer of the C caller against a tensor's declaration.
fn check_buffer(
    what: &str,
    i: usize,
    info: &TensorInfo,
    ptr: *const u8,
    bytes: usize,
) -> Result<(), (Status, String)> {
    if ptr.is_null() {
        return Err(arg(format!("{what} {i} ({:?}) is null", info.name)));
    }
    if bytes != info.bytes() {
        return Err((
            Status::Size,
            format!(
                "{what} {i} ({:?}) is {bytes} bytes; the bundle needs {} ({} {:?})",
                info.name,
                info.bytes(),
                info.dtype,
                info.shape
            ),
        ));
    }
    if !(ptr as usize).is_multiple_of(info.dtype.size_bytes()) {
        return Err(arg(format!(
            "{what} {i} ({:?}) is not aligned for {}",
            info.name, info.dtype
        )));
    }
    Ok(())
}

/// Runs the model (see the C header for the contract).
///
/// # Safety
/// `model` is null or from `xenon_open*`; `inputs`/`input_bytes` are null or hold
/// `num_inputs` entries, each input pointing to at least its stated bytes; likewise the
/// outputs, writable, not overlapping the inputs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xenon_run(
    model: *mut XenonModel,
    inputs: *const *const u8,
    input_bytes: *const usize,
    num_inputs: usize,
    outputs: *const *mut u8,
    output_bytes: *const usize,
    num_outputs: usize,
) -> Status {
    guard(|| {
        if model.is_null() {
            return Err(arg("model is null"));
        }
        // SAFETY: caller's contract.
        let m = unsafe { &mut (*model).0 };
        let (ni, no) = (m.manifest().inputs.len(), m.manifest().outputs.len());
        if num_inputs != ni || num_outputs != no {
            return Err((
                Status::Size,
                format!(
                    "{num_inputs} inputs and {num_outputs} outputs given; the bundle has {ni} and {no}"
                ),
            ));
        }
        if (ni > 0 && (inputs.is_null() || input_bytes.is_null()))
            || (no > 0 && (outputs.is_null() || output_bytes.is_null()))
        {
            return Err(arg("an input or output array is null"));
        }
        let (ip, ib, op, ob) = unsafe {
            (
                slice_or_empty(inputs, ni),
                slice_or_empty(input_bytes, ni),
                slice_or_empty(outputs, no),
                slice_or_empty(output_bytes, no),
            )
        };
        // The slices borrow the caller's memory, not the manifest: no copy of it per run.
        let manifest = m.manifest();
        let mut ins = Vec::with_capacity(ni);
        for (i, info) in manifest.inputs.iter().enumerate() {
            check_buffer("input", i, info, ip[i], ib[i])?;
            // SAFETY: non-null, aligned, and `info.bytes()` bytes long (checked above and
            // the caller's contract).
            ins.push(unsafe { typed(info.dtype, ip[i], info.len()) });
        }
        let mut outs = Vec::with_capacity(no);
        for (j, info) in manifest.outputs.iter().enumerate() {
            check_buffer("output", j, info, op[j], ob[j])?;
            // SAFETY: as above, writable.
            outs.push(unsafe { typed_mut(info.dtype, op[j], info.len()) });
        }
        m.run(&ins, &mut outs).map_err(bundle_err)
    })
}

/// # Safety
/// `p` is valid for `n` elements when `n > 0`.
unsafe fn slice_or_empty<'a, T>(p: *const T, n: usize) -> &'a [T] {
    if n == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(p, n) }
    }
}

/// # Safety
/// `p` points to `len` aligned elements of `dtype`.
unsafe fn typed<'a>(dtype: DType, p: *const u8, len: usize) -> Slice<'a> {
    unsafe {
        match dtype {
            DType::F32 => Slice::F32(std::slice::from_raw_parts(p as *const f32, len)),
            DType::F64 => Slice::F64(std::slice::from_raw_parts(p as *const f64, len)),
            DType::I32 => Slice::I32(std::slice::from_raw_parts(p as *const i32, len)),
        }
    }
}

/// # Safety
/// `p` points to `len` aligned, writable elements of `dtype`.
unsafe fn typed_mut<'a>(dtype: DType, p: *mut u8, len: usize) -> SliceMut<'a> {
    unsafe {
        match dtype {
            DType::F32 => SliceMut::F32(std::slice::from_raw_parts_mut(p as *mut f32, len)),
            DType::F64 => SliceMut::F64(std::slice::from_raw_parts_mut(p as *mut f64, len)),
            DType::I32 => SliceMut::I32(std::slice::from_raw_parts_mut(p as *mut i32, len)),
        }
    }
}

/// Writes the model's current weights (safetensors) atomically.
///
/// # Safety
/// `model` is null or from `xenon_open*`; `path` is null or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xenon_save_weights(
    model: *const XenonModel,
    path: *const c_char,
) -> Status {
    guard(|| {
        if model.is_null() {
            return Err(arg("model is null"));
        }
        let path = unsafe { path_arg(path, "path") }?;
        unsafe { &(*model).0 }
            .save_weights(path)
            .map_err(bundle_err)
    })
}

/// The calling thread's last failure message (`""` after a success). Valid until the
/// thread's next call into the API.
#[unsafe(no_mangle)]
pub extern "C" fn xenon_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A status's name; `"XENON_ERR_UNKNOWN"` for a value outside the enum.
#[unsafe(no_mangle)]
pub extern "C" fn xenon_status_name(status: i32) -> *const c_char {
    usize::try_from(status)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or(c"XENON_ERR_UNKNOWN".as_ptr(), |n| n.as_ptr())
}

/// Frees a model; null is ignored.
///
/// # Safety
/// `model` is null or from `xenon_open*`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn xenon_free(model: *mut XenonModel) {
    if !model.is_null() {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(unsafe { Box::from_raw(model) })
        }));
    }
}
