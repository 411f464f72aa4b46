//! The IMDB movie-review sentiment data set (neon's `IMDB`, with `pad_data`'s
//! preprocessing from `neon/data/text_preprocessing.py`), from a local file.
//!
//! Accepted layouts ([`Imdb::load`]; a directory means its `imdb.pkl`, else `imdb.npz`;
//! the file type is told by its magic bytes, not its name):
//!
//! * **Pickle** (`imdb.pkl`, as neon and early Keras downloaded it; may be gzipped): a
//!   pair `(X, y)` of all reviews, `X` a list of reviews, each a list of word ids (ints
//!   ≥ 0, the most frequent word being 1), `y` a list of class labels (ints ≥ 0, or
//!   bools). Like neon, the reviews are shuffled (numpy's legacy `RandomState` seeded
//!   with [`ImdbOptions::seed`], 113, reproduced exactly; `None` keeps the file's order)
//!   and the last [`ImdbOptions::test_split`] (0.2) of them are the test set. A pre-split
//!   pickle `((X_train, y_train), (X_test, y_test))` (Keras's `imdb_full.pkl`) is kept as
//!   it is split, unshuffled. Lists may be tuples; numpy arrays are not read.
//!   Each review is then encoded by [`encode_review`]: [`start_char`](ImdbOptions) (1)
//!   first, every id shifted by [`index_from`](ImdbOptions) (3), ids ≥
//!   [`vocab_size`](ImdbOptions) (20,000) replaced by [`oov_char`](ImdbOptions) (2, or
//!   dropped if `None`); and padded by [`pad_sequences`]: its last
//!   [`max_len`](ImdbOptions) (128) ids kept, zeros first.
//! * **NumPy** (`.npz`, stored or deflated): integer (or integral float) arrays `x_train`
//!   `[N, L]`, `y_train` `[N]` or `[N, 1]`, `x_test` `[M, L']`, `y_test`, already encoded
//!   and padded; they are only re-padded to `max_len` (last `max_len` ids kept, zeros
//!   first), with ids ≥ `vocab_size` replaced by `oov_char` (or dropped). Values are read
//!   through f32 (exact below 2²⁴). Keras's own `imdb.npz` holds object arrays of
//!   lists, which are not read.
//!
//! `nclass` is `1 + ` the largest label (neon). Files above
//! [`MAX_PICKLE_BYTES`] are refused; every malformed file is an
//! error naming it and the offending entry.

use super::cifar_pickle::MAX_PICKLE_BYTES;
use super::npy::read_npz;
use super::text::read_bytes_at_most;
use super::{DataError, Dataset};
use serde_pickle::{DeOptions, Value};
use std::io::Read;
use std::path::{Path, PathBuf};

pub use super::text::pad_sequences;

/// neon's IMDB preprocessing options (`pad_data`'s arguments).
#[derive(Clone, Debug, PartialEq)]
pub struct ImdbOptions {
    /// Ids `≥ vocab_size` (after the shift) are out of vocabulary (neon: 20,000).
    pub vocab_size: usize,
    /// Tokens per review after padding (neon's `sentence_length`; its examples use 128).
    pub max_len: usize,
    /// Prepended to every pickled review (neon: 1); `None` prepends nothing.
    pub start_char: Option<u32>,
    /// Replaces out-of-vocabulary ids (neon: 2); `None` drops them.
    pub oov_char: Option<u32>,
    /// Added to every pickled word id, reserving `0..index_from` (neon: 3: padding, start,
    /// out of vocabulary).
    pub index_from: u32,
    /// The numpy seed of the shuffle before an unsplit pickle is split (neon: 113);
    /// `None` keeps the file's order.
    pub seed: Option<u32>,
    /// The fraction of an unsplit pickle's reviews that are test reviews (neon: 0.2).
    pub test_split: f64,
}

impl Default for ImdbOptions {
    fn default() -> Self {
        ImdbOptions {
            vocab_size: 20_000,
            max_len: 128,
            start_char: Some(1),
            oov_char: Some(2),
            index_from: 3,
            seed: Some(113),
            test_split: 0.2,
        }
    }
}

