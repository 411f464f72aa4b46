//! The `xenon` command line, end to end: summaries, training and evaluation with `--json`,
//! reproducibility, and one clear error line (never a panic) for each kind of bad input.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn summary_counts_parameters() {
    let o = xenon(&["summary", "examples/models/mnist_mlp.yaml", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["total_params"].as_u64(), Some(79_400));
    let o = xenon(&[
        "summary",
        "examples/models/mlp_784_64_10_bias.yaml",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["total_params"].as_u64(), Some(50_890));
    let o = xenon(&["summary", "examples/models/mnist_mlp.yaml"]);
    assert!(
        stdout(&o).contains("total parameters: 79400"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn train_json_then_eval_saved_weights() {
    let dir = scratch("train");
    let weights = dir.join("w.safetensors");
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "--epochs",
        "2",
        "--json",
        "--save",
        weights.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 3, "two epochs and done: {lines:?}");
    assert_eq!(lines[0]["event"], "epoch");
    assert_eq!(lines[0]["batches"].as_u64(), Some(63));
    let done = &lines[2];
    assert_eq!(done["event"], "done");
    for k in [
        "test_misclass",
        "train_cost",
        "epochs",
        "seconds",
        "samples_per_sec",
    ] {
        assert!(done[k].is_number(), "{k} in {done}");
    }
    let misclass = done["test_misclass"].as_f64().unwrap();
    assert!(misclass > 0.0 && misclass < 15.0, "{misclass}");

    let o = xenon(&[
        "eval",
        "examples/models/mnist_mlp.yaml",
        "--weights",
        weights.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        v["test_misclass"].as_f64(),
        Some(misclass),
        "eval agrees with the last epoch"
    );
}

#[test]
fn seed_makes_runs_bit_identical() {
    let run = |seed: &str| {
        let o = xenon(&[
            "train",
            "examples/models/mnist_mlp.yaml",
            "--epochs",
            "1",
            "--json",
            "--seed",
            seed,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let l = json_lines(&o);
        (
            l[0]["train_cost"].as_f64().unwrap().to_bits(),
            l[0]["test_misclass"].as_f64().unwrap(),
        )
    };
    assert_eq!(run("3"), run("3"));
    assert_ne!(run("3").0, run("4").0);
}

/// A directory holding MNIST-format files built from the given pieces.
fn mnist_dir(name: &str, images: &[u8], labels: &[u8]) -> PathBuf {
    let d = scratch(name);
    for prefix in ["train", "t10k"] {
        write(&d, &format!("{prefix}-images-idx3-ubyte"), images);
        write(&d, &format!("{prefix}-labels-idx1-ubyte"), labels);
    }
    d
}

fn idx_images(n: u32, magic: u32) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in [n, 28, 28] {
        v.extend(d.to_be_bytes());
    }
    v.extend(vec![0u8; (n * 28 * 28) as usize]);
    v
}

fn idx_labels(n: u32) -> Vec<u8> {
    let mut v = 0x801u32.to_be_bytes().to_vec();
    v.extend(n.to_be_bytes());
    v.extend(vec![1u8; n as usize]);
    v
}

#[test]
fn truncated_idx_file() {
    let mut images = idx_images(4, 0x803);
    images.truncate(images.len() - 100);
    let d = mnist_dir("truncated", &images, &idx_labels(4));
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "--data",
        d.to_str().unwrap(),
    ]);
    assert_clear_error(&o, &["train-images-idx3-ubyte", "truncated"]);
}

#[test]
fn wrong_magic_number() {
    let d = mnist_dir("magic", &idx_images(4, 0x1234), &idx_labels(4));
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "--data",
        d.to_str().unwrap(),
    ]);
    assert_clear_error(&o, &["train-images-idx3-ubyte", "magic"]);
}

#[test]
fn image_and_label_counts_disagree() {
    let d = mnist_dir("counts", &idx_images(4, 0x803), &idx_labels(5));
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "--data",
        d.to_str().unwrap(),
    ]);
    assert_clear_error(&o, &["4", "5"]);
}

