//! The Penn Treebank language-modelling corpus (neon's `PTB`), from a local copy of
//! Mikolov's release: `ptb.train.txt`, `ptb.valid.txt` and `ptb.test.txt` in one directory
//! (each file may also be gzipped, under the same name or with `.gz` appended).
//!
//! * Word level ([`PtbLevel::Words`], neon's `tokenizer='newline_tokenizer'`, used by
//!   `word_lstm`): whitespace-separated words plus an `<eos>` token at the end of every
//!   line. The release's vocabulary is 10,000 words, `<unk>` and `<eos>` included.
//! * Character level ([`PtbLevel::Chars`], neon's default `tokenizer=None`): every
//!   character of the files as they are, spaces and newlines included (neon reads the same
//!   files and does not replace the newlines in this mode).
//!
//! The vocabulary is built from the training file only (sorted, see
//! [`Vocabulary`]); a token of the validation or test file that it lacks is an error
//! naming the file and the token (neon asserts the same). The three streams are ready for
//! [`text_dataset`](super::text::text_dataset).

use super::DataError;
use super::text::{Tokenizer, Vocabulary, encode_text, read_text};
use std::path::{Path, PathBuf};

/// The three files of the release, in the order train, valid, test.
pub const PTB_FILES: [&str; 3] = ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"];

/// Which tokens the corpus is cut into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PtbLevel {
    /// Words and `<eos>` (the usual word-level benchmark).
    #[default]
    Words,
    /// Characters, newlines included.
    Chars,
}

impl PtbLevel {
    /// The tokenizer of this level.
    pub fn tokenizer(self) -> Tokenizer {
        match self {
            PtbLevel::Words => Tokenizer::Words { eos: true },
            PtbLevel::Chars => Tokenizer::Chars,
        }
    }
}

/// The corpus as token ids over the training vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ptb {
    /// The sorted distinct tokens of the training file.
    pub vocab: Vocabulary,
    /// How the files were tokenized (decode with it).
    pub tokenizer: Tokenizer,
    /// The training stream.
    pub train: Vec<u32>,
    /// The validation stream.
    pub valid: Vec<u32>,
    /// The test stream.
    pub test: Vec<u32>,
}

impl Ptb {
    /// Reads the three files of `dir` (see the [module docs](self)).
    ///
    /// ```
    /// use xenon_frontend::data::ptb::{PTB_FILES, Ptb, PtbLevel};
    /// let dir = std::env::temp_dir().join(format!("xenon-doc-ptb-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// for (name, text) in PTB_FILES.iter().zip([" a b c \n b a \n", " a c \n", " c \n"]) {
    ///     std::fs::write(dir.join(name), text).unwrap();
    /// }
    /// let ptb = Ptb::load(&dir, PtbLevel::Words).unwrap();
    /// assert_eq!(ptb.vocab.tokens(), ["<eos>", "a", "b", "c"]);
    /// assert_eq!(ptb.train, [1, 2, 3, 0, 2, 1, 0]);
    /// assert_eq!((ptb.valid.len(), ptb.test.len()), (3, 2));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn load(dir: impl AsRef<Path>, level: PtbLevel) -> Result<Ptb, DataError> {
        let [train, valid, test] = ptb_paths(dir.as_ref())?;
        let read = |p: &Path| Ok::<_, DataError>((read_text(p)?, p.display().to_string()));
        let (train, valid, test) = (read(&train)?, read(&valid)?, read(&test)?);
        Ptb::from_sources(
            [
                (&train.0, &train.1),
                (&valid.0, &valid.1),
                (&test.0, &test.1),
            ],
            level,
        )
    }

    /// The corpus from the texts of the three files; errors name them by their
    /// [`PTB_FILES`] names.
    pub fn from_texts(
        train: &str,
        valid: &str,
        test: &str,
        level: PtbLevel,
    ) -> Result<Ptb, DataError> {
        let [a, b, c] = PTB_FILES;
        Ptb::from_sources([(train, a), (valid, b), (test, c)], level)
    }

    /// `(text, name)` of the train, valid and test files.
    fn from_sources(sources: [(&str, &str); 3], level: PtbLevel) -> Result<Ptb, DataError> {
        let tokenizer = level.tokenizer();
        let [(train, train_name), (valid, valid_name), (test, test_name)] = sources;
        let train = encode_text(train, tokenizer, None, train_name)?;
        let vocab = train.vocab;
        let valid = encode_text(valid, tokenizer, Some(&vocab), valid_name)?.ids;
        let test = encode_text(test, tokenizer, Some(&vocab), test_name)?.ids;
        Ok(Ptb {
            vocab,
            tokenizer,
            train: train.ids,
            valid,
            test,
        })
    }
}

/// The paths of the three files in `dir`: each name as is, else with `.gz` appended.
fn ptb_paths(dir: &Path) -> Result<[PathBuf; 3], DataError> {
    if !dir.is_dir() {
        return Err(DataError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    let found = PTB_FILES.map(|name| {
        [dir.join(name), dir.join(format!("{name}.gz"))]
            .into_iter()
            .find(|p| p.is_file())
    });
    let missing: Vec<&str> = PTB_FILES
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(DataError::InvalidDataset(format!(
            "{}: Penn Treebank files missing: {} (expected {}, Mikolov's release, each \
             optionally gzipped)",
            dir.display(),
            missing.join(", "),
            PTB_FILES.join(", ")
        )));
    }
    Ok(found.map(|p| p.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_keep_newlines() {
        let ptb = Ptb::from_texts(" ab\n", "ba\n", " \n", PtbLevel::Chars).unwrap();
        assert_eq!(ptb.vocab.tokens(), ["\n", " ", "a", "b"]);
        assert_eq!(ptb.train, [1, 2, 3, 0]);
        assert_eq!(ptb.vocab.decode(&ptb.valid, ptb.tokenizer).unwrap(), "ba\n");
    }

    #[test]
    fn unknown_valid_token_names_file_and_token() {
        let e = Ptb::from_texts("a b\n", "a zebra\n", "a\n", PtbLevel::Words).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("ptb.valid.txt") && e.contains("\"zebra\""),
            "{e}"
        );
    }

    #[test]
    fn empty_files_are_errors() {
        let e = Ptb::from_texts("", "a\n", "a\n", PtbLevel::Words).unwrap_err();
        assert!(e.to_string().contains("ptb.train.txt"), "{e}");
        let e = Ptb::from_texts("a\n", "a\n", "", PtbLevel::Chars).unwrap_err();
        assert!(e.to_string().contains("ptb.test.txt"), "{e}");
    }
}
