//! [`CompiledModel`]: a checked, loaded bundle, ready to run.

use super::artifact::{self, ContainerError};
use super::loader::{LoadError, LoadedObject};
use super::{
    BundleDesc, DESC_MAGIC, FORMAT_VERSION, MANIFEST_FORMAT, Manifest, Mode, XENON_VERSION, host,
    isa,
};
use crate::cpu::{CpuExecutor, KernelFn};
use crate::exec::{ExecError, Slice, SliceMut};
use crate::program::{BufferKind, Program, ProgramError, Step};
use crate::{DType, Tensor, TensorData};
use std::any::Any;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Why a bundle could not be loaded or run. Each check has its own variant, so callers
/// (and the C API's error codes) can tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The artifact's container: truncated, not an artifact, wrong format version, bad
    /// checksum, malformed header.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The bundle was written in another format version.
    #[error("bundle format version {found}; this runtime reads version {supported}")]
    FormatVersion { found: u32, supported: u32 },
    /// The bundle was compiled by another Xenon version.
    #[error("the bundle was compiled by Xenon {found}; this runtime is Xenon {runtime}")]
    XenonVersion { found: String, runtime: String },
    /// The processor lacks instruction-set features the code was compiled for.
    #[error(
        "the bundle's code was compiled for {target} ({arch}) and needs processor features this machine lacks: {}",
        missing.join(", ")
    )]
    Isa {
        target: String,
        arch: String,
        missing: Vec<String>,
    },
    /// The object file could not be loaded.
    #[error("loading the bundle's machine code: {0}")]
    Object(#[from] LoadError),
    /// The bundle's parts disagree or are malformed.
    #[error("malformed bundle: {0}")]
    Malformed(String),
    /// The program failed validation.
    #[error("invalid program in the bundle: {0}")]
    Program(#[from] ProgramError),
    /// The weights are missing, malformed or of the wrong dtype or shape.
    #[error("weights: {0}")]
    Weights(String),
    /// A run failed (wrong inputs, a non-finite update, …).
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// How to load a bundle.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Threads for large steps (see [`CpuExecutor`]). Default: 1, the usual choice for
    /// embedded inference.
    pub threads: usize,
    /// The processor features to check the bundle against, instead of the running
    /// processor's (to ask whether a bundle would load on another machine). Default:
    /// `None`, the running processor.
    pub cpu_features: Option<Vec<String>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            threads: 1,
            cpu_features: None,
        }
    }
}

/// Where an executor input comes from.
#[derive(Clone, Copy, Debug)]
enum Bind {
    /// The caller's input `i` (manifest order).
    Input(usize),
    /// Weight `i` (manifest order).
    Weight(usize),
}

/// A loaded bundle: the program on a [`CpuExecutor`] with the bundle's machine code, and
/// the weights.
///
/// # Example
///
/// ```no_run
/// use xenon_runtime::aot::{CompiledModel, LoadOptions};
/// use xenon_runtime::exec::{Slice, SliceMut};
///
/// let mut model = CompiledModel::open("bundle/mnist_mlp.xnb", &LoadOptions::default())?;
/// let x = vec![0.0f32; 784];
/// let mut y = vec![0.0f32; 10];
/// model.run(&[Slice::F32(&x)], &mut [SliceMut::F32(&mut y)])?;
/// # Ok::<(), xenon_runtime::aot::BundleError>(())
/// ```
pub struct CompiledModel {
    manifest: Manifest,
    exec: CpuExecutor,
    weights: Vec<Tensor>,
    /// Per executor input (in its order).
    binds: Vec<Bind>,
    /// The weights file's safetensors metadata, written back by `save_weights`.
    weights_meta: HashMap<String, String>,
}

// A model may move to another thread (one thread runs it at a time: `run` takes `&mut`).
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<CompiledModel>();
};

impl std::fmt::Debug for CompiledModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModel")
            .field("name", &self.manifest.name)
            .field("mode", &self.manifest.mode)
            .finish_non_exhaustive()
    }
}

