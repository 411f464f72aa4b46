//! Ahead-of-time bundles: a lowered program, its machine code for a chosen target, its
//! weights, a C header and a manifest, written as one directory (see ARCHITECTURE.md,
//! "Bundles", for the format and `xenon_runtime::aot` for loading).
//!
//! ```text
//! DIR/<name>.o              relocatable object: the kernels and `<name>_bundle`
//! DIR/<name>.h              C header: the runtime's C API and the model's constants
//! DIR/<name>.safetensors    the weights (parameters; optimizer state for training)
//! DIR/<name>.xnb            self-contained artifact: manifest + object + weights
//! DIR/manifest.json         the manifest, with every file's size and CRC-32
//! ```

mod header;

use crate::codegen::cpu::object::{Embedded, compile_object, is_c_identifier, target_features};
use crate::codegen::cpu::{CodegenError, CpuOptions, Target};
use crate::ir::Graph;
use crate::lower::Lowered;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use xenon_runtime::aot::{
    FORMAT_VERSION, FileInfo, MANIFEST_FORMAT, Manifest, Mode, TargetInfo, TensorInfo, UpdateInfo,
    XENON_VERSION, artifact,
};
use xenon_runtime::program::BufferKind;
use xenon_runtime::{DType, Tensor};

pub use header::c_header;

/// How to build a bundle.
#[derive(Clone, Debug)]
pub struct BundleOptions {
    /// The bundle's name: a C identifier, the prefix of its symbols, header constants and
    /// file names. Default: `model`.
    pub name: String,
    /// What the code may assume about the processor. Default: [`Target::Native`].
    pub target: Target,
    /// Code generation options. Default: [`CpuOptions::default`] with the verifier off.
    pub cpu: CpuOptions,
}

impl Default for BundleOptions {
    fn default() -> Self {
        BundleOptions {
            name: "model".into(),
            target: Target::Native,
            cpu: CpuOptions {
                verify: false,
                ..CpuOptions::default()
            },
        }
    }
}

/// Why a bundle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AotError {
    #[error("bundle name {0:?} is not a C identifier ([A-Za-z_][A-Za-z0-9_]*)")]
    Name(String),
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    #[error("weight {name:?}: {reason}")]
    Weight { name: String, reason: String },
    #[error("the graph has no leaf named {0:?} (a program input)")]
    UnknownInput(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A built bundle, in memory.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub manifest: Manifest,
    /// The relocatable object file.
    pub object: Vec<u8>,
    /// The weights, safetensors.
    pub weights: Vec<u8>,
    /// The C header.
    pub header: String,
    /// The self-contained artifact.
    pub artifact: Vec<u8>,
}

