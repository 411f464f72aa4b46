//! The C API through its `extern "C"` functions: status codes for every kind of bad
//! artifact and every argument a C caller can get wrong, and a good run.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::ptr::{null, null_mut};
use xenon_capi::*;
use xenon_compiler::aot::{self, BundleOptions};
use xenon_compiler::ir::{DType, Graph};
use xenon_runtime::Tensor;
use xenon_runtime::aot::Mode;

/// An artifact of `y = relu(x·W)`, x 2×3, W 3×4.
fn artifact() -> Vec<u8> {
    let mut g = Graph::new();
    let x = g.input("x", DType::F32, &[2, 3]).unwrap();
    let w = g.parameter("W", DType::F32, &[3, 4]).unwrap();
    let y = g.matmul(x, w, false, false).unwrap();
    let zero = g.scalar(DType::F32, 0.0).unwrap();
    let r = g.max(y, zero).unwrap();
    g.set_output("y", r).unwrap();
    let lowered = xenon_compiler::lower::lower(&g).unwrap();
    let w = Tensor::from_f32(vec![3, 4], (0..12).map(|i| i as f32 - 5.0).collect()).unwrap();
    let weights = HashMap::from([("W".to_string(), w)]);
    let opts = BundleOptions {
        name: "capi_test".into(),
        ..BundleOptions::default()
    };
    aot::build(
        &g,
        &lowered,
        Mode::Inference,
        &weights,
        &HashMap::new(),
        &opts,
    )
    .unwrap()
    .artifact
}

fn write(name: &str, bytes: &[u8]) -> CString {
    let dir = std::env::temp_dir().join(format!("xenon-capi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    CString::new(p.to_str().unwrap()).unwrap()
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(xenon_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn open(path: &CString) -> (Status, *mut XenonModel) {
    let mut m = null_mut();
    let s = unsafe { xenon_open(path.as_ptr(), &mut m) };
    (s, m)
}

#[test]
fn bad_artifacts_get_their_status() {
    let good = artifact();
    let mut cases: Vec<(&str, Vec<u8>, Status)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            Status::Truncated,
        ),
        ("not", b"hello, world".to_vec(), Status::NotABundle),
    ];
    let mut v = good.clone();
    v[8] = 9;
    cases.push(("version", v, Status::FormatVersion));
    let mut c = good.clone();
    let last = c.len() - 1;
    c[last] ^= 1;
    cases.push(("corrupt", c, Status::Checksum));
    for (name, bytes, want) in cases {
        let (s, m) = open(&write(name, &bytes));
        assert_eq!(s, want, "{name}: {}", last_error());
        assert!(m.is_null());
        assert!(!last_error().is_empty());
        let status_name = unsafe { CStr::from_ptr(xenon_status_name(s as i32)) };
        assert!(status_name.to_str().unwrap().starts_with("XENON_ERR_"));
    }
    let (s, _) = open(&CString::new("/nonexistent/x.xnb").unwrap());
    assert_eq!(s, Status::Io);
    let unknown = unsafe { CStr::from_ptr(xenon_status_name(99)) };
    assert_eq!(unknown.to_str().unwrap(), "XENON_ERR_UNKNOWN");
}

#[test]
fn runs_check_every_argument() {
    let path = write("good.xnb", &artifact());
    let mut m = null_mut();
    assert_eq!(unsafe { xenon_open(null(), &mut m) }, Status::Argument);
    assert_eq!(
        unsafe { xenon_open(path.as_ptr(), null_mut()) },
        Status::Argument
    );
    assert_eq!(
        unsafe { xenon_open_linked(null(), path.as_ptr(), &mut m) },
        Status::Argument
    );
    let (s, m) = open(&path);
    assert_eq!(s, Status::Ok, "{}", last_error());
    let x = [1.0f32, 2.0, 3.0, -1.0, 0.5, 0.25];
    let mut y = [0f32; 8];
    let ins = [x.as_ptr() as *const u8];
    let outs = [y.as_mut_ptr() as *mut u8];
    let (ib, ob) = ([24usize], [32usize]);
    let run = |ins: *const *const u8,
               ib: *const usize,
               ni,
               outs: *const *mut u8,
               ob: *const usize,
               no| unsafe { xenon_run(m, ins, ib, ni, outs, ob, no) };
    assert_eq!(
        run(ins.as_ptr(), ib.as_ptr(), 1, outs.as_ptr(), ob.as_ptr(), 1),
        Status::Ok,
        "{}",
        last_error()
    );
    // y = relu(x·W), W[i][j] = 4i + j − 5.
    for r in 0..2 {
        for c in 0..4 {
            let v: f32 = (0..3)
                .map(|k| x[r * 3 + k] * (4 * k + c) as f32 - 5.0 * x[r * 3 + k])
                .sum();
            assert_eq!(y[r * 4 + c], v.max(0.0));
        }
    }
    assert_eq!(
        run(
            ins.as_ptr(),
            [20usize].as_ptr(),
            1,
            outs.as_ptr(),
            ob.as_ptr(),
            1
        ),
        Status::Size
    );
    assert!(last_error().contains("\"x\""), "{}", last_error());
    assert_eq!(
        run(
            ins.as_ptr(),
            ib.as_ptr(),
            1,
            outs.as_ptr(),
            [36usize].as_ptr(),
            1
        ),
        Status::Size
    );
    assert_eq!(
        run(ins.as_ptr(), ib.as_ptr(), 2, outs.as_ptr(), ob.as_ptr(), 1),
        Status::Size
    );
    assert_eq!(
        run(null(), ib.as_ptr(), 1, outs.as_ptr(), ob.as_ptr(), 1),
        Status::Argument
    );
    assert_eq!(
        run(
            [null()].as_ptr(),
            ib.as_ptr(),
            1,
            outs.as_ptr(),
            ob.as_ptr(),
            1
        ),
        Status::Argument
    );
    let misaligned = [unsafe { (x.as_ptr() as *const u8).add(1) }];
    assert_eq!(
        run(
            misaligned.as_ptr(),
            [24usize].as_ptr(),
            1,
            outs.as_ptr(),
            ob.as_ptr(),
            1
        ),
        Status::Argument
    );
    assert_eq!(
        unsafe {
            xenon_run(
                null_mut(),
                ins.as_ptr(),
                ib.as_ptr(),
                1,
                outs.as_ptr(),
                ob.as_ptr(),
                1,
            )
        },
        Status::Argument
    );
    // Saving the weights, then freeing (twice-safe with null).
    let out = write("saved.safetensors", b"");
    assert_eq!(unsafe { xenon_save_weights(m, out.as_ptr()) }, Status::Ok);
    assert_eq!(unsafe { xenon_save_weights(m, null()) }, Status::Argument);
    unsafe { xenon_free(m) };
    unsafe { xenon_free(null_mut()) };
}
