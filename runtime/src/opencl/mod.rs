//! The OpenCL executor: runs a validated [`Program`] on one OpenCL device.
//!
//! Loop steps run OpenCL C kernels generated elsewhere (entry `xk`, see
//! [`OclExecutor::new`]); GEMM steps and library steps run the runtime's own kernels
//! ([`kernels`]), built once per executor. Constants and temporaries live in one device
//! buffer (the arena) laid out by the program's memory plan; every kernel takes each
//! buffer as a `(__global T*, ulong element_offset)` pair into the arena or an input's own
//! buffer. Every OpenCL failure becomes [`ExecError::Device`] with backend `"opencl"`,
//! naming what failed; nothing here panics on a device error or a missing platform.

mod cache;
pub mod kernels;
mod stage;

/// The `ocl` crate this executor is built on (for tests and tools that drive a device
/// directly).
pub use ocl;

use crate::exec::{ExecError, IndexError};
use crate::kernel::Scalar;
use crate::program::{BufferKind, LibraryStep, Program, Step};
use crate::{DType, Tensor, TensorData};
use kernels::{GEMM_CONFIGS, GemmConfig, RuntimeNeeds};
use ocl::core::{
    self, ArgVal, CommandQueue, Context, DeviceId, Event, Kernel, Mem, MemFlags, PlatformId,
    PlatformInfo,
};
use stage::Staging;
use std::collections::HashMap;
use std::fmt;

const BACKEND: &str = "opencl";

/// `ExecError::Device` for the OpenCL backend.
fn device_error(reason: impl Into<String>) -> ExecError {
    ExecError::Device {
        backend: BACKEND,
        reason: reason.into(),
    }
}

/// Status codes that mean the device (or the host side of the driver) ran out of memory.
const OUT_OF_MEMORY: [i32; 4] = [
    -4,  // CL_MEM_OBJECT_ALLOCATION_FAILURE
    -5,  // CL_OUT_OF_RESOURCES
    -6,  // CL_OUT_OF_HOST_MEMORY
    -61, // CL_INVALID_BUFFER_SIZE: larger than the device's largest allocation
];

/// An `ocl` error while doing `what`, as an [`ExecError::Device`]; out-of-memory statuses
/// say so.
fn ocl_error(what: &str, e: &core::Error) -> ExecError {
    let oom = e
        .api_status()
        .is_some_and(|s| OUT_OF_MEMORY.contains(&(s as i32)));
    let text = e.to_string();
    let text = text.trim();
    if oom {
        device_error(format!("out of device memory: {what}: {text}"))
    } else {
        device_error(format!("{what}: {text}"))
    }
}

/// One OpenCL device, as [`devices`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Position in [`devices`]'s list (the `--device N` number).
    pub index: usize,
    /// Platform name (`Portable Computing Language`, `NVIDIA CUDA`, …).
    pub platform: String,
    /// Platform version string (`OpenCL 3.0 PoCL …`).
    pub platform_version: String,
    /// Device name.
    pub name: String,
    /// Device vendor.
    pub vendor: String,
    /// `CPU`, `GPU`, `accelerator`, `custom` or `default`.
    pub kind: String,
    /// Global memory in bytes.
    pub global_mem_bytes: u64,
    /// Local (work-group shared) memory in bytes.
    pub local_mem_bytes: u64,
    /// Compute units.
    pub compute_units: u32,
    /// Largest work-group size.
    pub max_work_group_size: usize,
    /// OpenCL C version string (`OpenCL C 1.2 …`).
    pub opencl_c_version: String,
    /// Whether the device has double precision (`cl_khr_fp64`).
    pub fp64: bool,
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} ({}, {}) on {} [{}]: {} CUs, {} MiB global, {} KiB local, work-groups ≤ {}, {}{}",
            self.index,
            self.name.trim(),
            self.kind,
            self.vendor.trim(),
            self.platform.trim(),
            self.platform_version.trim(),
            self.compute_units,
            self.global_mem_bytes >> 20,
            self.local_mem_bytes >> 10,
            self.max_work_group_size,
            self.opencl_c_version.trim(),
            if self.fp64 { ", fp64" } else { "" }
        )
    }
}

/// A listed device with its handles.
struct Found {
    info: DeviceInfo,
    platform: PlatformId,
    device: DeviceId,
}

/// `CL_PLATFORM_NOT_FOUND_KHR`: the ICD loader found no platform.
const PLATFORM_NOT_FOUND: i32 = -1001;
/// `CL_DEVICE_NOT_FOUND`.
const DEVICE_NOT_FOUND: i32 = -1;

/// The platforms. Calls `clGetPlatformIDs` directly: `ocl`'s wrapper sleeps and retries for
/// ten seconds when the ICD loader finds no platform, and its high-level listing panics.
fn platform_ids() -> Result<Vec<PlatformId>, ExecError> {
    let mut count: core::ffi::cl_uint = 0;
    // SAFETY: a count query with a valid out-pointer.
    let status = unsafe { core::ffi::clGetPlatformIDs(0, std::ptr::null_mut(), &mut count) };
    if status == PLATFORM_NOT_FOUND || (status == 0 && count == 0) {
        return Ok(vec![]);
    }
    if status != 0 {
        return Err(device_error(format!(
            "listing platforms: clGetPlatformIDs returned {status}"
        )));
    }
    let mut raw: Vec<core::ffi::cl_platform_id> = vec![std::ptr::null_mut(); count as usize];
    let mut got: core::ffi::cl_uint = 0;
    // SAFETY: `raw` has room for `count` ids.
    let status = unsafe { core::ffi::clGetPlatformIDs(count, raw.as_mut_ptr(), &mut got) };
    if status != 0 {
        return Err(device_error(format!(
            "listing platforms: clGetPlatformIDs returned {status}"
        )));
    }
    raw.truncate(got as usize);
    // SAFETY: ids the driver just returned.
    Ok(raw
        .into_iter()
        .map(|p| unsafe { PlatformId::from_raw(p) })
        .collect())
}

fn platform_string(p: PlatformId, what: PlatformInfo) -> Result<String, ExecError> {
    core::get_platform_info(p, what)
        .map(|r| r.to_string())
        .map_err(|e| ocl_error("reading platform info", &e))
}

fn raw_info(d: DeviceId, what: core::DeviceInfo) -> Result<Vec<u8>, ExecError> {
    core::get_device_info_raw(d, what as u32)
        .map_err(|e| ocl_error(&format!("reading device info {what:?}"), &e))
}

fn info_string(d: DeviceId, what: core::DeviceInfo) -> Result<String, ExecError> {
    let bytes = raw_info(d, what)?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(&bytes[..end]).trim().to_string())
}

fn info_u64(d: DeviceId, what: core::DeviceInfo) -> Result<u64, ExecError> {
    let bytes = raw_info(d, what)?;
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    Ok(u64::from_ne_bytes(word))
}

/// Serializes platform and device enumeration: OpenCL ICD loaders and drivers are not all
/// safe to initialise from several threads at once.
static ENUMERATION: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn find_devices() -> Result<Vec<Found>, ExecError> {
    let _guard = ENUMERATION.lock().unwrap_or_else(|e| e.into_inner());
    let mut found = Vec::new();
    for p in platform_ids()? {
        let platform = platform_string(p, PlatformInfo::Name)?;
        let platform_version = platform_string(p, PlatformInfo::Version)?;
        let ids = match core::get_device_ids(p, Some(core::DeviceType::ALL), None) {
            Ok(ids) => ids,
            Err(e) if e.api_status().map(|s| s as i32) == Some(DEVICE_NOT_FOUND) => vec![],
            Err(e) => return Err(ocl_error(&format!("listing devices of {platform}"), &e)),
        };
        for d in ids {
            use core::DeviceInfo as I;
            let ty = info_u64(d, I::Type)?;
            let kind = if ty & 4 != 0 {
                "GPU"
            } else if ty & 2 != 0 {
                "CPU"
            } else if ty & 8 != 0 {
                "accelerator"
            } else if ty & 16 != 0 {
                "custom"
            } else {
                "default"
            };
            let extensions = info_string(d, I::Extensions)?;
            let info = DeviceInfo {
                index: found.len(),
                platform: platform.clone(),
                platform_version: platform_version.clone(),
                name: info_string(d, I::Name)?,
                vendor: info_string(d, I::Vendor)?,
                kind: kind.to_string(),
                global_mem_bytes: info_u64(d, I::GlobalMemSize)?,
                local_mem_bytes: info_u64(d, I::LocalMemSize)?,
                compute_units: info_u64(d, I::MaxComputeUnits)? as u32,
                max_work_group_size: info_u64(d, I::MaxWorkGroupSize)? as usize,
                opencl_c_version: info_string(d, I::OpenclCVersion)?,
                fp64: extensions.split_whitespace().any(|x| x == "cl_khr_fp64"),
            };
            found.push(Found {
                info,
                platform: p,
                device: d,
            });
        }
    }
    Ok(found)
}

/// Every device of every platform, numbered in that order. No platform: an empty list.
pub fn devices() -> Result<Vec<DeviceInfo>, ExecError> {
    Ok(find_devices()?.into_iter().map(|f| f.info).collect())
}

