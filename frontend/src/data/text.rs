//! Text as token-id streams, and neon's `Text` batching (`neon/data/text.py`).
//!
//! * [`Tokenizer`]: characters (neon's default, no tokenizer: every Unicode scalar value is
//!   a token, spaces and newlines included) or whitespace-separated words, optionally with
//!   an [`EOS`] token at the end of each line (neon's PTB `newline_tokenizer`).
//! * [`Vocabulary`]: the **sorted** set of distinct tokens (neon: `sorted(set(tokens))`,
//!   Python's order, i.e. by Unicode code point); a token's id is its index, `0..len`.
//! * [`text_dataset`]: a token stream as a [`Dataset`] of `time_steps`-token examples with
//!   next-token labels, batched in `batch_size` contiguous columns (neon's `Text`).
//! * [`split_valid`]: the last fraction of a text as validation (`Text.create_valid_file`).
//! * [`read_text`], [`read_bytes`], [`load_text`]: local files, raw or gzipped (detected
//!   by the magic bytes `1f 8b`, whatever the name).
//! * [`pad_sequences`]: neon's `pad_sentences` (keep the last `max_len` ids, zeros first).
//!
//! Every error about a file names its path; messages about in-memory data name the source
//! the caller gave.

use super::{DataError, Dataset};
use flate2::bufread::MultiGzDecoder;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Read};
use std::path::Path;

/// The end-of-line token of [`Tokenizer::Words`] with `eos: true` (neon's PTB word mode).
pub const EOS: &str = "<eos>";

/// How a text is cut into tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Tokenizer {
    /// Every Unicode character is a token, whitespace and newlines included (neon's
    /// `Text` with `tokenizer=None`).
    #[default]
    Chars,
    /// Whitespace-separated words (`str::split_whitespace`); with `eos`, an [`EOS`] token
    /// follows every line that ends with `'\n'` (neon's `PTB.newline_tokenizer`, which
    /// replaces each newline by `<eos>`; an empty line gives a lone `<eos>`).
    Words { eos: bool },
}

impl Tokenizer {
    /// The tokens of `text`, borrowed from it ([`EOS`] is static).
    ///
    /// ```
    /// use xenon_frontend::data::text::Tokenizer;
    /// assert_eq!(Tokenizer::Chars.tokenize("héy"), ["h", "é", "y"]);
    /// let words = Tokenizer::Words { eos: true }.tokenize(" the cat \n sat\n");
    /// assert_eq!(words, ["the", "cat", "<eos>", "sat", "<eos>"]);
    /// ```
    pub fn tokenize(self, text: &str) -> Vec<&str> {
        match self {
            Tokenizer::Chars => text
                .char_indices()
                .map(|(i, c)| &text[i..i + c.len_utf8()])
                .collect(),
            Tokenizer::Words { eos: false } => text.split_whitespace().collect(),
            Tokenizer::Words { eos: true } => {
                let mut tokens = Vec::new();
                for line in text.split_inclusive('\n') {
                    tokens.extend(line.split_whitespace());
                    if line.ends_with('\n') {
                        tokens.push(EOS);
                    }
                }
                tokens
            }
        }
    }

    /// What [`Vocabulary::decode`] puts between tokens: nothing for characters, a space for
    /// words.
    pub fn separator(self) -> &'static str {
        match self {
            Tokenizer::Chars => "",
            Tokenizer::Words { .. } => " ",
        }
    }
}

fn invalid(source: &str, msg: impl std::fmt::Display) -> DataError {
    DataError::InvalidDataset(format!("{source}: {msg}"))
}

/// The sorted set of distinct tokens; a token's id is its index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vocabulary {
    tokens: Vec<String>,
}

