//! Facebook's bAbI question-answering tasks (neon's `BABI`,
//! `neon/data/questionanswer.py`), from a local copy of `tasks_1-20_v1-2`.
//!
//! File format (`qa{N}_{name}_{train,test}.txt`, UTF-8): one sentence per line, `ID text`,
//! the ID restarting at 1 for each new story and otherwise counting up by one. A question
//! line is `ID question\tanswer\tsupporting IDs` (the IDs of earlier lines of the story,
//! space-separated). Blank lines are skipped.
//!
//! As in neon, each question is one example: its story is every non-question sentence
//! of the story before it, tokenized and concatenated; its query is the tokenized
//! question; its answer is the answer field as one token (`"apple,football"` in task 8
//! included). The tokenizer ([`tokenize`]) is neon's `re.split('(\W+)?', s)`, stripped:
//! maximal runs of word characters (alphanumeric or `_`) and maximal runs of other
//! non-space characters, so `"Mary?"` is `["Mary", "?"]`. Case is kept (neon does not
//! lower-case).
//!
//! The vocabulary is the sorted set of every story, query and answer token of the
//! training **and** test files; ids start at 1 (0 pads), so `vocab_size = len + 1`.
//! Stories and queries are left-padded with zeros to the longest of either file
//! (`story_maxlen`, `query_maxlen`; neon's `pad_sentences`); answers are ids.

use super::DataError;
use super::text::{pad_sequences, read_text};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The twenty task names, `qa{N}_{name}` for task `N` at index `N - 1`.
pub const BABI_TASKS: [&str; 20] = [
    "qa1_single-supporting-fact",
    "qa2_two-supporting-facts",
    "qa3_three-supporting-facts",
    "qa4_two-arg-relations",
    "qa5_three-arg-relations",
    "qa6_yes-no-questions",
    "qa7_counting",
    "qa8_lists-sets",
    "qa9_simple-negation",
    "qa10_indefinite-knowledge",
    "qa11_basic-coreference",
    "qa12_conjunction",
    "qa13_compound-coreference",
    "qa14_time-reasoning",
    "qa15_basic-deduction",
    "qa16_basic-induction",
    "qa17_positional-reasoning",
    "qa18_size-reasoning",
    "qa19_path-finding",
    "qa20_agents-motivations",
];

/// One question with its story, as tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BabiExample {
    /// The story's sentences before the question, concatenated.
    pub story: Vec<String>,
    /// The question.
    pub query: Vec<String>,
    /// The answer, one token.
    pub answer: String,
}

/// The tokens of `sentence`: runs of word characters and runs of other non-space
/// characters (neon's `BABI.tokenize`).
///
/// ```
/// use xenon_frontend::data::babi::tokenize;
/// assert_eq!(tokenize("Where is Mary? "), ["Where", "is", "Mary", "?"]);
/// assert_eq!(tokenize("John's here."), ["John", "'", "s", "here", "."]);
/// ```
pub fn tokenize(sentence: &str) -> Vec<&str> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    // Cut before every character whose class differs from the previous one's.
    let mut cuts = vec![0];
    let mut prev = None;
    for (i, c) in sentence.char_indices() {
        if prev.is_some_and(|p| p != word(c)) {
            cuts.push(i);
        }
        prev = Some(word(c));
    }
    cuts.push(sentence.len());
    cuts.windows(2)
        .map(|w| sentence[w[0]..w[1]].trim())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The examples of one bAbI file's text (`source` names it in errors).