/// The checks on a manifest that come before any code is looked at.
fn check_manifest(m: &Manifest, opts: &LoadOptions) -> Result<(), BundleError> {
    if m.format != MANIFEST_FORMAT {
        return Err(BundleError::Malformed(format!(
            "manifest format {:?}, expected {MANIFEST_FORMAT:?}",
            m.format
        )));
    }
    if m.format_version != FORMAT_VERSION {
        return Err(BundleError::FormatVersion {
            found: m.format_version,
            supported: FORMAT_VERSION,
        });
    }
    if m.xenon_version != XENON_VERSION {
        return Err(BundleError::XenonVersion {
            found: m.xenon_version.clone(),
            runtime: XENON_VERSION.to_string(),
        });
    }
    let arch_ok = m.target.arch == isa::host_arch();
    let missing = match &opts.cpu_features {
        Some(list) => isa::missing(&m.target.features, &|f| Some(list.iter().any(|x| x == f))),
        None => isa::missing(&m.target.features, &isa::host_has),
    };
    if !arch_ok || !missing.is_empty() {
        return Err(BundleError::Isa {
            target: m.target.name.clone(),
            arch: m.target.arch.clone(),
            missing: if arch_ok {
                missing
            } else {
                vec![format!("the {} architecture", m.target.arch)]
            },
        });
    }
    Ok(())
}

impl CompiledModel {
    /// Loads a self-contained artifact (`<name>.xnb`) from `path`: reads it, checks it
    /// and maps its machine code (see the module docs for the checks).
    pub fn open(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<CompiledModel, BundleError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| BundleError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_artifact(&bytes, opts)
    }

    /// [`CompiledModel::open`] on the artifact's bytes.
    pub fn from_artifact(bytes: &[u8], opts: &LoadOptions) -> Result<CompiledModel, BundleError> {
        let parsed = artifact::parse(bytes)?;
        let manifest = &parsed.header.manifest;
        check_manifest(manifest, opts)?;
        let object = parsed.section("object")?;
        let weights = parsed.section("weights")?;
        let loaded = LoadedObject::load(object, &host::resolve)?;
        let symbol = format!("{}_bundle", manifest.name);
        let desc = loaded
            .symbol(&symbol)
            .ok_or_else(|| BundleError::Malformed(format!("the object has no symbol {symbol}")))?;
        if !loaded.contains(desc, std::mem::size_of::<BundleDesc>()) {
            return Err(BundleError::Malformed(format!(
                "{symbol} does not lie inside the object"
            )));
        }
        if !(desc as usize).is_multiple_of(std::mem::align_of::<BundleDesc>()) {
            return Err(BundleError::Malformed(format!(
                "{symbol} is not aligned to {} bytes",
                std::mem::align_of::<BundleDesc>()
            )));
        }
        // SAFETY: the symbol's bytes lie inside the loaded object (checked above), which
        // stays mapped while `loaded` lives; the pointers inside are checked against the
        // object's range by `from_desc` through `within`.
        let desc = unsafe { &*(desc as *const BundleDesc) };
        let loaded = Arc::new(loaded);
        let within = |p: *const u8, len: usize| loaded.contains(p, len);
        let code: Arc<dyn Any + Send + Sync> = loaded.clone();
        let model = unsafe { Self::from_desc(desc, weights, opts, code, Some(&within)) }?;
        if model.manifest.name != manifest.name
            || model.manifest.program_crc32 != manifest.program_crc32
        {
            return Err(BundleError::Malformed(
                "the object's manifest differs from the artifact's".into(),
            ));
        }
        Ok(model)
    }

    /// Builds a model from a bundle linked into the program (`<name>_bundle`, the symbol
    /// the bundle's object file exports) and the bytes of its weights file.
    ///
    /// # Safety
    ///
    /// `desc` must be the descriptor of a Xenon bundle object linked into this process
    /// (its pointers valid for the lengths it states, its kernels the code the compiler
    /// generated for its program). Everything else is checked, as for an artifact.
    pub unsafe fn from_linked(
        desc: &'static BundleDesc,
        weights: &[u8],
        opts: &LoadOptions,
    ) -> Result<CompiledModel, BundleError> {
        unsafe { Self::from_desc(desc, weights, opts, Arc::new(()), None) }
    }

