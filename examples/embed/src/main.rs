//! `xenon-embed`: classifies the MNIST test digits with an ahead-of-time Xenon bundle.
//! It depends on `xenon-runtime` alone — no compiler, no e-graphs, no Cranelift, no model
//! files — the shape of an application that ships a trained model.
//!
//! ```sh
//! xenon train examples/models/mlp_784_100_10.yaml --save w.safetensors
//! xenon compile examples/models/mlp_784_100_10.yaml --weights w.safetensors --name mnist_mlp -o bundle
//! # load the artifact at run time:
//! cargo run --release -p xenon-embed -- --artifact bundle/mnist_mlp.xnb
//! # or link the object at build time:
//! XENON_EMBED_OBJECT=$PWD/bundle/mnist_mlp.o cargo run --release -p xenon-embed -- --linked bundle/mnist_mlp.safetensors
//! ```

use clap::Parser;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use xenon_runtime::aot::{CompiledModel, LoadOptions};
use xenon_runtime::exec::{Slice, SliceMut};

#[cfg(xenon_linked)]
include!(concat!(env!("OUT_DIR"), "/linked.rs"));

#[derive(Parser)]
#[command(about = "Classify MNIST test digits with a compiled Xenon bundle")]
struct Args {
    /// Load this self-contained artifact (`<name>.xnb`) at run time.
    #[arg(long, conflicts_with = "linked")]
    artifact: Option<PathBuf>,
    /// Use the bundle linked at build time (`XENON_EMBED_OBJECT`) with this weights file.
    #[arg(long)]
    linked: Option<PathBuf>,
    /// Directory with `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (raw or
    /// `.gz`); default: the MNIST subset bundled with Xenon.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Write every sample's outputs here, one line per sample.
    #[arg(long)]
    outputs: Option<PathBuf>,
    /// Also time single runs on the first batch: this many runs per measurement, 21
    /// measurements; prints the median and range per run.
    #[arg(long)]
    bench: Option<usize>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

type Error = Box<dyn std::error::Error>;

fn open(args: &Args) -> Result<CompiledModel, Error> {
    let opts = LoadOptions::default();
    if let Some(path) = &args.artifact {
        return Ok(CompiledModel::open(path, &opts)?);
    }
    let Some(weights) = &args.linked else {
        return Err("give --artifact FILE.xnb or --linked WEIGHTS".into());
    };
    #[cfg(xenon_linked)]
    {
        let bytes = std::fs::read(weights).map_err(|e| format!("{}: {e}", weights.display()))?;
        // SAFETY: `BUNDLE` is the descriptor exported by the bundle object the build
        // script linked into this program.
        Ok(unsafe { CompiledModel::from_linked(&*std::ptr::addr_of!(BUNDLE), &bytes, &opts) }?)
    }
    #[cfg(not(xenon_linked))]
    {
        let _ = weights;
        Err("this build has no linked bundle: build with XENON_EMBED_OBJECT=DIR/<name>.o".into())
    }
}

/// An IDX file's dimensions and data (raw or gzip).
fn read_idx(dir: &Path, name: &str) -> Result<(Vec<usize>, Vec<u8>), Error> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let mut bytes = Vec::new();
    if raw.exists() {
        bytes = std::fs::read(&raw)?;
    } else {
        flate2::read::GzDecoder::new(
            std::fs::File::open(&gz).map_err(|e| format!("{}: {e}", gz.display()))?,
        )
        .read_to_end(&mut bytes)?;
    }
    let bad = || format!("{name}: not an unsigned-byte IDX file");
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 8 {
        return Err(bad().into());
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(bad().into());
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let n: usize = dims.iter().product();
    if bytes.len() != header + n {
        return Err(format!(
            "{name}: {} data bytes for dimensions {dims:?}",
            bytes.len() - header
        )
        .into());
    }
    Ok((dims, bytes.split_off(header)))
}

fn run(args: Args) -> Result<(), Error> {
    let mut model = open(&args)?;
    let m = model.manifest().clone();
    let (input, output) = match (m.inputs.as_slice(), m.outputs.as_slice()) {
        ([i], [o]) => (i.clone(), o.clone()),
        _ => return Err("expected a bundle with one input and one output".into()),
    };
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset"));
    let (idims, images) = read_idx(&data, "t10k-images-idx3-ubyte")?;
    let (ldims, labels) = read_idx(&data, "t10k-labels-idx1-ubyte")?;
    let n = ldims.first().copied().unwrap_or(0);
    let pixels: usize = idims.iter().skip(1).product();
    let batch = m.batch;
    if idims.first() != Some(&n) || pixels * batch != input.len() {
        return Err(format!(
            "the data ({n} images of {pixels} pixels) does not fit the bundle's input {:?}",
            input.shape
        )
        .into());
    }
    let classes = output.len() / batch;
    let mut x = vec![0.0f32; input.len()];
    let mut y = vec![0.0f32; output.len()];
    let mut out = match &args.outputs {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let mut wrong = 0usize;
    let mut b0 = 0;
    while b0 < n {
        // The last batch wraps around to the first samples.
        for i in 0..batch {
            let img = &images[((b0 + i) % n) * pixels..][..pixels];
            for (d, &p) in x[i * pixels..].iter_mut().zip(img) {
                *d = f32::from(p) / 255.0;
            }
        }
        model.run(&[Slice::F32(&x)], &mut [SliceMut::F32(&mut y)])?;
        for i in 0..batch.min(n - b0) {
            let row = &y[i * classes..][..classes];
            let best = (1..classes).fold(0, |b, c| if row[c] > row[b] { c } else { b });
            wrong += usize::from(best != usize::from(labels[b0 + i]));
            if let Some(o) = &mut out {
                let line: Vec<String> = row.iter().map(|v| format!("{v:.9e}")).collect();
                writeln!(o, "{}", line.join(" "))?;
            }
        }
        b0 += batch;
    }
    if let Some(o) = &mut out {
        o.flush()?;
    }
    println!("test samples:       {n}");
    println!(
        "misclassification:  {:.2}%",
        100.0 * wrong as f64 / n as f64
    );
    if let Some(runs) = args.bench {
        let runs = runs.max(1);
        let mut times = Vec::with_capacity(21);
        for _ in 0..21 {
            let t = Instant::now();
            for _ in 0..runs {
                model.run(&[Slice::F32(&x)], &mut [SliceMut::F32(&mut y)])?;
            }
            times.push(t.elapsed().as_secs_f64() * 1e6 / runs as f64);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "batch {batch} run:        median {:.2} µs (range {:.2}–{:.2} µs, 21 × {runs} runs)",
            times[10], times[0], times[20]
        );
    }
    Ok(())
}
