//! Ahead-of-time compilation end to end: `xenon train` → `xenon compile` → the Rust app
//! `xenon-embed` (the artifact loaded at run time, and the object linked at build time)
//! and the C program `examples/embed-c/main.c` (linked with `cc`) print the same
//! misclassification as `xenon eval` on the 1,000 bundled test digits, with every
//! sample's outputs within 1e-6 of the JIT-compiled model's; the app's dependency tree
//! holds no compiler crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use xenon::frontend::prelude::*;
use xenon::runtime::Tensor;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const MODEL: &str = "examples/models/mlp_784_100_10.yaml";

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn xenon(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_xenon"))
        .args(args)
        .current_dir(ROOT))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(ROOT);
    c
}

/// Trained weights, their bundle, `xenon eval`'s misclassification and the JIT model's
/// outputs on the test digits.
struct Fixture {
    dir: PathBuf,
    weights: PathBuf,
    bundle: PathBuf,
    eval_misclass: f64,
    jit: Vec<Vec<f32>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = Path::new(ROOT)
            .join("target")
            .join(format!("embed-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let weights = dir.join("w.safetensors");
        let bundle = dir.join("bundle");
        let w = weights.to_str().unwrap();
        xenon(&["train", MODEL, "--epochs", "1", "--save", w]);
        xenon(&[
            "compile",
            MODEL,
            "--weights",
            w,
            "--batch",
            "1",
            "--name",
            "mnist_mlp",
            "-o",
            bundle.to_str().unwrap(),
        ]);
        let eval: serde_json::Value =
            serde_json::from_slice(&xenon(&["eval", MODEL, "--weights", w, "--json"]).stdout)
                .unwrap();
        // The JIT-compiled model, one sample at a time like the bundle (batch 1).
        let mnist = Mnist::bundled().unwrap();
        let mut model = Model::load(&weights).unwrap();
        let jit = mnist
            .test
            .x
            .chunks(784)
            .map(|x| {
                let x = Tensor::from_f32(vec![1, 784], x.to_vec()).unwrap();
                model.predict(&x).unwrap().as_f32().unwrap().to_vec()
            })
            .collect();
        Fixture {
            dir,
            weights,
            bundle,
            eval_misclass: eval["test_misclass"].as_f64().unwrap(),
            jit,
        }
    })
}

/// The misclassification (percent) an app printed.
fn misclass(stdout: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("misclassification:"))
        .unwrap_or_else(|| panic!("no misclassification line in {text}"));
    line.trim_start_matches("misclassification:")
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap()
}

/// Compares an app's per-sample outputs file with the JIT model's outputs.
fn check_outputs(path: &Path, jit: &[Vec<f32>]) {
    let text = std::fs::read_to_string(path).unwrap();
    let rows: Vec<Vec<f32>> = text
        .lines()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), jit.len(), "{}", path.display());
    let mut worst = 0f32;
    for (i, (a, b)) in rows.iter().zip(jit).enumerate() {
        assert_eq!(a.len(), b.len(), "sample {i}");
        for (p, q) in a.iter().zip(b) {
            worst = worst.max((p - q).abs());
            assert!(
                (p - q).abs() <= 1e-6,
                "sample {i}: {p} vs {q} ({})",
                path.display()
            );
        }
    }
    eprintln!(
        "{}: largest difference from the JIT model {worst:e}",
        path.display()
    );
}

/// Builds `xenon-embed` with the bundle's object linked in, and `libxenon_capi.a`, in a
/// target directory of their own (the outer `cargo test` holds the workspace's).
fn build_apps(f: &Fixture) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = Path::new(ROOT).join("target").join("embed-apps");
            run(cargo()
                .args(["build", "--locked", "-p", "xenon-embed", "-p", "xenon-capi"])
                .arg("--target-dir")
                .arg(&target)
                .env("XENON_EMBED_OBJECT", f.bundle.join("mnist_mlp.o")));
            target.join("debug")
        })
        .clone()
}

#[test]
fn rust_app_matches_eval_and_jit() {
    let f = fixture();
    let bin = build_apps(f).join("xenon-embed");
    for (how, args) in [
        (
            "artifact",
            vec![
                "--artifact".to_string(),
                f.bundle.join("mnist_mlp.xnb").display().to_string(),
            ],
        ),
        (
            "linked",
            vec![
                "--linked".to_string(),
                f.bundle.join("mnist_mlp.safetensors").display().to_string(),
            ],
        ),
    ] {
        let outputs = f.dir.join(format!("rust-{how}.txt"));
        let out = run(Command::new(&bin)
            .args(&args)
            .arg("--outputs")
            .arg(&outputs));
        assert_eq!(misclass(&out.stdout), f.eval_misclass, "{how}");
        check_outputs(&outputs, &f.jit);
    }
}

