//! The Hutter Prize corpus enwik8 (neon's `HutterPrize`): the first 100,000,000 bytes of
//! an English Wikipedia XML dump, modelled byte by byte.
//!
//! Accepted inputs ([`Enwik8::load`]): the raw file `enwik8`, the release archive
//! `enwik8.zip` (its entry `enwik8`, or its only file), either of them gzipped, or a
//! directory holding `enwik8` or `enwik8.zip`. Archives are recognised by their magic
//! bytes (`PK\x03\x04`, `1f 8b`), not their names. At most [`MAX_ENWIK8_BYTES`] are read.
//!
//! Tokens are **bytes** (not UTF-8 characters). The split is the standard one: the first
//! 90,000,000 bytes train, the next 5,000,000 validate, the last 5,000,000 test; a file of
//! another size (a test fixture, another corpus) splits the same way by proportion, see
//! [`split_sizes`]. The vocabulary ([`ByteVocabulary`]) is the sorted set of the distinct
//! bytes of the training part by default ([`Enwik8Vocab::Training`], the rule of neon's
//! `Text`: a validation or test byte missing from it is an error giving its file, value
//! and offset), or of the whole file ([`Enwik8Vocab::Full`], as Transformer-XL's
//! preprocessing counts it).

use super::DataError;
use super::text::read_bytes_at_most;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The size of the real enwik8 file, in bytes.
pub const ENWIK8_BYTES: usize = 100_000_000;

/// The largest input read, in bytes after decompression (1 GiB), so a corrupt or hostile
/// archive cannot exhaust memory.
pub const MAX_ENWIK8_BYTES: u64 = 1 << 30;

/// The sorted set of distinct bytes; a byte's id is its index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByteVocabulary {
    bytes: Vec<u8>,
    ids: [Option<u32>; 256],
}

impl ByteVocabulary {
    /// The sorted distinct bytes of `data`.
    pub fn from_bytes(data: &[u8]) -> ByteVocabulary {
        let mut seen = [false; 256];
        for &b in data {
            seen[b as usize] = true;
        }
        let bytes: Vec<u8> = (0..=255u8).filter(|&b| seen[b as usize]).collect();
        let mut ids = [None; 256];
        for (i, &b) in bytes.iter().enumerate() {
            ids[b as usize] = Some(i as u32);
        }
        ByteVocabulary { bytes, ids }
    }

    /// The number of distinct bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The bytes, sorted; index = id.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The id of `byte`, if it is in the vocabulary.
    pub fn id(&self, byte: u8) -> Option<u32> {
        self.ids[byte as usize]
    }

    /// The byte of `id`, if `id < len()`.
    pub fn byte(&self, id: u32) -> Option<u8> {
        self.bytes.get(id as usize).copied()
    }

    /// The ids of `data`; a byte missing from the vocabulary is an error naming `source`,
    /// `offset + ` its position and its value.
    pub fn encode(&self, data: &[u8], source: &str, offset: usize) -> Result<Vec<u32>, DataError> {
        data.iter()
            .enumerate()
            .map(|(i, &b)| {
                self.id(b).ok_or_else(|| {
                    DataError::InvalidDataset(format!(
                        "{source}: byte 0x{b:02x} at offset {} is not in the vocabulary of \
                         the {} distinct bytes of the training part",
                        offset + i,
                        self.len()
                    ))
                })
            })
            .collect()
    }

    /// The bytes of `ids`; an id outside `0..len()` is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<u8>, DataError> {
        ids.iter()
            .enumerate()
            .map(|(pos, &id)| {
                self.byte(id).ok_or_else(|| {
                    DataError::InvalidDataset(format!(
                        "cannot decode id {id} (position {pos}): the vocabulary has {} bytes",
                        self.len()
                    ))
                })
            })
            .collect()
    }
}

/// Which bytes make the vocabulary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Enwik8Vocab {
    /// The distinct bytes of the training part (neon's rule).
    #[default]
    Training,
    /// The distinct bytes of the whole file.
    Full,
}

/// The corpus as byte ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enwik8 {
    /// The byte vocabulary the ids index.
    pub vocab: ByteVocabulary,
    /// The training stream (90,000,000 ids for the real file).
    pub train: Vec<u32>,
    /// The validation stream (5,000,000 ids).
    pub valid: Vec<u32>,
    /// The test stream (5,000,000 ids).
    pub test: Vec<u32>,
}

/// The sizes `(train, valid, test)` of the split of `n` bytes: `⌊0.9·n⌋`, `⌊0.05·n⌋`, the
/// rest (90,000,000, 5,000,000 and 5,000,000 for the real file).
///
/// ```
/// use xenon_frontend::data::enwik8::split_sizes;
/// assert_eq!(split_sizes(100_000_000), (90_000_000, 5_000_000, 5_000_000));
/// assert_eq!(split_sizes(1_000), (900, 50, 50));
/// ```
pub fn split_sizes(n: usize) -> (usize, usize, usize) {
    let train = (n as u128 * 9 / 10) as usize;
    let valid = n / 20;
    (train, valid, n - train - valid)
}

