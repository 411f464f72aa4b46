//! Datasets: the bundled MNIST subset, the IDX reader's error reports, and batching.

use flate2::{Compression, write::GzEncoder};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use xenon_frontend::data::{
    BUNDLED_MNIST_DIR, BatchIterator, BatchOptions, DataError, Dataset, LastBatch, Mnist,
    batches_per_epoch, idx,
};

// ---------------------------------------------------------------------------------------
// Helpers

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("xenon-data-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn idx_bytes(type_code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, type_code, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Writes a small valid MNIST directory (raw IDX): `n_train` and `n_test` 2×3 images
/// whose pixels are `(item · 6 + pixel) mod 256`, labels `item mod 10`.
fn write_tiny_mnist(dir: &Path, n_train: u32, n_test: u32) {
    for (images, labels, n) in [
        (
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            n_train,
        ),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", n_test),
    ] {
        let pixels: Vec<u8> = (0..n * 6).map(|v| (v % 256) as u8).collect();
        let ls: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(dir.join(images), idx_bytes(0x08, &[n, 2, 3], &pixels)).unwrap();
        std::fs::write(dir.join(labels), idx_bytes(0x08, &[n], &ls)).unwrap();
    }
}

/// Loads `dir`, expecting an error; checks the message is one line naming `file`.
fn load_err(dir: &Path, file: &str) -> (DataError, String) {
    let e = Mnist::load(dir).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "multi-line message: {msg}");
    let path = dir.join(file);
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name {}: {msg}",
        path.display()
    );
    (e, msg)
}

fn bundled() -> Mnist {
    Mnist::bundled().expect("the bundled MNIST subset loads")
}

// ---------------------------------------------------------------------------------------
// The bundled subset

#[test]
fn bundled_subset_has_the_documented_contents() {
    let m = bundled();
    assert_eq!(m.train.len(), 8000);
    assert_eq!(m.test.len(), 1000);
    for d in [&m.train, &m.test] {
        assert_eq!(d.nclass, 10);
        assert_eq!(d.feature_shape, vec![1, 28, 28]);
        assert_eq!(d.n_features(), 784);
        assert_eq!(d.x.len(), d.len() * 784);
        assert!(d.labels.iter().all(|l| (0..=9).contains(l)));
        // Pixels are bytes / 255: within [0, 1], both ends reached, and on the 1/255 grid.
        let (lo, hi) =
            d.x.iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((lo, hi), (0.0, 1.0));
        assert!(
            d.x.iter()
                .all(|&v| ((v * 255.0).round() / 255.0 - v).abs() < 1e-7)
        );
        // One-hot targets: each row sums to 1 with the 1 at the label.
        let t = d.onehot();
        assert_eq!(t.len(), d.len() * 10);
        for (row, &l) in t.chunks_exact(10).zip(&d.labels) {
            assert_eq!(row.iter().sum::<f32>(), 1.0);
            assert_eq!(row[l as usize], 1.0);
        }
    }
    // Values computed independently from the IDX files with Python's gzip module.
    let mut hist = [0usize; 10];
    for &l in &m.train.labels {
        hist[l as usize] += 1;
    }
    assert_eq!(hist, [805, 890, 782, 833, 769, 703, 846, 851, 739, 782]);
    assert_eq!(&m.train.labels[..10], &[9, 7, 4, 8, 0, 9, 9, 5, 3, 9]);
    assert_eq!(&m.test.labels[..10], &[1, 3, 4, 6, 1, 4, 2, 0, 4, 1]);
    let first_sum: f32 = m.train.sample(0).iter().sum();
    assert!((first_sum - 17768.0 / 255.0).abs() < 1e-3, "{first_sum}");
    assert_eq!(m.image_size(), (28, 28));
}