#[test]
fn c_program_matches_eval_and_jit() {
    let f = fixture();
    if Command::new("cc").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no C compiler (cc) on this machine; .ci/run installs one");
        return;
    }
    let lib = build_apps(f).join("libxenon_capi.a");
    let exe = f.dir.join("classify");
    run(Command::new("cc")
        .arg("-O2")
        .arg("-I")
        .arg(&f.bundle)
        .arg(Path::new(ROOT).join("examples/embed-c/main.c"))
        .arg(f.bundle.join("mnist_mlp.o"))
        .arg(&lib)
        .args(["-lm", "-lpthread", "-ldl", "-o"])
        .arg(&exe));
    // The C program reads raw IDX files.
    let data = f.dir.join("idx");
    std::fs::create_dir_all(&data).unwrap();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let gz = std::fs::File::open(
            Path::new(ROOT)
                .join("data/mnist-subset")
                .join(format!("{name}.gz")),
        )
        .unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut raw).unwrap();
        std::fs::write(data.join(name), raw).unwrap();
    }
    let outputs = f.dir.join("c.txt");
    let out = run(Command::new(&exe)
        .arg(f.bundle.join("mnist_mlp.safetensors"))
        .arg(&data)
        .arg(&outputs));
    assert_eq!(misclass(&out.stdout), f.eval_misclass);
    check_outputs(&outputs, &f.jit);
    // A wrong weights file is a clear error with its status name, not a crash.
    let out = Command::new(&exe)
        .arg(f.weights.with_extension("missing"))
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("XENON_ERR_IO"), "{err}");
}

#[test]
fn embedding_app_depends_on_the_runtime_alone() {
    let out = run(cargo().args([
        "tree",
        "--locked",
        "-p",
        "xenon-embed",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]));
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"xenon-runtime"), "{tree}");
    for c in &crates {
        assert!(
            !(c.starts_with("cranelift")
                || *c == "egg"
                || *c == "petgraph"
                || c.contains("yaml")
                || c.contains("saphyr")
                || *c == "xenon-compiler"
                || *c == "xenon-frontend"),
            "xenon-embed depends on {c}:\n{tree}"
        );
    }
}

#[test]
fn x86_64_v3_bundle_agrees_with_native() {
    use xenon::runtime::aot::{CompiledModel, LoadOptions, isa};
    use xenon::runtime::exec::{Slice, SliceMut};
    let f = fixture();
    let v3 = f.dir.join("bundle-v3");
    xenon(&[
        "compile",
        MODEL,
        "--weights",
        f.weights.to_str().unwrap(),
        "--batch",
        "1",
        "--target",
        "x86-64-v3",
        "--name",
        "mnist_mlp",
        "-o",
        v3.to_str().unwrap(),
    ]);
    let opts = LoadOptions::default();
    let r = CompiledModel::open(v3.join("mnist_mlp.xnb"), &opts);
    if !["avx2", "fma"]
        .iter()
        .all(|x| isa::host_has(x) == Some(true))
    {
        assert!(r.is_err(), "an x86-64-v3 bundle loaded without AVX2/FMA");
        eprintln!("SKIPPED running the x86-64-v3 bundle: this processor lacks AVX2/FMA");
        return;
    }
    let mut a = r.unwrap();
    assert_eq!(a.manifest().target.name, "x86-64-v3");
    let mut b = CompiledModel::open(f.bundle.join("mnist_mlp.xnb"), &opts).unwrap();
    let mnist = Mnist::bundled().unwrap();
    let (mut ya, mut yb) = ([0f32; 10], [0f32; 10]);
    for x in mnist.test.x.chunks(784) {
        a.run(&[Slice::F32(x)], &mut [SliceMut::F32(&mut ya)])
            .unwrap();
        b.run(&[Slice::F32(x)], &mut [SliceMut::F32(&mut yb)])
            .unwrap();
        for (p, q) in ya.iter().zip(&yb) {
            assert!((p - q).abs() <= 1e-5, "{p} vs {q}");
        }
    }
}