/// One kernel launch: the kernel (arguments set) and its NDRange.
struct Launch {
    kernel: Kernel,
    dims: u32,
    global: [usize; 3],
    local: Option<[usize; 3]>,
}

/// An update kept on the device: output `output` is the new value of input `input`.
struct ResidentUpdate {
    output: String,
    input: usize,
    /// The non-finite check of the output (`None` for i32 and empty buffers).
    check: Option<Launch>,
    /// The copy into the input's buffer, skipped on the device when a flag is raised
    /// (`xenon_copy_guarded`; `None` for empty buffers).
    copy: Option<Launch>,
}

/// Argument of `xenon_copy_guarded` that counts the finite flags (set per run).
const COPY_FINITE_ARG: u32 = 7;

/// What resident updates run: the first non-finite element of a buffer, per dtype
/// (atomic_min over the indices), and the copy of an update into its input's buffer, in
/// 32-bit words (every dtype's size is a multiple), that does nothing when an index or
/// finite flag is raised — so a failed step leaves the device's values as they were
/// without the host waiting between the checks and the copies.
const RESIDENT_SOURCE: &str = r#"
__kernel void xenon_copy_guarded(__global const uint* src, ulong off, __global uint* dst,
                                 ulong n, __global const int* index_flags, uint n_index,
                                 __global const int* finite_flags, uint n_finite) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    for (uint f = 0; f < n_index; f++) if (index_flags[f] != INT_MAX) return;
    for (uint f = 0; f < n_finite; f++) if (finite_flags[f] != INT_MAX) return;
    dst[i] = src[off + i];
}
__kernel void xenon_nonfinite_f32(__global const float* a, ulong off, ulong n,
                                  __global int* flag, uint slot) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float v = a[off + i];
    if (isnan(v) || isinf(v)) atomic_min(flag + slot, (int)i);
}
#ifdef XENON_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
__kernel void xenon_nonfinite_f64(__global const double* a, ulong off, ulong n,
                                  __global int* flag, uint slot) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    double v = a[off + i];
    if (isnan(v) || isinf(v)) atomic_min(flag + slot, (int)i);
}
#endif
"#;

/// What a step checks after the run: an index routine's flag slot.
struct IndexCheck {
    op: &'static str,
    /// The index buffer (to read the bad index back).
    indices: usize,
    rows: usize,
}

/// Runs one program on one OpenCL device.
///
/// Every input has a device buffer, made once at creation. A feed is uploaded only when its
/// [`Tensor::stamp`] differs from that of the contents the device buffer holds, so weights
/// that do not change between runs (inference, evaluation) are uploaded once.
/// [`OclExecutor::run_update_resident`] keeps updated values (parameters, optimizer state)
/// on the device: each update is copied device-to-device into its input's buffer, only the
/// other outputs (the cost) are read back, and [`OclExecutor::sync_updates`] brings the
/// values to the host when they are needed there.
pub struct OclExecutor {
    program: Program,
    info: DeviceInfo,
    /// The in-order queue every step runs on.
    queue: CommandQueue,
    /// The queue prefetched inputs are uploaded on (see [`OclExecutor::prefetch`]).
    transfer: CommandQueue,
    /// Per input: its staging area, made when it is first prefetched.
    staging: Vec<Option<Staging>>,
    arena: Mem,
    /// `(name, buffer, device buffer)` of each input.
    inputs: Vec<(String, usize, Mem)>,
    /// Per step, its launch (`None`: nothing to do, e.g. an empty iteration space).
    launches: Vec<Option<Launch>>,
    /// Per index-checking step: its flag slot's check.
    checks: Vec<Option<IndexCheck>>,
    /// One `int` per step (`INT_MAX`: no bad index).
    flags: Mem,
    /// Spare storage per program output for the updates, traded with the feeds.
    spares: Vec<Option<TensorData>>,
    /// Per input: the stamp of the host tensor whose contents its device buffer holds —
    /// or, when `device_newer`, whose contents the device has since updated.
    stamps: Vec<Option<u64>>,
    /// Per input: the device holds newer values than the host tensor (resident updates).
    device_newer: Vec<bool>,
    /// Per update, in program order: what resident runs copy and check.
    resident: Vec<ResidentUpdate>,
    /// One `int` per update: the first non-finite element (`INT_MAX`: none).
    finite_flags: Mem,
    /// Per GEMM step: the kernel configuration it runs.
    gemm_choices: Vec<(usize, &'static str)>,
    /// Programs `(built, reused)` at creation.
    builds: (usize, usize),
    /// Input uploads so far.
    uploads: UploadCounts,
    /// The rank's group for `all_reduce` ([`OclExecutor::set_collective`]); none: one rank.
    comm: Option<std::sync::Arc<dyn crate::collective::Collective>>,
    /// Kept alive for the kernels and buffers.
    _context: Context,
    _programs: Vec<core::Program>,
    _tables: Vec<Mem>,
}

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<OclExecutor>();
};

/// How the inputs reached the device, counted per input and run since creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadCounts {
    /// Written from the host tensor while the run waited.
    pub from_host: usize,
    /// Copied on the device from an upload [`OclExecutor::prefetch`] started earlier.
    pub prefetched: usize,
}

/// No bad index (the flags' initial value).
const INDEX_OK: i32 = i32::MAX;
/// Work-group size of the one-dimensional launches.
const LOCAL_1D: usize = 64;

/// Creation state: the context and what it made.
struct Builder<'a> {
    program: &'a Program,
    info: &'a DeviceInfo,
    device: DeviceId,
    context: &'a Context,
    arena: &'a Mem,
    inputs: &'a [(String, usize, Mem)],
    flags: &'a Mem,
    tables: Vec<Mem>,
    /// Programs `(built, reused from the process cache)`.
    builds: std::cell::Cell<(usize, usize)>,
}

impl Builder<'_> {
    /// `source` built with `options` (from the process's program cache when it holds it),
    /// or an error with the build log that names `what`.
    fn build(&self, source: &str, options: &str, what: &str) -> Result<core::Program, ExecError> {
        let (p, reused) = cache::program(self.context, self.device, source, options, what)?;
        let (built, hits) = self.builds.get();
        self.builds.set(if reused {
            (built, hits + 1)
        } else {
            (built + 1, hits)
        });
        Ok(p)
    }

    /// The device buffer and element offset of program buffer `id`.
    fn mem(&self, id: usize) -> (&Mem, u64) {
        let b = &self.program.buffers[id];
        match self.inputs.iter().find(|(_, i, _)| *i == id) {
            Some((_, _, m)) => (m, 0),
            None => (self.arena, (b.offset / b.dtype.size_bytes()) as u64),
        }
    }

    /// Creates kernel `name` of `program` and sets its arguments.
    fn kernel(
        &self,
        program: &core::Program,
        name: &str,
        args: &[ArgVal<'_>],
        what: &str,
    ) -> Result<Kernel, ExecError> {
        let k = core::create_kernel(program, name)
            .map_err(|e| ocl_error(&format!("{what}: creating kernel {name}"), &e))?;
        for (i, a) in args.iter().enumerate() {
            core::set_kernel_arg(&k, i as u32, a.clone())
                .map_err(|e| ocl_error(&format!("{what}: kernel {name} argument {i}"), &e))?;
        }
        Ok(k)
    }

    /// A device buffer holding `data` (read-only tables).
    fn table(&mut self, data: &[i32], what: &str) -> Result<usize, ExecError> {
        let data = if data.is_empty() { &[0][..] } else { data };
        // SAFETY: `data` outlives the call, which copies it (COPY_HOST_PTR).
        let m = unsafe {
            core::create_buffer(
                self.context,
                MemFlags::READ_ONLY | MemFlags::COPY_HOST_PTR,
                data.len(),
                Some(data),
            )
        }
        .map_err(|e| ocl_error(&format!("{what}: creating a table"), &e))?;
        self.tables.push(m);
        Ok(self.tables.len() - 1)
    }
}

/// A 1-D launch over `n` work-items (rounded up to the work-group size); `None` for none.
fn launch_1d(kernel: Kernel, n: usize, max_group: usize) -> Option<Launch> {
    if n == 0 {
        return None;
    }
    let local = LOCAL_1D.min(max_group.max(1));
    Some(Launch {
        kernel,
        dims: 1,
        global: [n.next_multiple_of(local), 1, 1],
        local: Some([local, 1, 1]),
    })
}