impl Vocabulary {
    /// The sorted set of the distinct `tokens` (neon: `sorted(set(tokens))`).
    ///
    /// ```
    /// use xenon_frontend::data::text::{Tokenizer, Vocabulary};
    /// let v = Vocabulary::from_tokens(Tokenizer::Chars.tokenize("hello"));
    /// assert_eq!(v.tokens(), ["e", "h", "l", "o"]);
    /// assert_eq!((v.len(), v.id("l"), v.token(1)), (4, Some(2), Some("h")));
    /// let ids = v.encode(Tokenizer::Chars.tokenize("hole"), "example").unwrap();
    /// assert_eq!(ids, [1, 3, 2, 0]);
    /// assert_eq!(v.decode(&ids, Tokenizer::Chars).unwrap(), "hole");
    /// assert!(v.encode(["x"], "example").is_err()); // not in the vocabulary
    /// ```
    pub fn from_tokens<I, S>(tokens: I) -> Vocabulary
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set: BTreeSet<String> = BTreeSet::new();
        for t in tokens {
            if !set.contains(t.as_ref()) {
                set.insert(t.as_ref().to_owned());
            }
        }
        Vocabulary {
            tokens: set.into_iter().collect(),
        }
    }

    /// The number of distinct tokens (neon's `nclass`).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary has no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The tokens, sorted; index = id.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.tokens
            .binary_search_by(|t| t.as_str().cmp(token))
            .ok()
            .map(|i| i as u32)
    }

    /// The token of `id`, if `id < len()`.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The ids of `tokens`. A token not in the vocabulary is an error naming it, its
    /// position in the stream (from 0) and `source` (a path or a name, for the message).
    pub fn encode<I, S>(&self, tokens: I, source: &str) -> Result<Vec<u32>, DataError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        tokens
            .into_iter()
            .enumerate()
            .map(|(pos, t)| {
                let t = t.as_ref();
                self.id(t).ok_or_else(|| {
                    invalid(
                        source,
                        format!(
                            "token {t:?} (token {pos} of the stream) is not in the vocabulary \
                             of {} tokens",
                            self.len()
                        ),
                    )
                })
            })
            .collect()
    }

    /// The text of `ids`, tokens joined by `tokenizer`'s [separator](Tokenizer::separator)
    /// (nothing for characters, a space for words). An id outside `0..len()` is an error.
    pub fn decode(&self, ids: &[u32], tokenizer: Tokenizer) -> Result<String, DataError> {
        let mut out = String::new();
        for (pos, &id) in ids.iter().enumerate() {
            let t = self.token(id).ok_or_else(|| {
                DataError::InvalidDataset(format!(
                    "cannot decode id {id} (position {pos}): the vocabulary has {} tokens \
                     (ids 0..{})",
                    self.len(),
                    self.len()
                ))
            })?;
            if pos > 0 {
                out.push_str(tokenizer.separator());
            }
            out.push_str(t);
        }
        Ok(out)
    }
}

/// neon's `Text` data set of the token stream `ids` over a vocabulary of `vocab` tokens:
/// the stream cut into `len / time_steps` examples of `time_steps` tokens, in stream order,
/// each token's label its successor (the last token of the cut stream wraps to the first,
/// as in neon). The data set is [`contiguous`](Dataset::contiguous) — a
/// [`BatchIterator`](super::BatchIterator) reads it as `batch_size` contiguous columns
/// continued from one minibatch to the next, neon's reshape to `(bsz, nbatches, T)` — with
/// a label per time step ([`Dataset::label_steps`]) and the ids fed one-hot when `onehot`
/// (neon's `onehot_input`; otherwise as ids, for a `LookupTable`).
///
/// neon trims the stream to whole minibatches and wraps the last target there; the
/// examples past the last whole minibatch are not read here either, and the last token
/// read keeps its true successor as its target.
///
/// ```
/// use xenon_frontend::data::text::text_dataset;
/// use xenon_frontend::data::{BatchIterator, BatchOptions};
/// let ids: Vec<u32> = (0..24).collect(); // "abcdefghijklmnopqrstuvwx"
/// let d = text_dataset(&ids, 24, 3, true).unwrap();
/// assert_eq!((d.len(), d.input_shape(), d.target_shape()), (8, vec![3, 24], vec![3, 24]));
/// let batches: Vec<_> = BatchIterator::new(&d, BatchOptions::new(2)).unwrap().next_epoch().collect();
/// assert_eq!(batches.len(), 4);
/// assert_eq!(batches[0].labels.as_i32().unwrap(), &[1, 2, 3, 13, 14, 15]); // "bcd", "nop"
/// assert_eq!(batches[3].labels.as_i32().unwrap()[3..], [22, 23, 0]); // wraps to 'a'
/// assert!(text_dataset(&ids, 24, 25, true).is_err()); // 24 tokens < one sequence
/// ```
pub fn text_dataset(
    ids: &[u32],
    vocab: usize,
    time_steps: usize,
    onehot: bool,
) -> Result<Dataset, DataError> {
    if time_steps == 0 {
        return Err(DataError::InvalidDataset(
            "text needs a sequence length (time_steps) of at least 1".into(),
        ));
    }
    let examples = ids.len() / time_steps;
    if examples == 0 {
        return Err(DataError::InvalidDataset(format!(
            "sequence length {time_steps} does not fit the data: the text has {} tokens",
            ids.len()
        )));
    }
    let n = examples * time_steps;
    let x = ids[..n].iter().map(|&i| i as f32).collect();
    let labels = (1..=n).map(|k| ids[k % n] as i32).collect();
    let d = Dataset {
        x,
        labels,
        nclass: vocab,
        feature_shape: vec![time_steps],
        targets: None,
        streams: Vec::new(),
        label_steps: time_steps,
        onehot_input: onehot.then_some(vocab),
        contiguous: true,
    };
    d.validate()?;
    Ok(d)
}

