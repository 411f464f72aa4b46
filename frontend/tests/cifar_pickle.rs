//! CIFAR-10's Python release: golden pickles written by Python 2's cPickle and Python 3's
//! pickle (protocols 2 to 5, `tests/data/cifar-pickle`, made by its `make.py`) and
//! protocol-2 streams built here byte by byte read as the same tensors as the binary
//! release; bad pickles are errors naming the file, never panics; the format is told from
//! the directory.

use std::path::{Path, PathBuf};
use xenon_frontend::data::*;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xenon-cifar-pickle-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The pixel byte of image `i`, channel `c`, row `y`, column `x` (as in `make.py`).
fn pixel(i: usize, c: usize, y: usize, x: usize) -> u8 {
    ((i * 7 + c * 50 + y * 3 + x * 5) % 256) as u8
}

/// Images `first..first + n`, 3,072 bytes each (CHW).
fn images(first: usize, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n * CIFAR10_PIXELS);
    for i in first..first + n {
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    v.push(pixel(i, c, y, x));
                }
            }
        }
    }
    v
}

/// A binary batch file of images `first..` with `labels`.
fn binary_batch(first: usize, labels: &[u8]) -> Vec<u8> {
    let px = images(first, labels.len());
    let mut v = Vec::new();
    for (k, &l) in labels.iter().enumerate() {
        v.push(l);
        v.extend_from_slice(&px[k * CIFAR10_PIXELS..(k + 1) * CIFAR10_PIXELS]);
    }
    v
}

/// A protocol-2 pickle stream, as Python 2's cPickle writes it (`str` is bytes) or as
/// Python 3's pickle does (`str` is unicode; `bytes` is `_codecs.encode(latin-1 str)`).
struct Pickler {
    out: Vec<u8>,
    memo: u8,
    py3: bool,
}

impl Pickler {
    fn new(py3: bool) -> Pickler {
        Pickler {
            out: vec![0x80, 2],
            memo: 0,
            py3,
        }
    }
    fn op(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
    }
    /// BINPUT: memoize the top of the stack, as both picklers do after most objects.
    fn put(&mut self) {
        self.memo = self.memo.wrapping_add(1);
        self.out.extend_from_slice(&[b'q', self.memo]);
    }
    fn int(&mut self, v: i64) {
        match v {
            0..=255 => self.op(&[b'K', v as u8]),
            256..=65535 => {
                self.op(b"M");
                self.op(&(v as u16).to_le_bytes());
            }
            _ => {
                self.op(b"J");
                self.op(&(v as i32).to_le_bytes());
            }
        }
    }
    fn binstring(&mut self, s: &[u8]) {
        if s.len() < 256 {
            self.op(&[b'U', s.len() as u8]);
        } else {
            self.op(b"T");
            self.op(&(s.len() as u32).to_le_bytes());
        }
        self.op(s);
    }
    fn unicode(&mut self, s: &str) {
        self.op(b"X");
        self.op(&(s.len() as u32).to_le_bytes());
        self.op(s.as_bytes());
    }
    /// A Python `str` (ASCII here).
    fn text(&mut self, s: &str) {
        if self.py3 {
            self.unicode(s)
        } else {
            self.binstring(s.as_bytes())
        }
    }
    /// Python 3 `bytes` (Python 2 `str`).
    fn bytes(&mut self, b: &[u8]) {
        if self.py3 {
            self.global("_codecs", "encode");
            self.put();
            let latin1: String = b.iter().map(|&c| c as char).collect();
            self.unicode(&latin1);
            self.unicode("latin1");
            self.op(b"\x86R");
        } else {
            self.binstring(b);
        }
    }
    fn global(&mut self, module: &str, name: &str) {
        self.op(format!("c{module}\n{name}\n").as_bytes());
    }
}

/// What a hand-built batch pickle holds.
#[derive(Clone)]
struct Batch {
    shape: Vec<i64>,
    raw: Vec<u8>,
    /// The dtype's constructor argument and its state's byte order.
    dtype: (&'static str, &'static str),
    labels: Option<Vec<i64>>,
}

impl Batch {
    fn new(first: usize, labels: &[i64]) -> Batch {
        Batch {
            shape: vec![labels.len() as i64, CIFAR10_PIXELS as i64],
            raw: images(first, labels.len()),
            dtype: ("u1", "|"),
            labels: Some(labels.to_vec()),
        }
    }

