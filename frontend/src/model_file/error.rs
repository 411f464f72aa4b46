//! The errors of reading a model file, and the places they name.

use super::backend::BackendName;
use super::dataset::DatasetName;
use std::path::PathBuf;

/// A place in a model file's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// Why a model file could not be read. Each message is one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelFileError {
    /// The file could not be read.
    #[error("cannot read model file {}: {message}", .path.display())]
    Io { path: PathBuf, message: String },
    /// The text is not a well-formed YAML (or JSON) document, or holds what no model file
    /// may: a repeated key in a mapping, a non-finite number.
    #[error("invalid {format}{}: {message}", at_pos(.pos))]
    Syntax {
        /// `"YAML"` or `"JSON"`.
        format: &'static str,
        pos: Option<Position>,
        message: String,
    },
    /// A `type` names no known class.
    #[error(
        "unknown {kind} type \"{name}\" at {at}{}; known types: {}",
        in_parens(.pos),
        .known.join(", ")
    )]
    UnknownType {
        /// `layer`, `activation`, `initializer`, `cost`, `optimizer` or `schedule`.
        kind: &'static str,
        name: String,
        /// Where the object is, for example `layers[1]`.
        at: String,
        known: &'static [&'static str],
        pos: Option<Position>,
    },
    /// A `config` has an argument the class does not take.
    #[error(
        "{at}: unknown argument \"{arg}\"{}; accepted: {}",
        in_parens(.pos),
        list_or_none(.accepted)
    )]
    UnknownArgument {
        /// The object, for example `layers[0] (Linear)`.
        at: String,
        arg: String,
        accepted: &'static [&'static str],
        pos: Option<Position>,
    },
    /// A mapping has a key that is not allowed there (next to `type` and `config`, say).
    #[error(
        "{at}: unknown key \"{key}\"{}; accepted: {}",
        in_parens(.pos),
        list_or_none(.accepted)
    )]
    UnknownKey {
        at: String,
        key: String,
        accepted: &'static [&'static str],
        pos: Option<Position>,
    },
    /// A `config` lacks an argument that has no default.
    #[error("{at}: missing required argument \"{arg}\"{}", in_parens(.pos))]
    MissingArgument {
        at: String,
        arg: String,
        pos: Option<Position>,
    },
    /// A mapping lacks a required key (`layers`, `cost`, `type`, a dataset's `name`).
    #[error("{at}: missing required key \"{key}\"{}", in_parens(.pos))]
    MissingKey {
        at: String,
        key: String,
        pos: Option<Position>,
    },
    /// A value has the wrong type or an invalid value (for example a string for `nout`).
    #[error("{at}: {message}{}", in_parens(.pos))]
    Invalid {
        /// The value's place, for example `layers[0] (Linear).nout`.
        at: String,
        message: String,
        pos: Option<Position>,
    },
    /// `backend:` names no known backend.
    #[error(
        "unknown backend \"{name}\"{}; known backends: {}",
        in_parens(.pos),
        BackendName::NAMES.join(", ")
    )]
    UnknownBackend { name: String, pos: Option<Position> },
    /// `dataset: {name: ...}` names no known data set.
    #[error(
        "unknown dataset \"{name}\"{}; known datasets: {}",
        in_parens(.pos),
        DatasetName::NAMES.join(", ")
    )]
    UnknownDataset { name: String, pos: Option<Position> },
}

impl ModelFileError {
    /// Where in the text the problem is, when known.
    pub fn position(&self) -> Option<Position> {
        match self {
            ModelFileError::Io { .. } => None,
            ModelFileError::Syntax { pos, .. }
            | ModelFileError::UnknownType { pos, .. }
            | ModelFileError::UnknownArgument { pos, .. }
            | ModelFileError::UnknownKey { pos, .. }
            | ModelFileError::MissingArgument { pos, .. }
            | ModelFileError::MissingKey { pos, .. }
            | ModelFileError::Invalid { pos, .. }
            | ModelFileError::UnknownBackend { pos, .. }
            | ModelFileError::UnknownDataset { pos, .. } => *pos,
        }
    }
}

fn at_pos(pos: &Option<Position>) -> String {
    match pos {
        Some(p) => format!(" at line {}, column {}", p.line, p.column),
        None => String::new(),
    }
}

fn in_parens(pos: &Option<Position>) -> String {
    match pos {
        Some(p) => format!(" (line {}, column {})", p.line, p.column),
        None => String::new(),
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none (this class takes no arguments)".to_string()
    } else {
        names.join(", ")
    }
}