impl Enwik8 {
    /// Reads enwik8 from `path` (see the [module docs](self)) with the training
    /// vocabulary.
    ///
    /// ```
    /// use xenon_frontend::data::enwik8::Enwik8;
    /// let path = std::env::temp_dir().join(format!("xenon-doc-enwik8-{}", std::process::id()));
    /// std::fs::write(&path, b"abab".repeat(10)).unwrap(); // 40 bytes: 36 + 2 + 2
    /// let e = Enwik8::load(&path).unwrap();
    /// assert_eq!(e.vocab.bytes(), b"ab");
    /// assert_eq!((e.train.len(), e.valid, e.test), (36, vec![0, 1], vec![0, 1]));
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Enwik8, DataError> {
        Enwik8::load_with(path, Enwik8Vocab::Training)
    }

    /// Reads enwik8 from `path` with the vocabulary `vocab`.
    pub fn load_with(path: impl AsRef<Path>, vocab: Enwik8Vocab) -> Result<Enwik8, DataError> {
        let path = resolve(path.as_ref())?;
        let data = read_enwik8(&path)?;
        Enwik8::from_bytes(&data, vocab, &path.display().to_string())
    }

    /// Splits and encodes the bytes of the corpus (`source` names it in errors). Each part
    /// must be non-empty, so `data` needs at least 20 bytes.
    pub fn from_bytes(data: &[u8], vocab: Enwik8Vocab, source: &str) -> Result<Enwik8, DataError> {
        let (n_train, n_valid, _) = split_sizes(data.len());
        if n_valid == 0 {
            return Err(DataError::InvalidDataset(format!(
                "{source}: {} bytes are too few to split 90/5/5 into non-empty parts (at least \
                 20 are needed)",
                data.len()
            )));
        }
        let (train, rest) = data.split_at(n_train);
        let (valid, test) = rest.split_at(n_valid);
        let vocab = ByteVocabulary::from_bytes(match vocab {
            Enwik8Vocab::Training => train,
            Enwik8Vocab::Full => data,
        });
        Ok(Enwik8 {
            train: vocab.encode(train, source, 0)?,
            valid: vocab.encode(valid, source, n_train)?,
            test: vocab.encode(test, source, n_train + n_valid)?,
            vocab,
        })
    }
}

/// `path` itself, or for a directory its `enwik8` or else `enwik8.zip`.
fn resolve(path: &Path) -> Result<PathBuf, DataError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    ["enwik8", "enwik8.zip"]
        .iter()
        .map(|n| path.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            DataError::InvalidDataset(format!(
                "{}: no enwik8 or enwik8.zip in this directory",
                path.display()
            ))
        })
}

/// The bytes of the corpus: the file, gunzipped, or the `enwik8` entry of a zip archive.
fn read_enwik8(path: &Path) -> Result<Vec<u8>, DataError> {
    let data = read_bytes_at_most(path, MAX_ENWIK8_BYTES)?;
    if !data.starts_with(b"PK\x03\x04") {
        return Ok(data);
    }
    let bad_zip = |e: &dyn std::fmt::Display| {
        DataError::InvalidDataset(format!("{}: unreadable zip archive: {e}", path.display()))
    };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(data)).map_err(|e| bad_zip(&e))?;
    let files: Vec<String> = zip
        .file_names()
        .filter(|n| !n.ends_with('/'))
        .map(str::to_string)
        .collect();
    let name = match files
        .iter()
        .find(|n| n.rsplit('/').next() == Some("enwik8"))
    {
        Some(n) => n.clone(),
        None if files.len() == 1 => files[0].clone(),
        None => {
            return Err(DataError::InvalidDataset(format!(
                "{}: the zip archive has no enwik8 entry (entries: {})",
                path.display(),
                files.join(", ")
            )));
        }
    };
    let entry = zip.by_name(&name).map_err(|e| bad_zip(&e))?;
    let mut out = Vec::new();
    entry
        .take(MAX_ENWIK8_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad_zip(&format!("entry {name}: {e}")))?;
    if out.len() as u64 > MAX_ENWIK8_BYTES {
        return Err(DataError::InvalidDataset(format!(
            "{}: entry {name} holds more than {MAX_ENWIK8_BYTES} bytes",
            path.display()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_vocabulary() {
        let v = ByteVocabulary::from_bytes(b"\xffzab\x00a");
        assert_eq!(v.bytes(), b"\x00abz\xff");
        assert_eq!(
            (v.id(b'z'), v.id(b'c'), v.byte(4), v.byte(5)),
            (Some(3), None, Some(0xff), None)
        );
        assert_eq!(v.decode(&[1, 2]).unwrap(), b"ab");
        assert!(v.decode(&[5]).is_err());
    }

    #[test]
    fn split_is_proportional() {
        assert_eq!(split_sizes(20), (18, 1, 1));
        assert_eq!(split_sizes(39), (35, 1, 3));
        assert_eq!(split_sizes(0), (0, 0, 0));
    }

    #[test]
    fn small_or_unknown_bytes_are_errors() {
        let e = Enwik8::from_bytes(b"abc", Enwik8Vocab::Training, "tiny").unwrap_err();
        assert!(
            e.to_string().contains("tiny") && e.to_string().contains("3 bytes"),
            "{e}"
        );
        let mut data = vec![b'a'; 18];
        data.extend(b"az");
        let e = Enwik8::from_bytes(&data, Enwik8Vocab::Training, "f").unwrap_err();
        let e = e.to_string();
        assert!(e.contains("0x7a") && e.contains("offset 19"), "{e}");
        let full = Enwik8::from_bytes(&data, Enwik8Vocab::Full, "f").unwrap();
        assert_eq!((full.vocab.len(), full.test.as_slice()), (2, &[1][..]));
    }
}
