//! CIFAR-10 from generated fixtures in the binary release's format: records, CHW pixel
//! order, neon's preprocessing options, errors that name the file; and the crop-and-flip
//! augmentation of training batches. The Python release is in `cifar_pickle.rs`, ZCA
//! whitening in `cifar_zca.rs`.

use std::path::{Path, PathBuf};
use xenon_frontend::data::*;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xenon-cifar-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The pixel byte of image `i`, channel `c`, row `y`, column `x` in the fixtures.
fn pixel(i: usize, c: usize, y: usize, x: usize) -> u8 {
    ((i * 7 + c * 50 + y * 3 + x * 5) % 256) as u8
}

/// One binary batch file of `labels.len()` records starting at image `first`.
fn batch_bytes(first: usize, labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for (k, &l) in labels.iter().enumerate() {
        v.push(l);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    v.push(pixel(first + k, c, y, x));
                }
            }
        }
    }
    v
}

/// A release with three images per training file and four test images.
fn release(dir: &Path) {
    for (f, name) in CIFAR10_TRAIN_FILES.iter().enumerate() {
        let labels = [
            (3 * f) as u8 % 10,
            (3 * f + 1) as u8 % 10,
            (3 * f + 2) as u8 % 10,
        ];
        std::fs::write(dir.join(name), batch_bytes(3 * f, &labels)).unwrap();
    }
    std::fs::write(dir.join(CIFAR10_TEST_FILE), batch_bytes(100, &[9, 8, 7, 6])).unwrap();
}

#[test]
fn the_binary_release_loads_in_chw_order() {
    let dir = scratch("release").join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    release(&dir);
    // The parent directory works too.
    let c = Cifar10::load(dir.parent().unwrap(), &CifarOptions::default()).unwrap();
    assert_eq!((c.train.len(), c.test.len()), (15, 4));
    assert_eq!(c.train.feature_shape, [3, 32, 32]);
    assert_eq!(c.train.nclass, 10);
    assert_eq!(&c.train.labels[..4], &[0, 1, 2, 3]);
    assert_eq!(c.test.labels, [9, 8, 7, 6]);
    let img = c.train.sample(4);
    assert_eq!(img[(32 + 5) * 32 + 7], pixel(4, 1, 5, 7) as f32 / 255.0);
    let raw = Cifar10::load(
        &dir,
        &CifarOptions {
            normalize: false,
            ..CifarOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        raw.test.sample(2)[2 * 1024 + 31],
        pixel(102, 2, 0, 31) as f32
    );
    // Global contrast normalization: zero mean, L2 norm 55 per image.
    let gcn = Cifar10::load(
        &dir,
        &CifarOptions {
            normalize: false,
            contrast_normalize: true,
            pad_classes: true,
            ..CifarOptions::default()
        },
    )
    .unwrap();
    assert_eq!(gcn.train.nclass, 16);
    let v: Vec<f64> = gcn.train.sample(0).iter().map(|&p| p as f64).collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let norm = v.iter().map(|p| p * p).sum::<f64>().sqrt();
    assert!(
        mean.abs() < 1e-4 && (norm - 55.0).abs() < 1e-3,
        "{mean} {norm}"
    );
    // A constant image stays finite (the norm's floor).
    assert!(
        global_contrast_normalize(&[3.0; 8])
            .iter()
            .all(|x| *x == 0.0)
    );
}

#[test]
fn bad_releases_are_errors_naming_the_file() {
    let dir = scratch("bad");
    let e = Cifar10::load(&dir, &CifarOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("data_batch_1.bin"), "{e}");
    // A pickle file makes it the Python release (tests/cifar_pickle.rs), here cut short.
    std::fs::write(dir.join("data_batch_1"), b"\x80\x02}q").unwrap();
    let e = Cifar10::load(&dir, &CifarOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("data_batch_1: not a readable Python pickle"),
        "{e}"
    );
    std::fs::remove_file(dir.join("data_batch_1")).unwrap();
    release(&dir);
    let path = dir.join("data_batch_3.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.pop();
    std::fs::write(&path, &bytes).unwrap();
    let e = Cifar10::load(&dir, &CifarOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("data_batch_3.bin") && e.contains("9218 bytes"),
        "{e}"
    );
    release(&dir);
    let mut bytes = std::fs::read(dir.join(CIFAR10_TEST_FILE)).unwrap();
    bytes[3073] = 10;
    std::fs::write(dir.join(CIFAR10_TEST_FILE), &bytes).unwrap();
    let e = Cifar10::load(&dir, &CifarOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("test_batch.bin") && e.contains("record 1: label 10"),
        "{e}"
    );
}

/// A 2-channel 3×4 image whose values name their position: `c·100 + y·10 + x`.
fn image() -> Dataset {
    let x: Vec<f32> = (0..2)
        .flat_map(|c| (0..3).flat_map(move |y| (0..4).map(move |x| (c * 100 + y * 10 + x) as f32)))
        .collect();
    let mut all = Vec::new();
    for _ in 0..64 {
        all.extend_from_slice(&x);
    }
    Dataset::new(all, vec![0; 64], 2, vec![2, 3, 4]).unwrap()
}

#[test]
fn crops_and_flips_are_of_the_padded_image_and_reproducible() {
    let d = image();
    let aug = Augment {
        pad: 1,
        flip: true,
        seed: 9,
    };
    let mut it = BatchIterator::new(&d, BatchOptions::new(64).augment(aug)).unwrap();
    let batch = it.next_epoch().next().unwrap();
    let x = batch.x.as_f32().unwrap().to_vec();
    let (mut flipped, mut shifted) = (0, 0);
    for img in x.chunks(24) {
        // Find the offsets and flip that explain the image.
        let mut found = false;
        for dy in 0..3isize {
            for dx in 0..3isize {
                for flip in [false, true] {
                    let fits = (0..2).all(|c| {
                        (0..3).all(|y| {
                            (0..4).all(|xx| {
                                let xs = if flip { 3 - xx } else { xx };
                                let (sy, sx) = (y + dy - 1, xs + dx - 1);
                                let want = if (0..3).contains(&sy) && (0..4).contains(&sx) {
                                    (c * 100 + sy * 10 + sx) as f32
                                } else {
                                    0.0
                                };
                                img[((c * 3 + y) * 4 + xx) as usize] == want
                            })
                        })
                    });
                    if fits && !found {
                        found = true;
                        flipped += flip as usize;
                        shifted += (dy != 1 || dx != 1) as usize;
                    }
                }
            }
        }
        assert!(found, "not a crop of the padded image: {img:?}");
    }
    assert!((16..=48).contains(&flipped), "{flipped} of 64 flipped");
    assert!(shifted >= 32, "{shifted} of 64 shifted");
    // The same epoch again gives the same images; the next epoch others.
    let mut again = BatchIterator::new(&d, BatchOptions::new(64).augment(aug)).unwrap();
    assert_eq!(again.next_epoch().next().unwrap().x, batch.x);
    assert_ne!(again.next_epoch().next().unwrap().x, batch.x);
    // Augmentation needs images.
    let flat = Dataset::new(vec![0.0; 8], vec![0, 1], 2, vec![4]).unwrap();
    assert!(BatchIterator::new(&flat, BatchOptions::new(2).augment(aug)).is_err());
}