/// Splits `text` into training and validation parts (neon's `Text.create_valid_file`):
/// the first `⌊chars · (1 − valid_split)⌋` characters train, the rest validate (counted in
/// characters, so the split falls on a character boundary). `valid_split` must be in
/// `[0, 1]`.
///
/// ```
/// use xenon_frontend::data::text::split_valid;
/// assert_eq!(split_valid("abcdéfghij", 0.1).unwrap(), ("abcdéfghi", "j"));
/// assert!(split_valid("abc", 1.5).is_err());
/// ```
pub fn split_valid(text: &str, valid_split: f64) -> Result<(&str, &str), DataError> {
    if !(0.0..=1.0).contains(&valid_split) {
        return Err(DataError::InvalidDataset(format!(
            "the validation fraction {valid_split} is not in [0, 1]"
        )));
    }
    let chars = text.chars().count();
    let train = (chars as f64 * (1.0 - valid_split)) as usize;
    let at = text
        .char_indices()
        .nth(train)
        .map_or(text.len(), |(i, _)| i);
    Ok(text.split_at(at))
}

/// The bytes of the file at `path`, gunzipped if it starts with the gzip magic bytes
/// `1f 8b` (whatever its name).
pub fn read_bytes(path: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    read_bytes_at_most(path.as_ref(), u64::MAX)
}

/// [`read_bytes`], refusing a file that holds more than `limit` bytes (after
/// decompression) with an error naming it.
pub(crate) fn read_bytes_at_most(path: &Path, limit: u64) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = || {
        invalid(
            &path.display().to_string(),
            format!("more than {limit} bytes"),
        )
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let gzipped = file.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let mut out = Vec::new();
    let cap = limit.saturating_add(1);
    if gzipped {
        MultiGzDecoder::new(file)
            .take(cap)
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
    } else {
        file.take(cap).read_to_end(&mut out).map_err(io)?;
    }
    if out.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(out)
}