impl OclExecutor {
    /// Validates `program` and prepares it to run on device `device` (the index in
    /// [`devices`]). `loop_sources[s]` is, for each loop step `s`, OpenCL C source with
    /// entry `xk` (`None` for other steps); `build_options` go to every loop kernel build.
    ///
    /// Loop-kernel convention: for each argument `i` of `LoopKernel::args` the kernel takes
    /// `__global T* a{i}, ulong o{i}` (element offset into that buffer) and runs over a 1-D
    /// NDRange of [`LoopKernel::work_items`](crate::kernel::LoopKernel::work_items) (the
    /// outer points, a quarter of them when the kernel has a vector axis), rounded up to
    /// the work-group size (the kernel guards).
    pub fn new(
        program: Program,
        loop_sources: Vec<Option<String>>,
        device: usize,
        build_options: &str,
    ) -> Result<OclExecutor, ExecError> {
        program.validate()?;
        if loop_sources.len() != program.steps.len()
            || loop_sources
                .iter()
                .zip(&program.steps)
                .any(|(k, s)| k.is_some() && !matches!(s, Step::Loop(_)))
        {
            return Err(ExecError::KernelTable {
                got: loop_sources.len(),
                steps: program.steps.len(),
            });
        }
        for (s, (src, step)) in loop_sources.iter().zip(&program.steps).enumerate() {
            if let (None, Step::Loop(k)) = (src, step) {
                return Err(device_error(format!(
                    "step {s} (loop {}) has no OpenCL C source",
                    k.name
                )));
            }
        }
        let mut found = find_devices()?;
        if device >= found.len() {
            return Err(device_error(if found.is_empty() {
                "no OpenCL platform or device".to_string()
            } else {
                format!("device {device} does not exist ({} device(s))", found.len())
            }));
        }
        let Found {
            info,
            platform,
            device: dev,
        } = found.swap_remove(device);
        for (i, b) in program.buffers.iter().enumerate() {
            if b.offset % b.dtype.size_bytes() != 0 {
                return Err(device_error(format!(
                    "buffer {i} at byte offset {} is not aligned to its {} elements",
                    b.offset, b.dtype
                )));
            }
            if b.dtype == DType::F64 && !info.fp64 {
                return Err(device_error(format!(
                    "buffer {i} is f64 and device {} has no cl_khr_fp64",
                    info.name
                )));
            }
        }
        let context = cache::context(platform, dev)?;
        let queue = core::create_command_queue(&context, dev, None)
            .map_err(|e| ocl_error("creating the command queue", &e))?;
        let transfer = core::create_command_queue(&context, dev, None)
            .map_err(|e| ocl_error("creating the transfer queue", &e))?;
        let alloc = |bytes: usize, what: &str| {
            // SAFETY: no host pointer is given.
            unsafe {
                core::create_buffer::<_, u8>(&context, MemFlags::READ_WRITE, bytes.max(1), None)
            }
            .map_err(|e| ocl_error(&format!("allocating {what} ({bytes} bytes)"), &e))
        };
        let arena = alloc(program.plan.arena_bytes, "the arena")?;
        // Zeroed, like the CPU's (a temporary's unwritten elements read as zero).
        if program.plan.arena_bytes > 0 {
            core::enqueue_fill_buffer(
                &queue,
                &arena,
                0u8,
                0,
                program.plan.arena_bytes,
                None::<Event>,
                None::<&mut Event>,
                None,
            )
            .map_err(|e| ocl_error("clearing the arena", &e))?;
        }
        let mut inputs = Vec::new();
        for (i, b) in program.buffers.iter().enumerate() {
            if let BufferKind::Input { name } = &b.kind {
                inputs.push((
                    name.clone(),
                    i,
                    alloc(b.bytes(), &format!("input {name:?}"))?,
                ));
            }
        }
        let flags = alloc(program.steps.len() * 4, "the index flags")?;
        // Constants are written once (and again after GEMM tuning clears the arena).
        write_constants(&queue, &arena, &program)?;
        let mut builder = Builder {
            program: &program,
            info: &info,
            device: dev,
            context: &context,
            arena: &arena,
            inputs: &inputs,
            flags: &flags,
            tables: Vec::new(),
            builds: Default::default(),
        };
        let mut programs = Vec::new();
        let mut launches: Vec<Option<Launch>> = program.steps.iter().map(|_| None).collect();
        let mut checks: Vec<Option<IndexCheck>> = program.steps.iter().map(|_| None).collect();
        // Loop kernels.
        let loop_programs = build_loops(&builder, &loop_sources, build_options)?;
        for (s, prog, name) in &loop_programs {
            let Step::Loop(k) = &program.steps[*s] else {
                continue;
            };
            let mems: Vec<(&Mem, u64)> = k.args.iter().map(|a| builder.mem(a.buffer)).collect();
            let mut args = Vec::new();
            for (m, o) in &mems {
                args.push(ArgVal::mem(m));
                args.push(ArgVal::scalar(o));
            }
            let what = format!("step {s} (loop {})", k.name);
            let kernel = builder.kernel(prog, name, &args, &what)?;
            let n = k.work_items();
            let group = core::get_kernel_work_group_info(
                &kernel,
                dev,
                core::KernelWorkGroupInfo::WorkGroupSize,
            )
            .ok()
            .and_then(|r| match r {
                core::KernelWorkGroupInfoResult::WorkGroupSize(g) => Some(g),
                _ => None,
            })
            .unwrap_or(info.max_work_group_size);
            launches[*s] = launch_1d(kernel, n, group.min(info.max_work_group_size));
        }
        programs.extend(
            loop_programs
                .into_iter()
                .map(|(_, p, _)| p)
                .collect::<Vec<_>>(),
        );
        // The runtime routines.
        let mut gemm_choices = Vec::new();
        let needs = runtime_needs(&program, &info)?;
        if !needs.is_empty() {
            let options = if info.fp64 { "-DXENON_FP64" } else { "" };
            let rt = builder.build(
                &kernels::runtime_source(&needs),
                options,
                "the runtime routines",
            )?;
            for (s, step) in program.steps.iter().enumerate() {
                match step {
                    Step::Loop(_) => {}
                    Step::Gemm(g) => {
                        let config = choose_gemm_config(&builder, &queue, &rt, s, g)?;
                        gemm_choices.push((s, config.map_or("simple", |c| c.name)));
                        launches[s] = Some(gemm_launch(&builder, &rt, s, g, config)?);
                    }
                    Step::Library(l) => {
                        let (launch, check) = library_launch(&mut builder, &rt, s, l)?;
                        launches[s] = launch;
                        checks[s] = check;
                    }
                }
            }
            programs.push(rt);
        }
        // Resident updates and their non-finite checks.
        let finite_flags = alloc(program.updates.len().max(1) * 4, "the finite flags")?;
        let mut resident = Vec::new();
        if !program.updates.is_empty() {
            let options = if info.fp64 { "-DXENON_FP64" } else { "" };
            let fp = builder.build(RESIDENT_SOURCE, options, "the resident updates")?;
            // The index flags the copies look at: all of them when a step checks indices.
            let n_index = if checks.iter().any(Option::is_some) {
                program.steps.len() as u32
            } else {
                0
            };
            for (slot, (output, feed)) in program.updates.iter().enumerate() {
                let Some(&(_, buffer)) = program.outputs.iter().find(|(o, _)| o == output) else {
                    return Err(device_error(format!("update {output:?} is not an output")));
                };
                let Some(input) = inputs.iter().position(|(n, _, _)| n == feed) else {
                    return Err(device_error(format!(
                        "update {output:?} names {feed:?}, which is not an input"
                    )));
                };
                let b = &program.buffers[buffer];
                let name = match b.dtype {
                    DType::F32 => Some("xenon_nonfinite_f32"),
                    DType::F64 => Some("xenon_nonfinite_f64"),
                    DType::I32 => None,
                };
                let check = match name {
                    Some(name) if b.len > 0 => {
                        let (m, off) = builder.mem(buffer);
                        let (n, slot) = (b.len as u64, slot as u32);
                        let args = [
                            ArgVal::mem(m),
                            ArgVal::scalar(&off),
                            ArgVal::scalar(&n),
                            ArgVal::mem(&finite_flags),
                            ArgVal::scalar(&slot),
                        ];
                        let k = builder.kernel(&fp, name, &args, "the finite check")?;
                        launch_1d(k, b.len, info.max_work_group_size)
                    }
                    _ => None,
                };
                let copy = if b.len > 0 {
                    let (m, off) = builder.mem(buffer);
                    // In 32-bit words (aligned: checked above).
                    let off = off * b.dtype.size_bytes() as u64 / 4;
                    let n = (b.bytes() / 4) as u64;
                    let zero = 0u32;
                    let args = [
                        ArgVal::mem(m),
                        ArgVal::scalar(&off),
                        ArgVal::mem(&inputs[input].2),
                        ArgVal::scalar(&n),
                        ArgVal::mem(&flags),
                        ArgVal::scalar(&n_index),
                        ArgVal::mem(&finite_flags),
                        ArgVal::scalar(&zero),
                    ];
                    let k = builder.kernel(&fp, "xenon_copy_guarded", &args, "the update copy")?;
                    launch_1d(k, n as usize, info.max_work_group_size)
                } else {
                    None
                };
                resident.push(ResidentUpdate {
                    output: output.clone(),
                    input,
                    check,
                    copy,
                });
            }
            programs.push(fp);
        }
        if !gemm_choices.is_empty() && program.plan.arena_bytes > 0 {
            // Tuning ran GEMMs on the arena: clear it again.
            core::enqueue_fill_buffer(
                &queue,
                &arena,
                0u8,
                0,
                program.plan.arena_bytes,
                None::<Event>,
                None::<&mut Event>,
                None,
            )
            .map_err(|e| ocl_error("clearing the arena", &e))?;
            write_constants(&queue, &arena, &program)?;
            core::finish(&queue).map_err(|e| ocl_error("clearing the arena", &e))?;
        }
        let tables = std::mem::take(&mut builder.tables);
        let builds = builder.builds.get();
        let spares = vec![None; program.outputs.len()];
        let stamps = vec![None; inputs.len()];
        let device_newer = vec![false; inputs.len()];
        Ok(OclExecutor {
            program,
            info,
            queue,
            transfer,
            staging: (0..inputs.len()).map(|_| None).collect(),
            arena,
            inputs,
            launches,
            checks,
            flags,
            spares,
            stamps,
            device_newer,
            resident,
            finite_flags,
            gemm_choices,
            builds,
            uploads: UploadCounts::default(),
            comm: None,
            _context: context,
            _programs: programs,
            _tables: tables,
        })
    }

