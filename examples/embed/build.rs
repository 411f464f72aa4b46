//! Links a bundle's object file into the app when `XENON_EMBED_OBJECT` names one
//! (`DIR/<name>.o` from `xenon compile`; `XENON_EMBED_NAME` is the bundle's name,
//! default `mnist_mlp`). The object goes into a static library `libxenon_bundle.a` that
//! rustc links before the runtime, which resolves the object's calls into it. Without the
//! variable the app only loads artifacts at run time.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(xenon_linked)");
    println!("cargo:rerun-if-env-changed=XENON_EMBED_OBJECT");
    println!("cargo:rerun-if-env-changed=XENON_EMBED_NAME");
    let Some(object) = std::env::var_os("XENON_EMBED_OBJECT") else {
        return;
    };
    let object = PathBuf::from(object);
    println!("cargo:rerun-if-changed={}", object.display());
    let name = std::env::var("XENON_EMBED_NAME").unwrap_or_else(|_| "mnist_mlp".into());
    assert!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "XENON_EMBED_NAME must be a C identifier"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let lib = out.join("libxenon_bundle.a");
    let _ = std::fs::remove_file(&lib);
    let ar = std::env::var("AR").unwrap_or_else(|_| "ar".into());
    let status = Command::new(&ar)
        .arg("crs")
        .arg(&lib)
        .arg(&object)
        .status()
        .unwrap_or_else(|e| panic!("running {ar}: {e}"));
    assert!(status.success(), "{ar} failed on {}", object.display());
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=xenon_bundle");
    println!("cargo:rustc-cfg=xenon_linked");
    std::fs::write(
        out.join("linked.rs"),
        format!(
            "unsafe extern \"C\" {{\n    #[link_name = \"{name}_bundle\"]\n    static BUNDLE: xenon_runtime::aot::BundleDesc;\n}}\n"
        ),
    )
    .expect("writing linked.rs");
}