#[test]
fn raw_files_load_like_gzipped_ones() {
    let tmp = TempDir::new("raw");
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        let gz = Path::new(BUNDLED_MNIST_DIR).join(format!("{name}.gz"));
        let a = idx::read_idx(&gz).unwrap();
        let dims: Vec<u32> = a.dims.iter().map(|&d| d as u32).collect();
        std::fs::write(tmp.path().join(name), idx_bytes(0x08, &dims, &a.data)).unwrap();
    }
    assert_eq!(Mnist::load(tmp.path()).unwrap(), bundled());
}

#[test]
fn other_image_sizes_are_accepted_and_reported() {
    let tmp = TempDir::new("tiny");
    write_tiny_mnist(tmp.path(), 4, 2);
    let m = Mnist::load(tmp.path()).unwrap();
    assert_eq!(m.image_size(), (2, 3));
    assert_eq!(m.train.feature_shape, vec![1, 2, 3]);
    assert_eq!(
        m.to_string(),
        "MNIST: 4 training and 2 test images of 2x3, 10 classes"
    );
    assert_eq!(
        m.train.sample(1),
        &[
            6.0 / 255.0,
            7.0 / 255.0,
            8.0 / 255.0,
            9.0 / 255.0,
            10.0 / 255.0,
            11.0 / 255.0
        ]
    );
    assert_eq!(m.train.labels, vec![0, 1, 2, 3]);
}

// ---------------------------------------------------------------------------------------
// Error reports

#[test]
fn truncated_data_reports_expected_and_found_bytes() {
    let tmp = TempDir::new("trunc");
    write_tiny_mnist(tmp.path(), 4, 2);
    let f = tmp.path().join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 5]).unwrap();
    let (e, msg) = load_err(tmp.path(), "train-images-idx3-ubyte");
    assert!(
        matches!(
            e,
            DataError::TruncatedData {
                expected: 24,
                got: 19,
                ..
            }
        ),
        "{msg}"
    );
    assert_eq!(
        msg,
        format!(
            "{}: truncated IDX data: dimensions [4, 2, 3] need 24 bytes, found only 19",
            f.display()
        )
    );
}