    /// Makes this executor one rank of `comm`'s group: an `all_reduce` step reads its
    /// result back, sums it over the ranks on the host and writes it to the device before
    /// the next step (the run waits for it there). Without a group it is a device copy.
    pub fn set_collective(&mut self, comm: std::sync::Arc<dyn crate::collective::Collective>) {
        self.comm = Some(comm);
    }

    /// Sums step `s`'s result over the ranks when it is an `all_reduce` and there is a
    /// group: waits for the queue, reads, sums, writes back.
    fn all_reduce_step(&self, s: usize) -> Result<(), ExecError> {
        let (Some(comm), Step::Library(LibraryStep::AllReduce { out, .. })) =
            (&self.comm, &self.program.steps[s])
        else {
            return Ok(());
        };
        let mut data = self.read(*out, None)?;
        let buf = match &mut data {
            TensorData::F32(v) => crate::collective::ReduceBuf::F32(v),
            TensorData::F64(v) => crate::collective::ReduceBuf::F64(v),
            TensorData::I32(_) => unreachable!("validated: all_reduce of f32 or f64"),
        };
        comm.all_reduce_sum(buf)?;
        let (mem, off) = self.mem_of(*out);
        write_data(&self.queue, mem, off, &data)
            .map_err(|e| ocl_error(&format!("writing the sum of step {s}"), &e))
    }

