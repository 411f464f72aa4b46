//! Text data sets from generated fixtures: plain and gzipped text, Penn Treebank, enwik8,
//! IMDB (pickles and `.npz`) and bAbI, with neon's batching and every reader's errors.

use flate2::{Compression, write::GzEncoder};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use xenon_frontend::data::babi::Babi;
use xenon_frontend::data::enwik8::{Enwik8, Enwik8Vocab};
use xenon_frontend::data::imdb::{Imdb, ImdbOptions};
use xenon_frontend::data::ptb::{PTB_FILES, Ptb, PtbLevel};
use xenon_frontend::data::text::{
    Tokenizer, load_text, read_bytes, read_text, split_valid, text_dataset,
};
use xenon_frontend::data::{BatchIterator, BatchOptions, DataError};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("xenon-data-text-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A deflated zip archive of `(name, bytes)` entries.
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn message(e: DataError) -> String {
    e.to_string()
}

// ---------------------------------------------------------------------------------------
// Text files and neon's batching

#[test]
fn neon_text_batching_of_a_file() {
    // neon.md §6.2 item 6, through the data set and batch iterator training uses.
    let dir = TempDir::new("batching");
    let path = dir.write("alphabet.txt", "abcdefghijklmnopqrstuvwx");
    let text = load_text(&path, Tokenizer::Chars, None).unwrap();
    assert_eq!(text.vocab.len(), 24);
    assert_eq!(text.ids, (0..24).collect::<Vec<u32>>());
    let d = text_dataset(&text.ids, text.vocab.len(), 3, true).unwrap();
    let batches: Vec<_> = BatchIterator::new(&d, BatchOptions::new(2))
        .unwrap()
        .next_epoch()
        .collect();
    assert_eq!(batches.len(), 4);
    assert_eq!(batches[0].x.shape(), [2, 3 * 24]);
    assert_eq!(batches[0].t.shape(), [2, 3, 24]);
    // One-hot rows back to characters, in neon's step-major column order.
    let decode = |rows: &[f32], width: usize| -> Vec<u32> {
        rows.chunks(width)
            .map(|r| r.iter().position(|&v| v == 1.0).unwrap() as u32)
            .collect()
    };
    let s = |ids: &[u32]| text.vocab.decode(ids, Tokenizer::Chars).unwrap();
    let x = decode(batches[0].x.as_f32().unwrap(), 24);
    let y = decode(batches[0].t.as_f32().unwrap(), 24);
    let step_major = |v: &[u32]| -> Vec<u32> { (0..3).flat_map(|t| [v[t], v[3 + t]]).collect() };
    assert_eq!(s(&step_major(&x)), "ambnco");
    assert_eq!(s(&step_major(&y)), "bncodp");
    // The columns continue across minibatches; the last target of the stream wraps to 'a'.
    let x1 = decode(batches[1].x.as_f32().unwrap(), 24);
    assert_eq!(s(&x1), "defpqr");
    let last = decode(batches[3].t.as_f32().unwrap(), 24);
    assert_eq!(s(&last), "klmwxa");

    let e = message(text_dataset(&text.ids, 24, 25, true).unwrap_err());
    assert!(
        e.contains("sequence length 25") && e.contains("24 tokens"),
        "{e}"
    );
    // A batch size the examples cannot fill is an error too.
    let e = message(BatchIterator::new(&d, BatchOptions::new(9)).unwrap_err());
    assert!(e.contains("9"), "{e}");
}

#[test]
fn gzipped_text_and_validation_split() {
    let dir = TempDir::new("gzip");
    let text = "hello wörld\nsecond line\n";
    let plain = dir.write("t.txt", text);
    let gz = dir.write("t.txt.gz", gzip(text.as_bytes()));
    // Gzip is told by its magic bytes, not its name.
    let gz_no_ext = dir.write("t.data", gzip(text.as_bytes()));
    for p in [&plain, &gz, &gz_no_ext] {
        assert_eq!(read_text(p).unwrap(), text);
    }
    assert_eq!(read_bytes(&gz).unwrap(), text.as_bytes());

    let (train, valid) = split_valid(text, 0.25).unwrap();
    assert_eq!(train.chars().count(), 18); // int(24 · 0.75)
    assert_eq!(format!("{train}{valid}"), text);
    let train_ids = load_text(&plain, Tokenizer::Words { eos: true }, None).unwrap();
    assert_eq!(
        train_ids.vocab.tokens(),
        ["<eos>", "hello", "line", "second", "wörld"]
    );
    assert_eq!(train_ids.ids, [1, 4, 0, 3, 2, 0]);
}

#[test]
fn text_file_errors_name_the_path() {
    let dir = TempDir::new("text-errors");
    let bad = dir.write("latin1.txt", b"caf\xe9");
    let e = message(read_text(&bad).unwrap_err());
    assert!(e.contains("latin1.txt") && e.contains("offset 3"), "{e}");

    let mut cut = gzip(b"some text that is long enough to be cut");
    cut.truncate(cut.len() - 6);
    let cut = dir.write("cut.gz", cut);
    let e = read_text(&cut).unwrap_err();
    assert!(matches!(e, DataError::Gzip { .. }), "{e:?}");
    assert!(message(e).contains("cut.gz"));

    let missing = dir.path().join("absent.txt");
    let e = read_text(&missing).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }) && message(e).contains("absent.txt"));

    let empty = dir.write("empty.txt", "");
    let e = message(load_text(&empty, Tokenizer::Chars, None).unwrap_err());
    assert!(e.contains("empty.txt") && e.contains("no tokens"), "{e}");

    let train = load_text(dir.write("a.txt", "abc"), Tokenizer::Chars, None).unwrap();
    let other = dir.write("b.txt", "abd");
    let e = message(load_text(&other, Tokenizer::Chars, Some(&train.vocab)).unwrap_err());
    assert!(
        e.contains("b.txt") && e.contains("\"d\"") && e.contains("token 2"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Penn Treebank

const PTB_TRAIN: &str = " the cat sat \n the dog sat on the cat \n <unk> ran \n";
const PTB_VALID: &str = " the dog ran \n";
const PTB_TEST: &str = " a cat \n";

fn write_ptb(dir: &TempDir, test: &str) {
    dir.write(PTB_FILES[0], PTB_TRAIN);
    // One file gzipped, under the `.gz` name.
    dir.write(&format!("{}.gz", PTB_FILES[1]), gzip(PTB_VALID.as_bytes()));
    dir.write(PTB_FILES[2], test);
}

#[test]
fn ptb_word_and_char_levels() {
    let dir = TempDir::new("ptb");
    write_ptb(&dir, " cat sat \n");
    let ptb = Ptb::load(dir.path(), PtbLevel::Words).unwrap();
    assert_eq!(
        ptb.vocab.tokens(),
        ["<eos>", "<unk>", "cat", "dog", "on", "ran", "sat", "the"]
    );
    assert_eq!(ptb.train.len(), 3 + 1 + 6 + 1 + 2 + 1);
    assert_eq!(ptb.train[..4], [7, 2, 6, 0]);
    assert_eq!(ptb.valid, [7, 3, 5, 0]);
    assert_eq!(ptb.test, [2, 6, 0]);
    let d = text_dataset(&ptb.train, ptb.vocab.len(), 2, false).unwrap();
    assert_eq!(d.len(), 7);

    let chars = Ptb::load(dir.path(), PtbLevel::Chars).unwrap();
    assert_eq!(chars.tokenizer, Tokenizer::Chars);
    assert_eq!(chars.vocab.tokens()[..2], ["\n", " "]);
    assert_eq!(chars.train.len(), PTB_TRAIN.chars().count());
    let decoded = chars.vocab.decode(&chars.valid, chars.tokenizer).unwrap();
    assert_eq!(decoded, PTB_VALID);
}

#[test]
fn ptb_errors() {
    let dir = TempDir::new("ptb-errors");
    write_ptb(&dir, PTB_TEST);
    // "a" is not a training word.
    let e = message(Ptb::load(dir.path(), PtbLevel::Words).unwrap_err());
    assert!(e.contains("ptb.test.txt") && e.contains("\"a\""), "{e}");

    std::fs::remove_file(dir.path().join(PTB_FILES[2])).unwrap();
    std::fs::remove_file(dir.path().join(format!("{}.gz", PTB_FILES[1]))).unwrap();
    let e = message(Ptb::load(dir.path(), PtbLevel::Words).unwrap_err());
    assert!(
        e.contains("missing: ptb.valid.txt, ptb.test.txt")
            && e.contains("ptb.train.txt, ptb.valid.txt, ptb.test.txt"),
        "{e}"
    );
    let e = message(Ptb::load(dir.path().join("nope"), PtbLevel::Words).unwrap_err());
    assert!(e.contains("nope"), "{e}");

    dir.write(PTB_FILES[1], "");
    dir.write(PTB_FILES[2], PTB_TEST);
    let e = message(Ptb::load(dir.path(), PtbLevel::Chars).unwrap_err());
    assert!(
        e.contains("ptb.valid.txt") && e.contains("no tokens"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// enwik8

/// 1,000 bytes: `<page>`-like text over a few distinct bytes, the last 50 including 0xff.
fn enwik8_fixture() -> Vec<u8> {
    let mut data: Vec<u8> = b"<page>text &amp; \xc3\xa9</page>\n"
        .iter()
        .copied()
        .cycle()
        .take(1000)
        .collect();
    data[990] = 0xff;
    data
}

#[test]
fn enwik8_raw_zip_and_directory() {
    let dir = TempDir::new("enwik8");
    let data = enwik8_fixture();
    let raw = dir.write("raw/enwik8", &data);
    let zipped = dir.write("zipped/enwik8.zip", zip(&[("enwik8", &data)]));
    let gz = dir.write("gz/enwik8", gzip(&data));

    let e = Enwik8::load_with(&raw, Enwik8Vocab::Full).unwrap();
    assert_eq!((e.train.len(), e.valid.len(), e.test.len()), (900, 50, 50));
    let mut all = e.train.clone();
    all.extend(&e.valid);
    all.extend(&e.test);
    assert_eq!(e.vocab.decode(&all).unwrap(), data);
    let distinct: std::collections::BTreeSet<u8> = data.iter().copied().collect();
    assert_eq!(e.vocab.bytes(), distinct.into_iter().collect::<Vec<_>>());
    for p in [
        &zipped,
        &gz,
        &dir.path().join("raw"),
        &dir.path().join("zipped"),
    ] {
        assert_eq!(
            Enwik8::load_with(p, Enwik8Vocab::Full).unwrap(),
            e,
            "{}",
            p.display()
        );
    }
}

#[test]
fn enwik8_errors() {
    let dir = TempDir::new("enwik8-errors");
    let data = enwik8_fixture();
    let raw = dir.write("enwik8", &data);
    // 0xff first appears in the test part, at offset 990.
    let e = message(Enwik8::load(&raw).unwrap_err());
    assert!(
        e.contains("enwik8") && e.contains("0xff") && e.contains("offset 990"),
        "{e}"
    );

    let small = dir.write("small", b"0123456789");
    let e = message(Enwik8::load(&small).unwrap_err());
    assert!(e.contains("small") && e.contains("10 bytes"), "{e}");

    let other = dir.write("other.zip", zip(&[("a", b"x"), ("b", b"y")]));
    let e = message(Enwik8::load(&other).unwrap_err());
    assert!(
        e.contains("other.zip") && e.contains("no enwik8 entry"),
        "{e}"
    );

    let mut broken = zip(&[("enwik8", &data)]);
    broken.truncate(broken.len() / 2);
    let broken = dir.write("broken.zip", broken);
    let e = message(Enwik8::load(&broken).unwrap_err());
    assert!(e.contains("broken.zip"), "{e}");

    let empty = TempDir::new("enwik8-empty");
    let e = message(Enwik8::load(empty.path()).unwrap_err());
    assert!(e.contains("enwik8"), "{e}");
}

// ---------------------------------------------------------------------------------------
// IMDB

/// `X = [[i, i + 1, 3i] for i in range(12)]`, `y = [i % 2 ...]`.
fn imdb_reviews() -> (Vec<Vec<i64>>, Vec<i64>) {
    let x = (0..12).map(|i| vec![i, i + 1, 3 * i]).collect();
    let y = (0..12).map(|i| i % 2).collect();
    (x, y)
}

fn imdb_opts() -> ImdbOptions {
    ImdbOptions {
        vocab_size: 20,
        max_len: 3,
        ..ImdbOptions::default()
    }
}

#[test]
fn imdb_pickle_matches_neon_pad_data() {
    let dir = TempDir::new("imdb-pkl");
    let pickle = serde_pickle::to_vec(&imdb_reviews(), Default::default()).unwrap();
    let path = dir.write("imdb.pkl", &pickle);
    let imdb = Imdb::load(&path, &imdb_opts()).unwrap();
    // Computed by neon's pad_data (numpy seed 113, test_split 0.2) on the same lists.
    assert_eq!(
        imdb.x_train,
        [
            7, 8, 15, 6, 7, 12, 12, 13, 2, 11, 12, 2, 4, 5, 6, 3, 4, 3, 14, 15, 2, 10, 11, 2, 9,
            10, 2
        ]
    );
    assert_eq!(imdb.y_train, [0, 1, 1, 0, 1, 0, 1, 1, 0]);
    assert_eq!(imdb.x_test, [13, 14, 2, 5, 6, 9, 8, 9, 18]);
    assert_eq!(imdb.y_test, [0, 0, 1]);
    assert_eq!((imdb.max_len, imdb.vocab_size, imdb.nclass), (3, 20, 2));
    assert_eq!((imdb.train_len(), imdb.test_len()), (9, 3));

    // A directory means its imdb.pkl; a gzipped pickle reads the same.
    assert_eq!(Imdb::load(dir.path(), &imdb_opts()).unwrap(), imdb);
    let gz = dir.write("imdb.pkl.gz", gzip(&pickle));
    assert_eq!(Imdb::load(&gz, &imdb_opts()).unwrap(), imdb);

    let (train, test) = imdb.datasets().unwrap();
    assert_eq!((train.len(), test.len(), train.nclass), (9, 3, 2));
    assert_eq!(train.sample(0), &[7.0, 8.0, 15.0]);
}

#[test]
fn imdb_presplit_pickle_and_npz() {
    let dir = TempDir::new("imdb-split");
    let train = (vec![vec![1i64, 2], vec![30]], vec![1i64, 0]);
    let test = (vec![vec![4i64, 5, 6, 7]], vec![1i64]);
    let pickle = serde_pickle::to_vec(&(train, test), Default::default()).unwrap();
    let path = dir.write("full.pkl", pickle);
    let opts = ImdbOptions {
        oov_char: None,
        ..imdb_opts()
    };
    let imdb = Imdb::load(&path, &opts).unwrap();
    // Not shuffled; 33 ≥ 20 dropped (no OOV id); the test review keeps its last 3 ids.
    assert_eq!(imdb.x_train, [1, 4, 5, 0, 0, 1]);
    assert_eq!(imdb.y_train, [1, 0]);
    assert_eq!(imdb.x_test, [8, 9, 10]);

    // An npz of int64 and float32 arrays, already encoded and padded.
    let npy_i64 = |shape: &[u64], data: &[i64]| {
        use npyz::WriterBuilder;
        let mut out = Vec::new();
        let mut w = npyz::WriteOptions::<i64>::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        out
    };
    let x_train = npy_i64(&[2, 4], &[0, 1, 5, 25, 1, 6, 7, 8]);
    let y_train = npy_i64(&[2], &[0, 1]);
    let x_test = npy_i64(&[1, 2], &[1, 9]);
    let y_test = xenon_frontend::data::npy::npy_bytes(&[1, 1], &[2.0]).unwrap();
    let npz = zip(&[
        ("x_train.npy", &x_train),
        ("y_train.npy", &y_train),
        ("x_test.npy", &x_test),
        ("y_test.npy", &y_test),
    ]);
    let npz_dir = TempDir::new("imdb-npz");
    npz_dir.write("imdb.npz", &npz);
    let imdb = Imdb::load(npz_dir.path(), &imdb_opts()).unwrap();
    assert_eq!(imdb.x_train, [1, 5, 2, 6, 7, 8]); // 25 ≥ 20 → OOV 2
    assert_eq!(imdb.x_test, [0, 1, 9]);
    assert_eq!(
        (imdb.y_train.as_slice(), imdb.y_test.as_slice()),
        (&[0, 1][..], &[2][..])
    );
    assert_eq!(imdb.nclass, 3);

    // Wrong shapes and values name the file and the array.
    let bad_y = npy_i64(&[3], &[0, 1, 1]);
    let bad = dir.write(
        "bad.npz",
        zip(&[
            ("x_train.npy", &x_train),
            ("y_train.npy", &bad_y),
            ("x_test.npy", &x_test),
            ("y_test.npy", &y_test),
        ]),
    );
    let e = Imdb::load(&bad, &imdb_opts()).unwrap_err();
    assert!(
        matches!(&e, DataError::Array { array, .. } if array == "y_train"),
        "{e:?}"
    );
    assert!(message(e).contains("bad.npz"));
    let negative = npy_i64(&[1, 2], &[1, -4]);
    let bad = dir.write(
        "negative.npz",
        zip(&[
            ("x_train.npy", &x_train),
            ("y_train.npy", &y_train),
            ("x_test.npy", &negative),
            ("y_test.npy", &y_test),
        ]),
    );
    let e = message(Imdb::load(&bad, &imdb_opts()).unwrap_err());
    assert!(
        e.contains("negative.npz") && e.contains("x_test") && e.contains("-4"),
        "{e}"
    );
    let missing = dir.write("missing.npz", zip(&[("x_train.npy", &x_train)]));
    let e = message(Imdb::load(&missing, &imdb_opts()).unwrap_err());
    assert!(e.contains("missing.npz") && e.contains("y_train"), "{e}");
}

#[test]
fn imdb_pickle_errors() {
    let dir = TempDir::new("imdb-errors");
    let load = |name: &str, bytes: &[u8]| {
        let p = dir.write(name, bytes);
        message(Imdb::load(&p, &imdb_opts()).unwrap_err())
    };
    let good = serde_pickle::to_vec(&imdb_reviews(), Default::default()).unwrap();
    let e = load("cut.pkl", &good[..good.len() / 2]);
    assert!(e.contains("cut.pkl") && e.contains("pickle"), "{e}");
    let e = load("garbage.pkl", b"not a pickle at all");
    assert!(e.contains("garbage.pkl"), "{e}");
    let e = load("empty.pkl", b"");
    assert!(e.contains("empty.pkl"), "{e}");

    let triple = serde_pickle::to_vec(&(vec![1], vec![2], vec![3]), Default::default()).unwrap();
    let e = load("triple.pkl", &triple);
    assert!(e.contains("triple.pkl") && e.contains("3 items"), "{e}");

    let mismatch = (vec![vec![1i64]; 5], vec![0i64; 4]);
    let e = load(
        "mismatch.pkl",
        &serde_pickle::to_vec(&mismatch, Default::default()).unwrap(),
    );
    assert!(e.contains("5 reviews") && e.contains("4 labels"), "{e}");

    let negative = (vec![vec![1i64], vec![-3]], vec![0i64, 1]);
    let e = load(
        "negative.pkl",
        &serde_pickle::to_vec(&negative, Default::default()).unwrap(),
    );
    assert!(e.contains("X[1][0] is -3"), "{e}");

    let strings = (vec![vec!["a"]], vec![0i64]);
    let e = load(
        "strings.pkl",
        &serde_pickle::to_vec(&strings, Default::default()).unwrap(),
    );
    assert!(e.contains("X[0][0]") && e.contains("string"), "{e}");

    let e = message(Imdb::load(dir.path().join("absent.pkl"), &imdb_opts()).unwrap_err());
    assert!(e.contains("absent.pkl"), "{e}");
    let empty_dir = TempDir::new("imdb-empty");
    let e = message(Imdb::load(empty_dir.path(), &imdb_opts()).unwrap_err());
    assert!(e.contains("imdb.pkl"), "{e}");
}

// ---------------------------------------------------------------------------------------
// bAbI

const BABI_TRAIN: &str = "\
1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Where is Daniel? \thallway\t4
1 Sandra journeyed to the garden.
2 Where is Sandra? \tgarden\t1
";

const BABI_TEST: &str = "\
1 John travelled to the office.
2 Where is John? \toffice\t1
";

#[test]
fn babi_task_directory() {
    let dir = TempDir::new("babi");
    let en = "tasks_1-20_v1-2/en";
    dir.write(
        &format!("{en}/qa1_single-supporting-fact_train.txt"),
        BABI_TRAIN,
    );
    dir.write(
        &format!("{en}/qa1_single-supporting-fact_test.txt"),
        BABI_TEST,
    );
    // A task-10 file must not be taken for task 1.
    dir.write(&format!("{en}/qa10_indefinite-knowledge_train.txt"), "junk");
    let b = Babi::load(dir.path(), 1, "en").unwrap();
    assert_eq!((b.train.examples, b.test.examples), (3, 1));
    // The longest story: "Mary moved to the bathroom . John went to the hallway . Daniel
    // went back to the hallway ." (19 tokens).
    assert_eq!((b.story_maxlen, b.query_maxlen), (19, 4));
    assert_eq!(b.vocab_size(), b.vocab.len() + 1);
    let mut sorted = b.vocab.clone();
    sorted.sort();
    assert_eq!(b.vocab, sorted);
    assert!(b.vocab.iter().any(|t| t == "office")); // test tokens are in the vocabulary
    let words = |ids: &[u32]| -> Vec<&str> { ids.iter().filter_map(|&i| b.token(i)).collect() };
    let row = |v: &[u32], len: usize, i: usize| v[i * len..(i + 1) * len].to_vec();
    let story0 = row(&b.train.x_story, 19, 0);
    assert!(story0[..19 - 12].iter().all(|&i| i == 0)); // left-padded
    assert_eq!(
        words(&story0).join(" "),
        "Mary moved to the bathroom . John went to the hallway ."
    );
    assert_eq!(
        words(&row(&b.train.x_query, 4, 2)),
        ["Where", "is", "Sandra", "?"]
    );
    assert_eq!(
        words(&row(&b.train.x_story, 19, 2)).join(" "),
        "Sandra journeyed to the garden ."
    );
    assert_eq!(words(&b.train.answers), ["bathroom", "hallway", "garden"]);
    assert_eq!(words(&b.test.answers), ["office"]);

    // The same files directly in the directory, or under the subset name.
    let flat = TempDir::new("babi-flat");
    flat.write("en-10k/qa1_x_train.txt", BABI_TRAIN);
    flat.write("en-10k/qa1_x_test.txt", BABI_TEST);
    assert_eq!(Babi::load(flat.path(), 1, "en-10k").unwrap(), b);
    assert_eq!(Babi::load(flat.path().join("en-10k"), 1, "en").unwrap(), b);
    assert_eq!(Babi::from_strs(BABI_TRAIN, BABI_TEST).unwrap(), b);
}

#[test]
fn babi_errors() {
    let dir = TempDir::new("babi-errors");
    let e = message(Babi::load(dir.path(), 2, "en").unwrap_err());
    assert!(
        e.contains("qa2_*_train.txt") && e.contains("qa2_two-supporting-facts"),
        "{e}"
    );
    dir.write("qa3_x_train.txt", "1 A.\n2 Where?\tx\n");
    dir.write("qa3_x_test.txt", BABI_TEST);
    let e = message(Babi::load(dir.path(), 3, "en").unwrap_err());
    assert!(e.contains("qa3_x_train.txt") && e.contains("line 2"), "{e}");
    dir.write("qa4_x_train.txt", BABI_TRAIN);
    dir.write("qa4_x_test.txt", "");
    let e = message(Babi::load(dir.path(), 4, "en").unwrap_err());
    assert!(
        e.contains("qa4_x_test.txt") && e.contains("no questions"),
        "{e}"
    );
    // Truncated mid-story: the last question line lost its supporting ids.
    let cut = &BABI_TRAIN[..BABI_TRAIN.len() - 3];
    let e = message(Babi::from_strs(cut, BABI_TEST).unwrap_err());
    assert!(e.contains("line 7"), "{e}");
}