#[test]
fn truncated_header_is_reported() {
    let tmp = TempDir::new("trunc-head");
    write_tiny_mnist(tmp.path(), 4, 2);
    let f = tmp.path().join("train-labels-idx1-ubyte");
    std::fs::write(&f, [0u8, 0, 8, 1, 0, 0]).unwrap();
    let (e, msg) = load_err(tmp.path(), "train-labels-idx1-ubyte");
    assert!(
        matches!(
            e,
            DataError::TruncatedHeader {
                expected: 8,
                got: 6,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("truncated IDX header: need 8 bytes, found only 6"),
        "{msg}"
    );
}

#[test]
fn wrong_magic_numbers_are_reported() {
    // Not IDX at all: the first two bytes are not zero.
    let tmp = TempDir::new("magic");
    write_tiny_mnist(tmp.path(), 4, 2);
    let f = tmp.path().join("t10k-images-idx3-ubyte");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[..4].copy_from_slice(b"PK\x03\x04");
    std::fs::write(&f, &bytes).unwrap();
    let (e, msg) = load_err(tmp.path(), "t10k-images-idx3-ubyte");
    assert!(
        matches!(
            e,
            DataError::BadMagic {
                magic: 0x504b_0304,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("not an IDX file: magic number 0x504b0304 should start with two zero bytes"),
        "{msg}"
    );

    // An image file (magic 0x803) where the labels belong.
    let tmp = TempDir::new("magic-rank");
    write_tiny_mnist(tmp.path(), 4, 2);
    std::fs::copy(
        tmp.path().join("train-images-idx3-ubyte"),
        tmp.path().join("train-labels-idx1-ubyte"),
    )
    .unwrap();
    let (e, msg) = load_err(tmp.path(), "train-labels-idx1-ubyte");
    assert!(
        matches!(
            e,
            DataError::WrongRank {
                expected: 1,
                got: 3,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("expected labels (an IDX file of rank 1), found rank 3 (magic 0x00000803)"),
        "{msg}"
    );

    // A signed-byte IDX file (type 0x09).
    let tmp = TempDir::new("magic-type");
    write_tiny_mnist(tmp.path(), 4, 2);
    let f = tmp.path().join("train-labels-idx1-ubyte");
    std::fs::write(&f, idx_bytes(0x09, &[4], &[0, 1, 2, 3])).unwrap();
    let (e, msg) = load_err(tmp.path(), "train-labels-idx1-ubyte");
    assert!(
        matches!(e, DataError::UnsupportedType { type_code: 9, .. }),
        "{msg}"
    );
    assert!(msg.contains("0x09 (signed byte)"), "{msg}");
}

#[test]
fn disagreeing_counts_name_both_files() {
    let tmp = TempDir::new("count");
    write_tiny_mnist(tmp.path(), 4, 2);
    let labels = tmp.path().join("t10k-labels-idx1-ubyte");
    std::fs::write(&labels, gzip(&idx_bytes(0x08, &[3], &[1, 2, 3]))).unwrap();
    // Also present gzipped under the .gz name only, to exercise the fallback.
    std::fs::rename(&labels, tmp.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let (e, msg) = load_err(tmp.path(), "t10k-images-idx3-ubyte");
    assert!(
        matches!(
            e,
            DataError::CountMismatch {
                images: 2,
                labels: 3,
                ..
            }
        ),
        "{msg}"
    );
    assert_eq!(
        msg,
        format!(
            "image and label counts disagree: 2 images in {} but 3 labels in {}",
            tmp.path().join("t10k-images-idx3-ubyte").display(),
            tmp.path().join("t10k-labels-idx1-ubyte.gz").display()
        )
    );
}

#[test]
fn corrupt_gzip_is_reported() {
    let tmp = TempDir::new("gzip");
    write_tiny_mnist(tmp.path(), 4, 2);
    let raw = tmp.path().join("train-images-idx3-ubyte");
    let gz_name = "train-images-idx3-ubyte.gz";
    let gz = tmp.path().join(gz_name);
    let good = gzip(&std::fs::read(&raw).unwrap());
    std::fs::remove_file(&raw).unwrap();

    // A damaged deflate body (the CRC-32 or the stream itself must catch it).
    let mut bad = good.clone();
    let mid = 10 + (bad.len() - 18) / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&gz, &bad).unwrap();
    let (e, msg) = load_err(tmp.path(), gz_name);
    assert!(matches!(e, DataError::Gzip { .. }), "{msg}");
    assert!(msg.contains(": gzip decompression failed: "), "{msg}");

    // A stream cut short.
    std::fs::write(&gz, &good[..good.len() - 6]).unwrap();
    let (e, msg) = load_err(tmp.path(), gz_name);
    assert!(matches!(e, DataError::Gzip { .. }), "{msg}");

    // Only the magic bytes.
    std::fs::write(&gz, [0x1f, 0x8b]).unwrap();
    let (e, msg) = load_err(tmp.path(), gz_name);
    assert!(matches!(e, DataError::Gzip { .. }), "{msg}");

    // The intact stream still loads (so the failures above are the damage's doing).
    std::fs::write(&gz, &good).unwrap();
    assert_eq!(Mnist::load(tmp.path()).unwrap().train.len(), 4);
}

#[test]
fn trailing_garbage_is_reported() {
    let tmp = TempDir::new("trailing");
    write_tiny_mnist(tmp.path(), 4, 2);
    let f = tmp.path().join("t10k-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes.extend_from_slice(b"\n\n\n");
    std::fs::write(&f, &bytes).unwrap();
    let (e, msg) = load_err(tmp.path(), "t10k-labels-idx1-ubyte");
    assert!(
        matches!(e, DataError::TrailingData { extra: 3, .. }),
        "{msg}"
    );
    assert!(
        msg.ends_with(
            "3 bytes of trailing garbage after the IDX data (dimensions [2] need 2 bytes)"
        ),
        "{msg}"
    );
}

#[test]
fn labels_outside_0_to_9_are_reported() {
    let tmp = TempDir::new("label");
    write_tiny_mnist(tmp.path(), 4, 2);
    let f = tmp.path().join("train-labels-idx1-ubyte");
    std::fs::write(&f, idx_bytes(0x08, &[4], &[0, 1, 10, 3])).unwrap();
    let (e, msg) = load_err(tmp.path(), "train-labels-idx1-ubyte");
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 2,
                label: 10,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.ends_with("label 10 of item 2 is outside 0..=9"),
        "{msg}"
    );
}

#[test]
fn missing_files_and_directories_are_reported() {
    let tmp = TempDir::new("missing");
    write_tiny_mnist(tmp.path(), 4, 2);
    std::fs::remove_file(tmp.path().join("t10k-images-idx3-ubyte")).unwrap();
    let e = Mnist::load(tmp.path()).unwrap_err();
    assert!(matches!(e, DataError::MissingFile { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte.gz in this directory",
            tmp.path().display()
        )
    );

    let nowhere = tmp.path().join("no-such-file");
    let e = idx::read_idx(&nowhere).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read: ", nowhere.display())),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Batching

#[test]
fn wrap_around_counts_match_neon() {
    let m = bundled();
    let mut it = BatchIterator::new(&m.train, BatchOptions::new(128)).unwrap();
    let counts: Vec<usize> = (0..3)
        .map(|_| {
            let expected = it.batches_per_epoch();
            let got = it.next_epoch().count();
            assert_eq!(got, expected);
            got
        })
        .collect();
    assert_eq!(counts, vec![63, 62, 62]);
    assert_eq!(batches_per_epoch(60000, 128, 0, LastBatch::WrapAround), 469);
    assert_eq!(batches_per_epoch(60000, 128, 0, LastBatch::DropLast), 468);
    assert_eq!(batches_per_epoch(8000, 128, 64, LastBatch::WrapAround), 62);
}

#[test]
fn wrap_around_batches_hold_the_right_samples() {
    let m = bundled();
    let d = &m.train;
    let mut it = BatchIterator::new(d, BatchOptions::new(128)).unwrap();
    let epoch0: Vec<_> = it.next_epoch().collect();
    let last = &epoch0[62];
    let want: Vec<usize> = (7936..8000).chain(0..64).collect();
    assert_eq!(last.indices, want);
    assert_eq!(last.n_valid, 64);
    assert!(epoch0[..62].iter().all(|b| b.n_valid == 128));
    assert_eq!(last.x.shape(), &[128, 784]);
    assert_eq!(last.t.shape(), &[128, 10]);
    assert_eq!(last.labels.shape(), &[128]);
    // The tensors hold exactly those dataset rows.
    let x = last.x.as_f32().unwrap();
    let labels = last.labels.as_i32().unwrap();
    let t = last.t.as_f32().unwrap();
    for (j, &i) in want.iter().enumerate() {
        assert_eq!(&x[j * 784..(j + 1) * 784], d.sample(i));
        assert_eq!(labels[j], d.labels[i]);
        assert_eq!(&t[j * 10..(j + 1) * 10], &d.onehot()[i * 10..(i + 1) * 10]);
    }
    // The next epoch starts where the filling stopped.
    let first = it.next_epoch().next().unwrap();
    assert_eq!(first.indices, (64..192).collect::<Vec<_>>());
    assert_eq!(first.x.as_f32().unwrap()[..784], *d.sample(64));
}

#[test]
fn seeded_shuffles_are_reproducible_and_seed_dependent() {
    let m = bundled();
    let run = |seed: u64| -> Vec<Vec<usize>> {
        let mut it = BatchIterator::new(&m.train, BatchOptions::new(128).shuffle(seed)).unwrap();
        (0..2)
            .flat_map(|_| it.next_epoch().map(|b| b.indices).collect::<Vec<_>>())
            .collect()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    // Each epoch has its own order.
    assert_ne!(a[0], a[63]);
    // A shuffled epoch is not the identity order.
    assert_ne!(a[0], (0..128).collect::<Vec<_>>());
    // Shuffled batches still carry the rows they name.
    let mut it = BatchIterator::new(&m.train, BatchOptions::new(128).shuffle(7)).unwrap();
    let b = it.next_epoch().next().unwrap();
    assert_eq!(b.indices, a[0]);
    for (j, &i) in b.indices.iter().enumerate() {
        assert_eq!(
            &b.x.as_f32().unwrap()[j * 784..(j + 1) * 784],
            m.train.sample(i)
        );
    }
}

#[test]
fn drop_last_sees_every_sample_once_per_epoch() {
    let m = bundled();
    // 8000 = 80 · 100: every sample exactly once per epoch, in a fresh order each epoch.
    let opts = BatchOptions::new(100)
        .shuffle(3)
        .last_batch(LastBatch::DropLast);
    let mut it = BatchIterator::new(&m.train, opts).unwrap();
    let mut orders = Vec::new();
    for _ in 0..3 {
        assert_eq!(it.batches_per_epoch(), 80);
        let seen: Vec<usize> = it.next_epoch().flat_map(|b| b.indices).collect();
        assert_eq!(seen.len(), 8000);
        let distinct: BTreeSet<usize> = seen.iter().copied().collect();
        assert_eq!(distinct, (0..8000).collect::<BTreeSet<_>>());
        orders.push(seen);
    }
    assert_ne!(orders[0], orders[1]);
    assert_ne!(orders[1], orders[2]);

    // 8000 = 62 · 128 + 64: each sample at most once, 64 of them left out per epoch.
    let opts = BatchOptions::new(128)
        .shuffle(3)
        .last_batch(LastBatch::DropLast);
    let mut it = BatchIterator::new(&m.train, opts).unwrap();
    for _ in 0..2 {
        let batches: Vec<_> = it.next_epoch().collect();
        assert_eq!(batches.len(), 62);
        assert!(batches.iter().all(|b| b.n_valid == 128));
        let seen: Vec<usize> = batches.into_iter().flat_map(|b| b.indices).collect();
        let distinct: BTreeSet<usize> = seen.iter().copied().collect();
        assert_eq!((seen.len(), distinct.len()), (7936, 7936));
    }
}

#[test]
fn wrap_around_covers_every_sample_in_the_first_epoch() {
    // Epoch 0 starts at offset 0: every sample once, plus the first 64 samples of the
    // epoch's (shuffled) order a second time as filler.
    let m = bundled();
    let mut it = BatchIterator::new(&m.train, BatchOptions::new(128).shuffle(11)).unwrap();
    let epoch = it.next_epoch();
    let order = epoch.order().to_vec();
    let mut counts = vec![0u32; 8000];
    for b in epoch {
        for i in b.indices {
            counts[i] += 1;
        }
    }
    let twice: BTreeSet<usize> = (0..8000).filter(|&i| counts[i] == 2).collect();
    assert!(counts.iter().all(|&c| c == 1 || c == 2));
    assert_eq!(twice, order[..64].iter().copied().collect::<BTreeSet<_>>());
}

#[test]
fn datasets_built_in_memory_are_validated() {
    let d = Dataset {
        x: vec![0.0; 4],
        labels: vec![0, 1, 2],
        nclass: 3,
        feature_shape: vec![2],
        targets: None,
        streams: Vec::new(),
        label_steps: 1,
        onehot_input: None,
        contiguous: false,
    };
    let e = BatchIterator::new(&d, BatchOptions::new(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid dataset: 3 examples and feature shape [2] need 6 inputs, got 4"
    );
}