const GOOD: &str = "layers:\n  - type: Linear\n    config: {nout: 10, init: {type: Gaussian, config: {scale: 0.01}}}\n  - type: Activation\n    config: {transform: {type: Logistic}}\ncost: CrossEntropyBinary\noptimizer: {type: GradientDescentMomentum, config: {learning_rate: 0.1}}\ndataset: {name: mnist}\n";

#[test]
fn a_good_file_trains() {
    let p = model_file("good.yaml", GOOD);
    let o = xenon(&["train", p.to_str().unwrap(), "--epochs", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn verify_prints_the_error_of_each_output_against_the_interpreter() {
    let p = model_file("verify.yaml", GOOD);
    let o = xenon(&[
        "train",
        p.to_str().unwrap(),
        "--epochs",
        "1",
        "--verify",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = json_lines(&o);
    let verify: Vec<_> = lines.iter().filter(|l| l["event"] == "verify").collect();
    // The training step's optimized graph and program, then the evaluation's program.
    let stages: Vec<_> = verify
        .iter()
        .map(|v| (v["program"].as_u64().unwrap(), v["stage"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stages,
        [(0, "optimized"), (0, "compiled"), (1, "compiled")],
        "{lines:?}"
    );
    for step in [&verify[0]["outputs"], &verify[1]["outputs"]] {
        for name in ["cost", "new/Linear_0/W"] {
            let rel = step[name]["relative"].as_f64().unwrap();
            assert!(rel <= 1e-5, "{name}: {rel}");
        }
    }
    let text = xenon(&["train", p.to_str().unwrap(), "--epochs", "1", "--verify"]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(stdout(&text).contains("verify: program 0 on cpu against the interpreter"));
    assert!(
        stdout(&text)
            .contains("verify: program 0 optimized graph on interp against the interpreter")
    );
}

#[test]
fn backends_come_from_one_registry() {
    let p = model_file("backend.yaml", GOOD);
    // neon's `gpu` names the OpenCL backend; a build without it says so plainly.
    if cfg!(not(feature = "opencl")) {
        let gpu = xenon(&[
            "train",
            p.to_str().unwrap(),
            "--backend",
            "gpu",
            "--epochs",
            "1",
        ]);
        assert_clear_error(
            &gpu,
            &[
                "the opencl backend is not available",
                "--features opencl",
                "available: interp, cpu",
            ],
        );
    }
    let tpu = xenon(&[
        "train",
        p.to_str().unwrap(),
        "--backend",
        "tpu",
        "--epochs",
        "1",
    ]);
    assert_clear_error(
        &tpu,
        &[
            "unknown backend \"tpu\"",
            "interp, cpu (or mkl), opencl (or gpu)",
        ],
    );
    // A model file's `backend: gpu` goes through the same registry.
    if cfg!(not(feature = "opencl")) {
        let f = model_file("gpu.yaml", &format!("backend: gpu\n{GOOD}"));
        let o = xenon(&["train", f.to_str().unwrap(), "--epochs", "1"]);
        assert_clear_error(&o, &["the opencl backend is not available"]);
    }
}

#[test]
fn unknown_layer_type_lists_the_known_ones() {
    let p = model_file("type.yaml", &GOOD.replace("type: Linear", "type: Dense"));
    let o = xenon(&["train", p.to_str().unwrap()]);
    assert_clear_error(&o, &["\"Dense\"", "Linear, Bias, Affine, Activation"]);
}

#[test]
fn unknown_argument_lists_the_accepted_ones() {
    let p = model_file("arg.yaml", &GOOD.replace("nout: 10", "nouts: 10"));
    let o = xenon(&["summary", p.to_str().unwrap()]);
    assert_clear_error(&o, &["\"nouts\"", "nout, init, bsum, name"]);
}

#[test]
fn syntax_error_names_the_line() {
    let p = model_file(
        "syntax.yaml",
        &GOOD.replace("cost: CrossEntropyBinary", "cost: [CrossEntropyBinary"),
    );
    let o = xenon(&["train", p.to_str().unwrap()]);
    assert_clear_error(&o, &["line"]);
}

#[test]
fn output_that_does_not_fit_names_the_layer_and_both_shapes() {
    let p = model_file("fit.yaml", &GOOD.replace("nout: 10", "nout: 12"));
    let o = xenon(&["train", p.to_str().unwrap(), "--epochs", "1"]);
    assert_clear_error(&o, &["'Linear_0'", "[12]", "[10]"]);
}

#[test]
fn missing_weights_file_is_an_error() {
    let o = xenon(&[
        "eval",
        "examples/models/mnist_mlp.yaml",
        "--weights",
        "/nonexistent/w.safetensors",
    ]);
    assert_clear_error(&o, &["/nonexistent/w.safetensors"]);
}

// ----- xenon dump ---------------------------------------------------------------------------

const STAGES: [&str; 5] = ["graph", "autodiff", "optimized", "kernels", "schedule"];
const FORMATS: [&str; 3] = ["text", "dot", "json"];

#[test]
fn dumps_are_byte_identical_across_runs() {
    for stage in STAGES {
        for format in FORMATS {
            let args = [
                "dump",
                "examples/models/mnist_mlp.yaml",
                "--stage",
                stage,
                "--format",
                format,
            ];
            let a = xenon(&args);
            let b = xenon(&args);
            assert!(a.status.success(), "{stage} {format}: {}", stderr(&a));
            assert!(!a.stdout.is_empty());
            assert_eq!(a.stdout, b.stdout, "{stage} {format}");
        }
    }
}

#[test]
fn dump_json_has_nodes_and_the_optimized_one_a_report() {
    let o = xenon(&[
        "dump",
        "examples/models/mnist_mlp.yaml",
        "--stage",
        "optimized",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let nodes = v["nodes"].as_array().unwrap();
    assert!(!nodes.is_empty());
    assert_eq!(nodes[0]["op"], "input");
    assert_eq!(v["stage"], "optimized");
    let r = &v["report"];
    assert!(r["after"]["ops"].as_u64().unwrap() < r["before"]["ops"].as_u64().unwrap());
    assert_eq!(r["phases"][0]["name"], "simplify");
    assert!(r["phases"][0]["stop_reason"].is_string());
    let g = xenon(&[
        "dump",
        "examples/models/mnist_mlp.yaml",
        "--stage",
        "graph",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&g)).unwrap();
    assert!(v["report"].is_null());
    assert_eq!(v["outputs"][0]["name"], "y");
}

#[test]
fn dump_limits_are_overridable_and_reported() {
    let o = xenon(&[
        "dump",
        "examples/models/mnist_mlp.yaml",
        "--stage",
        "optimized",
        "--opt-iter-limit",
        "1",
        "--timings",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("iteration limit (1)"), "{out}");
    assert!(out.contains("#   time: "), "{out}");
}

/// The kernels and schedule stages show the CPU backend's partition and buffer plan, with
/// the memory plan under 60 % of the naive sum for mnist_mlp's training step.
#[test]
fn dump_kernels_and_schedule() {
    let o = xenon(&[
        "dump",
        "examples/models/mnist_mlp.yaml",
        "--stage",
        "kernels",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("gemm 128×100×784"), "{text}");
    assert!(text.contains("# group 0 (step 0: "), "{text}");
    let o = xenon(&[
        "dump",
        "examples/models/mnist_mlp.yaml",
        "--stage",
        "schedule",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["nodes"].as_array().is_some_and(|n| !n.is_empty()));
    let (arena, naive) = (
        v["plan"]["arena_bytes"].as_f64().unwrap(),
        v["plan"]["naive_bytes"].as_f64().unwrap(),
    );
    assert!(arena <= 0.6 * naive, "memory plan {arena} of {naive} bytes");
    assert!(
        v["program"]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    let again = xenon(&[
        "dump",
        "examples/models/mnist_mlp.yaml",
        "--stage",
        "schedule",
        "--format",
        "json",
    ]);
    assert_eq!(stdout(&o), stdout(&again), "byte-identical");
}

/// Renders every DOT dump with Graphviz when `dot` is installed; skips with a note
/// otherwise.
#[test]
fn dot_dumps_render_with_graphviz() {
    if Command::new("dot").arg("-V").output().is_err() {
        eprintln!("note: Graphviz `dot` is not installed; skipping the DOT rendering check");
        return;
    }
    let dir = scratch("dot");
    for stage in STAGES {
        let o = xenon(&[
            "dump",
            "examples/models/mnist_mlp.yaml",
            "--stage",
            stage,
            "--format",
            "dot",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let path = dir.join(format!("{stage}.dot"));
        std::fs::write(&path, &o.stdout).unwrap();
        let svg = Command::new("dot")
            .arg("-Tsvg")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            svg.status.success(),
            "dot failed on {stage}: {}",
            String::from_utf8_lossy(&svg.stderr)
        );
        assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"));
        if stage == "optimized" {
            assert!(String::from_utf8_lossy(&o.stdout).contains("subgraph cluster_g0"));
        }
    }
}

// ----- xenon compile ------------------------------------------------------------------------

#[test]
fn compile_rejects_bad_arguments_clearly() {
    let dir = scratch("compile");
    let w = dir.join("w.safetensors");
    let o = xenon(&[
        "train",
        "examples/models/mlp_784_100_10.yaml",
        "--epochs",
        "1",
        "--save",
        w.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.join("bundle");
    let base = |extra: &[&str]| {
        let mut a = vec![
            "compile",
            "examples/models/mlp_784_100_10.yaml",
            "--weights",
            w.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        xenon(&a)
    };
    let o = base(&["--name", "9lives"]);
    assert_clear_error(&o, &["9lives", "C identifier"]);
    let o = base(&["--batch", "0"]);
    assert_flag_error(&o, &["--batch"]);
    // clap's own message lists the known targets.
    let o = base(&["--target", "x86-64-v9"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("x86-64-v3"), "{}", stderr(&o));
    let o = xenon(&[
        "compile",
        "examples/models/mlp_784_100_10.yaml",
        "--weights",
        "/nonexistent/w.safetensors",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_clear_error(&o, &["/nonexistent/w.safetensors"]);
    // The default name is the model file's stem; --json reports the files written.
    let o = base(&["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = &json_lines(&o)[0];
    assert_eq!(v["manifest"]["name"], "mlp_784_100_10");
    assert_eq!(v["files"].as_array().unwrap().len(), 5);
    assert!(out.join("mlp_784_100_10.xnb").exists());
}

#[test]
fn dump_opencl_prints_the_generated_source_deterministically() {
    let args = [
        "dump",
        "examples/models/mnist_mlp.yaml",
        "--stage",
        "opencl",
        "--batch",
        "16",
    ];
    let a = xenon(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    let text = stdout(&a);
    assert!(text.contains("__kernel void xk_"), "{text}");
    assert!(text.contains("runs a runtime kernel"), "{text}");
    assert_eq!(text, stdout(&xenon(&args)), "dump differs between runs");
    let o = xenon(&[
        "dump",
        "examples/models/mnist_mlp.yaml",
        "--stage",
        "opencl",
        "--format",
        "json",
    ]);
    assert_clear_error(&o, &["--format text"]);
}

/// neon's `--serialize` and Xenon's `--resume`: 4 epochs straight and 2 epochs plus a
/// resumed 2 give byte-identical files; checkpoints of another model or optimizer, and
/// damaged ones, are clear errors.
#[test]
fn resumed_training_is_bit_identical_to_an_uninterrupted_run() {
    let dir = scratch("resume");
    let (a, b, c) = (dir.join("a.xw"), dir.join("b.xw"), dir.join("c.xw"));
    let model = "examples/models/mnist_mlp.yaml";
    let run = |args: &[&str]| {
        let o = xenon(args);
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    run(&[
        "train",
        model,
        "--epochs",
        "4",
        "--threads",
        "2",
        "--save",
        a.to_str().unwrap(),
    ]);
    run(&[
        "train",
        model,
        "--epochs",
        "2",
        "--threads",
        "2",
        "--serialize",
        "1",
        "--save",
        b.to_str().unwrap(),
    ]);
    let o = run(&[
        "train",
        model,
        "--epochs",
        "4",
        "--threads",
        "2",
        "--resume",
        b.to_str().unwrap(),
        "--save",
        c.to_str().unwrap(),
        "--json",
    ]);
    let lines = json_lines(&o);
    // Only epochs 2 and 3 ran.
    let epochs: Vec<u64> = lines
        .iter()
        .filter(|l| l["event"] == "epoch")
        .map(|l| l["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [2, 3]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());

    // Another model's checkpoint, another optimizer, a damaged file.
    let other = model_file(
        "resume-other.yaml",
        "layers:\n- type: Linear\n  config: {nout: 10, init: {type: Constant, config: {val: 0.0}}}\ncost: CrossEntropyMulti\noptimizer: {type: GradientDescentMomentum, config: {learning_rate: 0.1}}\n",
    );
    let o = xenon(&[
        "train",
        other.to_str().unwrap(),
        "--resume",
        b.to_str().unwrap(),
    ]);
    assert_clear_error(&o, &["another model"]);
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp_adam.yaml",
        "--resume",
        b.to_str().unwrap(),
    ]);
    assert_clear_error(
        &o,
        &["another optimizer", "GradientDescentMomentum", "Adam"],
    );
    let bytes = std::fs::read(&b).unwrap();
    let cut = write(&dir, "cut.xw", &bytes[..bytes.len() / 2]);
    let o = xenon(&["train", model, "--resume", cut.to_str().unwrap()]);
    assert_clear_error(&o, &["cut.xw"]);
    let mut flipped = bytes.clone();
    flipped[10] ^= 0xff;
    let bad = write(&dir, "bad.xw", &flipped);
    let o = xenon(&["train", model, "--resume", bad.to_str().unwrap()]);
    assert_clear_error(&o, &["bad.xw"]);
}

/// SIGKILL while a checkpoint is being written (its temporary file exists) leaves the
/// previous checkpoint loadable, and training resumes from it.
#[test]
fn a_kill_during_a_checkpoint_write_leaves_the_previous_one() {
    let dir = scratch("kill");
    let ck = dir.join("ck.xw");
    let ck_s = ck.to_str().unwrap().to_string();
    let model = "examples/models/mnist_mlp.yaml";
    let o = xenon(&["train", model, "--epochs", "1", "--save", &ck_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let temp_files = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".ck.xw.tmp-"))
            .collect()
    };
    // A temporary file that was not there before: a save has begun.
    let new_temp = |before: &std::collections::BTreeSet<String>| {
        temp_files().iter().any(|n| !before.contains(n))
    };
    let (mut mid_write, mut attempts) = (0, 0);
    while mid_write < 3 && attempts < 60 {
        attempts += 1;
        let before = temp_files();
        let mut child = Command::new(env!("CARGO_BIN_EXE_xenon"))
            .args([
                "train",
                model,
                "--epochs",
                "1000",
                "--serialize",
                "1",
                "--resume",
                &ck_s,
                "--save",
                &ck_s,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kill as soon as a new temporary file appears (a save has begun), or after 5 s.
        let start = std::time::Instant::now();
        while !new_temp(&before) && start.elapsed().as_secs() < 5 {
            std::hint::spin_loop();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if new_temp(&before) {
            mid_write += 1;
        }
        // The checkpoint is whole: the model loads and training resumes from it.
        let m = xenon_frontend::model::Model::load(&ck)
            .unwrap_or_else(|e| panic!("attempt {attempts}: {e}"));
        assert!(m.epoch_index() >= 1);
    }
    eprintln!("{mid_write} of {attempts} kills landed during a checkpoint write");
    assert!(
        mid_write >= 3,
        "only {mid_write} of {attempts} kills landed mid-write"
    );
    // The next save removes the temporary files the killed ones left.
    assert!(!temp_files().is_empty());
    let o = xenon(&["train", model, "--epochs", "1", "--save", &ck_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(temp_files().is_empty(), "{:?}", temp_files());
}

/// `--history` writes per-epoch JSON or CSV (and every minibatch's cost on request) after
/// each epoch; `xenon plot` draws two runs into an SVG with one line per run and panel.
#[test]
fn histories_are_written_and_plotted() {
    let dir = scratch("history");
    let (a, b, svg) = (
        dir.join("gdm.json"),
        dir.join("adam.csv"),
        dir.join("c.svg"),
    );
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "--epochs",
        "2",
        "--history",
        a.to_str().unwrap(),
        "--history-batches",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp_adam.yaml",
        "--epochs",
        "3",
        "--history",
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let h: serde_json::Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    let epochs = h["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert_eq!(epochs[0]["batch_costs"].as_array().unwrap().len(), 63);
    assert!(epochs[1]["train_cost"].as_f64().unwrap() < epochs[0]["train_cost"].as_f64().unwrap());
    let misclass = epochs[1]["metrics"]["Top1Misclass"].as_f64().unwrap();
    assert!((0.0..0.2).contains(&misclass), "{misclass}");
    let csv = std::fs::read_to_string(&b).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,train_cost,batches,seconds,Top1Misclass");
    assert_eq!(lines.len(), 4);

    let o = xenon(&[
        "plot",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    // The 2 px lines: per panel (train cost, test metric) the Adam run (3 epochs: 3
    // points), the GDM run (2 points) and the two legend samples (2 points each).
    let lines: Vec<usize> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
        .map(|n| n.attribute("points").unwrap().split_whitespace().count())
        .collect();
    let count = |k| lines.iter().filter(|&&p| p == k).count();
    assert_eq!((count(3), count(2), lines.len()), (2, 6, 8), "{lines:?}");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for want in ["train cost", "test Top1Misclass", "gdm", "adam", "epoch"] {
        assert!(texts.contains(&want), "{want:?} missing from {texts:?}");
    }

    // A missing file and a damaged CSV are clear errors.
    let o = xenon(&["plot", dir.join("none.json").to_str().unwrap()]);
    assert_clear_error(&o, &["none.json"]);
    let bad = write(&dir, "bad.csv", csv.replace("0,", "zero,").as_bytes());
    let o = xenon(&["plot", bad.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    assert_clear_error(&o, &["bad.csv", "line 2"]);
}

/// `--eval-freq`, `--early-stop` and `--save-best`: evaluations every second epoch,
/// training stops after three evaluations without a better test misclassification, and
/// the best model is the one saved.
#[test]
fn early_stopping_keeps_the_best_model() {
    let dir = scratch("early");
    let best = dir.join("best.xw");
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "--epochs",
        "40",
        "--eval-freq",
        "2",
        "--early-stop",
        "3",
        "--save-best",
        best.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = json_lines(&o);
    let evals: Vec<(u64, f64)> = lines
        .iter()
        .filter(|l| l["event"] == "epoch")
        .map(|l| {
            (
                l["epoch"].as_u64().unwrap(),
                l["test_misclass"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(evals.iter().all(|(e, _)| e % 2 == 1), "{evals:?}");
    let done = lines.last().unwrap();
    let trained = done["epochs"].as_u64().unwrap();
    assert!(trained < 40, "early stopping did not stop: {trained}");
    // The best evaluation came 3 evaluations before the end; the saved model is its.
    let (best_epoch, best_value) = evals
        .iter()
        .copied()
        .fold((0, f64::INFINITY), |b, e| if e.1 < b.1 { e } else { b });
    assert_eq!(
        evals.len() - 1 - evals.iter().position(|e| e.0 == best_epoch).unwrap(),
        3
    );
    let m = xenon_frontend::model::Model::load(&best).unwrap();
    assert_eq!(m.epoch_index() as u64, best_epoch + 1);
    assert!(evals.iter().all(|e| e.1 >= best_value));
}

/// neon's short flags: `-e` epochs, `-z` batch size, `-r` seed, `-b` backend, `-s` save
/// path, `-o` history file.
#[test]
fn neons_short_flags_work() {
    let dir = scratch("short");
    let (h, s) = (dir.join("h.csv"), dir.join("m.xw"));
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "-e",
        "1",
        "-z",
        "64",
        "-r",
        "3",
        "-b",
        "cpu",
        "-s",
        s.to_str().unwrap(),
        "-o",
        h.to_str().unwrap(),
        "-v",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // `-v` describes the run first.
    let out = stdout(&o);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(
            "data: 8000 training and 1000 test examples of shape [1, 28, 28]; targets: classes (10 wide)"
        )
    );
    assert!(
        lines.next().unwrap().starts_with("model: 79400 parameters"),
        "{out}"
    );
    assert_eq!(
        lines.next(),
        Some("training: backend cpu, batch size 64, 1 epochs from epoch 0")
    );
    let csv = std::fs::read_to_string(&h).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!((row[0], row[2]), ("0", "125"), "{csv}");
    let m = xenon_frontend::model::Model::load(&s).unwrap();
    assert_eq!(m.resume_state().unwrap().batch_size, 64);
    assert_eq!(m.seed(), 3);

    // `-H 2` with `--serialize 1`: the last two checkpoints stay as `<save>.<epoch>`.
    let k = dir.join("k.xw");
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "-e",
        "3",
        "-s",
        k.to_str().unwrap(),
        "--serialize",
        "1",
        "-H",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let copy = |e: usize| dir.join(format!("k.xw.{e}"));
    assert!(!copy(0).exists() && copy(1).exists() && copy(2).exists());
    let m = xenon_frontend::model::Model::load(copy(1)).unwrap();
    assert_eq!(m.epoch_index(), 2);
}

/// Ctrl-C (SIGINT) finishes the minibatch, saves a checkpoint mid-epoch and exits with
/// 130; resuming it gives the weights of an uninterrupted run, byte for byte.
#[test]
fn ctrl_c_saves_a_checkpoint_that_resumes_exactly() {
    use std::io::BufRead;
    let dir = scratch("sigint");
    let (full, ck, fin) = (dir.join("full.xw"), dir.join("ck.xw"), dir.join("fin.xw"));
    let model = "examples/models/mnist_mlp.yaml";
    let o = xenon(&["train", model, "-e", "8", "-s", full.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = Command::new(env!("CARGO_BIN_EXE_xenon"))
        .args(["train", model, "-e", "8", "-s", ck.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first epoch has been reported (training is under way).
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("Epoch 0"), "{line}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // Seven epochs were left when the signal was sent: the run cannot have finished.
    assert!(
        !o.status.success(),
        "the run ended before SIGINT; stdout: {rest}"
    );
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted in epoch") && err.contains("--resume"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let o = xenon(&[
        "train",
        model,
        "-e",
        "8",
        "--resume",
        ck.to_str().unwrap(),
        "-s",
        fin.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&full).unwrap(), std::fs::read(&fin).unwrap());
}

/// `-d f64` trains end to end in f64 (weights saved as F64 and resumed as f64); `-d f16`
/// is refused.
#[test]
fn datatype_f64_trains_end_to_end() {
    let dir = scratch("f64");
    let (a, b) = (dir.join("a.xw"), dir.join("b.xw"));
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "-e",
        "1",
        "-d",
        "f64",
        "-s",
        a.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let done = json_lines(&o).pop().unwrap();
    assert!(done["test_misclass"].as_f64().unwrap() < 15.0, "{done}");
    let m = xenon_frontend::model::Model::load(&a).unwrap();
    assert_eq!(m.dtype(), xenon_runtime::DType::F64);
    assert_eq!(
        m.value("Linear_0/W").unwrap().dtype(),
        xenon_runtime::DType::F64
    );
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "-e",
        "2",
        "--resume",
        a.to_str().unwrap(),
        "-s",
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = xenon(&["train", "examples/models/mnist_mlp.yaml", "-d", "f16"]);
    let err = stderr(&o);
    assert!(
        !o.status.success() && err.contains("unsupported datatype \"f16\""),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A command-line error from the argument parser: a failure whose first line is the
/// error, naming what `needles` name (the parser adds a pointer to `--help` below it).
fn assert_flag_error(o: &std::process::Output, needles: &[&str]) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{err}");
    for n in needles {
        assert!(first.contains(n), "{n:?} missing from {first:?}");
    }
}

/// `-e 0` is an error naming the flag and its range, and writes nothing; so are the other
/// count flags out of range (a batch that would not fit in memory, no threads, no timed
/// repetitions), and `--threads` above the core count is capped with a note.
#[test]
fn count_flags_are_bounded() {
    let dir = scratch("zero");
    let s = dir.join("m.xw");
    let o = xenon(&[
        "train",
        "examples/models/mnist_mlp.yaml",
        "-e",
        "0",
        "-s",
        s.to_str().unwrap(),
    ]);
    assert_flag_error(&o, &["--epochs", "1..=1000000"]);
    assert!(!s.exists());
    let model = "examples/models/mnist_mlp.yaml";
    for (args, flag) in [
        (
            vec!["train", model, "--epochs", "18446744073709551615"],
            "--epochs",
        ),
        (
            vec!["bench", model, "--batch", "18446744073709551615"],
            "--batch",
        ),
        (vec!["bench", model, "--reps", "0"], "--reps"),
        (vec!["train", model, "--threads", "0"], "--threads"),
        (vec!["train", model, "--batch", "x"], "--batch"),
        (vec!["train", model, "--eval-freq", "0"], "--eval-freq"),
        (vec!["train", model, "--early-stop", "0"], "--early-stop"),
        (
            vec!["train", model, "-s", "w", "--serialize", "0"],
            "--serialize",
        ),
        (
            vec!["dump", model, "--stage", "graph", "--opt-node-limit", "0"],
            "--opt-node-limit",
        ),
        (
            vec!["dump", model, "--stage", "graph", "--opt-time-ms=0"],
            "--opt-time-ms",
        ),
        (
            vec!["sample", model, "--weights", "w", "--chars", "0"],
            "--chars",
        ),
        (
            vec!["sample", model, "--weights", "w", "--temperature", "nan"],
            "--temperature",
        ),
    ] {
        assert_flag_error(&xenon(&args), &[flag]);
    }
    let o = xenon(&["train", model, "--epochs", "1", "--threads", "100000"]);
    assert_flag_error(&o, &["--threads", "1..=4096"]);
    let o = xenon(&["train", model, "--epochs", "1", "--threads", "4096"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("note: --threads 4096 is more than"),
        "{}",
        stderr(&o)
    );
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_process_quietly() {
    // `xenon train M | head -1`: once the reader is gone, the next line written ends the
    // process by SIGPIPE, as with other Unix tools, without a panic message.
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_xenon"))
        .args(["train", "examples/models/mnist_mlp.yaml", "--epochs", "4"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("Epoch 0"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