///
/// ```
/// use xenon_frontend::data::babi::parse_babi;
/// let text = "1 Mary went home.\n2 Where is Mary?\thome\t1\n1 Bob ran.\n2 Who ran?\tBob\t1\n";
/// let ex = parse_babi(text, "qa1_train.txt").unwrap();
/// assert_eq!(ex.len(), 2);
/// assert_eq!(ex[0].story, ["Mary", "went", "home", "."]);
/// assert_eq!((ex[1].query.join(" "), ex[1].answer.as_str()), ("Who ran ?".into(), "Bob"));
/// assert!(parse_babi("1 Mary went home.\n3 Where?\thome\t1\n", "f").is_err()); // ID skips 2
/// ```
pub fn parse_babi(text: &str, source: &str) -> Result<Vec<BabiExample>, DataError> {
    let mut examples = Vec::new();
    let mut story: Vec<Vec<String>> = Vec::new();
    let mut last_id = 0u64;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |m: String| DataError::InvalidDataset(format!("{source}: line {}: {m}", n + 1));
        let (id, rest) = line
            .split_once(' ')
            .ok_or_else(|| bad(format!("{line:?} is not `ID text`")))?;
        let id: u64 = id
            .parse()
            .ok()
            .filter(|&id| id >= 1)
            .ok_or_else(|| bad(format!("{id:?} is not a line ID (an integer ≥ 1)")))?;
        if id == 1 {
            story.clear();
        } else if id != last_id + 1 {
            return Err(bad(format!(
                "line ID {id} follows {last_id} (IDs count up by one, or restart at 1)"
            )));
        }
        last_id = id;
        if !rest.contains('\t') {
            story.push(tokenize(rest).into_iter().map(str::to_string).collect());
            continue;
        }
        let fields: Vec<&str> = rest.split('\t').collect();
        let [question, answer, supporting] = fields[..] else {
            return Err(bad(format!(
                "a question line has {} tab-separated fields, not 3 (question, answer, \
                 supporting IDs)",
                fields.len()
            )));
        };
        let answer = answer.trim();
        if answer.is_empty() {
            return Err(bad("the answer is empty".into()));
        }
        for s in supporting.split_whitespace() {
            if !s.parse::<u64>().is_ok_and(|s| (1..id).contains(&s)) {
                return Err(bad(format!(
                    "supporting fact {s:?} is not the ID of an earlier line (1..{id})"
                )));
            }
        }
        examples.push(BabiExample {
            story: story.concat(),
            query: tokenize(question).into_iter().map(str::to_string).collect(),
            answer: answer.to_string(),
        });
    }
    if examples.is_empty() {
        return Err(DataError::InvalidDataset(format!(
            "{source}: no questions (an empty or truncated bAbI file)"
        )));
    }
    Ok(examples)
}

/// One vectorized split: `examples` stories, queries and answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BabiSplit {
    /// Stories, `examples × story_maxlen` row-major, left-padded with 0.
    pub x_story: Vec<u32>,
    /// Queries, `examples × query_maxlen`, left-padded with 0.
    pub x_query: Vec<u32>,
    /// Answer ids, `examples`.
    pub answers: Vec<u32>,
    /// The number of questions.
    pub examples: usize,
}

/// A bAbI task, vectorized over the vocabulary of its training and test files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Babi {
    /// The sorted tokens; token `i` has id `i + 1` (0 pads).
    pub vocab: Vec<String>,
    /// Tokens per story (the longest story of either split).
    pub story_maxlen: usize,
    /// Tokens per query (the longest query of either split).
    pub query_maxlen: usize,
    /// The training questions.
    pub train: BabiSplit,
    /// The test questions.
    pub test: BabiSplit,
}

