//! The data readers of `xenon_frontend::data`: IDX, NumPy `.npy`/`.npz`, CIFAR-10 (binary
//! and pickle batches), IMDB, text files, PTB, enwik8 and bAbI.

use super::{scratch_file, split_parts};
use crate::feedback::outcome;
use std::path::Path;
use xenon_frontend::data::babi::{Babi, parse_babi};
use xenon_frontend::data::enwik8::{Enwik8, Enwik8Vocab};
use xenon_frontend::data::imdb::{Imdb, ImdbOptions};
use xenon_frontend::data::npy::{Targets, array_shape, dataset_from_arrays, read_npy, read_npz};
use xenon_frontend::data::ptb::{Ptb, PtbLevel};
use xenon_frontend::data::text::{self, Tokenizer};
use xenon_frontend::data::{CifarFormat, DataSource, idx};
use xenon_frontend::model_file::ModelFile;

/// IDX bytes (raw or gzipped) in memory, and as a file through the rank-checking readers.
pub fn idx(bytes: &[u8]) {
    outcome("idx", &idx::parse_idx(bytes, Path::new("fuzz.idx")));
    let path = scratch_file("input.idx", bytes);
    outcome("idx images", &idx::read_idx_images(&path));
    outcome("idx labels", &idx::read_idx_labels(&path));
}

/// A `.npy` file: its header's shape, then the whole array.
pub fn npy(bytes: &[u8]) {
    let path = scratch_file("input.npy", bytes);
    outcome("npy shape", &array_shape(&path, None));
    outcome("npy", &read_npy(&path));
}

/// The array names the `.npz` target asks for.
const NPZ_NAMES: [&str; 5] = ["x", "y", "x_train", "y_train", "arr_0"];

/// A `.npz` archive: the shapes and arrays of the usual names, then as an `arrays` data
/// set of its `x_train`/`y_train`/`x_test`/`y_test`, as `--data archive.npz` reads it.
pub fn npz(bytes: &[u8]) {
    let path = scratch_file("input.npz", bytes);
    for name in NPZ_NAMES {
        outcome("npz shape", &array_shape(&path, Some(name)));
        outcome("npz", &read_npz(&path, name));
    }
    if let (Ok(x), Ok(y)) = (read_npz(&path, "x"), read_npz(&path, "y")) {
        outcome(
            "npz classes",
            &dataset_from_arrays(
                x.clone(),
                y.clone(),
                Targets::Classes { nclass: 10 },
                None,
                &path,
            ),
        );
        outcome(
            "npz real",
            &dataset_from_arrays(x, y, Targets::Real, None, &path),
        );
    }
    let source = DataSource::new(None, Some(&path), Path::new(""));
    outcome("npz source", &source);
    if let Ok(source) = source {
        outcome("npz source shapes", &source.shapes());
        outcome("npz source load", &source.load());
    }
}

/// A CIFAR-10 binary batch (`data_batch_N.bin`).
pub fn cifar_bin(bytes: &[u8]) {
    let path = scratch_file("data_batch_1.bin", bytes);
    outcome("cifar bin", &CifarFormat::Binary.read_batch(&path));
}

/// A CIFAR-10 Python batch (a pickled dict of `data` and `labels`).
pub fn cifar_pickle(bytes: &[u8]) {
    let path = scratch_file("data_batch_1", bytes);
    outcome("cifar pickle", &CifarFormat::Pickle.read_batch(&path));
}

/// neon's IMDB pickle (or an `.npz`; told apart by the magic bytes), with neon's options
/// and with short reviews, unshuffled; then as data sets.
pub fn imdb(bytes: &[u8]) {
    let path = scratch_file("imdb.pkl", bytes);
    let short = ImdbOptions {
        max_len: 8,
        vocab_size: 50,
        seed: None,
        oov_char: None,
        ..ImdbOptions::default()
    };
    for opts in [ImdbOptions::default(), short] {
        let r = Imdb::load(&path, &opts);
        outcome("imdb", &r);
        if let Ok(i) = r {
            outcome("imdb datasets", &i.datasets());
        }
    }
}

/// A text file (raw or gzipped): read, split for validation, encoded as characters and
/// words, and as neon's `Text` data set of 4-token examples; and the same text named by
/// a model file's `text` data set.
pub fn text(bytes: &[u8]) {
    let path = scratch_file("input.txt", bytes);
    outcome("text bytes", &text::read_bytes(&path));
    let read = text::read_text(&path);
    outcome("text", &read);
    for tokenizer in [
        Tokenizer::Chars,
        Tokenizer::Words { eos: false },
        Tokenizer::Words { eos: true },
    ] {
        let split = text::load_split(&path, tokenizer, 0.1);
        outcome("text split", &split);
        if let Ok(s) = &split {
            let ds = text::text_dataset(&s.train, s.vocab.len(), 4, true);
            outcome("text dataset", &ds);
        }
        if let Ok(t) = &read {
            let stream = text::encode_text(t, tokenizer, None, "fuzz");
            outcome("text encode", &stream);
            if let Ok(s) = stream {
                outcome("text decode", &s.vocab.decode(&s.ids, tokenizer));
            }
        }
    }
    // The same file through a model file's `dataset: {name: text}`.
    let spec = format!(
        "layers: [{{type: Linear, config: {{nout: 2}}}}]\ncost: SumSquared\ndataset: {{name: text, time_steps: 3, path: {}}}\n",
        path.display()
    );
    if let Ok(file) = ModelFile::from_yaml_str(&spec)
        && let Ok(source) = DataSource::new(file.dataset.as_ref(), None, Path::new(""))
    {
        outcome("text source shapes", &source.shapes());
        outcome("text source load", &source.load());
    }
}

/// The three PTB files (train, valid, test: the input cut at form feeds), as words with
/// `<eos>` and as characters.
pub fn ptb(bytes: &[u8]) {
    let parts = split_parts(bytes, 3);
    let texts: Vec<String> = parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    for level in [PtbLevel::Words, PtbLevel::Chars] {
        outcome(
            "ptb",
            &Ptb::from_texts(&texts[0], &texts[1], &texts[2], level),
        );
    }
}

/// enwik8 bytes with both vocabularies, in memory and from a file (a zip archive holding
/// `enwik8` when the bytes are one).
pub fn enwik8(bytes: &[u8]) {
    for vocab in [Enwik8Vocab::Training, Enwik8Vocab::Full] {
        let r = Enwik8::from_bytes(bytes, vocab, "fuzz");
        outcome("enwik8", &r);
        if let Ok(e) = r {
            let back = e.vocab.decode(&e.train);
            outcome("enwik8 decode", &back);
        }
    }
    let name = if bytes.starts_with(b"PK") {
        "enwik8.zip"
    } else {
        "enwik8"
    };
    let path = scratch_file(name, bytes);
    outcome("enwik8 file", &Enwik8::load(&path));
}

/// A bAbI task file: parsed alone, and as a training and a test file (cut at a form
/// feed) encoded over one vocabulary.
pub fn babi(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    outcome("babi", &parse_babi(&text, "fuzz"));
    let parts = split_parts(bytes, 2);
    let train = String::from_utf8_lossy(parts[0]);
    let test = String::from_utf8_lossy(parts[1]);
    outcome("babi split", &Babi::from_strs(&train, &test));
}
