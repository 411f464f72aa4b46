//! `xenon-fuzz seeds`: writes the fixtures and the seed corpus from the repository's
//! example files and bundled data (small cuts of them), so that the committed corpus can
//! be remade after a format changes. The pickle seeds (`cifar_pickle`, `imdb`) come from
//! `fuzz/make_pickle_seeds.py` (numpy's own pickles), and the checkpoint and the bundle
//! from the `xenon` CLI: see `docs/fuzzing.md`.

use crate::targets::repo_dir;
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};
use xenon_frontend::data::npy::{read_npz, write_npz};
use xenon_frontend::data::text::{BUNDLED_TEXT, read_text};
use xenon_frontend::history::{EpochRecord, History};
use xenon_frontend::model::Model;
use xenon_frontend::model_file::ModelFile;
use xenon_runtime::aot::artifact;
use xenon_runtime::aot::loader::LoadedObject;
use xenon_runtime::aot::{BundleDesc, host};

type Res<T> = Result<T, String>;

fn err(what: impl std::fmt::Display) -> String {
    what.to_string()
}

fn write(path: &Path, bytes: &[u8]) -> Res<PathBuf> {
    std::fs::create_dir_all(path.parent().expect("a file in a folder")).map_err(err)?;
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("writing to memory");
    e.finish().expect("writing to memory")
}

fn gunzip(bytes: &[u8]) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(bytes), &mut out)
        .map_err(err)?;
    Ok(out)
}