    /// Per GEMM step `(step, configuration)`: the tiled kernel each runs (`t64`, `t32`,
    /// `t16`) or `simple`.
    pub fn gemm_choices(&self) -> &[(usize, &'static str)] {
        &self.gemm_choices
    }

    /// How many OpenCL programs creating this executor built, and how many it found already
    /// built in the process's program cache (same device, source and build options), as
    /// `(built, reused)`.
    pub fn program_builds(&self) -> (usize, usize) {
        self.builds
    }

    /// How many input uploads came from the host during a run, and how many from a
    /// prefetch (inputs the device already held are not counted).
    pub fn uploads(&self) -> UploadCounts {
        self.uploads
    }

    /// The device it runs on.
    pub fn device(&self) -> &DeviceInfo {
        &self.info
    }

    /// The program being run.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Runs the program. `feeds` supplies every input buffer by name (dtype and element
    /// count are checked); returns the named outputs with the given shapes.
    pub fn run(
        &mut self,
        feeds: &HashMap<String, Tensor>,
        output_shapes: &HashMap<String, Vec<usize>>,
    ) -> Result<HashMap<String, Tensor>, ExecError> {
        self.enqueue_steps(feeds)?;
        self.finish_index_checks()?;
        let mut out = HashMap::new();
        for (name, id) in &self.program.outputs {
            let data = self.read(*id, None)?;
            out.insert(name.clone(), self.tensor(name, *id, data, output_shapes)?);
        }
        // Without outputs nothing above waited: a run returns when its steps are done.
        core::finish(&self.queue).map_err(|e| ocl_error("running the steps", &e))?;
        Ok(out)
    }

    /// Runs the program and writes every update (`Program::updates`) back into its feed;
    /// returns the other outputs. With `check_finite`, nothing is written back when an
    /// updated value holds NaN or infinity (the error names the first such output in
    /// program order). The contract of [`crate::cpu::CpuExecutor::run_update`]: each
    /// updated value is read into a spare the executor owns, which then trades places with
    /// the feed's storage.
    pub fn run_update(
        &mut self,
        feeds: &mut HashMap<String, Tensor>,
        output_shapes: &HashMap<String, Vec<usize>>,
        check_finite: bool,
    ) -> Result<HashMap<String, Tensor>, ExecError> {
        self.enqueue_steps(feeds)?;
        self.finish_index_checks()?;
        let mut out = HashMap::new();
        // (slot, feed name) of each update, its value read into the slot's spare.
        let mut updates: Vec<(usize, String)> = Vec::new();
        for (slot, (name, id)) in self.program.outputs.iter().enumerate() {
            let target = self
                .program
                .updates
                .iter()
                .find(|(o, _)| o == name)
                .map(|(_, f)| f.clone());
            match target {
                Some(feed) => {
                    let spare = self.spares[slot].take();
                    let data = self.read(*id, spare)?;
                    self.spares[slot] = Some(data);
                    updates.push((slot, feed));
                }
                None => {
                    let data = self.read(*id, None)?;
                    out.insert(name.clone(), self.tensor(name, *id, data, output_shapes)?);
                }
            }
        }
        if check_finite {
            for (slot, _) in &updates {
                let bad = match self.spares[*slot].as_ref() {
                    Some(TensorData::F32(v)) => crate::tensor::first_non_finite_f32(v),
                    Some(TensorData::F64(v)) => crate::tensor::first_non_finite_f64(v),
                    _ => None,
                };
                if let Some(element) = bad {
                    return Err(ExecError::NonFinite {
                        output: self.program.outputs[*slot].0.clone(),
                        element,
                    });
                }
            }
        }
        for (slot, feed) in updates {
            // Validated: the feed exists (execute checked it) with the same dtype and length.
            let (Some(t), Some(spare)) = (feeds.get_mut(&feed), self.spares[slot].as_mut()) else {
                return Err(ExecError::MissingInput(feed));
            };
            std::mem::swap(t.data_mut(), spare);
        }
        Ok(out)
    }

    /// Runs the program and keeps every update on the device: each updated value is copied
    /// into its input's device buffer, unless `check_finite` finds NaN or infinity in one
    /// (or an index routine a bad index), and then the error names the first such output
    /// and element and no device value changes. Only the other outputs are read back. The
    /// host tensors of the updated feeds are then stale until
    /// [`OclExecutor::sync_updates`]; until the host changes one (a new
    /// [`Tensor::stamp`]), later runs use the device's values.
    ///
    /// `next` (may be empty) names the tensors the following run will feed anew — its
    /// minibatch: they are uploaded on the transfer queue while this run's steps execute
    /// (see [`OclExecutor::prefetch`]). The host waits once per call: for the outputs.
    pub fn run_update_resident(
        &mut self,
        feeds: &HashMap<String, Tensor>,
        output_shapes: &HashMap<String, Vec<usize>>,
        check_finite: bool,
        next: &[(&str, &Tensor)],
    ) -> Result<HashMap<String, Tensor>, ExecError> {
        self.enqueue_steps(feeds)?;
        let checking = check_finite && self.resident.iter().any(|r| r.check.is_some());
        let index_checks = self.checks.iter().any(Option::is_some);
        // Host memory the reads below fill; it stays in place until the queue finishes.
        let mut outs: Vec<(String, usize, TensorData)> = Vec::new();
        for (name, id) in &self.program.outputs {
            if !self.resident.iter().any(|r| &r.output == name) {
                let b = &self.program.buffers[*id];
                outs.push((name.clone(), *id, TensorData::zeros(b.dtype, b.len)));
            }
        }
        let mut index_flags = vec![0i32; if index_checks { self.checks.len() } else { 0 }];
        let mut finite_flags = vec![0i32; if checking { self.resident.len() } else { 0 }];
        let enqueued = self.enqueue_resident(
            checking,
            &mut outs,
            &mut index_flags,
            &mut finite_flags,
            next,
        );
        // Whatever happened, nothing may still write into the host memory once this returns.
        let finished = core::finish(&self.queue).map_err(|e| ocl_error("running the steps", &e));
        enqueued?;
        finished?;
        self.check_index_flags(&index_flags)?;
        if let Some((r, f)) = self
            .resident
            .iter()
            .zip(&finite_flags)
            .find(|(_, f)| **f != INDEX_OK)
        {
            return Err(ExecError::NonFinite {
                output: r.output.clone(),
                element: *f as usize,
            });
        }
        for r in &self.resident {
            if r.copy.is_some() {
                self.device_newer[r.input] = true;
            }
        }
        outs.into_iter()
            .map(|(name, id, data)| {
                let t = self.tensor(&name, id, data, output_shapes)?;
                Ok((name, t))
            })
            .collect()
    }

    /// The device work of [`OclExecutor::run_update_resident`] after the steps: the finite
    /// checks, the guarded copies, non-blocking reads of the outputs and flags, and the
    /// prefetch of `next`. The caller waits for the queue before touching the buffers.
    fn enqueue_resident(
        &mut self,
        checking: bool,
        outs: &mut [(String, usize, TensorData)],
        index_flags: &mut [i32],
        finite_flags: &mut [i32],
        next: &[(&str, &Tensor)],
    ) -> Result<(), ExecError> {
        if checking {
            fill_flags(&self.queue, &self.finite_flags, self.resident.len())
                .map_err(|e| ocl_error("resetting the finite flags", &e))?;
            for r in &self.resident {
                if let Some(l) = &r.check {
                    enqueue(&self.queue, l).map_err(|e| {
                        ocl_error(&format!("checking {:?} for NaN/Inf", r.output), &e)
                    })?;
                }
            }
        }
        let n_finite = if checking {
            self.resident.len() as u32
        } else {
            0
        };
        for r in &self.resident {
            let Some(l) = &r.copy else { continue };
            let what = format!("keeping {:?} on the device", r.output);
            core::set_kernel_arg(&l.kernel, COPY_FINITE_ARG, ArgVal::scalar(&n_finite))
                .map_err(|e| ocl_error(&what, &e))?;
            enqueue(&self.queue, l).map_err(|e| ocl_error(&what, &e))?;
        }
        for (_, id, data) in outs.iter_mut() {
            let (mem, off) = self.mem_of(*id);
            // SAFETY: the output lies inside its device buffer (validated); `data` stays
            // in place until the caller has waited for the queue.
            unsafe { read_data_async(&self.queue, mem, off, data) }
                .map_err(|e| ocl_error(&format!("reading buffer {id}"), &e))?;
        }
        // SAFETY: as above; the flag buffers hold one int per step and per update.
        unsafe {
            if !index_flags.is_empty() {
                read_slice_async(&self.queue, &self.flags, 0, index_flags)
                    .map_err(|e| ocl_error("reading the index flags", &e))?;
            }
            if !finite_flags.is_empty() {
                read_slice_async(&self.queue, &self.finite_flags, 0, finite_flags)
                    .map_err(|e| ocl_error("reading the finite flags", &e))?;
            }
        }
        core::flush(&self.queue).map_err(|e| ocl_error("starting the steps", &e))?;
        // The host copies the next minibatch while the device runs this step.
        self.prefetch(next)
    }

    /// Reads every value [`OclExecutor::run_update_resident`] kept on the device into its
    /// feed (which gets a new stamp, recorded as the device buffer's).
    pub fn sync_updates(&mut self, feeds: &mut HashMap<String, Tensor>) -> Result<(), ExecError> {
        for i in 0..self.inputs.len() {
            if !self.device_newer[i] {
                continue;
            }
            let (name, id, _) = &self.inputs[i];
            let t = feeds
                .get_mut(name)
                .ok_or_else(|| ExecError::MissingInput(name.clone()))?;
            let old = std::mem::replace(t.data_mut(), TensorData::F32(Vec::new()));
            let data = self.read(*id, Some(old))?;
            *t.data_mut() = data;
            self.stamps[i] = Some(t.stamp());
            self.device_newer[i] = false;
        }
        Ok(())
    }

    /// Starts uploading `next` — tensors a later run will feed, typically the next
    /// minibatch — on the transfer queue, into a staging buffer per input, so that the run
    /// that feeds the same tensors (same [`Tensor::stamp`]) copies them on the device
    /// instead of waiting for the host. Inputs whose device buffer already holds the tensor
    /// are skipped. Each name must be an input, with the input's dtype and element count.
    pub fn prefetch(&mut self, next: &[(&str, &Tensor)]) -> Result<(), ExecError> {
        for &(name, t) in next {
            let Some(i) = self.inputs.iter().position(|(n, _, _)| n == name) else {
                return Err(ExecError::UnknownInput {
                    name: name.to_string(),
                    inputs: self.inputs.iter().map(|(n, _, _)| n.clone()).collect(),
                });
            };
            let b = &self.program.buffers[self.inputs[i].1];
            check_feed(name, b, t)?;
            let stamp = Some(t.stamp());
            if b.len == 0
                || self.stamps[i] == stamp
                || self.staging[i].as_ref().is_some_and(|s| s.stamp == stamp)
            {
                continue;
            }
            let what = format!("prefetching input {name:?}");
            if self.staging[i].is_none() {
                let s = Staging::new(&self._context, &self.queue, b.bytes(), &what)?;
                self.staging[i] = Some(s);
            }
            if let Some(s) = self.staging[i].as_mut() {
                s.upload(&self.transfer, t, &what)?;
            }
        }
        core::flush(&self.transfer).map_err(|e| ocl_error("starting the prefetch", &e))
    }

    /// Enqueues a run up to its results: the uploads the feeds need (a device-side copy
    /// where [`OclExecutor::prefetch`] staged the tensor, else a blocking write), the reset
    /// of the index flags and every step. Waits for none of it.
    fn enqueue_steps(&mut self, feeds: &HashMap<String, Tensor>) -> Result<(), ExecError> {
        for i in 0..self.inputs.len() {
            let (name, id, mem) = &self.inputs[i];
            let b = &self.program.buffers[*id];
            let t = feeds
                .get(name)
                .ok_or_else(|| ExecError::MissingInput(name.clone()))?;
            check_feed(name, b, t)?;
            let stamp = Some(t.stamp());
            if b.len == 0 || self.stamps[i] == stamp {
                continue;
            }
            let what = format!("uploading input {name:?}");
            match self.staging[i].as_mut().filter(|s| s.stamp == stamp) {
                Some(s) => {
                    let mut consumed = Event::null();
                    core::enqueue_copy_buffer::<u8, _, _, _>(
                        &self.queue,
                        &s.device,
                        mem,
                        0,
                        0,
                        b.bytes(),
                        s.uploaded.as_ref(),
                        Some(&mut consumed),
                    )
                    .map_err(|e| ocl_error(&what, &e))?;
                    s.consumed = Some(consumed);
                    self.uploads.prefetched += 1;
                }
                None => {
                    write_data(&self.queue, mem, 0, t.data()).map_err(|e| ocl_error(&what, &e))?;
                    self.uploads.from_host += 1;
                }
            }
            self.stamps[i] = stamp;
            self.device_newer[i] = false;
        }
        if self.checks.iter().any(Option::is_some) {
            fill_flags(&self.queue, &self.flags, self.program.steps.len())
                .map_err(|e| ocl_error("resetting the index flags", &e))?;
        }
        for (s, launch) in self.launches.iter().enumerate() {
            if let Some(l) = launch {
                enqueue(&self.queue, l).map_err(|e| {
                    ocl_error(
                        &format!("running step {s} ({})", self.program.steps[s].describe()),
                        &e,
                    )
                })?;
            }
            // An all_reduce in place has no launch, only the sum.
            self.all_reduce_step(s)?;
        }
        Ok(())
    }

    /// Waits for the enqueued steps and reports the first bad index an index routine met.
    fn finish_index_checks(&self) -> Result<(), ExecError> {
        if !self.checks.iter().any(Option::is_some) {
            return Ok(());
        }
        let mut flags = vec![0i32; self.program.steps.len()];
        read_slice(&self.queue, &self.flags, 0, &mut flags)
            .map_err(|e| ocl_error("reading the index flags", &e))?;
        self.check_index_flags(&flags)
    }

    /// The error for the first raised flag of `flags` (one per step; empty: none), with the
    /// bad index read back.
    fn check_index_flags(&self, flags: &[i32]) -> Result<(), ExecError> {
        for (c, &flag) in self.checks.iter().zip(flags) {
            let Some(c) = c else { continue };
            if flag == INDEX_OK {
                continue;
            }
            let position = flag as usize;
            let (mem, off) = self.mem_of(c.indices);
            let mut index = [0i32];
            read_slice(&self.queue, mem, off + position, &mut index)
                .map_err(|e| ocl_error("reading a bad index", &e))?;
            return Err(ExecError::Index {
                op: c.op,
                source: IndexError {
                    position,
                    index: index[0],
                    rows: c.rows,
                },
            });
        }
        Ok(())
    }

    /// The device buffer and element offset of program buffer `id`.
    fn mem_of(&self, id: usize) -> (&Mem, usize) {
        let b = &self.program.buffers[id];
        match self.inputs.iter().find(|(_, i, _)| *i == id) {
            Some((_, _, m)) => (m, 0),
            None => (&self.arena, b.offset / b.dtype.size_bytes()),
        }
    }

    /// Reads buffer `id` back, into `into` when it has the right dtype and length.
    fn read(&self, id: usize, into: Option<TensorData>) -> Result<TensorData, ExecError> {
        let b = &self.program.buffers[id];
        let mut data = match into {
            Some(d) if d.dtype() == b.dtype && d.len() == b.len => d,
            _ => TensorData::zeros(b.dtype, b.len),
        };
        if b.len == 0 {
            return Ok(data);
        }
        let (mem, off) = self.mem_of(id);
        // The buffer lies inside its device buffer (validated).
        read_data(&self.queue, mem, off, &mut data)
            .map_err(|e| ocl_error(&format!("reading buffer {id}"), &e))?;
        Ok(data)
    }

    /// Output `name` (buffer `id`) with its shape.
    fn tensor(
        &self,
        name: &str,
        id: usize,
        data: TensorData,
        output_shapes: &HashMap<String, Vec<usize>>,
    ) -> Result<Tensor, ExecError> {
        let shape = output_shapes
            .get(name)
            .cloned()
            .unwrap_or_else(|| vec![self.program.buffers[id].len]);
        Ok(
            Tensor::new(shape, data).map_err(|e| crate::program::ProgramError::Buffer {
                buffer: id,
                reason: format!("output {name:?}: {e}"),
            })?,
        )
    }
}

/// Builds the loop kernels: all in one program (each source's `xk` renamed `xk_<step>`),
/// or, when that fails (a name two sources both define, or a bad source), each on its own
/// so that the error names the step whose source does not build. Returns
/// `(step, program, kernel name)`.
fn build_loops(
    b: &Builder<'_>,
    sources: &[Option<String>],
    options: &str,
) -> Result<Vec<(usize, core::Program, String)>, ExecError> {
    let steps: Vec<(usize, &String)> = sources
        .iter()
        .enumerate()
        .filter_map(|(s, src)| src.as_ref().map(|src| (s, src)))
        .collect();
    if steps.is_empty() {
        return Ok(vec![]);
    }
    let step_name = |s: usize| match &b.program.steps[s] {
        Step::Loop(k) => k.name.clone(),
        _ => String::new(),
    };
    let renamed = |s: usize, src: &str| format!("#define xk xk_{s}\n{src}\n#undef xk\n");
    if steps.len() > 1 {
        let all: String = steps.iter().map(|(s, src)| renamed(*s, src)).collect();
        if let Ok(p) = b.build(&all, options, "the loop kernels") {
            return steps
                .iter()
                .map(|(s, _)| Ok((*s, p.clone(), format!("xk_{s}"))))
                .collect();
        }
    }
    steps
        .iter()
        .map(|(s, src)| {
            let what = format!("step {s} (loop {})", step_name(*s));
            let p = b.build(src, options, &what)?;
            Ok((*s, p, "xk".to_string()))
        })
        .collect()
}

/// The GEMM configurations whose work-group and local memory fit the device.
fn usable_configs(info: &DeviceInfo, size: usize) -> Vec<GemmConfig> {
    GEMM_CONFIGS
        .iter()
        .filter(|c| {
            let (rm, rn) = c.threads();
            rm * rn <= info.max_work_group_size
                && c.local_bytes(size) as u64 <= info.local_mem_bytes
        })
        .copied()
        .collect()
}

/// What the runtime program must hold for `program`'s GEMM and library steps.
fn runtime_needs(program: &Program, info: &DeviceInfo) -> Result<RuntimeNeeds, ExecError> {
    let mut n = RuntimeNeeds::default();
    for (s, step) in program.steps.iter().enumerate() {
        match step {
            Step::Loop(_) => {}
            Step::Gemm(g) => {
                if g.dtype == DType::I32 {
                    return Err(device_error(format!(
                        "step {s}: GEMM over i32 is not supported on OpenCL"
                    )));
                }
                let usable = usable_configs(info, g.dtype.size_bytes());
                // A tuned product may run any usable configuration or the simple kernel.
                // A product summed over its batch runs on the simple kernel.
                let options: Vec<Option<GemmConfig>> = if g.sum_batch {
                    vec![None]
                } else if g.m * g.n * g.k * g.batch >= GEMM_TUNE_MIN_MACS && !usable.is_empty() {
                    usable.iter().map(|c| Some(*c)).chain([None]).collect()
                } else {
                    vec![kernels::choose_gemm(
                        &usable,
                        g.m,
                        g.n,
                        g.k,
                        g.batch,
                        info.compute_units as usize,
                    )]
                };
                for option in options {
                    match option {
                        Some(c) => {
                            if !n.gemm_tiled.contains(&(c, g.dtype)) {
                                n.gemm_tiled.push((c, g.dtype));
                            }
                        }
                        None => {
                            if !n.gemm_simple.contains(&g.dtype) {
                                n.gemm_simple.push(g.dtype);
                            }
                        }
                    }
                }
            }
            Step::Library(l) => {
                let dtype = match l {
                    LibraryStep::Random { dtype, normal, .. } => {
                        if *dtype == DType::I32 {
                            return Err(device_error(format!(
                                "step {s}: random i32 samples are not supported on OpenCL"
                            )));
                        }
                        if (*normal || *dtype == DType::F64) && !info.fp64 {
                            return Err(device_error(format!(
                                "step {s}: this random stream needs cl_khr_fp64, which device \
                                 {} lacks",
                                info.name
                            )));
                        }
                        n.random = true;
                        continue;
                    }
                    LibraryStep::Im2Col { dtype, .. }
                    | LibraryStep::Col2Im { dtype, .. }
                    | LibraryStep::Gather { dtype, .. }
                    | LibraryStep::ScatterAdd { dtype, .. }
                    | LibraryStep::ArgMax { dtype, .. }
                    | LibraryStep::AllReduce { dtype, .. }
                    | LibraryStep::Copy { dtype, .. } => *dtype,
                };
                if !n.library.contains(&dtype) {
                    n.library.push(dtype);
                }
            }
        }
    }
    Ok(n)
}

/// The launch of GEMM step `s`.
fn gemm_launch(
    b: &Builder<'_>,
    rt: &core::Program,
    s: usize,
    g: &crate::program::GemmStep,
    config: Option<GemmConfig>,
) -> Result<Launch, ExecError> {
    let (ma, oa) = b.mem(g.a.buffer);
    let (mb, ob) = b.mem(g.b.buffer);
    let (mc, oc) = b.mem(g.c.buffer);
    let view = |o: u64, v: &crate::program::MatView| {
        (
            o + v.offset as u64,
            v.row_stride as i64,
            v.col_stride as i64,
            v.batch_stride as i64,
        )
    };
    let (a, b_, c) = (view(oa, &g.a), view(ob, &g.b), view(oc, &g.c));
    let (m, n, k) = (g.m as u64, g.n as u64, g.k as u64);
    // Products the simple kernel sums per work-item (1: one product per batch index).
    let summed = if g.sum_batch { g.batch as u64 } else { 1 };
    let args = [
        ArgVal::mem(ma),
        ArgVal::scalar(&a.0),
        ArgVal::scalar(&a.1),
        ArgVal::scalar(&a.2),
        ArgVal::scalar(&a.3),
        ArgVal::mem(mb),
        ArgVal::scalar(&b_.0),
        ArgVal::scalar(&b_.1),
        ArgVal::scalar(&b_.2),
        ArgVal::scalar(&b_.3),
        ArgVal::mem(mc),
        ArgVal::scalar(&c.0),
        ArgVal::scalar(&c.1),
        ArgVal::scalar(&c.2),
        ArgVal::scalar(&c.3),
        ArgVal::scalar(&m),
        ArgVal::scalar(&n),
        ArgVal::scalar(&k),
    ];
    let what = format!(
        "step {s} ({})",
        crate::program::Step::Gemm(g.clone()).describe()
    );
    Ok(match config {
        Some(cfg) => {
            let (rm, rn) = cfg.threads();
            let kernel = b.kernel(rt, &kernels::gemm_kernel_name(&cfg, g.dtype), &args, &what)?;
            Launch {
                kernel,
                dims: 3,
                global: [
                    g.n.div_ceil(cfg.tn) * rn,
                    g.m.div_ceil(cfg.tm) * rm,
                    g.batch,
                ],
                local: Some([rn, rm, 1]),
            }
        }
        None => {
            let name = format!("gemm_simple_{}", kernels::suffix(g.dtype));
            let mut args = args.to_vec();
            args.push(ArgVal::scalar(&summed));
            let kernel = b.kernel(rt, &name, &args, &what)?;
            let side = if b.info.max_work_group_size >= 64 {
                8
            } else {
                1
            };
            Launch {
                kernel,
                dims: 3,
                global: [
                    g.n.next_multiple_of(side),
                    g.m.next_multiple_of(side),
                    if g.sum_batch { 1 } else { g.batch },
                ],
                local: Some([side, side, 1]),
            }
        }
    })
}

/// Enqueues launch `l` on `queue`.
fn enqueue(queue: &CommandQueue, l: &Launch) -> Result<(), core::Error> {
    // SAFETY: every launch's arguments were set at creation to live buffers and scalars
    // (the guarded copy's flag count is set before each launch); the kernels guard their
    // NDRange and were checked against the buffers' sizes (validated program).
    unsafe {
        core::enqueue_kernel(
            queue,
            &l.kernel,
            l.dims,
            None,
            &l.global,
            l.local,
            None::<Event>,
            None::<&mut Event>,
        )
    }
}

/// Enqueues setting the first `n` flags of `flags` to [`INDEX_OK`].
fn fill_flags(queue: &CommandQueue, flags: &Mem, n: usize) -> Result<(), core::Error> {
    core::enqueue_fill_buffer(
        queue,
        flags,
        INDEX_OK,
        0,
        n,
        None::<Event>,
        None::<&mut Event>,
        None,
    )
}

/// `t` fits input `name` (buffer `b`): its dtype and element count.
fn check_feed(name: &str, b: &crate::program::BufferDecl, t: &Tensor) -> Result<(), ExecError> {
    if t.dtype() != b.dtype || t.numel() != b.len {
        return Err(ExecError::InputType {
            name: name.to_string(),
            dtype: b.dtype,
            len: b.len,
            got_dtype: t.dtype(),
            got: t.numel(),
        });
    }
    Ok(())
}

/// Blocking write of `data` into `mem` at element offset `offset`.
fn write_slice<T: ocl::OclPrm>(
    queue: &CommandQueue,
    mem: &Mem,
    offset: usize,
    data: &[T],
) -> Result<(), core::Error> {
    // SAFETY: a blocking write from a live slice; the caller keeps `offset + data.len()`
    // inside the buffer (validated programs, buffers allocated to their lengths).
    unsafe {
        core::enqueue_write_buffer(
            queue,
            mem,
            true,
            offset,
            data,
            None::<Event>,
            None::<&mut Event>,
        )
    }
}

/// Blocking read of `mem` at element offset `offset` into `data`.
fn read_slice<T: ocl::OclPrm>(
    queue: &CommandQueue,
    mem: &Mem,
    offset: usize,
    data: &mut [T],
) -> Result<(), core::Error> {
    // SAFETY: a blocking read: `data` is written before the call returns; the caller keeps
    // the range inside the buffer.
    unsafe { enqueue_read(queue, mem, offset, data, true) }
}

/// Non-blocking read of `mem` at element offset `offset` into `data`.
///
/// # Safety
/// `data` must stay in place, and unread by the host, until the queue has finished; the
/// range must lie inside the buffer.
unsafe fn read_slice_async<T: ocl::OclPrm>(
    queue: &CommandQueue,
    mem: &Mem,
    offset: usize,
    data: &mut [T],
) -> Result<(), core::Error> {
    // SAFETY: the caller's contract.
    unsafe { enqueue_read(queue, mem, offset, data, false) }
}

/// Enqueues a read of `mem` at element offset `offset` into `data`, waiting for it when
/// `block`.
///
/// # Safety
/// As for [`read_slice_async`] when not `block`; the range must lie inside the buffer.
unsafe fn enqueue_read<T: ocl::OclPrm>(
    queue: &CommandQueue,
    mem: &Mem,
    offset: usize,
    data: &mut [T],
    block: bool,
) -> Result<(), core::Error> {
    // SAFETY: the caller's contract.
    unsafe {
        core::enqueue_read_buffer(
            queue,
            mem,
            block,
            offset,
            data,
            None::<Event>,
            None::<&mut Event>,
        )
    }
}

/// [`read_slice_async`] for any dtype.
///
/// # Safety
/// As for [`read_slice_async`].
unsafe fn read_data_async(
    queue: &CommandQueue,
    mem: &Mem,
    offset: usize,
    data: &mut TensorData,
) -> Result<(), core::Error> {
    // SAFETY: the caller's contract.
    unsafe {
        match data {
            TensorData::F32(v) => read_slice_async(queue, mem, offset, v),
            TensorData::F64(v) => read_slice_async(queue, mem, offset, v),
            TensorData::I32(v) => read_slice_async(queue, mem, offset, v),
        }
    }
}

/// [`write_slice`] for any dtype.
fn write_data(
    queue: &CommandQueue,
    mem: &Mem,
    offset: usize,
    data: &TensorData,
) -> Result<(), core::Error> {
    match data {
        TensorData::F32(v) => write_slice(queue, mem, offset, v),
        TensorData::F64(v) => write_slice(queue, mem, offset, v),
        TensorData::I32(v) => write_slice(queue, mem, offset, v),
    }
}

/// [`read_slice`] for any dtype.
fn read_data(
    queue: &CommandQueue,
    mem: &Mem,
    offset: usize,
    data: &mut TensorData,
) -> Result<(), core::Error> {
    match data {
        TensorData::F32(v) => read_slice(queue, mem, offset, v),
        TensorData::F64(v) => read_slice(queue, mem, offset, v),
        TensorData::I32(v) => read_slice(queue, mem, offset, v),
    }
}

/// Writes the program's constants into the arena.
fn write_constants(queue: &CommandQueue, arena: &Mem, program: &Program) -> Result<(), ExecError> {
    for (i, b) in program.buffers.iter().enumerate() {
        if let BufferKind::Const { values } = &b.kind {
            let mut bytes = Vec::with_capacity(b.bytes());
            for e in 0..b.len {
                let v = if values.len() == 1 {
                    values[0]
                } else {
                    values[e]
                };
                match Scalar::from_f64(b.dtype, v).cast(b.dtype) {
                    Scalar::F32(x) => bytes.extend_from_slice(&x.to_ne_bytes()),
                    Scalar::F64(x) => bytes.extend_from_slice(&x.to_ne_bytes()),
                    Scalar::I32(x) => bytes.extend_from_slice(&x.to_ne_bytes()),
                }
            }
            if !bytes.is_empty() {
                write_slice(queue, arena, b.offset, &bytes)
                    .map_err(|e| ocl_error(&format!("writing constant buffer {i}"), &e))?;
            }
        }
    }
    Ok(())
}

/// GEMMs of at least this many multiply-adds are tuned: every usable configuration is
/// timed on the device and the fastest kept; smaller ones take [`kernels::choose_gemm`]'s
/// rule (timing them would cost more than it could save).
pub const GEMM_TUNE_MIN_MACS: usize = 1 << 21;

/// What a tuned choice depends on: the device, dtype, shape, batch and operand layouts.
type TuneKey = (String, DType, usize, usize, usize, usize, [bool; 3]);

/// Tuned GEMM configurations by [`TuneKey`], for the process (`None`: the simple kernel).
fn tuned() -> &'static std::sync::Mutex<HashMap<TuneKey, Option<GemmConfig>>> {
    static T: std::sync::OnceLock<std::sync::Mutex<HashMap<TuneKey, Option<GemmConfig>>>> =
        std::sync::OnceLock::new();
    T.get_or_init(Default::default)
}