/// IMDB, encoded and padded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imdb {
    /// Training reviews, `N × max_len` row-major, left-padded with 0.
    pub x_train: Vec<u32>,
    /// Training labels (0 negative, 1 positive), `N`.
    pub y_train: Vec<u32>,
    /// Test reviews, `M × max_len`.
    pub x_test: Vec<u32>,
    /// Test labels, `M`.
    pub y_test: Vec<u32>,
    /// Tokens per review.
    pub max_len: usize,
    /// Every id is below this.
    pub vocab_size: usize,
    /// `1 + ` the largest label (2 for IMDB).
    pub nclass: usize,
}

/// Reviews and their labels, before encoding.
type Split = (Vec<Vec<u64>>, Vec<u32>);

impl Imdb {
    /// Reads IMDB from `path` (see the [module docs](self)).
    ///
    /// ```
    /// use xenon_frontend::data::imdb::{Imdb, ImdbOptions};
    /// // (X, y) of five reviews, pickled; the last fifth is the test set.
    /// let x: Vec<Vec<i64>> = vec![vec![1, 2], vec![5], vec![30000, 4, 7], vec![], vec![9]];
    /// let pickle = serde_pickle::to_vec(&(x, vec![0, 1, 1, 0, 1]), Default::default()).unwrap();
    /// let path = std::env::temp_dir().join(format!("xenon-doc-imdb-{}.pkl", std::process::id()));
    /// std::fs::write(&path, pickle).unwrap();
    /// let opts = ImdbOptions { max_len: 4, seed: None, ..ImdbOptions::default() };
    /// let imdb = Imdb::load(&path, &opts).unwrap();
    /// assert_eq!(imdb.x_train[..8], [0, 1, 4, 5, 0, 0, 1, 8]);
    /// assert_eq!(imdb.x_train[8..12], [1, 2, 7, 10]); // 30003 ≥ 20000: out of vocabulary
    /// assert_eq!((imdb.y_test.as_slice(), imdb.x_test.as_slice()), (&[1][..], &[0, 0, 1, 12][..]));
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn load(path: impl AsRef<Path>, opts: &ImdbOptions) -> Result<Imdb, DataError> {
        let path = resolve(path.as_ref())?;
        let io = |source| DataError::Io {
            path: path.clone(),
            source,
        };
        let mut magic = [0u8; 4];
        let n = std::fs::File::open(&path)
            .and_then(|f| f.take(4).read(&mut magic))
            .map_err(io)?;
        if magic[..n] == *b"PK\x03\x04" {
            Imdb::from_npz(&path, opts)
        } else {
            let name = path.display().to_string();
            match read_pickle(&path)? {
                Pickled::Split(train, test) => Imdb::from_split(train, test, opts, &name),
                Pickled::Unsplit((x, y)) => Imdb::from_unsplit(x, y, opts, &name),
            }
        }
    }

    /// Encodes, pads and checks pre-split reviews `(X, y)` with `opts` (`source` names
    /// them in errors); `seed` and `test_split` are not used.
    pub fn from_split(
        train: (Vec<Vec<u64>>, Vec<u32>),
        test: (Vec<Vec<u64>>, Vec<u32>),
        opts: &ImdbOptions,
        source: &str,
    ) -> Result<Imdb, DataError> {
        check_options(opts, source)?;
        let encode = |(x, y): Split, what: &str| {
            if x.len() != y.len() {
                return Err(invalid(
                    source,
                    format!("{} {what} reviews but {} labels", x.len(), y.len()),
                ));
            }
            if x.is_empty() {
                return Err(invalid(source, format!("no {what} reviews")));
            }
            let x: Vec<Vec<u32>> = x.iter().map(|r| encode_review(r, opts)).collect();
            Ok((pad_sequences(&x, opts.max_len), y))
        };
        let (x_train, y_train) = encode(train, "training")?;
        let (x_test, y_test) = encode(test, "test")?;
        Ok(Imdb::new(x_train, y_train, x_test, y_test, opts))
    }