/// A `.npy` file of `descr` (`<f4`, `|u1`, `>i2`, …), `shape` and raw `data`.
fn npy_raw(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        0 => "()".to_string(),
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// The 2-32-1 MLP of `examples/models/regression_sine.yaml`.
pub fn sine_model() -> Res<(ModelFile, Model)> {
    let path = repo_dir().join("examples/models/regression_sine.yaml");
    let file = ModelFile::load(&path).map_err(err)?;
    let model = Model::new(file.layers.clone(), &[2], 0).map_err(err)?;
    Ok((file, model))
}

/// Writes the fixtures and seeds; returns the files written.
pub fn make() -> Res<Vec<PathBuf>> {
    let repo = repo_dir();
    let fuzz = crate::fuzz_dir();
    let corpus = |t: &str, name: &str| fuzz.join("corpus").join(t).join(name);
    let mut out = Vec::new();

    // Fixtures: a small copy of the sine arrays and of tinyshakespeare.
    let sine = repo.join("data/sine/sine.npz");
    let cut = |name: &str, n: usize| -> Res<(Vec<usize>, Vec<f32>)> {
        let (mut shape, data) = read_npz(&sine, name).map_err(err)?;
        let row: usize = shape[1..].iter().product();
        shape[0] = n;
        Ok((shape, data[..n * row].to_vec()))
    };
    let (xt, yt, xs, ys) = (
        cut("x_train", 32)?,
        cut("y_train", 32)?,
        cut("x_test", 8)?,
        cut("y_test", 8)?,
    );
    let small_sine = fuzz.join("fixtures/data/sine/sine.npz");
    std::fs::create_dir_all(small_sine.parent().expect("a folder")).map_err(err)?;
    write_npz(
        &small_sine,
        &[
            ("x_train", &xt.0, &xt.1),
            ("y_train", &yt.0, &yt.1),
            ("x_test", &xs.0, &xs.1),
            ("y_test", &ys.0, &ys.1),
        ],
    )
    .map_err(err)?;
    out.push(small_sine.clone());
    let shakespeare = read_text(BUNDLED_TEXT).map_err(err)?;
    let tiny: String = shakespeare.chars().take(600).collect();
    out.push(write(
        &fuzz.join("fixtures/data/text/tiny.txt"),
        tiny.as_bytes(),
    )?);
    out.push(write(
        &fuzz.join("fixtures/examples/models/README.md"),
        b"The folder model-file inputs take relative data paths from (their `../../data/...` is\n`fuzz/fixtures/data/`): see `fuzz/src/targets/model_file.rs`.\n",
    )?);

    // Model files: the examples (char_lstm reading the tiny text), and some as JSON.
    let mut examples: Vec<PathBuf> = crate::files_in(&repo.join("examples/models"));
    examples.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    for p in &examples {
        let name = p
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let mut text = std::fs::read_to_string(p).map_err(err)?;
        if name == "char_lstm.yaml" {
            text = text.replace(
                "    time_steps: 50",
                "    time_steps: 50\n    path: ../../data/text/tiny.txt",
            );
        }
        out.push(write(&corpus("model_yaml", &name), text.as_bytes())?);
        if [
            "mnist_mlp.yaml",
            "regression_sine.yaml",
            "small_cnn.yaml",
            "mnist_branch.yaml",
            "mnist_merge.yaml",
            "multi_optimizer.yaml",
            "imdb_lstm.yaml",
        ]
        .contains(&name.as_str())
        {
            let file = ModelFile::from_yaml_str(&text).map_err(err)?;
            let json = name.replace(".yaml", ".json");
            out.push(write(
                &corpus("model_json", &json),
                file.to_json().as_bytes(),
            )?);
        }
    }
    let mlp_json = repo.join("examples/models/mnist_mlp.json");
    out.push(write(
        &corpus("model_json", "mnist_mlp_example.json"),
        &std::fs::read(mlp_json).map_err(err)?,
    )?);

    // IDX: the first labels and images of the bundled MNIST subset, raw and gzipped.
    let mnist = repo.join("data/mnist-subset");
    let labels = gunzip(&std::fs::read(mnist.join("t10k-labels-idx1-ubyte.gz")).map_err(err)?)?;
    let images = gunzip(&std::fs::read(mnist.join("t10k-images-idx3-ubyte.gz")).map_err(err)?)?;
    let mut l = labels[..8].to_vec();
    l[4..8].copy_from_slice(&20u32.to_be_bytes());
    l.extend_from_slice(&labels[8..28]);
    let mut im = images[..16].to_vec();
    im[4..8].copy_from_slice(&2u32.to_be_bytes());
    im.extend_from_slice(&images[16..16 + 2 * 784]);
    out.push(write(&corpus("idx", "labels-20.idx1"), &l)?);
    out.push(write(&corpus("idx", "labels-20.idx1.gz"), &gzip(&l))?);
    out.push(write(&corpus("idx", "images-2.idx3"), &im)?);
    out.push(write(&corpus("idx", "images-2.idx3.gz"), &gzip(&im))?);
    let mut rank0 = vec![0, 0, 8, 0];
    rank0.push(7);
    out.push(write(&corpus("idx", "rank0.idx"), &rank0)?);

    // npy: each dtype the reader converts, both byte orders.
    let f4: Vec<u8> = [1.0f32, -2.5, 3.25, 0.0, 1e-3, 7.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let f8_be: Vec<u8> = [1.0f64, -2.0, 0.5]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    for (name, descr, shape, data) in [
        ("f4.npy", "<f4", vec![2, 3], f4.clone()),
        ("f8-be.npy", ">f8", vec![3], f8_be),
        ("u1.npy", "|u1", vec![2, 2], vec![0, 1, 254, 255]),
        ("i1.npy", "|i1", vec![4], vec![0, 1, 0x80, 0xff]),
        ("i2.npy", "<i2", vec![2], vec![1, 0, 0xff, 0xff]),
        ("u2-be.npy", ">u2", vec![1], vec![1, 2]),
        ("i4.npy", "<i4", vec![1, 1], vec![5, 0, 0, 0]),
        ("u4.npy", "<u4", vec![1], vec![0xff, 0xff, 0xff, 0xff]),
        ("i8.npy", "<i8", vec![1], (-3i64).to_le_bytes().to_vec()),
        ("u8.npy", "<u8", vec![1], u64::MAX.to_le_bytes().to_vec()),
        ("b1.npy", "|b1", vec![3], vec![0, 1, 1]),
        ("scalar.npy", "<f4", vec![], 2.0f32.to_le_bytes().to_vec()),
    ] {
        out.push(write(&corpus("npy", name), &npy_raw(descr, &shape, &data))?);
    }

    // npz: small archives of the names the readers ask for.
    let tmp = std::env::temp_dir().join(format!("xenon-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(err)?;
    let npz = |name: &str, arrays: &[(&str, &[usize], &[f32])]| -> Res<PathBuf> {
        let p = tmp.join(name);
        write_npz(&p, arrays).map_err(err)?;
        write(&corpus("npz", name), &std::fs::read(&p).map_err(err)?)
    };
    let x = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
    let y = [0.0f32, 1.0, 2.0];
    out.push(npz("xy.npz", &[("x", &[3, 2], &x), ("y", &[3], &y)])?);
    out.push(npz(
        "splits.npz",
        &[
            ("x_train", &[3, 2], &x),
            ("y_train", &[3], &y),
            ("x_test", &[1, 2], &x[..2]),
            ("y_test", &[1], &y[..1]),
        ],
    )?);

    // CIFAR-10 binary: two records (label, 3072 pixels).
    let mut cifar = Vec::new();
    for (label, shade) in [(3u8, 17u8), (9, 200)] {
        cifar.push(label);
        cifar.extend((0..3072).map(|i| shade.wrapping_add((i % 251) as u8)));
    }
    out.push(write(&corpus("cifar_bin", "two.bin"), &cifar)?);
    out.push(write(&corpus("cifar_bin", "one.bin"), &cifar[..3073])?);

    // IMDB as an .npz (the pickles come from make_pickle_seeds.py).
    let xi = [0.0f32, 1.0, 5.0, 9.0, 1.0, 30000.0, 4.0, 7.0];
    let yi = [0.0f32, 1.0];
    let p = tmp.join("imdb.npz");
    write_npz(
        &p,
        &[
            ("x_train", &[2, 4], &xi),
            ("y_train", &[2], &yi),
            ("x_test", &[1, 4], &xi[..4]),
            ("y_test", &[1], &yi[..1]),
        ],
    )
    .map_err(err)?;
    out.push(write(
        &corpus("imdb", "imdb.npz"),
        &std::fs::read(&p).map_err(err)?,
    )?);

    // Text: the tiny text raw and gzipped, and words with blank lines.
    out.push(write(&corpus("text", "tiny.txt"), tiny.as_bytes())?);
    out.push(write(
        &corpus("text", "tiny.txt.gz"),
        &gzip(tiny.as_bytes()),
    )?);
    out.push(write(
        &corpus("text", "words.txt"),
        b" the cat sat \n\n on the mat \n the end\n",
    )?);

    // PTB: train, valid and test cut at form feeds.
    out.push(write(
        &corpus("ptb", "three.txt"),
        b" no it was n't black monday \n but while the new york stock exchange did n't fall \n\x0c the cat \n n't black \n\x0c monday \n",
    )?);

    // enwik8: the start of a wiki dump (raw).
    out.push(write(
        &corpus("enwik8", "head.xml"),
        b"<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.3/\" version=\"0.3\">\n  <siteinfo>\n    <sitename>Wikipedia</sitename>\n    <base>http://en.wikipedia.org/wiki/Main_Page</base>\n  </siteinfo>\n  <page>\n    <title>AaA</title>\n    <id>1</id>\n    <text xml:space=\"preserve\">'''AaA''' is a [[word]] \xc3\xa9t\xc3\xa9.</text>\n  </page>\n</mediawiki>\n",
    )?);

    // bAbI: task 1 and task 2 style stories; train and test cut at a form feed.
    out.push(write(
        &corpus("babi", "qa1.txt"),
        b"1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary? \tbathroom\t1\n4 Daniel went back to the hallway.\n5 Sandra moved to the garden.\n6 Where is Daniel? \thallway\t4\n1 John moved to the kitchen.\n2 Where is John? \tkitchen\t1\n\x0c1 Sandra travelled to the office.\n2 Where is Sandra? \toffice\t1\n",
    )?);
    out.push(write(
        &corpus("babi", "qa2.txt"),
        b"1 Mary got the milk there.\n2 John moved to the bedroom.\n3 Mary travelled to the hallway.\n4 Where is the milk? \thallway\t1 3\n\x0c1 Mary got the football there.\n2 Where is the football? \tapple,football\t1\n",
    )?);

    // Weights: the sine MLP as built (the checkpoint comes from `xenon train`).
    let (_, model) = sine_model()?;
    let w = tmp.join("sine.safetensors");
    model.save(&w).map_err(err)?;
    out.push(write(
        &corpus("weights", "sine.safetensors"),
        &std::fs::read(&w).map_err(err)?,
    )?);

    // Histories: JSON and CSV.
    let mut h = History::default();
    let stats = [(0.5, 62, 1.25), (0.25, 62, 1.0)];
    for (i, (cost, batches, secs)) in stats.into_iter().enumerate() {
        h.push(EpochRecord {
            epoch: i,
            train_cost: cost,
            metrics: [("misclassification".to_string(), 0.1 / (i + 1) as f64)].into(),
            batches,
            seconds: secs,
            batch_costs: if i == 0 { Some(vec![0.75, 0.5]) } else { None },
        });
    }
    out.push(write(
        &corpus("history", "history.json"),
        serde_json::to_string_pretty(&h).map_err(err)?.as_bytes(),
    )?);
    out.push(write(
        &corpus("history", "history.csv"),
        h.to_csv().as_bytes(),
    )?);

    // Graphs: the sine MLP's and a small CNN's inference graphs.
    out.push(write(
        &corpus("graph_json", "sine.json"),
        model.inference_graph(2).map_err(err)?.to_json().as_bytes(),
    )?);
    let cnn = ModelFile::load(repo.join("examples/models/small_cnn.yaml")).map_err(err)?;
    let cnn = Model::new(cnn.layers, &[1, 28, 28], 0).map_err(err)?;
    out.push(write(
        &corpus("graph_json", "small_cnn.json"),
        cnn.inference_graph(1).map_err(err)?.to_json().as_bytes(),
    )?);

    // The bundle's parts, from the fixture artifact (made by `xenon compile`).
    let xnb_path = crate::targets::aot::fixture_path();
    if let Ok(xnb) = std::fs::read(&xnb_path) {
        let parsed = artifact::parse(&xnb).map_err(err)?;
        let manifest = serde_json::to_vec_pretty(&parsed.header.manifest).map_err(err)?;
        let object = parsed.section("object").map_err(err)?;
        let weights = parsed.section("weights").map_err(err)?;
        out.push(write(&corpus("aot_artifact", "sine.xnb"), &xnb)?);
        out.push(write(&corpus("aot_manifest", "manifest.json"), &manifest)?);
        out.push(write(&corpus("aot_object", "sine.o"), object)?);
        out.push(write(&corpus("aot_weights", "sine.safetensors"), weights)?);
        let loaded = LoadedObject::load(object, &host::resolve).map_err(err)?;
        let symbol = format!("{}_bundle", parsed.header.manifest.name);
        let desc = loaded.symbol(&symbol).ok_or("no bundle symbol")?;
        // SAFETY: the fixture is a bundle compiled by Xenon; its descriptor lies in the
        // loaded object, which lives until the end of this block.
        let program = unsafe {
            let desc = &*(desc as *const BundleDesc);
            std::slice::from_raw_parts(desc.program, desc.program_len as usize).to_vec()
        };
        let program: serde_json::Value = serde_json::from_slice(&program).map_err(err)?;
        out.push(write(
            &corpus("aot_program", "sine.json"),
            serde_json::to_string_pretty(&program)
                .map_err(err)?
                .as_bytes(),
        )?);
    } else {
        eprintln!(
            "note: {} is missing; make it first (docs/fuzzing.md), then run seeds again",
            xnb_path.display()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(out)
}