impl Babi {
    /// Reads task `task` (1 to 20) of `subset` (`"en"`, `"en-10k"`, `"hn"`, ...): the
    /// files `qa{task}_*_train.txt` and `qa{task}_*_test.txt` of the first of
    /// `dir/tasks_1-20_v1-2/{subset}`, `dir/{subset}` and `dir` that has them.
    pub fn load(dir: impl AsRef<Path>, task: u8, subset: &str) -> Result<Babi, DataError> {
        let dir = dir.as_ref();
        if !(1..=20).contains(&task) {
            return Err(DataError::InvalidDataset(format!(
                "bAbI task {task} does not exist (tasks are 1 to 20)"
            )));
        }
        let candidates = [
            dir.join("tasks_1-20_v1-2").join(subset),
            dir.join(subset),
            dir.to_path_buf(),
        ];
        let prefix = format!("qa{task}_");
        let found = candidates.iter().find_map(|d| {
            Some((
                task_file(d, &prefix, "train")?,
                task_file(d, &prefix, "test")?,
            ))
        });
        let Some((train, test)) = found else {
            return Err(DataError::InvalidDataset(format!(
                "{}: no {prefix}*_train.txt and {prefix}*_test.txt (task {}) in {}",
                dir.display(),
                BABI_TASKS[usize::from(task) - 1],
                candidates
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let parse = |p: &Path| parse_babi(&read_text(p)?, &p.display().to_string());
        Babi::from_examples(&parse(&train)?, &parse(&test)?)
    }

    /// Parses and vectorizes the texts of a training and a test file.
    pub fn from_strs(train: &str, test: &str) -> Result<Babi, DataError> {
        Babi::from_examples(&parse_babi(train, "train")?, &parse_babi(test, "test")?)
    }

    /// Vectorizes parsed examples (neon's `compute_statistics` and `vectorize_stories`).
    /// An empty training set is an error.
    ///
    /// ```
    /// use xenon_frontend::data::babi::Babi;
    /// let train = "1 Mary went home.\n2 Where is Mary?\thome\t1\n";
    /// let test = "1 Bob ran to home.\n2 Where is Bob?\thome\t1\n";
    /// let b = Babi::from_strs(train, test).unwrap();
    /// assert_eq!(b.vocab, [".", "?", "Bob", "Mary", "Where", "home", "is", "ran", "to", "went"]);
    /// assert_eq!((b.story_maxlen, b.query_maxlen, b.vocab_size()), (5, 4, 11));
    /// assert_eq!(b.train.x_story, [0, 4, 10, 6, 1]); // "Mary went home ." left-padded
    /// assert_eq!((b.test.x_query.as_slice(), b.test.answers[0]), (&[5, 7, 3, 2][..], 6));
    /// ```
    pub fn from_examples(train: &[BabiExample], test: &[BabiExample]) -> Result<Babi, DataError> {
        if train.is_empty() {
            return Err(DataError::InvalidDataset(
                "bAbI: no training questions".into(),
            ));
        }
        let all = || train.iter().chain(test);
        let vocab: BTreeSet<&str> = all()
            .flat_map(|e| e.story.iter().chain(&e.query).chain([&e.answer]))
            .map(String::as_str)
            .collect();
        let vocab: Vec<String> = vocab.into_iter().map(str::to_string).collect();
        let story_maxlen = all().map(|e| e.story.len()).max().unwrap_or(0);
        let query_maxlen = all().map(|e| e.query.len()).max().unwrap_or(0);
        let id = |t: &String| vocab.binary_search(t).map(|i| i as u32 + 1).unwrap_or(0);
        let ids = |ts: &[String]| ts.iter().map(id).collect::<Vec<u32>>();
        let vectorize = |ex: &[BabiExample]| BabiSplit {
            x_story: pad_sequences(
                &ex.iter().map(|e| ids(&e.story)).collect::<Vec<_>>(),
                story_maxlen,
            ),
            x_query: pad_sequences(
                &ex.iter().map(|e| ids(&e.query)).collect::<Vec<_>>(),
                query_maxlen,
            ),
            answers: ex.iter().map(|e| id(&e.answer)).collect(),
            examples: ex.len(),
        };
        Ok(Babi {
            train: vectorize(train),
            test: vectorize(test),
            vocab,
            story_maxlen,
            query_maxlen,
        })
    }

    /// The embedding size neon uses: the vocabulary plus the padding id 0.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len() + 1
    }

    /// The token of `id` (`None` for 0, the padding, or an id past the vocabulary).
    pub fn token(&self, id: u32) -> Option<&str> {
        let i = (id as usize).checked_sub(1)?;
        self.vocab.get(i).map(String::as_str)
    }
}

/// The file `{prefix}*_{split}.txt` of `dir` (the first by name if several match).
fn task_file(dir: &Path, prefix: &str, split: &str) -> Option<PathBuf> {
    let suffix = format!("_{split}.txt");
    let mut matches: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix) && n.ends_with(&suffix))
        })
        .collect();
    matches.sort();
    matches.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_runs() {
        assert_eq!(tokenize("  a,b  c?! "), ["a", ",", "b", "c", "?!"]);
        assert_eq!(tokenize("apple,football"), ["apple", ",", "football"]);
        assert_eq!(tokenize("x_1 . y"), ["x_1", ".", "y"]);
        assert!(tokenize("   ").is_empty());
        assert_eq!(tokenize("été."), ["été", "."]);
    }

    #[test]
    fn story_resets_and_skips_questions() {
        let text = "1 A b.\n2 Q1?\tx\t1\n3 C d.\n4 Q2?\ty\t1 3\n\n1 E.\n2 Q3?\tz\t1\n";
        let ex = parse_babi(text, "f").unwrap();
        assert_eq!(ex[1].story, ["A", "b", ".", "C", "d", "."]);
        assert_eq!(ex[2].story, ["E", "."]);
        assert_eq!(ex[2].answer, "z");
    }

    #[test]
    fn malformed_lines_are_errors() {
        let err = |t: &str| parse_babi(t, "qa.txt").unwrap_err().to_string();
        assert!(err("").contains("no questions"));
        assert!(err("1 A.\n").contains("no questions"));
        assert!(err("x A.\n").contains("line 1"));
        assert!(err("0 A.\n").contains("line ID"));
        assert!(err("1\n").contains("ID text"));
        let e = err("1 A.\n2 Q?\tx\n");
        assert!(e.contains("line 2") && e.contains("2 tab-separated"), "{e}");
        assert!(err("1 A.\n2 Q?\t\t1\n").contains("answer is empty"));
        let e = err("1 A.\n2 Q?\tx\t2\n");
        assert!(e.contains("supporting fact \"2\""), "{e}");
        assert!(err("1 A.\n2 Q?\tx\tone\n").contains("supporting"));
        assert!(err("1 A.\n2 B.\n5 Q?\tx\t1\n").contains("follows 2"));
    }

    #[test]
    fn task_range() {
        let e = Babi::load(".", 21, "en").unwrap_err();
        assert!(e.to_string().contains("task 21"));
        assert!(Babi::load(".", 0, "en").is_err());
    }
}