/// Builds a bundle from `graph` (the graph that was lowered, for names, dtypes and
/// shapes) and its lowering. Every program input found in `weights` is a weight (kept
/// by the runtime, updated by a training step); the others are the caller's inputs on
/// each run. In an inference bundle a value the program updates (a recurrent layer's
/// carried state) is always the caller's input, and its new value an output, so a caller
/// runs a sequence step by step by passing each run's new state to the next. `weights_meta`
/// is stored as the weights file's metadata.
pub fn build(
    graph: &Graph,
    lowered: &Lowered,
    mode: Mode,
    weights: &HashMap<String, Tensor>,
    weights_meta: &HashMap<String, String>,
    opts: &BundleOptions,
) -> Result<Bundle, AotError> {
    if !is_c_identifier(&opts.name) {
        return Err(AotError::Name(opts.name.clone()));
    }
    let program = &lowered.program;
    // A weight: kept by the runtime (and, in a training bundle, updated in place).
    let kept = |name: &str| {
        weights.contains_key(name)
            && (mode == Mode::Train || !program.updates.iter().any(|(_, w)| w == name))
    };
    let leaf = |name: &str| -> Result<TensorInfo, AotError> {
        let id = graph
            .find_leaf(name)
            .ok_or_else(|| AotError::UnknownInput(name.to_string()))?;
        let ty = graph.ty(id);
        Ok(TensorInfo {
            name: name.to_string(),
            dtype: ty.dtype,
            shape: ty.shape.clone(),
        })
    };
    let (mut inputs, mut weight_infos) = (Vec::new(), Vec::new());
    for b in &program.buffers {
        if let BufferKind::Input { name } = &b.kind {
            let info = leaf(name)?;
            if let Some(t) = weights.get(name).filter(|_| kept(name)) {
                if t.dtype() != info.dtype || t.shape() != info.shape.as_slice() {
                    return Err(AotError::Weight {
                        name: name.clone(),
                        reason: format!(
                            "the weights hold {} {:?}, the model needs {} {:?}",
                            t.dtype(),
                            t.shape(),
                            info.dtype,
                            info.shape
                        ),
                    });
                }
                weight_infos.push(info);
            } else {
                inputs.push(info);
            }
        }
    }
    let outputs: Vec<TensorInfo> = program
        .outputs
        .iter()
        .filter(|(n, _)| !program.updates.iter().any(|(o, w)| o == n && kept(w)))
        .map(|(n, id)| {
            let b = &program.buffers[*id];
            TensorInfo {
                name: n.clone(),
                dtype: b.dtype,
                shape: lowered
                    .output_shapes
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| vec![b.len]),
            }
        })
        .collect();
    let updates = program
        .updates
        .iter()
        .filter(|(_, w)| kept(w))
        .map(|(o, w)| UpdateInfo {
            output: o.clone(),
            weight: w.clone(),
        })
        .collect();
    let batch = inputs
        .first()
        .and_then(|i| i.shape.first().copied())
        .unwrap_or(1);
    let program_json = serde_json::to_vec(program).expect("programs serialize");
    let (features, arch) = target_features(opts.target, &opts.cpu)?;
    let loops = program.loop_kernels();
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        format_version: FORMAT_VERSION,
        xenon_version: XENON_VERSION.into(),
        name: opts.name.clone(),
        mode,
        batch,
        target: TargetInfo {
            name: opts.target.to_string(),
            arch,
            features,
        },
        inputs,
        weights: weight_infos,
        outputs,
        updates,
        scratch_bytes: program.plan.arena_bytes,
        kernels: loops.len(),
        program_crc32: crc32fast::hash(&program_json),
        files: Vec::new(),
    };
    let manifest_json = serde_json::to_vec(&manifest).expect("manifests serialize");
    let object = compile_object(
        &loops,
        &opts.cpu,
        opts.target,
        Embedded {
            name: &opts.name,
            manifest: &manifest_json,
            program: &program_json,
        },
    )?;
    let weights_bytes = safetensors_bytes(&manifest.weights, weights, weights_meta)?;
    let header = c_header(&manifest);
    let artifact = artifact::write(
        &manifest,
        &[("object", &object.bytes), ("weights", &weights_bytes)],
    );
    Ok(Bundle {
        manifest,
        object: object.bytes,
        weights: weights_bytes,
        header,
        artifact,
    })
}

/// The weights named in `infos`, as a safetensors file.
fn safetensors_bytes(
    infos: &[TensorInfo],
    weights: &HashMap<String, Tensor>,
    meta: &HashMap<String, String>,
) -> Result<Vec<u8>, AotError> {
    let named: Vec<(&str, &Tensor)> = infos
        .iter()
        .map(|i| (i.name.as_str(), &weights[&i.name]))
        .collect();
    xenon_runtime::aot::weights::encode(&named, meta).map_err(|reason| AotError::Weight {
        name: String::new(),
        reason,
    })
}

impl Bundle {
    /// Writes the bundle's files into `dir` (created if needed), each atomically, and
    /// `manifest.json` last; returns the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, AotError> {
        let io = |path: &Path, source| AotError::Io {
            path: path.display().to_string(),
            source,
        };
        if dir.exists() && !dir.is_dir() {
            let e = std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "exists and is not a directory (a bundle is a directory of files)",
            );
            return Err(io(dir, e));
        }
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let name = &self.manifest.name;
        let files: [(String, &[u8]); 4] = [
            (format!("{name}.o"), &self.object),
            (format!("{name}.h"), self.header.as_bytes()),
            (format!("{name}.safetensors"), &self.weights),
            (format!("{name}.xnb"), &self.artifact),
        ];
        let mut manifest = self.manifest.clone();
        let mut written = Vec::new();
        for (file, bytes) in &files {
            let path = dir.join(file);
            xenon_runtime::file::write_atomic(&path, bytes).map_err(|e| io(&path, e))?;
            manifest.files.push(FileInfo {
                name: file.clone(),
                bytes: bytes.len() as u64,
                crc32: crc32fast::hash(bytes),
            });
            written.push(path);
        }
        let path = dir.join("manifest.json");
        let mut json = serde_json::to_vec_pretty(&manifest).expect("manifests serialize");
        json.push(b'\n');
        xenon_runtime::file::write_atomic(&path, &json).map_err(|e| io(&path, e))?;
        written.push(path);
        Ok(written)
    }
}

/// The C type of a dtype.
fn c_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::I32 => "int32_t",
    }
}
