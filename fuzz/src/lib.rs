//! Fuzzing harness for Xenon's parsers and loaders.
//!
//! Every format Xenon reads has one *target*: a function `fn(&[u8])` that feeds the bytes
//! to the reader the way a user's file reaches it (through a per-thread scratch file when
//! the reader only takes a path) and, where the bytes parse, goes on to what the CLI does
//! next (a model file builds its model and inference graph, a bundle is mapped and
//! checked). A target must return normally for every input: a reader's error is a normal
//! outcome, a panic, an abort, a signal, a hang or a huge allocation is a finding.
//!
//! [`TARGETS`] is the registry: name, function, whether the format is text, the largest
//! input worth trying. Each target has a seed corpus in `fuzz/corpus/<name>/` and the
//! inputs of fixed findings in `fuzz/regressions/<name>/`; `cargo test -p xenon-fuzz`
//! replays both (`tests/replay.rs`). Two engines drive the same functions:
//!
//! * the built-in mutation engine ([`engine`], the `xenon-fuzz` binary):
//!   `cargo run --release -p xenon-fuzz -- all --seconds 600`;
//! * AFL++ through cargo-afl (the `afl` binary, feature `afl`), coverage-guided.
//!
//! See `docs/fuzzing.md`.

pub mod engine;
pub mod feedback;
pub mod guard;
pub mod mutate;
pub mod seeds;
pub mod targets;

use std::path::{Path, PathBuf};

/// One fuzz target: a format and the function that reads it.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The name on the command line and of its corpus and regression folders.
    pub name: &'static str,
    /// Reads `bytes` as the format; returns normally whatever they hold.
    pub run: fn(&[u8]),
    /// Whether the format is text (the engine then also mutates numbers, lines and
    /// keywords).
    pub text: bool,
    /// The longest input the engine makes (longer seeds are kept as they are).
    pub max_len: usize,
    /// What the target reads, in a few words.
    pub about: &'static str,
}

impl Target {
    /// The seed corpus: `fuzz/corpus/<name>/`.
    pub fn corpus_dir(&self) -> PathBuf {
        fuzz_dir().join("corpus").join(self.name)
    }

    /// The inputs of fixed findings: `fuzz/regressions/<name>/`.
    pub fn regressions_dir(&self) -> PathBuf {
        fuzz_dir().join("regressions").join(self.name)
    }

    /// Where the engine saves what it finds: `fuzz/artifacts/<name>/` (not committed).
    pub fn artifacts_dir(&self) -> PathBuf {
        fuzz_dir().join("artifacts").join(self.name)
    }
}

/// Every target, in the order `all` runs them.
pub static TARGETS: &[Target] = &[
    Target {
        name: "model_yaml",
        run: targets::model_file::yaml,
        text: true,
        max_len: 16 << 10,
        about: "a YAML model file: parse, write back and re-read, build the model and its inference graph",
    },
    Target {
        name: "model_json",
        run: targets::model_file::json,
        text: true,
        max_len: 16 << 10,
        about: "a JSON model file: as model_yaml",
    },
    Target {
        name: "idx",
        run: targets::data::idx,
        text: false,
        max_len: 16 << 10,
        about: "an IDX file (MNIST), raw or gzipped",
    },
    Target {
        name: "npy",
        run: targets::data::npy,
        text: false,
        max_len: 8 << 10,
        about: "a NumPy .npy file: the whole array and the header's shape",
    },
    Target {
        name: "npz",
        run: targets::data::npz,
        text: false,
        max_len: 16 << 10,
        about: "a NumPy .npz archive (zip, stored or deflated): its arrays and shapes, and as an arrays data set",
    },
    Target {
        name: "cifar_bin",
        run: targets::data::cifar_bin,
        text: false,
        max_len: 16 << 10,
        about: "a CIFAR-10 binary batch file",
    },
    Target {
        name: "cifar_pickle",
        run: targets::data::cifar_pickle,
        text: false,
        max_len: 16 << 10,
        about: "a CIFAR-10 Python (pickle) batch file",
    },
    Target {
        name: "imdb",
        run: targets::data::imdb,
        text: false,
        max_len: 16 << 10,
        about: "neon's IMDB pickle or an .npz of IMDB arrays, encoded into data sets",
    },
    Target {
        name: "text",
        run: targets::data::text,
        text: true,
        max_len: 8 << 10,
        about: "a text file (raw or gzipped): characters and words, split and encoded, as a text data set",
    },
    Target {
        name: "ptb",
        run: targets::data::ptb,
        text: true,
        max_len: 8 << 10,
        about: "the three PTB files (the input cut at form feeds), words and characters",
    },
    Target {
        name: "enwik8",
        run: targets::data::enwik8,
        text: false,
        max_len: 8 << 10,
        about: "enwik8 bytes, raw or zipped, with both vocabularies",
    },
    Target {
        name: "babi",
        run: targets::data::babi,
        text: true,
        max_len: 8 << 10,
        about: "a bAbI task file (train and test cut at a form feed)",
    },
    Target {
        name: "weights",
        run: targets::weights::weights,
        text: false,
        max_len: 32 << 10,
        about: "a weights file or checkpoint (safetensors): Model::load and Model::load_weights",
    },
    Target {
        name: "history",
        run: targets::weights::history,
        text: true,
        max_len: 8 << 10,
        about: "a training history, JSON and CSV",
    },
    Target {
        name: "aot_artifact",
        run: targets::aot::artifact,
        text: false,
        max_len: 64 << 10,
        about: "a whole .xnb artifact (checksums as they are)",
    },
    Target {
        name: "aot_manifest",
        run: targets::aot::manifest,
        text: true,
        max_len: 16 << 10,
        about: "a bundle's manifest, in an artifact with the real object and weights (checksums fixed)",
    },
    Target {
        name: "aot_object",
        run: targets::aot::object,
        text: false,
        max_len: 64 << 10,
        about: "a bundle's ELF object: the loader, then in an artifact (checksums fixed)",
    },
    Target {
        name: "aot_weights",
        run: targets::aot::weights,
        text: false,
        max_len: 16 << 10,
        about: "a bundle's weights section, in an artifact (checksums fixed)",
    },
    Target {
        name: "aot_program",
        run: targets::aot::program,
        text: true,
        max_len: 32 << 10,
        about: "a compiled program's JSON (the schedule inside a bundle): validation and an executor",
    },
    Target {
        name: "graph_json",
        run: targets::graph::graph_json,
        text: true,
        max_len: 16 << 10,
        about: "the IR's JSON format: read, re-checked, written back",
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The `fuzz/` folder of the repository.
pub fn fuzz_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir`, sorted by name (none when it does not exist); hidden files and
/// `README*` are skipped.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.starts_with("README")
        })
        .collect();
    out.sort();
    out
}

/// A 64-bit FNV-1a hash (names saved inputs; allocation-free).
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
