//! Compiled bundles (`xenon compile`): the `.xnb` artifact, and each of its parts — the
//! manifest, the ELF object, the weights — put back into an artifact with the real other
//! parts and correct checksums, so that mutations reach the checks behind the checksums.
//! The real parts come from `fuzz/fixtures/bundle/sine.xnb` (the 2-32-1 MLP of
//! `examples/models/regression_sine.yaml`, compiled for batch 1). Nothing loaded is run:
//! loading never runs generated code, and the checks are what is fuzzed.
//!
//! The processor check is made against a fixed list of features (every x86-64 feature the
//! compiler targets), so that the targets reach the same code on any x86-64 machine.

use crate::feedback::outcome;
use std::sync::{Arc, OnceLock};
use xenon_runtime::aot::artifact::{self, PREFIX};
use xenon_runtime::aot::loader::LoadedObject;
use xenon_runtime::aot::{CompiledModel, LoadOptions, Manifest, host};
use xenon_runtime::cpu::CpuExecutor;
use xenon_runtime::program::Program;

/// The processor features the targets claim to have.
const FEATURES: [&str; 21] = [
    "sse2",
    "sse3",
    "ssse3",
    "sse4.1",
    "sse4.2",
    "popcnt",
    "cmpxchg16b",
    "avx",
    "avx2",
    "fma",
    "bmi1",
    "bmi2",
    "lzcnt",
    "movbe",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512cd",
    "avx512dq",
    "avx512vl",
    "xsave",
];

/// The parts of the fixture artifact.
pub struct Parts {
    /// The whole artifact.
    pub artifact: Vec<u8>,
    /// The manifest's JSON as the header holds it.
    pub manifest: Vec<u8>,
    /// The relocatable object.
    pub object: Vec<u8>,
    /// The weights (safetensors).
    pub weights: Vec<u8>,
}

/// The fixture artifact's path.
pub fn fixture_path() -> std::path::PathBuf {
    crate::fuzz_dir().join("fixtures/bundle/sine.xnb")
}

/// The fixture artifact, split (read once).
pub fn parts() -> &'static Parts {
    static PARTS: OnceLock<Parts> = OnceLock::new();
    PARTS.get_or_init(|| {
        let artifact = std::fs::read(fixture_path()).expect("fuzz/fixtures/bundle/sine.xnb");
        let parsed = artifact::parse(&artifact).expect("the fixture artifact parses");
        let manifest = serde_json::to_vec(&parsed.header.manifest).expect("manifests serialize");
        let object = parsed.section("object").expect("an object").to_vec();
        let weights = parsed.section("weights").expect("weights").to_vec();
        Parts {
            artifact: artifact.clone(),
            manifest,
            object,
            weights,
        }
    })
}

fn options() -> LoadOptions {
    LoadOptions {
        threads: 1,
        cpu_features: Some(FEATURES.iter().map(|f| f.to_string()).collect()),
    }
}

/// An artifact of the raw manifest JSON `manifest` and the sections `(name, bytes)`, with
/// correct offsets, lengths and checksums (the layout `artifact::write` gives).
pub fn assemble(manifest: &[u8], sections: &[(&str, &[u8])]) -> Vec<u8> {
    let mut header_len = 0usize;
    loop {
        let mut offset = (PREFIX + header_len).next_multiple_of(64);
        let mut header = b"{\"manifest\":".to_vec();
        header.extend_from_slice(manifest);
        header.extend_from_slice(b",\"sections\":[");
        let mut at = Vec::new();
        for (i, (name, bytes)) in sections.iter().enumerate() {
            if i > 0 {
                header.push(b',');
            }
            header.extend_from_slice(
                format!(
                    "{{\"name\":{},\"offset\":{offset},\"len\":{},\"crc32\":{}}}",
                    serde_json::Value::from(*name),
                    bytes.len(),
                    crc32fast::hash(bytes)
                )
                .as_bytes(),
            );
            at.push(offset);
            offset = (offset + bytes.len()).next_multiple_of(64);
        }
        header.extend_from_slice(b"]}");
        if header.len() > header_len {
            header_len = header.len();
            continue;
        }
        let mut out = Vec::with_capacity(offset);
        out.extend_from_slice(&artifact::MAGIC);
        out.extend_from_slice(&xenon_runtime::aot::FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&header);
        out.resize(PREFIX + header_len, b' ');
        for (&o, (_, bytes)) in at.iter().zip(sections) {
            out.resize(o, 0);
            out.extend_from_slice(bytes);
        }
        let crc = crc32fast::hash(&out[PREFIX..]);
        out[16..20].copy_from_slice(&crc.to_le_bytes());
        return out;
    }
}

fn open(artifact: &[u8]) {
    outcome("artifact parse", &artifact::parse(artifact));
    outcome("open", &CompiledModel::from_artifact(artifact, &options()));
}

/// A whole artifact, checksums as they are.
pub fn artifact(bytes: &[u8]) {
    open(bytes);
}

/// A manifest (JSON): read alone, then in an artifact with the fixture's object and
/// weights.
pub fn manifest(bytes: &[u8]) {
    outcome("manifest", &serde_json::from_slice::<Manifest>(bytes));
    let p = parts();
    open(&assemble(
        bytes,
        &[("object", &p.object), ("weights", &p.weights)],
    ));
}

/// An ELF object: through the loader alone, then in an artifact with the fixture's
/// manifest and weights.
pub fn object(bytes: &[u8]) {
    outcome("elf load", &LoadedObject::load(bytes, &host::resolve));
    let p = parts();
    open(&assemble(
        &p.manifest,
        &[("object", bytes), ("weights", &p.weights)],
    ));
}

/// A weights section: decoded for the fixture's manifest, then in an artifact with the
/// fixture's manifest and object.
pub fn weights(bytes: &[u8]) {
    let p = parts();
    if let Ok(m) = serde_json::from_slice::<Manifest>(&p.manifest) {
        let wanted: Vec<_> = m
            .weights
            .iter()
            .map(|w| (w.name.as_str(), w.dtype, w.shape.as_slice()))
            .collect();
        outcome(
            "weights decode",
            &xenon_runtime::aot::weights::decode(bytes, &wanted),
        );
    }
    open(&assemble(
        &p.manifest,
        &[("object", &p.object), ("weights", bytes)],
    ));
}

/// A program's JSON (the schedule a bundle carries): read, validated, and prepared on an
/// executor with the reference evaluator for every loop step.
pub fn program(bytes: &[u8]) {
    let program = serde_json::from_slice::<Program>(bytes);
    outcome("program", &program);
    let Ok(program) = program else { return };
    outcome("validate", &program.validate());
    let kernels = vec![None; program.steps.len()];
    outcome(
        "executor",
        &CpuExecutor::new(program, kernels, Arc::new(()), 1),
    );
}