    /// Shuffles (with `opts.seed`), splits (`opts.test_split`), encodes and pads the
    /// reviews `x` and labels `y` of an unsplit set, as neon's `pad_data` does.
    pub fn from_unsplit(
        x: Vec<Vec<u64>>,
        y: Vec<u32>,
        opts: &ImdbOptions,
        source: &str,
    ) -> Result<Imdb, DataError> {
        if x.len() != y.len() {
            return Err(invalid(
                source,
                format!("{} reviews but {} labels", x.len(), y.len()),
            ));
        }
        if !(0.0..=1.0).contains(&opts.test_split) {
            return Err(invalid(
                source,
                format!("test_split {} is not in [0, 1]", opts.test_split),
            ));
        }
        let (mut x, mut y) = (x, y);
        if let Some(seed) = opts.seed {
            let order = numpy_permutation(x.len(), seed);
            x = order.iter().map(|&i| std::mem::take(&mut x[i])).collect();
            y = order.iter().map(|&i| y[i]).collect();
        }
        let n_train = (x.len() as f64 * (1.0 - opts.test_split)) as usize;
        let (x_test, y_test) = (x.split_off(n_train), y.split_off(n_train));
        Imdb::from_split((x, y), (x_test, y_test), opts, source)
    }

    /// The number of training reviews.
    pub fn train_len(&self) -> usize {
        self.y_train.len()
    }

    /// The number of test reviews.
    pub fn test_len(&self) -> usize {
        self.y_test.len()
    }

    /// The training and test sets as [`Dataset`]s of word ids (as f32, feature shape
    /// `[max_len]`) and class labels (neon's `ArrayIterator(X, y, nclass)`).
    pub fn datasets(&self) -> Result<(Dataset, Dataset), DataError> {
        let set = |x: &[u32], y: &[u32]| {
            Dataset::new(
                x.iter().map(|&v| v as f32).collect(),
                y.iter().map(|&v| v as i32).collect(),
                self.nclass,
                vec![self.max_len],
            )
        };
        Ok((
            set(&self.x_train, &self.y_train)?,
            set(&self.x_test, &self.y_test)?,
        ))
    }

    fn new(
        x_train: Vec<u32>,
        y_train: Vec<u32>,
        x_test: Vec<u32>,
        y_test: Vec<u32>,
        opts: &ImdbOptions,
    ) -> Imdb {
        let max_label = y_train.iter().chain(&y_test).copied().max().unwrap_or(0);
        Imdb {
            x_train,
            y_train,
            x_test,
            y_test,
            max_len: opts.max_len,
            vocab_size: opts.vocab_size,
            nclass: max_label as usize + 1,
        }
    }

    fn from_npz(path: &Path, opts: &ImdbOptions) -> Result<Imdb, DataError> {
        let name = path.display().to_string();
        check_options(opts, &name)?;
        let err = |array: &str, reason: String| DataError::Array {
            path: path.to_path_buf(),
            array: array.to_string(),
            reason,
        };
        let ids = |array: &str, data: &[f32]| -> Result<Vec<u32>, DataError> {
            data.iter()
                .enumerate()
                .map(|(i, &v)| {
                    if v >= 0.0 && v.fract() == 0.0 && f64::from(v) <= f64::from(u32::MAX) {
                        Ok(v as u32)
                    } else {
                        Err(err(array, format!("element {i} is {v}, not an id ≥ 0")))
                    }
                })
                .collect()
        };
        let split = |xa: &str, ya: &str| -> Result<(Vec<u32>, Vec<u32>), DataError> {
            let (xs, xd) = read_npz(path, xa)?;
            let (ys, yd) = read_npz(path, ya)?;
            let [n, len] = xs[..] else {
                return Err(err(xa, format!("shape {xs:?} is not [reviews, length]")));
            };
            if !(ys == [n] || ys == [n, 1]) {
                return Err(err(ya, format!("shape {ys:?} is not [{n}] or [{n}, 1]")));
            }
            if n == 0 {
                return Err(err(xa, "no reviews".into()));
            }
            let x = ids(xa, &xd)?;
            let rows: Vec<Vec<u32>> = (0..n)
                .map(|i| {
                    x[i * len..(i + 1) * len]
                        .iter()
                        .filter_map(|&w| oov(u64::from(w), opts))
                        .collect()
                })
                .collect();
            Ok((pad_sequences(&rows, opts.max_len), ids(ya, &yd)?))
        };
        let (x_train, y_train) = split("x_train", "y_train")?;
        let (x_test, y_test) = split("x_test", "y_test")?;
        Ok(Imdb::new(x_train, y_train, x_test, y_test, opts))
    }
}

