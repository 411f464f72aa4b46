//! Ahead-of-time bundles: built from lowered graphs, loaded back at run time (object
//! loader, checks), run against the reference interpreter; every kind of bad artifact is
//! rejected with its own error, and mutated artifacts never crash the loader.

use proptest::prelude::*;
use std::collections::HashMap;
use xenon_compiler::aot::{self, Bundle, BundleOptions};
use xenon_compiler::codegen::cpu::Target;
use xenon_compiler::interp;
use xenon_compiler::ir::{DType, Graph};
use xenon_runtime::aot::artifact::{self, ContainerError};
use xenon_runtime::aot::{BundleError, CompiledModel, LoadOptions, Mode};
use xenon_runtime::exec::{Slice, SliceMut};
use xenon_runtime::{Tensor, TensorData};

/// `y = exp(-tanh(x·W + b))` and `z = log(1 + sum(x²))` per row, in `dtype` (f64 calls
/// the runtime's `xenon_*_f64` functions through the GOT).
fn graph(dtype: DType) -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", dtype, &[3, 6]).unwrap();
    let w = g.parameter("W", dtype, &[6, 5]).unwrap();
    let b = g.parameter("b", dtype, &[5]).unwrap();
    let xw = g.matmul(x, w, false, false).unwrap();
    let z = g.add_(xw, b).unwrap();
    let t = g.tanh(z).unwrap();
    let n = g.neg(t).unwrap();
    let y = g.exp(n).unwrap();
    g.set_output("y", y).unwrap();
    let x2 = g.mul(x, x).unwrap();
    let s = g.sum(x2, &[1], false).unwrap();
    let one = g.scalar(dtype, 1.0).unwrap();
    let s1 = g.add_(s, one).unwrap();
    let l = g.log(s1).unwrap();
    g.set_output("z", l).unwrap();
    g
}

fn values(dtype: DType, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0) - 1.0)
        .collect();
    Tensor::from_f64_as(dtype, shape.to_vec(), &v).unwrap()
}

fn weights(dtype: DType) -> HashMap<String, Tensor> {
    HashMap::from([
        ("W".to_string(), values(dtype, &[6, 5], 1)),
        ("b".to_string(), values(dtype, &[5], 2)),
    ])
}

fn bundle_for(g: &Graph, mode: Mode, w: &HashMap<String, Tensor>, target: Target) -> Bundle {
    let lowered = xenon_compiler::lower::lower(g).unwrap();
    let opts = BundleOptions {
        name: "tiny".into(),
        target,
        ..BundleOptions::default()
    };
    let meta = HashMap::from([("note".to_string(), "test".to_string())]);
    aot::build(g, &lowered, mode, w, &meta, &opts).unwrap()
}

fn bundle(dtype: DType) -> Bundle {
    bundle_for(
        &graph(dtype),
        Mode::Inference,
        &weights(dtype),
        Target::Native,
    )
}

fn to_f64(d: &TensorData) -> Vec<f64> {
    match d {
        TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
        TensorData::F64(v) => v.clone(),
        TensorData::I32(v) => v.iter().map(|&x| x as f64).collect(),
    }
}

/// Runs a loaded inference bundle of `graph` and compares it with the interpreter.
fn check_against_interpreter(model: &mut CompiledModel, dtype: DType, tol: f64) {
    let g = graph(dtype);
    let x = values(dtype, &[3, 6], 3);
    let mut feeds = weights(dtype);
    feeds.insert("x".into(), x.clone());
    let want = interp::run(&g, &feeds).unwrap();
    let m = model.manifest().clone();
    assert_eq!(
        m.outputs
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>(),
        ["y", "z"]
    );
    let got: Vec<Vec<f64>> = match dtype {
        DType::F32 => {
            let (mut y, mut z) = (vec![0f32; 15], vec![0f32; 3]);
            model
                .run(
                    &[Slice::F32(x.as_f32().unwrap())],
                    &mut [SliceMut::F32(&mut y), SliceMut::F32(&mut z)],
                )
                .unwrap();
            vec![
                y.iter().map(|&v| v as f64).collect(),
                z.iter().map(|&v| v as f64).collect(),
            ]
        }
        _ => {
            let (mut y, mut z) = (vec![0f64; 15], vec![0f64; 3]);
            model
                .run(
                    &[Slice::F64(x.as_f64().unwrap())],
                    &mut [SliceMut::F64(&mut y), SliceMut::F64(&mut z)],
                )
                .unwrap();
            vec![y, z]
        }
    };
    for (name, got) in ["y", "z"].iter().zip(got) {
        let want = to_f64(want[*name].data());
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= tol * b.abs().max(1.0),
                "{name}: {a} vs {b} ({dtype:?})"
            );
        }
    }
}