/// The UTF-8 text of the file at `path`, raw or gzipped (see [`read_bytes`]); invalid
/// UTF-8 is an error giving the offset of the first bad byte (after decompression).
pub fn read_text(path: impl AsRef<Path>) -> Result<String, DataError> {
    let path = path.as_ref();
    String::from_utf8(read_bytes(path)?).map_err(|e| {
        invalid(
            &path.display().to_string(),
            format!(
                "not UTF-8 text: invalid byte at offset {}",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// A text as token ids over a vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextStream {
    /// The vocabulary the ids index.
    pub vocab: Vocabulary,
    /// The tokens of the text, as ids.
    pub ids: Vec<u32>,
}

/// Tokenizes `text` and maps it to ids (neon's `Text._get_data` before batching): over
/// `vocab` if given (a token missing from it is an error naming `source`), else over the
/// vocabulary of the text's own tokens. A text without tokens is an error.
pub fn encode_text(
    text: &str,
    tokenizer: Tokenizer,
    vocab: Option<&Vocabulary>,
    source: &str,
) -> Result<TextStream, DataError> {
    let tokens = tokenizer.tokenize(text);
    if tokens.is_empty() {
        return Err(invalid(source, "no tokens (the text is empty)"));
    }
    // Each distinct token is looked up once: ids in order of first appearance, then
    // mapped to the vocabulary's.
    let mut distinct: HashMap<&str, u32> = HashMap::new();
    let mut firsts: Vec<(&str, usize)> = Vec::new();
    let local: Vec<u32> = tokens
        .iter()
        .enumerate()
        .map(|(pos, &t)| {
            *distinct.entry(t).or_insert_with(|| {
                firsts.push((t, pos));
                firsts.len() as u32 - 1
            })
        })
        .collect();
    let vocab = match vocab {
        Some(v) => v.clone(),
        None => Vocabulary::from_tokens(firsts.iter().map(|&(t, _)| t)),
    };
    let mut to_vocab = Vec::with_capacity(firsts.len());
    for &(t, pos) in &firsts {
        to_vocab.push(vocab.id(t).ok_or_else(|| {
            invalid(
                source,
                format!(
                    "token {t:?} (token {pos} of the stream) is not in the vocabulary of {} tokens",
                    vocab.len()
                ),
            )
        })?);
    }
    let ids = local.iter().map(|&i| to_vocab[i as usize]).collect();
    Ok(TextStream { vocab, ids })
}

/// Reads the text file at `path` (raw or gzipped) and encodes it with [`encode_text`].
///
/// ```
/// use xenon_frontend::data::text::{Tokenizer, load_text, text_dataset};
/// let path = std::env::temp_dir().join(format!("xenon-doc-text-{}.txt", std::process::id()));
/// std::fs::write(&path, "to be or not to be\n").unwrap();
/// let train = load_text(&path, Tokenizer::Words { eos: false }, None).unwrap();
/// assert_eq!(train.vocab.tokens(), ["be", "not", "or", "to"]);
/// assert_eq!(train.ids, [3, 0, 2, 1, 3, 0]);
/// let d = text_dataset(&train.ids, train.vocab.len(), 2, false).unwrap();
/// assert_eq!(d.x, [3.0, 0.0, 2.0, 1.0, 3.0, 0.0]);
/// assert_eq!(d.labels, [0, 2, 1, 3, 0, 3]);
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn load_text(
    path: impl AsRef<Path>,
    tokenizer: Tokenizer,
    vocab: Option<&Vocabulary>,
) -> Result<TextStream, DataError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    encode_text(&text, tokenizer, vocab, &path.display().to_string())
}

/// The text bundled with Xenon, the offline default of the `text` data set:
/// tinyshakespeare (1,115,394 characters, 65 distinct), gzipped.
pub const BUNDLED_TEXT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/tinyshakespeare/input.txt.gz"
);

/// A text split as neon's `Text.create_valid_file` splits it ([`split_valid`]), both parts
/// encoded over the training part's vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextSplit {
    /// The training part's sorted vocabulary.
    pub vocab: Vocabulary,
    /// The training tokens, as ids.
    pub train: Vec<u32>,
    /// The validation tokens, as ids (empty with `valid_split` 0).
    pub valid: Vec<u32>,
}

/// Reads the text file at `path` (raw or gzipped) and splits it: the last `valid_split` of
/// its characters validate. A validation token the training part lacks is an error naming
/// it.
///
/// ```
/// use xenon_frontend::data::text::{BUNDLED_TEXT, Tokenizer, load_split};
/// let s = load_split(BUNDLED_TEXT, Tokenizer::Chars, 0.1).unwrap();
/// assert_eq!(s.vocab.len(), 65);
/// assert_eq!(s.train.len() + s.valid.len(), 1_115_394);
/// ```
pub fn load_split(
    path: impl AsRef<Path>,
    tokenizer: Tokenizer,
    valid_split: f64,
) -> Result<TextSplit, DataError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let (train, valid) = split_valid(&text, valid_split)?;
    let name = path.display().to_string();
    let train = encode_text(train, tokenizer, None, &name)?;
    let valid = match tokenizer.tokenize(valid).is_empty() {
        true => Vec::new(),
        false => {
            let source = format!("{name} (validation part)");
            encode_text(valid, tokenizer, Some(&train.vocab), &source)?.ids
        }
    };
    Ok(TextSplit {
        vocab: train.vocab,
        train: train.ids,
        valid,
    })
}