/// neon's encoding of one pickled review: `start_char`, then each id plus `index_from`,
/// ids `≥ vocab_size` replaced by `oov_char` (or dropped when it is `None`).
///
/// ```
/// use xenon_frontend::data::imdb::{ImdbOptions, encode_review};
/// let opts = ImdbOptions { vocab_size: 10, ..ImdbOptions::default() };
/// assert_eq!(encode_review(&[0, 4, 6, 7], &opts), [1, 3, 7, 9, 2]);
/// let drop = ImdbOptions { oov_char: None, start_char: None, ..opts };
/// assert_eq!(encode_review(&[0, 4, 6, 7], &drop), [3, 7, 9]);
/// ```
pub fn encode_review(review: &[u64], opts: &ImdbOptions) -> Vec<u32> {
    let shifted = review
        .iter()
        .map(|&w| w.saturating_add(u64::from(opts.index_from)));
    opts.start_char
        .map(u64::from)
        .into_iter()
        .chain(shifted)
        .filter_map(|w| oov(w, opts))
        .collect()
}

/// `w` if it is in the vocabulary, else the out-of-vocabulary id (or nothing).
fn oov(w: u64, opts: &ImdbOptions) -> Option<u32> {
    if w < opts.vocab_size as u64 {
        Some(w as u32)
    } else {
        opts.oov_char
    }
}

/// The order numpy's legacy `np.random.seed(seed); np.random.shuffle(x)` leaves `n` items
/// in: item `k` of the shuffled list is item `order[k]` of the original (MT19937 and
/// `random_interval`, as `RandomState.shuffle` draws them).
///
/// ```
/// use xenon_frontend::data::imdb::numpy_permutation;
/// // np.random.seed(0); np.random.permutation(10)
/// assert_eq!(numpy_permutation(10, 0), [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
/// ```
pub fn numpy_permutation(n: usize, seed: u32) -> Vec<usize> {
    let mut rng = Mt19937::new(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.interval(i as u64) as usize;
        order.swap(i, j);
    }
    order
}

