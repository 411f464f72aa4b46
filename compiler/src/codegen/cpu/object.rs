//! Ahead-of-time code: a program's loop kernels in a relocatable object file.
//!
//! [`compile_object`] compiles kernels for a [`Target`] with `cranelift-object` into an ELF
//! object holding:
//!
//! * `<name>_kernel_<i>` (local): kernel `i`, the [`super::KernelFn`] ABI;
//! * `<name>_kernels` (local, read-only): the table of their addresses;
//! * `<name>_manifest`, `<name>_program` (local, read-only): the given bytes;
//! * `<name>_bundle` (exported, read-only): a [`BundleDesc`] pointing at the three above.
//!
//! The code is position-independent: the only relocations are absolute addresses in the
//! read-only data and, for f64 `exp`/`log`/`tanh`, GOT-relative calls to the runtime's
//! `xenon_*_f64` functions (see [`xenon_runtime::aot::host`]).

use super::target::{Target, TargetIsa};
use super::{CodegenError, CpuOptions, cranelift_err, define_all, panic_message, plan_all};
use cranelift_module::{DataDescription, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};
use std::mem::offset_of;
use xenon_runtime::aot::{BundleDesc, DESC_MAGIC, FORMAT_VERSION};
use xenon_runtime::kernel::LoopKernel;

/// An object file and what its code needs.
#[derive(Clone, Debug)]
pub struct ObjectCode {
    /// The ELF bytes.
    pub bytes: Vec<u8>,
    /// The processor features the code may use (`is_x86_feature_detected!` names).
    pub features: Vec<String>,
    /// The architecture (`x86_64`).
    pub arch: String,
    /// Per kernel: whether it got a vector loop.
    pub vectorized: Vec<bool>,
}

/// What [`compile_object`] embeds besides the code.
#[derive(Clone, Copy, Debug)]
pub struct Embedded<'a> {
    /// The symbol prefix (a C identifier).
    pub name: &'a str,
    /// The manifest's bytes (JSON).
    pub manifest: &'a [u8],
    /// The program's bytes (JSON).
    pub program: &'a [u8],
}

/// The processor features and architecture of `target`'s code, without compiling
/// anything (what a manifest records before the object exists).
pub fn target_features(
    target: Target,
    opts: &CpuOptions,
) -> Result<(Vec<String>, String), CodegenError> {
    let t = target.isa(opts)?;
    Ok((t.features, t.arch))
}

/// Compiles `kernels` for `target` into a relocatable object with the bundle descriptor
/// `<name>_bundle` (see the module docs). Never panics.
pub fn compile_object(
    kernels: &[&LoopKernel],
    opts: &CpuOptions,
    target: Target,
    embedded: Embedded<'_>,
) -> Result<ObjectCode, CodegenError> {
    if !is_c_identifier(embedded.name) {
        return Err(CodegenError::Internal(format!(
            "bundle name {:?} is not a C identifier",
            embedded.name
        )));
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let t = target.isa(opts)?;
        build(kernels, opts, t, embedded)
    }));
    match result {
        Ok(r) => r,
        Err(p) => Err(CodegenError::Internal(panic_message(&*p))),
    }
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_c_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn build(
    kernels: &[&LoopKernel],
    opts: &CpuOptions,
    t: TargetIsa,
    e: Embedded<'_>,
) -> Result<ObjectCode, CodegenError> {
    let host = t.host;
    let plans = plan_all(kernels, opts, host)?;
    let name = e.name;
    let builder = ObjectBuilder::new(
        t.isa,
        format!("{name}.o"),
        cranelift_module::default_libcall_names(),
    )
    .map_err(|err| cranelift_err(None, err))?;
    let mut module = ObjectModule::new(builder);
    let ids = define_all(&mut module, kernels, &plans, opts, host, &mut None, |i| {
        (format!("{name}_kernel_{i}"), Linkage::Local)
    })?;
    let ptr = module.target_config().pointer_bytes() as usize;
    let err = |x: cranelift_module::ModuleError| cranelift_err(None, x);

    // The byte blobs.
    let blob = |module: &mut ObjectModule, sym: String, bytes: &[u8]| {
        let id = module
            .declare_data(&sym, Linkage::Local, false, false)
            .map_err(err)?;
        let mut d = DataDescription::new();
        d.define(bytes.to_vec().into_boxed_slice());
        module.define_data(id, &d).map_err(err)?;
        Ok::<_, CodegenError>(id)
    };
    let manifest = blob(&mut module, format!("{name}_manifest"), e.manifest)?;
    let program = blob(&mut module, format!("{name}_program"), e.program)?;

    // The kernel table.
    let table = module
        .declare_data(&format!("{name}_kernels"), Linkage::Local, false, false)
        .map_err(err)?;
    let mut d = DataDescription::new();
    d.define(vec![0u8; (ids.len() * ptr).max(ptr)].into_boxed_slice());
    d.set_align(ptr as u64);
    for (i, &id) in ids.iter().enumerate() {
        let f = module.declare_func_in_data(id, &mut d);
        d.write_function_addr((i * ptr) as u32, f);
    }
    module.define_data(table, &d).map_err(err)?;

    // The descriptor.
    let bundle = module
        .declare_data(&format!("{name}_bundle"), Linkage::Export, false, false)
        .map_err(err)?;
    let mut bytes = vec![0u8; std::mem::size_of::<BundleDesc>()];
    let put = |bytes: &mut [u8], at: usize, v: &[u8]| bytes[at..at + v.len()].copy_from_slice(v);
    put(&mut bytes, offset_of!(BundleDesc, magic), &DESC_MAGIC);
    put(
        &mut bytes,
        offset_of!(BundleDesc, format_version),
        &FORMAT_VERSION.to_le_bytes(),
    );
    put(
        &mut bytes,
        offset_of!(BundleDesc, num_kernels),
        &(ids.len() as u32).to_le_bytes(),
    );
    put(
        &mut bytes,
        offset_of!(BundleDesc, manifest_len),
        &(e.manifest.len() as u64).to_le_bytes(),
    );
    put(
        &mut bytes,
        offset_of!(BundleDesc, program_len),
        &(e.program.len() as u64).to_le_bytes(),
    );
    let mut d = DataDescription::new();
    d.define(bytes.into_boxed_slice());
    d.set_align(8);
    for (field, id) in [
        (offset_of!(BundleDesc, manifest), manifest),
        (offset_of!(BundleDesc, program), program),
        (offset_of!(BundleDesc, kernels), table),
    ] {
        let gv = module.declare_data_in_data(id, &mut d);
        d.write_data_addr(field as u32, gv, 0);
    }
    module.define_data(bundle, &d).map_err(err)?;

    let product = module.finish();
    let bytes = product.emit().map_err(|x| cranelift_err(None, x))?;
    Ok(ObjectCode {
        bytes,
        features: t.features,
        arch: t.arch,
        vectorized: plans.iter().map(|p| p.vector).collect(),
    })
}