/// neon's `pad_sentences` with `pad_val = 0`: each sequence's last `max_len` ids,
/// left-padded with zeros to `max_len`, rows concatenated (`seqs.len() × max_len`).
///
/// ```
/// use xenon_frontend::data::text::pad_sequences;
/// let padded = pad_sequences(&[vec![1, 2], vec![3, 4, 5, 6]], 3);
/// assert_eq!(padded, [0, 1, 2, 4, 5, 6]);
/// ```
pub fn pad_sequences<S: AsRef<[u32]>>(seqs: &[S], max_len: usize) -> Vec<u32> {
    let mut out = vec![0; seqs.len() * max_len];
    for (row, seq) in out.chunks_exact_mut(max_len.max(1)).zip(seqs) {
        let seq = seq.as_ref();
        let kept = &seq[seq.len().saturating_sub(max_len)..];
        row[max_len - kept.len()..].copy_from_slice(kept);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neon_batch_layout() {
        use crate::data::{BatchIterator, BatchOptions};
        let text = "abcdefghijklmnopqrstuvwx";
        let vocab = Vocabulary::from_tokens(Tokenizer::Chars.tokenize(text));
        let ids = vocab.encode(Tokenizer::Chars.tokenize(text), "t").unwrap();
        let d = text_dataset(&ids, vocab.len(), 3, false).unwrap();
        let s = |v: &[f32]| {
            let ids: Vec<u32> = v.iter().map(|&i| i as u32).collect();
            vocab.decode(&ids, Tokenizer::Chars).unwrap()
        };
        let batches: Vec<_> = BatchIterator::new(&d, BatchOptions::new(2))
            .unwrap()
            .next_epoch()
            .collect();
        let x: Vec<f32> = batches
            .iter()
            .flat_map(|b| b.x.as_f32().unwrap().to_vec())
            .collect();
        assert_eq!(s(&x[..6]), "abcmno");
        // neon's step-major minibatch 0 (x[:, 0, :].T): a m b n c o
        let step_major: Vec<f32> = (0..3).flat_map(|t| [x[t], x[3 + t]]).collect();
        assert_eq!(s(&step_major), "ambnco");
        assert_eq!(s(&x), "abcmnodefpqrghistujklvwx");
        let y = batches[3].labels.as_i32().unwrap();
        assert_eq!(*y.last().unwrap(), 0);
    }

    #[test]
    fn the_last_examples_are_left_for_whole_batches() {
        use crate::data::{BatchIterator, BatchOptions};
        let ids: Vec<u32> = (0..27).collect();
        let d = text_dataset(&ids, 27, 3, true).unwrap();
        assert_eq!((d.len(), d.x.len()), (9, 27));
        let it = BatchIterator::new(&d, BatchOptions::new(2)).unwrap();
        assert_eq!(it.batches_per_epoch(), 4);
        // The 27th token wraps: the label of the last token is the first.
        assert_eq!(d.labels_of(8), &[25, 26, 0]);
    }

    #[test]
    fn sequence_length_errors() {
        let e = text_dataset(&[1, 2, 3], 4, 4, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sequence length 4") && e.contains("has 3 tokens"),
            "{e}"
        );
        assert!(text_dataset(&[1, 2, 3], 4, 0, true).is_err());
        assert!(text_dataset(&[], 4, 1, true).is_err());
        // An id outside the vocabulary.
        assert!(text_dataset(&[1, 2, 9], 4, 1, true).is_err());
    }

    #[test]
    fn encode_names_token_position_and_source() {
        let v = Vocabulary::from_tokens(["b", "a"]);
        let e = v
            .encode(["a", "zz", "b"], "valid.txt")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("valid.txt") && e.contains("\"zz\"") && e.contains("token 1"),
            "{e}"
        );
        assert!(v.decode(&[0, 2], Tokenizer::Chars).is_err());
        assert_eq!(
            v.decode(&[1, 0], Tokenizer::Words { eos: false }).unwrap(),
            "b a"
        );
    }

    #[test]
    fn words_tokenizer() {
        let t = Tokenizer::Words { eos: true };
        assert_eq!(t.tokenize("a b\n\nc"), ["a", "b", EOS, EOS, "c"]);
        assert_eq!(t.tokenize("a\r\nb\n"), ["a", EOS, "b", EOS]);
        assert!(t.tokenize("").is_empty());
        assert_eq!(
            Tokenizer::Words { eos: false }.tokenize(" a\tb\n"),
            ["a", "b"]
        );
    }

    #[test]
    fn vocabulary_is_code_point_sorted() {
        let v = Vocabulary::from_tokens(Tokenizer::Chars.tokenize("é a\nZ"));
        assert_eq!(v.tokens(), ["\n", " ", "Z", "a", "é"]);
        assert_eq!(v.id("é"), Some(4));
        assert_eq!(v.id("b"), None);
        assert_eq!(v.token(5), None);
    }

    #[test]
    fn split_valid_like_neon() {
        assert_eq!(split_valid("abcdefghij", 0.0).unwrap(), ("abcdefghij", ""));
        assert_eq!(split_valid("abcdefghij", 1.0).unwrap(), ("", "abcdefghij"));
        // int(7 * 0.75) = 5
        assert_eq!(split_valid("ééééééé", 0.25).unwrap().1, "éé");
        assert!(split_valid("abc", -0.1).is_err());
        assert!(split_valid("abc", f64::NAN).is_err());
    }

    #[test]
    fn encode_text_rejects_empty() {
        let e = encode_text(" \n", Tokenizer::Words { eos: false }, None, "empty.txt");
        assert!(e.unwrap_err().to_string().contains("empty.txt"));
    }

    #[test]
    fn pad_sequences_edges() {
        assert_eq!(pad_sequences(&[vec![], vec![7]], 2), [0, 0, 0, 7]);
        assert!(pad_sequences(&[vec![1u32]], 0).is_empty());
        assert!(pad_sequences::<Vec<u32>>(&[], 3).is_empty());
    }
}
