//! `xenon compile MODEL --weights W.safetensors --batch N [--target T] [--train]
//! [--name NAME] -o DIR`: ahead-of-time compilation into a bundle directory.

use super::common::{MAX_BATCH, WeightsArg, count, data_model, load_model_file};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use xenon_compiler::aot::BundleOptions;
use xenon_compiler::codegen::cpu::Target;
use xenon_frontend::model::BundleKind;

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// The model file the weights were trained with.
    pub model: PathBuf,
    #[command(flatten)]
    pub weights: WeightsArg,
    /// Samples per run (default 1).
    #[arg(long, default_value_t = 1, value_parser = count::<MAX_BATCH>)]
    pub batch: usize,
    /// What the code may assume about the processor: native (this machine), x86-64-v3
    /// (AVX2, FMA) or x86-64-v4 (AVX-512).
    #[arg(long, default_value = "native")]
    pub target: Target,
    /// Bundle the training step (on-device fine-tuning) instead of inference.
    #[arg(long)]
    pub train: bool,
    /// The bundle's name: a C identifier, the prefix of its symbols and files (default:
    /// the model file's name).
    #[arg(long)]
    pub name: Option<String>,
    /// The output directory.
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Print one JSON object (the manifest and the files written).
    #[arg(long)]
    pub json: bool,
}

/// The default bundle name: the model file's stem as a C identifier.
fn default_name(model: &std::path::Path) -> String {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

pub fn run(a: CompileArgs) -> anyhow::Result<()> {
    let file = load_model_file(&a.model)?;
    let (mut model, _, nclass) = data_model(&file, &a.model, None, None)?;
    a.weights.load_into(&mut model)?;
    let optimizer = file.optimizer.clone();
    let kind = if a.train {
        let optimizer = optimizer
            .as_ref()
            .context("--train needs the model file's `optimizer`")?;
        BundleKind::Train {
            nclass,
            cost: &file.cost,
            optimizer,
        }
    } else {
        BundleKind::Inference
    };
    let opts = BundleOptions {
        name: a.name.clone().unwrap_or_else(|| default_name(&a.model)),
        target: a.target,
        ..BundleOptions::default()
    };
    let bundle = model.compile_bundle(a.batch, kind, &opts)?;
    let written = bundle.write(&a.out)?;
    let m = &bundle.manifest;
    if a.json {
        let out = serde_json::json!({
            "manifest": m,
            "files": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        println!(
            "bundle {} ({:?}, batch {}) for {} ({}): {} kernels, scratch {} bytes",
            m.name,
            m.mode,
            m.batch,
            m.target.name,
            m.target.features.join(" "),
            m.kernels,
            m.scratch_bytes
        );
        for p in &written {
            let bytes = std::fs::metadata(p).map(|x| x.len()).unwrap_or(0);
            println!("  {:<40} {bytes:>10} bytes", p.display());
        }
    }
    Ok(())
}
