//! The command line against hostile input: sizes checked before anything is allocated,
//! saving that never replaces what is not a regular file, weights that must fit the model
//! they are loaded into, and messages that name what is missing.

mod common;

use common::*;
use std::path::Path;

const MNIST_MLP: &str = "examples/models/mnist_mlp.yaml";

/// neon's MNIST MLP with its first layer `nout` wide.
fn wide_mlp(name: &str, nout: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(MNIST_MLP))
        .unwrap()
        .replacen("nout: 100\n", &format!("nout: {nout}\n"), 1);
    assert!(text.contains(nout));
    model_file(name, &text)
}

/// A model whose parameters take more than any machine's memory (but each under the
/// 1 TiB limit on one tensor) is described by `summary` and `dump`, which allocate no
/// parameters (they could not succeed otherwise), and refused by `train` before
/// allocating, naming the largest parameter.
#[test]
fn sizes_are_checked_before_allocating() {
    // 784 · 300,000,000 f32 weights: 940 GB.
    let p = wide_mlp("wide.yaml", "300000000");
    let path = p.to_str().unwrap();
    let o = xenon(&["summary", path, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(
        v["total_params"].as_u64(),
        Some(784 * 300_000_000 + 300_000_000 * 10)
    );
    let o = xenon(&["dump", path, "--stage", "schedule"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("# memory plan: arena"),
        "{}",
        stdout(&o)
    );
    let o = xenon(&["train", path, "--epochs", "1"]);
    assert_clear_error(
        &o,
        &[
            "'Linear_0/W' of layer 'Linear_0'",
            "[300000000, 784]",
            "more than this machine's",
        ],
    );

    // Past 1 TiB for one tensor, or past what a size can count: a graph error naming the
    // layer, from every command.
    for nout in ["1000000000000", "4294967296", "18446744073709551615"] {
        let p = wide_mlp(&format!("huge{nout}.yaml"), nout);
        let path = p.to_str().unwrap();
        for args in [
            vec!["summary", path],
            vec!["dump", path, "--stage", "schedule"],
            vec!["train", path, "--epochs", "1"],
        ] {
            let o = xenon(&args);
            assert_clear_error(&o, &["'Linear_0'", "too large"]);
        }
    }
}

/// `--save` replaces a regular file (or the regular file a symlink leads to, keeping the
/// link) and refuses a FIFO or a device, which stay as they were.
#[cfg(unix)]
#[test]
fn saving_refuses_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let dir = scratch("save-targets");
    let save = |target: &Path| {
        xenon(&[
            "train",
            MNIST_MLP,
            "--epochs",
            "1",
            "--save",
            target.to_str().unwrap(),
        ])
    };
    let o = save(Path::new("/dev/null"));
    assert_clear_error(
        &o,
        &[
            "/dev/null: a device, not a regular file",
            "refusing to replace it",
        ],
    );
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );

    let fifo = dir.join("pipe");
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    if made {
        let o = save(&fifo);
        assert_clear_error(
            &o,
            &["pipe: a FIFO, not a regular file", "refusing to replace it"],
        );
        let t = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(t.is_fifo());
    }

    let real = dir.join("real.xw");
    std::fs::write(&real, b"old").unwrap();
    let link = dir.join("link.xw");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let o = save(&link);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let o = xenon(&[
        "eval",
        MNIST_MLP,
        "--weights",
        real.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        o.status.success(),
        "the link's file holds the weights: {}",
        stderr(&o)
    );
    // No temporary file is left beside either.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Weights saved from another model are an error naming the difference (unless
/// `--ignore-description`), and weights holding NaN are an error naming the tensor.
#[test]
fn weights_must_fit_the_model_and_be_finite() {
    let dir = scratch("weights-check");
    let w = dir.join("w.xw");
    let o = xenon(&[
        "train",
        MNIST_MLP,
        "--epochs",
        "1",
        "--save",
        w.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let w = w.to_str().unwrap();

    // Same tensor shapes, another activation.
    let text =
        std::fs::read_to_string(MNIST_MLP)
            .unwrap()
            .replacen("type: Rectlin", "type: Tanh", 1);
    let tanh = model_file("tanh.yaml", &text);
    let tanh = tanh.to_str().unwrap();
    let o = xenon(&["eval", tanh, "--weights", w]);
    assert_clear_error(
        &o,
        &[
            "saved from another model",
            "layer 1 ('Activation_0'): config.transform.type is \"Rectlin\" there, \"Tanh\" here",
            "--ignore-description",
        ],
    );
    for cmd in ["eval", "compile"] {
        let mut args = vec![cmd, tanh, "--weights", w, "--ignore-description"];
        let out = dir.join("bundle");
        if cmd == "compile" {
            args.extend(["-o", out.to_str().unwrap()]);
        }
        let o = xenon(&args);
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
    }

    // A bundle is a directory: an existing file is not one, and stays as it was.
    let o = xenon(&["compile", MNIST_MLP, "--weights", w, "-o", w]);
    assert_clear_error(&o, &["exists and is not a directory"]);
    let o = xenon(&["eval", MNIST_MLP, "--weights", w, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A NaN in the first weight of the file.
    let mut bytes = std::fs::read(w).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[8 + header..12 + header].copy_from_slice(&f32::NAN.to_le_bytes());
    let nan = write(&dir, "nan.xw", &bytes);
    let o = xenon(&["eval", MNIST_MLP, "--weights", nan.to_str().unwrap()]);
    assert_clear_error(&o, &["non-finite", "NaN", "the first at element 0"]);
}

/// A missing `--data` directory is named as missing; an OS error is printed once.
#[test]
fn missing_paths_are_named_once() {
    let o = xenon(&[
        "train",
        MNIST_MLP,
        "--epochs",
        "1",
        "--data",
        "/nonexistent/mnist",
    ]);
    assert_clear_error(&o, &["/nonexistent/mnist: no such directory or file"]);
    let o = xenon(&["eval", MNIST_MLP, "--weights", "/nonexistent/w.xw"]);
    assert_clear_error(&o, &["/nonexistent/w.xw"]);
    assert_eq!(
        stderr(&o).matches("No such file or directory").count(),
        1,
        "{}",
        stderr(&o)
    );
    let o = xenon(&["summary", "/nonexistent/m.yaml"]);
    assert_clear_error(&o, &["/nonexistent/m.yaml"]);
    assert_eq!(
        stderr(&o).matches("/nonexistent/m.yaml").count(),
        1,
        "{}",
        stderr(&o)
    );
}

/// `backend: gpu` runs on the OpenCL backend; a build without it says so, naming the line.
#[test]
fn a_gpu_model_file_names_the_backend_it_needs() {
    if cfg!(feature = "opencl") {
        return;
    }
    let text =
        std::fs::read_to_string(MNIST_MLP)
            .unwrap()
            .replacen("backend: mkl", "backend: gpu", 1);
    let p = model_file("gpu.yaml", &text);
    let o = xenon(&["train", p.to_str().unwrap(), "--epochs", "1"]);
    assert_clear_error(&o, &["`backend: gpu`", "opencl", "--features opencl"]);
}