    /// The pickle, in the order and with the opcodes Python 2's cPickle (or Python 3's
    /// pickle) writes for protocol 2.
    fn pickle(&self, py3: bool) -> Vec<u8> {
        let mut p = Pickler::new(py3);
        p.op(b"}");
        p.put();
        p.op(b"(");
        p.bytes(b"data");
        p.put();
        let core = if py3 { "numpy._core" } else { "numpy.core" };
        p.global(&format!("{core}.multiarray"), "_reconstruct");
        p.put();
        p.global("numpy", "ndarray");
        p.put();
        p.int(0);
        p.op(b"\x85");
        p.bytes(b"b");
        p.op(b"\x87R");
        p.put();
        p.op(b"(");
        p.int(1);
        p.op(b"(");
        for &d in &self.shape {
            p.int(d);
        }
        p.op(b"t");
        p.global("numpy", "dtype");
        p.put();
        p.text(self.dtype.0);
        p.int(0);
        p.int(1);
        p.op(b"\x87R");
        p.put();
        p.op(b"(");
        p.int(3);
        p.text(self.dtype.1);
        p.op(b"NNN");
        p.int(-1);
        p.int(-1);
        p.int(0);
        p.op(b"tb");
        p.op(b"\x89");
        p.bytes(&self.raw);
        p.op(b"tb");
        if let Some(labels) = &self.labels {
            p.bytes(b"labels");
            p.put();
            p.op(b"]");
            p.put();
            p.op(b"(");
            for &l in labels {
                p.int(l);
            }
            p.op(b"e");
        }
        p.bytes(b"batch_label");
        p.bytes(b"training batch 1 of 5");
        p.bytes(b"filenames");
        p.op(b"](");
        p.bytes(b"a.png");
        p.op(b"e");
        p.op(b"u.");
        p.out
    }
}

const GOLDEN: [&str; 8] = [
    "py2-cpickle-p2.pkl",
    "py3-p2.pkl",
    "py3-p3.pkl",
    "py3-p4.pkl",
    "py3-p5.pkl",
    "py3-p4-fortran.pkl",
    "py3-p5-fortran.pkl",
    "py3-p4-str-keys.pkl",
];

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cifar-pickle")
        .join(name)
}

