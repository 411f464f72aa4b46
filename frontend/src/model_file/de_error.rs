//! The structured error of deserializing from the tree: what went wrong and the path to it,
//! turned into a located [`ModelFileError`] with a readable place (`layers[0] (Linear).nout`).

use super::error::{ModelFileError, Position};
use serde::de;
use std::fmt::{self, Write as _};

/// One step of the path to a failing value.
#[derive(Clone, Debug)]
pub(super) enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
    /// A `{type, config}` object: the Rust enum's name (`Layer`, `Activation`, ...) and the
    /// class name in `type`.
    Typed {
        enum_name: &'static str,
        name: String,
    },
}

#[derive(Debug)]
pub(super) enum DeKind {
    UnknownVariant {
        name: String,
        known: &'static [&'static str],
    },
    UnknownField {
        name: String,
        accepted: &'static [&'static str],
    },
    MissingField(String),
    Message(String),
}

/// The error of [`NodeDe`](super::de::NodeDe): what went wrong, the path to it (outermost first) and where.
#[derive(Debug)]
pub(super) struct DeError {
    kind: DeKind,
    path: Vec<Seg>,
    pos: Option<Position>,
}

impl DeError {
    pub(super) fn new(kind: DeKind) -> DeError {
        DeError {
            kind,
            path: Vec::new(),
            pos: None,
        }
    }

    /// Records `pos` unless a more precise (inner) position is already known.
    pub(super) fn at(mut self, pos: Option<Position>) -> DeError {
        if self.pos.is_none() {
            self.pos = pos;
        }
        self
    }

    pub(super) fn prefix(mut self, seg: Seg) -> DeError {
        self.path.insert(0, seg);
        self
    }

    /// Whether the path ends inside a typed object's `config`.
    fn in_config(&self) -> bool {
        matches!(
            self.path.as_slice(),
            [.., Seg::Typed { .. }, Seg::Key(k)] if k == "config"
        )
    }

    pub(super) fn finish(self) -> ModelFileError {
        let pos = self.pos;
        let in_config = self.in_config();
        match self.kind {
            DeKind::UnknownVariant { name, known } => {
                // The typed object's own class name (the path ends at the object or its
                // `type` key); an unknown name of a plain enum inside its config (`op:
                // median`) is that value's error.
                let typed = self
                    .path
                    .iter()
                    .rposition(|s| matches!(s, Seg::Typed { .. }))
                    .filter(|&t| match &self.path[t + 1..] {
                        [] => true,
                        [Seg::Key(k)] => k == "type",
                        _ => false,
                    });
                match typed {
                    Some(t) => {
                        let Seg::Typed { enum_name, .. } = &self.path[t] else {
                            unreachable!("rposition found a Typed segment")
                        };
                        ModelFileError::UnknownType {
                            kind: kind_word(enum_name),
                            name,
                            at: render(&self.path[..t]),
                            known,
                            pos,
                        }
                    }
                    None => ModelFileError::Invalid {
                        at: render(&self.path),
                        message: format!(
                            "unknown variant \"{name}\"; expected one of: {}",
                            known.join(", ")
                        ),
                        pos,
                    },
                }
            }
            DeKind::UnknownField { name, accepted } if in_config => {
                ModelFileError::UnknownArgument {
                    at: render(&self.path),
                    arg: name,
                    accepted,
                    pos,
                }
            }
            DeKind::UnknownField { name, accepted } => ModelFileError::UnknownKey {
                at: render(&self.path),
                key: name,
                accepted,
                pos,
            },
            DeKind::MissingField(name) if in_config => ModelFileError::MissingArgument {
                at: render(&self.path),
                arg: name,
                pos,
            },
            DeKind::MissingField(name) => ModelFileError::MissingKey {
                at: render(&self.path),
                key: name,
                pos,
            },
            DeKind::Message(message) => ModelFileError::Invalid {
                at: render(&self.path),
                message,
                pos,
            },
        }
    }
}

/// The word for a typed object's kind, from its Rust enum's name.
fn kind_word(enum_name: &str) -> &'static str {
    match enum_name {
        "Layer" => "layer",
        "Activation" => "activation",
        "Initializer" => "initializer",
        "Cost" => "cost",
        "Optimizer" => "optimizer",
        "Schedule" => "schedule",
        _ => "object",
    }
}

/// `layers[0] (Linear).init (Gaussian)`: keys joined by dots, indices in brackets, each
/// typed object's class in parentheses, and its `config` level left out.
fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for (i, seg) in path.iter().enumerate() {
        match seg {
            Seg::Key(k) => {
                let after_typed = i > 0 && matches!(path[i - 1], Seg::Typed { .. });
                if k == "config" && after_typed {
                    continue;
                }
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(n) => {
                let _ = write!(s, "[{n}]");
            }
            Seg::Typed { name, .. } => {
                let _ = write!(s, " ({name})");
            }
        }
    }
    if s.is_empty() { "model file".into() } else { s }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at {}", self.kind, render(&self.path))
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> DeError {
        DeError::new(DeKind::Message(msg.to_string()))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> DeError {
        DeError::new(DeKind::UnknownVariant {
            name: variant.to_string(),
            known: expected,
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> DeError {
        DeError::new(DeKind::UnknownField {
            name: field.to_string(),
            accepted: expected,
        })
    }

    fn missing_field(field: &'static str) -> DeError {
        DeError::new(DeKind::MissingField(field.to_string()))
    }
}