/// The configuration GEMM step `s` runs: the rule for small products, else the fastest
/// of every usable configuration and the simple kernel, timed on the device (one warm-up
/// and the best of three runs each) and remembered per device, dtype, shape and layout.
fn choose_gemm_config(
    b: &Builder<'_>,
    queue: &CommandQueue,
    rt: &core::Program,
    s: usize,
    g: &crate::program::GemmStep,
) -> Result<Option<GemmConfig>, ExecError> {
    if g.sum_batch {
        // The simple kernel sums the products in each work-item.
        return Ok(None);
    }
    let usable = usable_configs(b.info, g.dtype.size_bytes());
    let cu = b.info.compute_units as usize;
    if g.m * g.n * g.k * g.batch < GEMM_TUNE_MIN_MACS || usable.is_empty() {
        return Ok(kernels::choose_gemm(&usable, g.m, g.n, g.k, g.batch, cu));
    }
    let key: TuneKey = (
        format!("{}/{}/{}", b.info.platform, b.info.name, b.info.index),
        g.dtype,
        g.m,
        g.n,
        g.k,
        g.batch,
        [
            g.a.col_stride == 1,
            g.b.col_stride == 1,
            g.c.col_stride == 1,
        ],
    );
    if let Some(c) = tuned().lock().ok().and_then(|t| t.get(&key).copied()) {
        return Ok(c);
    }
    let mut best: Option<(std::time::Duration, Option<GemmConfig>)> = None;
    let candidates = usable.iter().map(|c| Some(*c)).chain([None]);
    for config in candidates {
        let l = gemm_launch(b, rt, s, g, config)?;
        let mut fastest = std::time::Duration::MAX;
        for rep in 0..4 {
            let t = std::time::Instant::now();
            // The arena is cleared after tuning.
            enqueue(queue, &l).map_err(|e| ocl_error(&format!("tuning step {s}"), &e))?;
            core::finish(queue).map_err(|e| ocl_error(&format!("tuning step {s}"), &e))?;
            if rep > 0 {
                fastest = fastest.min(t.elapsed());
            }
        }
        if best.is_none_or(|(t, _)| fastest < t) {
            best = Some((fastest, config));
        }
    }
    let choice = best.and_then(|(_, c)| c);
    if let Ok(mut t) = tuned().lock() {
        t.insert(key, choice);
    }
    Ok(choice)
}