#[test]
fn inference_bundles_run_like_the_interpreter() {
    // f32: polynomial transcendentals (a few ulp); f64: the runtime's libm calls, exact.
    for (dtype, tol) in [(DType::F32, 1e-6), (DType::F64, 1e-14)] {
        let b = bundle(dtype);
        let mut m = CompiledModel::from_artifact(&b.artifact, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{dtype:?}: {e}"));
        check_against_interpreter(&mut m, dtype, tol);
        assert_eq!(m.manifest().mode, Mode::Inference);
        assert_eq!(m.manifest().weights.len(), 2);
        assert_eq!(m.manifest().inputs[0].shape, [3, 6]);
    }
}

#[test]
fn manifest_and_header_describe_the_bundle() {
    let b = bundle(DType::F32);
    let m = &b.manifest;
    assert_eq!(m.name, "tiny");
    assert_eq!(m.xenon_version, env!("CARGO_PKG_VERSION"));
    assert!(m.kernels >= 1);
    assert_eq!(m.target.name, "native");
    for needle in [
        "extern const xenon_bundle tiny_bundle;",
        "#define TINY_BATCH 3",
        "#define TINY_INPUT_0_NAME \"x\"",
        "static const size_t TINY_INPUT_0_SHAPE[2] = {3, 6};",
        "#define TINY_OUTPUT_1_LEN 3",
        "#define TINY_WEIGHT_0_BYTES",
        "xenon_status xenon_run(",
    ] {
        assert!(
            b.header.contains(needle),
            "header lacks {needle:?}:\n{}",
            b.header
        );
    }
    let dir = std::env::temp_dir().join(format!("xenon-aot-manifest-{}", std::process::id()));
    let written = b.write(&dir).unwrap();
    assert_eq!(written.len(), 5);
    let json: xenon_runtime::aot::Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(json.files.len(), 4);
    for f in &json.files {
        let bytes = std::fs::read(dir.join(&f.name)).unwrap();
        assert_eq!(bytes.len() as u64, f.bytes);
        assert_eq!(crc32fast::hash(&bytes), f.crc32, "{}", f.name);
    }
    let mut m2 = CompiledModel::open(dir.join("tiny.xnb"), &LoadOptions::default()).unwrap();
    check_against_interpreter(&mut m2, DType::F32, 1e-6);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn targets_agree() {
    let native = bundle(DType::F32);
    let v3 = bundle_for(
        &graph(DType::F32),
        Mode::Inference,
        &weights(DType::F32),
        Target::X86_64V3,
    );
    assert_eq!(v3.manifest.target.name, "x86-64-v3");
    for f in ["avx2", "fma", "bmi2"] {
        assert!(v3.manifest.target.features.iter().any(|x| x == f), "{f}");
    }
    assert!(
        !v3.manifest
            .target
            .features
            .iter()
            .any(|x| x.starts_with("avx512"))
    );
    let host_avx2 = xenon_runtime::aot::isa::host_has("avx2") == Some(true)
        && xenon_runtime::aot::isa::host_has("fma") == Some(true);
    if !host_avx2 {
        eprintln!("skipped running the x86-64-v3 bundle: this processor lacks AVX2/FMA");
        return;
    }
    let mut a = CompiledModel::from_artifact(&native.artifact, &LoadOptions::default()).unwrap();
    let mut b = CompiledModel::from_artifact(&v3.artifact, &LoadOptions::default()).unwrap();
    let x = values(DType::F32, &[3, 6], 5);
    let run = |m: &mut CompiledModel| {
        let (mut y, mut z) = (vec![0f32; 15], vec![0f32; 3]);
        m.run(
            &[Slice::F32(x.as_f32().unwrap())],
            &mut [SliceMut::F32(&mut y), SliceMut::F32(&mut z)],
        )
        .unwrap();
        (y, z)
    };
    let (ya, za) = run(&mut a);
    let (yb, zb) = run(&mut b);
    for (p, q) in ya.iter().chain(&za).zip(yb.iter().chain(&zb)) {
        assert!((p - q).abs() <= 1e-5 * q.abs().max(1.0), "{p} vs {q}");
    }
}

#[test]
fn training_bundles_update_their_weights() {
    // loss = sum((x·W)²); new W = W − 0.01·∂loss/∂W, computed by hand in the graph.
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2, 4]).unwrap();
    let w = g.parameter("W", DType::F32, &[4, 3]).unwrap();
    let y = g.matmul(x, w, false, false).unwrap();
    let y2 = g.mul(y, y).unwrap();
    let loss = g.sum(y2, &[0, 1], false).unwrap();
    let two = g.scalar(DType::F32, 0.02).unwrap();
    let gy = g.mul(y, two).unwrap();
    let gw = g.matmul(x, gy, true, false).unwrap();
    let nw = g.sub(w, gw).unwrap();
    g.set_output("loss", loss).unwrap();
    g.set_output("new/W", nw).unwrap();
    g.set_update("new/W", "W").unwrap();
    let w0 = values(DType::F32, &[4, 3], 7);
    let ws = HashMap::from([("W".to_string(), w0.clone())]);
    let b = bundle_for(&g, Mode::Train, &ws, Target::Native);
    assert_eq!(b.manifest.updates.len(), 1);
    assert_eq!(b.manifest.outputs.len(), 1);
    let mut m = CompiledModel::from_artifact(&b.artifact, &LoadOptions::default()).unwrap();
    let xv = values(DType::F32, &[2, 4], 8);
    let mut feeds = ws.clone();
    for _ in 0..3 {
        feeds.insert("x".into(), xv.clone());
        let want = interp::run(&g, &feeds).unwrap();
        let mut l = [0f32];
        m.run(
            &[Slice::F32(xv.as_f32().unwrap())],
            &mut [SliceMut::F32(&mut l)],
        )
        .unwrap();
        let wl = want["loss"].as_f32().unwrap()[0];
        assert!(
            (l[0] - wl).abs() <= 1e-5 * wl.abs().max(1.0),
            "{} vs {wl}",
            l[0]
        );
        let nw = want["new/W"].clone();
        for (a, b) in m.weights()[0]
            .as_f32()
            .unwrap()
            .iter()
            .zip(nw.as_f32().unwrap())
        {
            assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
        }
        feeds.insert("W".into(), nw);
    }
    // Saved weights keep the metadata and load back.
    let dir = std::env::temp_dir().join(format!("xenon-aot-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    m.save_weights(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["note"], "test");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn runs_check_inputs_and_outputs() {
    let b = bundle(DType::F32);
    let mut m = CompiledModel::from_artifact(&b.artifact, &LoadOptions::default()).unwrap();
    let x = vec![0f32; 18];
    let (mut y, mut z) = (vec![0f32; 15], vec![0f32; 3]);
    let short = vec![0f32; 17];
    let err = m
        .run(
            &[Slice::F32(&short)],
            &mut [SliceMut::F32(&mut y), SliceMut::F32(&mut z)],
        )
        .unwrap_err();
    assert!(err.to_string().contains("\"x\""), "{err}");
    let xd = vec![0f64; 18];
    assert!(
        m.run(
            &[Slice::F64(&xd)],
            &mut [SliceMut::F32(&mut y), SliceMut::F32(&mut z)]
        )
        .is_err()
    );
    let mut y2 = vec![0f32; 14];
    let err = m
        .run(
            &[Slice::F32(&x)],
            &mut [SliceMut::F32(&mut y2), SliceMut::F32(&mut z)],
        )
        .unwrap_err();
    assert!(err.to_string().contains("\"y\""), "{err}");
    assert!(
        m.run(&[], &mut [SliceMut::F32(&mut y), SliceMut::F32(&mut z)])
            .is_err()
    );
    assert!(
        m.run(&[Slice::F32(&x)], &mut [SliceMut::F32(&mut y)])
            .is_err()
    );
    m.run(
        &[Slice::F32(&x)],
        &mut [SliceMut::F32(&mut y), SliceMut::F32(&mut z)],
    )
    .unwrap();
}

fn load(bytes: &[u8]) -> Result<CompiledModel, BundleError> {
    CompiledModel::from_artifact(bytes, &LoadOptions::default())
}

#[test]
fn truncated_artifacts_are_rejected() {
    let a = bundle(DType::F32).artifact;
    for len in 0..a.len() {
        match load(&a[..len]) {
            Err(BundleError::Container(ContainerError::Truncated { .. })) => {}
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn corrupted_artifacts_are_rejected() {
    let a = bundle(DType::F32).artifact;
    let parsed = artifact::parse(&a).unwrap();
    let obj = parsed
        .header
        .sections
        .iter()
        .find(|s| s.name == "object")
        .unwrap();
    let at = obj.offset as usize + obj.len as usize / 2;
    let mut bad = a.clone();
    bad[at] ^= 0x40;
    let err = load(&bad).unwrap_err();
    assert!(
        matches!(&err, BundleError::Container(ContainerError::Checksum { part, .. }) if part == "artifact"),
        "{err}"
    );
    let mut bad = a.clone();
    bad[0] = b'Y';
    assert!(matches!(
        load(&bad),
        Err(BundleError::Container(ContainerError::BadMagic))
    ));
}

/// `manifest` and the sections of `a`, re-written with the sections changed by `edit`
/// (valid outer checksum, so the inner checks are reached).
fn rewrite(a: &[u8], edit: impl Fn(&mut artifact::Header)) -> Vec<u8> {
    let parsed = artifact::parse(a).unwrap();
    let mut header = parsed.header.clone();
    let object = parsed.section("object").unwrap().to_vec();
    let weights = parsed.section("weights").unwrap().to_vec();
    edit(&mut header);
    let mut out = artifact::write(
        &header.manifest,
        &[("object", &object), ("weights", &weights)],
    );
    // Apply section-level edits (the writer recomputes them): patch the header JSON.
    let p = artifact::parse(&out).unwrap();
    if p.header.sections != header.sections {
        let mut h = p.header.clone();
        for (s, e) in h.sections.iter_mut().zip(&header.sections) {
            s.crc32 = e.crc32;
        }
        let old = serde_json::to_vec(&p.header).unwrap();
        let new = serde_json::to_vec(&h).unwrap();
        assert_eq!(old.len(), new.len(), "same-length edit");
        let start = artifact::PREFIX;
        out[start..start + new.len()].copy_from_slice(&new);
        let crc = crc32fast::hash(&out[artifact::PREFIX..]);
        out[16..20].copy_from_slice(&crc.to_le_bytes());
    }
    out
}

#[test]
fn wrong_versions_are_rejected() {
    let a = bundle(DType::F32).artifact;
    let mut bad = a.clone();
    bad[8..12].copy_from_slice(&2u32.to_le_bytes());
    match load(&bad) {
        Err(BundleError::Container(ContainerError::FormatVersion {
            found: 2,
            supported: 1,
        })) => {}
        other => panic!("{other:?}"),
    }
    let bad = rewrite(&a, |h| h.manifest.xenon_version = "0.0.1-old".into());
    match load(&bad) {
        Err(BundleError::XenonVersion { found, .. }) => assert_eq!(found, "0.0.1-old"),
        other => panic!("{other:?}"),
    }
    let bad = rewrite(&a, |h| h.manifest.format_version = 7);
    assert!(matches!(
        load(&bad),
        Err(BundleError::FormatVersion { found: 7, .. })
    ));
}

#[test]
fn wrong_checksums_are_rejected() {
    let a = bundle(DType::F32).artifact;
    let bad = rewrite(&a, |h| {
        let s = h.sections.iter_mut().find(|s| s.name == "weights").unwrap();
        s.crc32 ^= 0x1111_1111;
    });
    match load(&bad) {
        Err(BundleError::Container(ContainerError::Checksum { part, .. })) => {
            assert!(part.contains("weights"), "{part}")
        }
        other => panic!("{other:?}"),
    }
    // The program's checksum, inside the object's manifest and the artifact's.
    let bad = rewrite(&a, |h| h.manifest.program_crc32 ^= 1);
    assert!(load(&bad).is_err());
}

#[test]
fn wrong_isa_is_rejected() {
    let v4 = bundle_for(
        &graph(DType::F32),
        Mode::Inference,
        &weights(DType::F32),
        Target::X86_64V4,
    );
    assert!(v4.manifest.target.features.iter().any(|f| f == "avx512f"));
    // On a processor with AVX2 but no AVX-512 (given as a feature list), loading stops
    // before any code is mapped, naming the missing features.
    let v3_features = bundle_for(
        &graph(DType::F32),
        Mode::Inference,
        &weights(DType::F32),
        Target::X86_64V3,
    )
    .manifest
    .target
    .features;
    let opts = LoadOptions {
        cpu_features: Some(v3_features.clone()),
        ..LoadOptions::default()
    };
    match CompiledModel::from_artifact(&v4.artifact, &opts) {
        Err(BundleError::Isa {
            target, missing, ..
        }) => {
            assert_eq!(target, "x86-64-v4");
            assert!(missing.iter().any(|f| f == "avx512f"), "{missing:?}");
            assert!(!missing.iter().any(|f| f == "avx2"), "{missing:?}");
        }
        other => panic!("{other:?}"),
    }
    // A feature no processor has.
    let bad = rewrite(&bundle(DType::F32).artifact, |h| {
        h.manifest.target.features.push("avx9000".into())
    });
    assert!(matches!(load(&bad), Err(BundleError::Isa { .. })));
    // The v4 bundle on this machine: loads where the processor has AVX-512.
    let has_v4 = v4
        .manifest
        .target
        .features
        .iter()
        .all(|f| xenon_runtime::aot::isa::host_has(f) == Some(true));
    let r = load(&v4.artifact);
    if has_v4 {
        let mut m = r.unwrap();
        check_against_interpreter(&mut m, DType::F32, 1e-6);
    } else {
        assert!(matches!(r, Err(BundleError::Isa { .. })), "{r:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Mutated artifacts load or fail with an error — never a panic. `mode` 0 mutates the
    /// file; 1 also recomputes the outer checksum, so the mutation reaches the header;
    /// 2 mutates the object section and rewrites the artifact with valid checksums, so
    /// the mutation reaches the object loader and the descriptor checks. No code of a
    /// mutated artifact is run.
    #[test]
    fn mutated_artifacts_never_crash(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        mode in 0..3u8,
        dtype64 in any::<bool>(),
    ) {
        use std::sync::OnceLock;
        static A: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
        let a = A.get_or_init(|| [bundle(DType::F32).artifact, bundle(DType::F64).artifact]);
        let a = &a[usize::from(dtype64)];
        let bad = if mode == 2 {
            let p = artifact::parse(a).unwrap();
            let mut object = p.section("object").unwrap().to_vec();
            let weights = p.section("weights").unwrap();
            for (i, v) in &edits {
                let at = i.index(object.len());
                object[at] = *v;
            }
            artifact::write(&p.header.manifest, &[("object", &object), ("weights", weights)])
        } else {
            let mut bad = a.clone();
            for (i, v) in &edits {
                let at = i.index(bad.len());
                bad[at] = *v;
            }
            if mode == 1 && bad.len() >= artifact::PREFIX {
                let crc = crc32fast::hash(&bad[artifact::PREFIX..]);
                bad[16..20].copy_from_slice(&crc.to_le_bytes());
            }
            bad
        };
        let _ = std::panic::catch_unwind(|| load(&bad))
            .map_err(|_| TestCaseError::fail("load panicked"))?;
    }
}