/// numpy's legacy Mersenne Twister (`mt19937_seed`, `mt19937_next32`).
struct Mt19937 {
    key: [u32; 624],
    pos: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Mt19937 {
        let mut key = [0u32; 624];
        key[0] = seed;
        for i in 1..624 {
            let prev = key[i - 1];
            key[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { key, pos: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.pos == 624 {
            for k in 0..624 {
                let y = (self.key[k] & 0x8000_0000) | (self.key[(k + 1) % 624] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.key[k] = self.key[(k + 397) % 624] ^ (y >> 1) ^ mag;
            }
            self.pos = 0;
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }

    /// numpy's `random_interval`: uniform in `0..=max`, by masked rejection.
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = u64::MAX >> max.leading_zeros();
        loop {
            let v = if max <= u64::from(u32::MAX) {
                u64::from(self.next_u32()) & mask
            } else {
                self.next_u64() & mask
            };
            if v <= max {
                return v;
            }
        }
    }
}

fn invalid(source: &str, msg: impl std::fmt::Display) -> DataError {
    DataError::InvalidDataset(format!("{source}: {msg}"))
}

fn check_options(opts: &ImdbOptions, source: &str) -> Result<(), DataError> {
    let bad = |m: String| Err(invalid(source, format!("invalid IMDB options: {m}")));
    if opts.vocab_size == 0 || opts.vocab_size > u32::MAX as usize {
        return bad(format!("vocab_size {} is not in 1..2^32", opts.vocab_size));
    }
    if opts.max_len == 0 {
        return bad("max_len must be positive".into());
    }
    for (name, id) in [("start_char", opts.start_char), ("oov_char", opts.oov_char)] {
        if let Some(id) = id.filter(|&id| id as usize >= opts.vocab_size) {
            return bad(format!(
                "{name} {id} is not below vocab_size {}",
                opts.vocab_size
            ));
        }
    }
    Ok(())
}

/// `path` itself, or for a directory its `imdb.pkl` or else `imdb.npz`.
fn resolve(path: &Path) -> Result<PathBuf, DataError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    ["imdb.pkl", "imdb.npz"]
        .iter()
        .map(|n| path.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            DataError::InvalidDataset(format!(
                "{}: no imdb.pkl or imdb.npz in this directory",
                path.display()
            ))
        })
}

/// What a pickle holds.
enum Pickled {
    /// `(X, y)`.
    Unsplit(Split),
    /// `((X_train, y_train), (X_test, y_test))`.
    Split(Split, Split),
}

fn read_pickle(path: &Path) -> Result<Pickled, DataError> {
    let name = path.display().to_string();
    let bytes = read_bytes_at_most(path, MAX_PICKLE_BYTES)?;
    let value = serde_pickle::value_from_slice(
        &bytes,
        DeOptions::new()
            .keep_restore_state()
            .replace_unresolved_globals(),
    )
    .map_err(|e| invalid(&name, format!("not a readable Python pickle: {e}")))?;
    drop(bytes);
    let bad = |m: String| invalid(&name, m);
    let [first, second] = pair(value, "the pickle").map_err(bad)?;
    // (X, y): y's items are labels; ((X, y), (X, y)): they are lists.
    let presplit = matches!(&second, Value::List(v) | Value::Tuple(v)
        if matches!(v.first(), Some(Value::List(_) | Value::Tuple(_))));
    Ok(if presplit {
        Pickled::Split(
            split(first, "the training pair").map_err(bad)?,
            split(second, "the test pair").map_err(bad)?,
        )
    } else {
        Pickled::Unsplit((
            reviews(first, "X").map_err(bad)?,
            labels(second, "y").map_err(bad)?,
        ))
    })
}

fn items(v: Value, what: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::List(v) | Value::Tuple(v) => Ok(v),
        other => Err(format!("{what} is {}, not a list", kind(&other))),
    }
}

fn pair(v: Value, what: &str) -> Result<[Value; 2], String> {
    let v = items(v, what)?;
    let n = v.len();
    <[Value; 2]>::try_from(v).map_err(|_| format!("{what} holds {n} items, not a pair (X, y)"))
}

fn split(v: Value, what: &str) -> Result<Split, String> {
    let [x, y] = pair(v, what)?;
    Ok((reviews(x, "X")?, labels(y, "y")?))
}

fn reviews(v: Value, what: &str) -> Result<Vec<Vec<u64>>, String> {
    items(v, what)?
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            items(r, &format!("{what}[{i}]"))?
                .iter()
                .enumerate()
                .map(|(k, w)| match w {
                    Value::I64(w) if *w >= 0 => Ok(*w as u64),
                    other => Err(format!(
                        "{what}[{i}][{k}] is {}, not a word id ≥ 0",
                        kind(other)
                    )),
                })
                .collect()
        })
        .collect()
}

fn labels(v: Value, what: &str) -> Result<Vec<u32>, String> {
    items(v, what)?
        .iter()
        .enumerate()
        .map(|(i, l)| match l {
            Value::I64(l) if (0..=i64::from(u32::MAX)).contains(l) => Ok(*l as u32),
            Value::Bool(b) => Ok(u32::from(*b)),
            other => Err(format!("{what}[{i}] is {}, not a label ≥ 0", kind(other))),
        })
        .collect()
}