/// The launch (and index check) of library step `s`.
fn library_launch(
    b: &mut Builder<'_>,
    rt: &core::Program,
    s: usize,
    l: &LibraryStep,
) -> Result<(Option<Launch>, Option<IndexCheck>), ExecError> {
    let what = format!("step {s} (library {})", l.name());
    let bufs = &b.program.buffers;
    let group = b.info.max_work_group_size;
    let u = |x: usize| x as u64;
    let slot = u(s);
    match l {
        // The device copy; the sum over the ranks follows on the host
        // (`OclExecutor::all_reduce_step`).
        LibraryStep::AllReduce { x, out, .. } if x == out => Ok((None, None)),
        LibraryStep::AllReduce { x, out, dtype, len } => {
            let copy = LibraryStep::Copy {
                src: *x,
                dst: *out,
                dtype: *dtype,
                src_offset: 0,
                dst_offset: 0,
                len: *len,
            };
            library_launch(b, rt, s, &copy)
        }
        LibraryStep::Copy {
            src,
            dst,
            dtype,
            src_offset,
            dst_offset,
            len,
        } => {
            let (ms, os) = b.mem(*src);
            let (md, od) = b.mem(*dst);
            let (so, dof) = (os + u(*src_offset), od + u(*dst_offset));
            let size = u(dtype.size_bytes());
            let (s0, d0) = (
                bufs[*src].offset as u64 + u(*src_offset) * size,
                bufs[*dst].offset as u64 + u(*dst_offset) * size,
            );
            let bytes = u(*len) * size;
            let same = std::ptr::eq(ms, md) && std::ptr::eq(ms, b.arena);
            let serial: i32 = (same && s0 < d0 + bytes && d0 < s0 + bytes && s0 != d0) as i32;
            let n = u(*len);
            let args = [
                ArgVal::mem(ms),
                ArgVal::scalar(&so),
                ArgVal::mem(md),
                ArgVal::scalar(&dof),
                ArgVal::scalar(&n),
                ArgVal::scalar(&serial),
            ];
            let name = format!("copy_{}", kernels::suffix(*dtype));
            let kernel = b.kernel(rt, &name, &args, &what)?;
            let items = if serial != 0 { 1 } else { *len };
            Ok((launch_1d(kernel, items, group), None))
        }
        LibraryStep::ArgMax {
            x,
            out,
            dtype,
            outer,
            axis,
            inner,
        } => {
            let (mx, ox) = b.mem(*x);
            let (mo, oo) = b.mem(*out);
            let (a, bx, c) = (u(*outer), u(*axis), u(*inner));
            let args = [
                ArgVal::mem(mx),
                ArgVal::scalar(&ox),
                ArgVal::mem(mo),
                ArgVal::scalar(&oo),
                ArgVal::scalar(&a),
                ArgVal::scalar(&bx),
                ArgVal::scalar(&c),
            ];
            let name = format!("argmax_{}", kernels::suffix(*dtype));
            let kernel = b.kernel(rt, &name, &args, &what)?;
            let n = if *axis == 0 { 0 } else { outer * inner };
            Ok((launch_1d(kernel, n, group), None))
        }
        LibraryStep::Gather {
            data,
            indices,
            out,
            dtype,
            row_len,
            ..
        } => {
            let (md, od) = b.mem(*data);
            let (mi, oi) = b.mem(*indices);
            let (mo, oo) = b.mem(*out);
            let n = bufs[*indices].len;
            let rows = bufs[*data].len / (*row_len).max(1);
            let (nn, rl, rr) = (u(n), u(*row_len), u(rows));
            let args = [
                ArgVal::mem(md),
                ArgVal::scalar(&od),
                ArgVal::mem(mi),
                ArgVal::scalar(&oi),
                ArgVal::mem(mo),
                ArgVal::scalar(&oo),
                ArgVal::scalar(&nn),
                ArgVal::scalar(&rl),
                ArgVal::scalar(&rr),
                ArgVal::mem(b.flags),
                ArgVal::scalar(&slot),
            ];
            let name = format!("gather_{}", kernels::suffix(*dtype));
            let kernel = b.kernel(rt, &name, &args, &what)?;
            let check = IndexCheck {
                op: "gather",
                indices: *indices,
                rows,
            };
            Ok((launch_1d(kernel, n * row_len, group), Some(check)))
        }
        LibraryStep::ScatterAdd {
            updates,
            indices,
            out,
            dtype,
            row_len,
            ..
        } => {
            let (mu, ou) = b.mem(*updates);
            let (mi, oi) = b.mem(*indices);
            let (mo, oo) = b.mem(*out);
            let n = bufs[*indices].len;
            let total = bufs[*out].len;
            let rows = total / (*row_len).max(1);
            let (nn, rl, rr, tt) = (u(n), u(*row_len), u(rows), u(total));
            let args = [
                ArgVal::mem(mu),
                ArgVal::scalar(&ou),
                ArgVal::mem(mi),
                ArgVal::scalar(&oi),
                ArgVal::mem(mo),
                ArgVal::scalar(&oo),
                ArgVal::scalar(&nn),
                ArgVal::scalar(&rl),
                ArgVal::scalar(&rr),
                ArgVal::scalar(&tt),
                ArgVal::mem(b.flags),
                ArgVal::scalar(&slot),
            ];
            let name = format!("scatter_add_{}", kernels::suffix(*dtype));
            let kernel = b.kernel(rt, &name, &args, &what)?;
            let check = IndexCheck {
                op: "scatter_add",
                indices: *indices,
                rows,
            };
            Ok((launch_1d(kernel, total.max(n), group), Some(check)))
        }
        LibraryStep::Im2Col {
            x,
            out,
            dtype,
            image,
            window,
        } => {
            let plane: usize = image[2..].iter().product();
            let taps = crate::library::window_taps(window, &image[2..]);
            let table: Vec<i32> = taps.iter().map(|t| t.map_or(-1, |o| o as i32)).collect();
            let tlen = taps.len();
            let planes = (bufs[*x].len / plane.max(1)).min(bufs[*out].len / tlen.max(1));
            let t = b.table(&table, &what)?;
            let (mx, ox) = b.mem(*x);
            let (mo, oo) = b.mem(*out);
            let (pl, tl, pn) = (u(plane), u(tlen), u(planes));
            let args = [
                ArgVal::mem(mx),
                ArgVal::scalar(&ox),
                ArgVal::mem(mo),
                ArgVal::scalar(&oo),
                ArgVal::mem(&b.tables[t]),
                ArgVal::scalar(&pl),
                ArgVal::scalar(&tl),
                ArgVal::scalar(&pn),
            ];
            let name = format!("im2col_{}", kernels::suffix(*dtype));
            let kernel = b.kernel(rt, &name, &args, &what)?;
            Ok((launch_1d(kernel, planes * tlen, group), None))
        }
        LibraryStep::Col2Im {
            cols,
            out,
            dtype,
            image,
            window,
        } => {
            let plane: usize = image[2..].iter().product();
            let taps = crate::library::window_taps(window, &image[2..]);
            let tlen = taps.len();
            // Per plane offset, the taps that read it, in increasing order (CSR).
            let mut counts = vec![0i32; plane + 1];
            for o in taps.iter().flatten() {
                counts[*o + 1] += 1;
            }
            for e in 0..plane {
                counts[e + 1] += counts[e];
            }
            let mut fill = counts.clone();
            let mut ts = vec![0i32; counts[plane] as usize];
            for (t, o) in taps.iter().enumerate() {
                if let Some(o) = o {
                    ts[fill[*o] as usize] = t as i32;
                    fill[*o] += 1;
                }
            }
            let total = bufs[*out].len;
            let planes = (total / plane.max(1)).min(bufs[*cols].len / tlen.max(1));
            let ti = b.table(&counts, &what)?;
            let tt = b.table(&ts, &what)?;
            let (mc, oc) = b.mem(*cols);
            let (mo, oo) = b.mem(*out);
            let (pl, tl, pn, to) = (u(plane), u(tlen), u(planes), u(total));
            let args = [
                ArgVal::mem(mc),
                ArgVal::scalar(&oc),
                ArgVal::mem(mo),
                ArgVal::scalar(&oo),
                ArgVal::mem(&b.tables[ti]),
                ArgVal::mem(&b.tables[tt]),
                ArgVal::scalar(&pl),
                ArgVal::scalar(&tl),
                ArgVal::scalar(&pn),
                ArgVal::scalar(&to),
            ];
            let name = format!("col2im_{}", kernels::suffix(*dtype));
            let kernel = b.kernel(rt, &name, &args, &what)?;
            Ok((launch_1d(kernel, total, group), None))
        }
        LibraryStep::Random {
            out,
            dtype,
            normal,
            seed,
            a,
            b: bb,
            counter,
        } => {
            let (mo, oo) = b.mem(*out);
            let len = bufs[*out].len;
            let n = u(len);
            let (mcnt, ocnt, has) = match counter {
                Some(c) => {
                    let (m, o) = b.mem(*c);
                    (m, o, 1i32)
                }
                None => (b.flags, 0, 0i32),
            };
            let (lo32, hi32) = (*a as f32, *bb as f32);
            let mut args = vec![
                ArgVal::mem(mo),
                ArgVal::scalar(&oo),
                ArgVal::scalar(&n),
                ArgVal::scalar(seed),
                ArgVal::mem(mcnt),
                ArgVal::scalar(&ocnt),
                ArgVal::scalar(&has),
            ];
            let name = match (dtype, normal) {
                (DType::F32, false) => {
                    args.push(ArgVal::scalar(&lo32));
                    args.push(ArgVal::scalar(&hi32));
                    "random_uniform_f32"
                }
                (DType::F64, false) => {
                    args.push(ArgVal::scalar(a));
                    args.push(ArgVal::scalar(bb));
                    "random_uniform_f64"
                }
                (_, true) => {
                    args.push(ArgVal::scalar(a));
                    args.push(ArgVal::scalar(bb));
                    if *dtype == DType::F64 {
                        "random_normal_f64"
                    } else {
                        "random_normal_f32"
                    }
                }
                (DType::I32, false) => {
                    return Err(device_error(format!("{what}: i32 random samples")));
                }
            };
            let kernel = b.kernel(rt, name, &args, &what)?;
            Ok((launch_1d(kernel, len, group), None))
        }
    }
}