    /// The common path: `within(ptr, len)` (when given) says whether a range lies in the
    /// loaded object.
    unsafe fn from_desc(
        desc: &BundleDesc,
        weights: &[u8],
        opts: &LoadOptions,
        code: Arc<dyn Any + Send + Sync>,
        within: Option<&dyn Fn(*const u8, usize) -> bool>,
    ) -> Result<CompiledModel, BundleError> {
        if desc.magic != DESC_MAGIC {
            return Err(BundleError::Malformed(
                "the bundle descriptor has the wrong magic".into(),
            ));
        }
        if desc.format_version != FORMAT_VERSION {
            return Err(BundleError::FormatVersion {
                found: desc.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let ptr_len = std::mem::size_of::<KernelFn>();
        let ranges = [
            (desc.manifest, desc.manifest_len as usize),
            (desc.program, desc.program_len as usize),
            (
                desc.kernels as *const u8,
                desc.num_kernels as usize * ptr_len,
            ),
        ];
        if let Some(within) = within
            && ranges.iter().any(|&(p, n)| !within(p, n))
        {
            return Err(BundleError::Malformed(
                "the bundle descriptor points outside the object".into(),
            ));
        }
        if !(desc.kernels as usize).is_multiple_of(std::mem::align_of::<KernelFn>()) {
            return Err(BundleError::Malformed(
                "the bundle descriptor's kernel table is misaligned".into(),
            ));
        }
        // SAFETY: the ranges are valid (inside the loaded object, checked above, or a
        // linked descriptor the caller vouches for).
        let (manifest_bytes, program_bytes, kernels) = unsafe {
            (
                std::slice::from_raw_parts(desc.manifest, desc.manifest_len as usize),
                std::slice::from_raw_parts(desc.program, desc.program_len as usize),
                std::slice::from_raw_parts(desc.kernels, desc.num_kernels as usize),
            )
        };
        let manifest: Manifest = serde_json::from_slice(manifest_bytes)
            .map_err(|e| BundleError::Malformed(format!("manifest: {e}")))?;
        check_manifest(&manifest, opts)?;
        if crc32fast::hash(program_bytes) != manifest.program_crc32 {
            return Err(ContainerError::Checksum {
                part: "program".into(),
                stored: manifest.program_crc32,
                computed: crc32fast::hash(program_bytes),
            }
            .into());
        }
        let program: Program = serde_json::from_slice(program_bytes)
            .map_err(|e| BundleError::Malformed(format!("program: {e}")))?;
        program.validate()?;
        let loops = program.loop_kernels().len();
        if loops != kernels.len() || loops != manifest.kernels {
            return Err(BundleError::Malformed(format!(
                "the program has {loops} loop kernels, the object {} and the manifest {}",
                kernels.len(),
                manifest.kernels
            )));
        }
        let mut next = kernels.iter();
        let table = program
            .steps
            .iter()
            .map(|s| match s {
                Step::Loop(_) => next.next().copied(),
                _ => None,
            })
            .collect();
        let (weights, weights_meta) = read_weights(&manifest, weights)?;
        let binds = bind(&manifest, &program)?;
        let exec = CpuExecutor::new(program, table, code, opts.threads)?;
        Ok(CompiledModel {
            manifest,
            exec,
            weights,
            binds,
            weights_meta,
        })
    }

    /// What the bundle declares: inputs, weights, outputs, target, versions.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The current weights, in manifest order.
    pub fn weights(&self) -> &[Tensor] {
        &self.weights
    }

    /// Runs the bundle: `inputs` in manifest order (each of its dtype and element count),
    /// `outputs` filled in manifest order (each of its dtype and element count). A
    /// training bundle also writes every updated weight back, unless one holds NaN or
    /// infinity (then nothing changes and the error names it).
    pub fn run(
        &mut self,
        inputs: &[Slice<'_>],
        outputs: &mut [SliceMut<'_>],
    ) -> Result<(), BundleError> {
        let m = &self.manifest;
        if inputs.len() != m.inputs.len() {
            return Err(ExecError::Arity {
                what: "inputs",
                expected: m.inputs.len(),
                got: inputs.len(),
            }
            .into());
        }
        if outputs.len() != m.outputs.len() {
            return Err(ExecError::Arity {
                what: "outputs",
                expected: m.outputs.len(),
                got: outputs.len(),
            }
            .into());
        }
        match m.mode {
            Mode::Inference => {
                let feeds: Vec<(Slice<'_>, Option<u64>)> = self
                    .binds
                    .iter()
                    .map(|b| match *b {
                        Bind::Input(i) => (inputs[i], None),
                        Bind::Weight(i) => {
                            let w = &self.weights[i];
                            (slice_of(w.data()), Some(w.stamp()))
                        }
                    })
                    .collect();
                self.exec.run_slices(&feeds, outputs)?;
                Ok(())
            }
            Mode::Train => self.train_step(inputs, outputs),
        }
    }

    /// One training step through the executor's update path.
    fn train_step(
        &mut self,
        inputs: &[Slice<'_>],
        outputs: &mut [SliceMut<'_>],
    ) -> Result<(), BundleError> {
        let m = &self.manifest;
        let mut feeds: HashMap<String, Tensor> = HashMap::new();
        for (info, s) in m.inputs.iter().zip(inputs) {
            if s.dtype() != info.dtype || s.len() != info.len() {
                return Err(ExecError::InputType {
                    name: info.name.clone(),
                    dtype: info.dtype,
                    len: info.len(),
                    got_dtype: s.dtype(),
                    got: s.len(),
                }
                .into());
            }
            feeds.insert(
                info.name.clone(),
                Tensor::new(info.shape.clone(), owned(s)).expect("length checked"),
            );
        }
        for (info, out) in m.outputs.iter().zip(outputs.iter()) {
            if out.dtype() != info.dtype || out.len() != info.len() {
                return Err(ExecError::OutputType {
                    name: info.name.clone(),
                    dtype: info.dtype,
                    len: info.len(),
                    got_dtype: out.dtype(),
                    got: out.len(),
                }
                .into());
            }
        }
        let names: Vec<String> = m.weights.iter().map(|w| w.name.clone()).collect();
        for (name, w) in names.iter().zip(self.weights.drain(..)) {
            feeds.insert(name.clone(), w);
        }
        let shapes: HashMap<String, Vec<usize>> = m
            .outputs
            .iter()
            .map(|o| (o.name.clone(), o.shape.clone()))
            .collect();
        let result = self.exec.run_update(&mut feeds, &shapes, true);
        // The weights come back whatever happened (the executor leaves them untouched on
        // failure).
        self.weights = names
            .iter()
            .map(|n| feeds.remove(n).expect("weights stay in the feeds"))
            .collect();
        let got = result?;
        for (info, out) in m.outputs.iter().zip(outputs.iter_mut()) {
            let t = got
                .get(&info.name)
                .ok_or_else(|| BundleError::Malformed(format!("no output {:?}", info.name)))?;
            copy_into(t.data(), out);
        }
        Ok(())
    }

    /// Runs an inference bundle with one f32 input and one f32 output: returns the output.
    pub fn predict(&mut self, x: &[f32]) -> Result<Vec<f32>, BundleError> {
        let n = self.manifest.outputs.first().map(|o| o.len()).unwrap_or(0);
        let mut y = vec![0.0f32; n];
        self.run(&[Slice::F32(x)], &mut [SliceMut::F32(&mut y)])?;
        Ok(y)
    }

    /// Saves the current weights (after training steps) as a safetensors file, with the
    /// metadata of the weights file the bundle was loaded with; written atomically.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<(), BundleError> {
        let path = path.as_ref();
        let named: Vec<(&str, &Tensor)> = self
            .manifest
            .weights
            .iter()
            .map(|i| i.name.as_str())
            .zip(&self.weights)
            .collect();
        let bytes =
            super::weights::encode(&named, &self.weights_meta).map_err(BundleError::Weights)?;
        crate::file::write_atomic(path, &bytes).map_err(|source| BundleError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Which executor input is which caller input or weight; every executor input must be
/// one of them, with the program's dtype and length.
fn bind(m: &Manifest, program: &Program) -> Result<Vec<Bind>, BundleError> {
    let mut binds = Vec::new();
    for b in &program.buffers {
        let BufferKind::Input { name } = &b.kind else {
            continue;
        };
        let (bind, info) = if let Some(i) = m.inputs.iter().position(|t| &t.name == name) {
            (Bind::Input(i), &m.inputs[i])
        } else if let Some(i) = m.weights.iter().position(|t| &t.name == name) {
            (Bind::Weight(i), &m.weights[i])
        } else {
            return Err(BundleError::Malformed(format!(
                "program input {name:?} is neither a manifest input nor a weight"
            )));
        };
        if info.dtype != b.dtype || info.len() != b.len {
            return Err(BundleError::Malformed(format!(
                "{name:?}: the manifest says {} {:?}, the program {} × {}",
                info.dtype, info.shape, b.dtype, b.len
            )));
        }
        binds.push(bind);
    }
    let outputs: Vec<&String> = program
        .outputs
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !m.updates.iter().any(|u| &u.output == *n))
        .collect();
    let declared: Vec<&String> = m.outputs.iter().map(|o| &o.name).collect();
    if outputs != declared {
        return Err(BundleError::Malformed(format!(
            "the program's outputs {outputs:?} are not the manifest's {declared:?}"
        )));
    }
    for (o, _) in &program.outputs {
        let Some(info) = m.outputs.iter().find(|i| &i.name == o) else {
            continue;
        };
        let (_, id) = program
            .outputs
            .iter()
            .find(|(n, _)| n == o)
            .expect("listed");
        let b = &program.buffers[*id];
        if info.dtype != b.dtype || info.len() != b.len {
            return Err(BundleError::Malformed(format!(
                "output {o:?}: the manifest says {} {:?}, the program {} × {}",
                info.dtype, info.shape, b.dtype, b.len
            )));
        }
    }
    Ok(binds)
}

/// The manifest's weights from a safetensors file, and its metadata.
fn read_weights(
    m: &Manifest,
    bytes: &[u8],
) -> Result<(Vec<Tensor>, HashMap<String, String>), BundleError> {
    let wanted: Vec<(&str, DType, &[usize])> = m
        .weights
        .iter()
        .map(|w| (w.name.as_str(), w.dtype, w.shape.as_slice()))
        .collect();
    super::weights::decode(bytes, &wanted).map_err(BundleError::Weights)
}

fn slice_of(d: &TensorData) -> Slice<'_> {
    match d {
        TensorData::F32(v) => Slice::F32(v),
        TensorData::F64(v) => Slice::F64(v),
        TensorData::I32(v) => Slice::I32(v),
    }
}

fn owned(s: &Slice<'_>) -> TensorData {
    match s {
        Slice::F32(v) => TensorData::F32(v.to_vec()),
        Slice::F64(v) => TensorData::F64(v.to_vec()),
        Slice::I32(v) => TensorData::I32(v.to_vec()),
    }
}

fn copy_into(d: &TensorData, out: &mut SliceMut<'_>) {
    match (d, out) {
        (TensorData::F32(s), SliceMut::F32(o)) => o.copy_from_slice(s),
        (TensorData::F64(s), SliceMut::F64(o)) => o.copy_from_slice(s),
        (TensorData::I32(s), SliceMut::I32(o)) => o.copy_from_slice(s),
        _ => {}
    }
}