/// `dir` filled with the six files of `format`, each `bytes`.
fn same_batch_everywhere(dir: &Path, format: CifarFormat, bytes: &[u8]) {
    let (train, test) = format.files();
    for name in train.iter().chain([&test]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn golden_pickles_of_python_2_and_3_read_as_the_binary_release() {
    let bin = scratch("golden-bin");
    same_batch_everywhere(&bin, CifarFormat::Binary, &binary_batch(0, &[3, 7]));
    let opts = CifarOptions {
        normalize: false,
        ..CifarOptions::default()
    };
    let want = Cifar10::load(&bin, &opts).unwrap();
    assert_eq!(want.format, CifarFormat::Binary);
    for name in GOLDEN {
        let (pixels, labels) = CifarFormat::Pickle.read_batch(&golden(name)).unwrap();
        assert_eq!(labels, [3, 7], "{name}");
        assert!(pixels == images(0, 2), "{name}: pixels differ");
        let py = scratch("golden-py").join("cifar-10-batches-py");
        std::fs::create_dir_all(&py).unwrap();
        same_batch_everywhere(
            &py,
            CifarFormat::Pickle,
            &std::fs::read(golden(name)).unwrap(),
        );
        let got = Cifar10::load(py.parent().unwrap(), &opts).unwrap();
        assert_eq!(got.format, CifarFormat::Pickle);
        assert_eq!((got.train.len(), got.test.len()), (10, 2));
        assert!(
            got.train == want.train && got.test == want.test,
            "{name}: tensors differ from the binary release's"
        );
    }
}

/// Six pickle files (py3: as Python 3 writes protocol 2) and six binary files of the same
/// images: 20 per file, labels `i·3 mod 10`.
fn both_releases(name: &str, py3: bool) -> (PathBuf, PathBuf) {
    let (bin, py) = (
        scratch(&format!("{name}-bin")),
        scratch(&format!("{name}-py")),
    );
    let files = CIFAR10_TRAIN_FILES
        .iter()
        .zip(CIFAR10_PY_TRAIN_FILES)
        .chain([(&CIFAR10_TEST_FILE, CIFAR10_PY_TEST_FILE)]);
    for (f, (b, p)) in files.enumerate() {
        let first = 20 * f;
        let labels: Vec<i64> = (first..first + 20).map(|i| (i * 3 % 10) as i64).collect();
        let lb: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
        std::fs::write(bin.join(b), binary_batch(first, &lb)).unwrap();
        std::fs::write(py.join(p), Batch::new(first, &labels).pickle(py3)).unwrap();
    }
    (bin, py)
}

#[test]
fn hand_built_protocol_2_releases_match_the_binary_release() {
    for py3 in [false, true] {
        let (bin, py) = both_releases(&format!("hand-{py3}"), py3);
        for (k, opts) in [
            CifarOptions::default(),
            CifarOptions {
                normalize: false,
                contrast_normalize: true,
                pad_classes: true,
                ..CifarOptions::default()
            },
        ]
        .into_iter()
        .enumerate()
        {
            let a = Cifar10::load(&bin, &opts).unwrap();
            let b = Cifar10::load(&py, &opts).unwrap();
            assert_eq!(
                (b.format, b.train.len(), b.test.len()),
                (CifarFormat::Pickle, 100, 20)
            );
            assert_eq!(b.train.labels[..4], [0, 3, 6, 9]);
            if k == 0 {
                assert_eq!(b.test.sample(1)[5], pixel(101, 0, 0, 5) as f32 / 255.0);
            }
            assert!(
                a.train == b.train && a.test == b.test,
                "py3 {py3}: {opts:?}"
            );
        }
    }
}

/// Whitening at CIFAR-10's real size (3,072 features; about 10 s in a test build, most of
/// it the eigendecomposition), on the Python release as `cifar10_conv` asks for it. The
/// release's pixels equal the binary release's (above), and whitening is a function of
/// them.
#[test]
fn whitening_runs_at_full_size() {
    let (_, py) = both_releases("whiten", false);
    let opts = CifarOptions {
        normalize: false,
        contrast_normalize: true,
        whiten: true,
        ..CifarOptions::default()
    };
    let white = Cifar10::load(&py, &opts).unwrap();
    assert_eq!(white.train.feature_shape, [3, 32, 32]);
    assert_eq!((white.train.len(), white.test.len()), (100, 20));
    // The whitened training set is centred; nothing is lost or infinite.
    for f in [0, 1000, 3071] {
        let m: f64 = (0..100)
            .map(|i| white.train.x[i * 3072 + f] as f64)
            .sum::<f64>()
            / 100.0;
        assert!(m.abs() < 1e-4, "feature {f}: mean {m}");
    }
    assert!(white.test.x.iter().all(|v| v.is_finite()));
    let plain = Cifar10::load(
        &py,
        &CifarOptions {
            whiten: false,
            ..opts
        },
    )
    .unwrap();
    assert_ne!(plain.train.x, white.train.x);
    assert_eq!(plain.train.labels, white.train.labels);
}

fn message(path: &Path) -> String {
    CifarFormat::Pickle
        .read_batch(path)
        .unwrap_err()
        .to_string()
}

#[test]
fn cut_or_corrupted_pickles_are_errors_not_panics() {
    let dir = scratch("corrupt");
    let path = dir.join("data_batch_1");
    for py3 in [false, true] {
        let whole = Batch::new(0, &[4]).pickle(py3);
        std::fs::write(&path, &whole).unwrap();
        assert_eq!(CifarFormat::Pickle.read_batch(&path).unwrap().1, [4]);
        // Where the pixels are (Python 3 stores them as UTF-8 text).
        let raw: Vec<u8> = if py3 {
            let latin1: String = images(0, 1).iter().map(|&c| c as char).collect();
            latin1.into_bytes()
        } else {
            images(0, 1)
        };
        let raw_at = whole.windows(raw.len()).position(|w| w == raw).unwrap();
        let structure = || (0..raw_at).chain(raw_at + raw.len()..whole.len());
        // Cut anywhere in the structure, and every 61st byte in the pixels.
        for cut in structure().chain((raw_at..raw_at + raw.len()).step_by(61)) {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let e = message(&path);
            assert!(e.contains("data_batch_1"), "cut at {cut}: {e}");
        }
        // Every byte of the structure replaced by a few others.
        for at in structure() {
            for b in [0x00, b'.', b'(', b'J', b'T', b'q', b'h', 0x80, 0xff] {
                let mut bytes = whole.clone();
                bytes[at] = b;
                std::fs::write(&path, &bytes).unwrap();
                if let Ok((pixels, labels)) = CifarFormat::Pickle.read_batch(&path) {
                    assert_eq!(pixels.len(), labels.len() * CIFAR10_PIXELS);
                    assert!(labels.iter().all(|l| (0..10).contains(l)));
                }
            }
        }
    }
}

#[test]
fn bad_batches_are_clear_errors_naming_the_file() {
    let dir = scratch("bad");
    let path = dir.join("test_batch");
    let check = |b: Batch, want: &str| {
        for py3 in [false, true] {
            std::fs::write(&path, b.pickle(py3)).unwrap();
            let e = message(&path);
            assert!(e.contains("test_batch") && e.contains(want), "{want}: {e}");
        }
    };
    let good = Batch::new(0, &[1, 2]);
    check(
        Batch {
            labels: Some(vec![1, 10]),
            ..good.clone()
        },
        "labels[1] = 10 is outside 0..=9",
    );
    check(
        Batch {
            labels: Some(vec![-1, 2]),
            ..good.clone()
        },
        "labels[0] = -1 is outside",
    );
    check(
        Batch {
            labels: Some(vec![1, 2, 3]),
            ..good.clone()
        },
        "2 images in 'data' but 3 entries in 'labels'",
    );
    check(
        Batch {
            labels: None,
            ..good.clone()
        },
        "no 'labels' entry",
    );
    check(
        Batch {
            shape: vec![2, 3071],
            raw: images(0, 2)[..6142].to_vec(),
            ..good.clone()
        },
        "shape (2, 3071), expected (N, 3072)",
    );
    check(
        Batch {
            shape: vec![2, 3, 32, 32],
            ..good.clone()
        },
        "shape [2, 3, 32, 32]",
    );
    check(
        Batch {
            shape: vec![3, 3072],
            ..good.clone()
        },
        "6144 raw bytes",
    );
    check(
        Batch {
            dtype: ("<f4", "<"),
            ..good.clone()
        },
        "not a uint8 array",
    );
    // Not a dict; an empty file; a file too large to be a batch (sparse, not written).
    std::fs::write(&path, b"\x80\x02]q\x00.").unwrap();
    assert!(message(&path).contains("not a dict"), "{}", message(&path));
    std::fs::write(&path, b"").unwrap();
    assert!(message(&path).contains("not a readable Python pickle"));
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_PICKLE_BYTES + 1).unwrap();
    drop(f);
    let e = message(&path);
    std::fs::remove_file(&path).unwrap();
    assert!(e.contains("more than the 268435456 bytes"), "{e}");
    // Through Cifar10::load, the bad file is named.
    let (_, py) = both_releases("bad-load", false);
    let bytes = std::fs::read(py.join("data_batch_3")).unwrap();
    std::fs::write(py.join("data_batch_3"), &bytes[..bytes.len() / 2]).unwrap();
    let e = Cifar10::load(&py, &CifarOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("data_batch_3") && e.contains("pickle"), "{e}");
    std::fs::write(py.join("data_batch_3"), &bytes).unwrap();
    std::fs::remove_file(py.join(CIFAR10_PY_TEST_FILE)).unwrap();
    let e = Cifar10::load(&py, &CifarOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("test_batch") && e.contains("cannot read"), "{e}");
}

#[test]
fn the_format_is_told_by_the_files_present() {
    let dir = scratch("locate");
    let e = Cifar10::locate(&dir).unwrap_err().to_string();
    for name in [
        "data_batch_1.bin",
        "test_batch.bin",
        "data_batch_1 …",
        "test_batch)",
        "cifar-10-batches-py",
    ] {
        assert!(e.contains(name), "{name}: {e}");
    }
    std::fs::create_dir_all(dir.join("cifar-10-batches-py")).unwrap();
    std::fs::write(dir.join("cifar-10-batches-py/data_batch_1"), b"").unwrap();
    assert_eq!(
        Cifar10::locate(&dir).unwrap(),
        (dir.join("cifar-10-batches-py"), CifarFormat::Pickle)
    );
    std::fs::create_dir_all(dir.join("cifar-10-batches-bin")).unwrap();
    std::fs::write(dir.join("cifar-10-batches-bin/data_batch_1.bin"), b"").unwrap();
    assert_eq!(
        Cifar10::locate(&dir).unwrap().1,
        CifarFormat::Binary,
        "binary first"
    );
    std::fs::write(dir.join("data_batch_1"), b"").unwrap();
    assert_eq!(
        Cifar10::locate(&dir).unwrap(),
        (dir.clone(), CifarFormat::Pickle)
    );
}