/// A short description of a value, for messages.
fn kind(v: &Value) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(b) => format!("{b}"),
        Value::I64(i) => format!("{i}"),
        Value::Int(i) => format!("{i}"),
        Value::F64(f) => format!("{f}"),
        Value::Bytes(b) => format!("{} bytes", b.len()),
        Value::String(s) => format!("a {}-byte string", s.len()),
        Value::List(l) => format!("a list of {}", l.len()),
        Value::Tuple(t) => format!("a tuple of {}", t.len()),
        Value::Set(_) | Value::FrozenSet(_) => "a set".into(),
        Value::Dict(_) => "a dict".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_numpy() {
        // np.random.seed(0); np.random.random_sample() == 0.5488135039273248
        let mut rng = Mt19937::new(0);
        let (a, b) = (rng.next_u32() >> 5, rng.next_u32() >> 6);
        let x = (f64::from(a) * 67_108_864.0 + f64::from(b)) / 9_007_199_254_740_992.0;
        assert_eq!(x, 0.548_813_503_927_324_8);
        // np.random.seed(113); np.random.permutation(10)
        assert_eq!(numpy_permutation(10, 113), [9, 3, 6, 1, 0, 7, 4, 8, 2, 5]);
        assert_eq!(numpy_permutation(0, 113), Vec::<usize>::new());
        assert_eq!(numpy_permutation(1, 113), [0]);
    }

    #[test]
    fn unsplit_follows_pad_data() {
        let x: Vec<Vec<u64>> = (0..10).map(|i| vec![i]).collect();
        let y: Vec<u32> = (0..10).map(|i| i % 2).collect();
        let opts = ImdbOptions {
            max_len: 2,
            ..ImdbOptions::default()
        };
        let imdb = Imdb::from_unsplit(x, y, &opts, "t").unwrap();
        // order [9 3 6 1 0 7 4 8 2 5]; 8 train, 2 test
        let firsts: Vec<u32> = imdb.x_train.chunks(2).map(|r| r[1] - 3).collect();
        assert_eq!(firsts, [9, 3, 6, 1, 0, 7, 4, 8]);
        assert_eq!(imdb.y_train, [1, 1, 0, 1, 0, 1, 0, 0]);
        assert_eq!(imdb.x_test, [1, 5, 1, 8]);
        assert_eq!(imdb.nclass, 2);
    }

    #[test]
    fn bad_inputs() {
        let opts = ImdbOptions::default();
        let e = Imdb::from_unsplit(vec![vec![1]], vec![0, 1], &opts, "s").unwrap_err();
        assert!(e.to_string().contains("1 reviews but 2 labels"), "{e}");
        // one review: int(1 · 0.8) = 0 training reviews
        let e = Imdb::from_unsplit(vec![vec![1]], vec![0], &opts, "s").unwrap_err();
        assert!(e.to_string().contains("no training reviews"), "{e}");
        let bad = ImdbOptions {
            oov_char: Some(5),
            vocab_size: 5,
            ..ImdbOptions::default()
        };
        let e = Imdb::from_split(
            (vec![vec![1]], vec![0]),
            (vec![vec![1]], vec![0]),
            &bad,
            "s",
        );
        assert!(e.unwrap_err().to_string().contains("oov_char 5"));
        let zero = ImdbOptions {
            max_len: 0,
            ..ImdbOptions::default()
        };
        let e = Imdb::from_split(
            (vec![vec![1]], vec![0]),
            (vec![vec![1]], vec![0]),
            &zero,
            "s",
        );
        assert!(e.is_err());
    }

    #[test]
    fn pickle_values() {
        let r = reviews(Value::List(vec![Value::List(vec![Value::I64(-1)])]), "X");
        assert_eq!(r.unwrap_err(), "X[0][0] is -1, not a word id ≥ 0");
        let r = reviews(Value::List(vec![Value::I64(3)]), "X");
        assert_eq!(r.unwrap_err(), "X[0] is 3, not a list");
        let l = labels(Value::Tuple(vec![Value::Bool(true), Value::I64(0)]), "y");
        assert_eq!(l.unwrap(), [1, 0]);
        assert!(labels(Value::List(vec![Value::F64(0.5)]), "y").is_err());
        assert!(pair(Value::List(vec![Value::None]), "p").is_err());
    }
}
