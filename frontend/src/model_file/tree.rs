//! A YAML/JSON value tree that keeps where each value and key starts in the text, and the
//! parsers that build it (serde-saphyr for YAML, serde_json for JSON).

use super::error::{ModelFileError, Position};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A YAML/JSON value with where it starts in the text (`None` when the parser gave none).
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) value: Value,
    pub(super) pos: Option<Position>,
}

#[derive(Clone, Debug)]
pub(super) enum Value {
    Null,
    Bool(bool),
    UInt(u64),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) key_pos: Option<Position>,
    pub(super) value: Node,
}

pub(super) fn location(loc: serde_saphyr::Location) -> Option<Position> {
    (loc.line() > 0).then(|| Position {
        line: loc.line() as usize,
        column: loc.column() as usize,
    })
}

impl Node {
    /// Equal values, ignoring positions.
    pub(super) fn same(&self, other: &Node) -> bool {
        match (&self.value, &other.value) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::UInt(a), Value::UInt(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Seq(a), Value::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|(x, y)| x.key == y.key && x.value.same(&y.value))
            }
            _ => false,
        }
    }

    /// The entries of a mapping. Any other value is an [`ModelFileError::Invalid`] error at
    /// `at`: "expected `expected`, found ...".
    pub(super) fn entries(&self, at: &str, expected: &str) -> Result<&[Entry], ModelFileError> {
        match &self.value {
            Value::Map(entries) => Ok(entries),
            _ => Err(ModelFileError::Invalid {
                at: at.into(),
                message: format!("expected {expected}, found {}", self.describe()),
                pos: self.pos,
            }),
        }
    }

    /// A short description for "found ..." messages.
    pub(super) fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::UInt(n) => format!("integer `{n}`"),
            Value::Int(n) => format!("integer `{n}`"),
            Value::Float(x) => format!("floating point `{x}`"),
            Value::Str(s) => format!("string {s:?}"),
            Value::Seq(_) => "a sequence".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }

    pub(super) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::UInt(n) => J::from(*n),
            Value::Int(n) => J::from(*n),
            // Finite by construction, so from_f64 gives Some.
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Reads a [`Node`] tree; with `SPANNED` (for serde-saphyr) every node and key records where
/// it is, without (for serde_json, which cannot report it) positions are `None`.
struct Tree<const SPANNED: bool>(Node);

impl<'de, const SPANNED: bool> Deserialize<'de> for Tree<SPANNED> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Tree(if SPANNED {
            let s = serde_saphyr::Spanned::<Plain<SPANNED>>::deserialize(d)?;
            Node {
                value: s.value.0,
                pos: location(s.referenced),
            }
        } else {
            Node {
                value: Plain::<SPANNED>::deserialize(d)?.0,
                pos: None,
            }
        }))
    }
}

struct Plain<const SPANNED: bool>(Value);

impl<'de, const SPANNED: bool> Deserialize<'de> for Plain<SPANNED> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor::<SPANNED>).map(Plain)
    }
}

struct ValueVisitor<const SPANNED: bool>;

impl<'de, const SPANNED: bool> Visitor<'de> for ValueVisitor<SPANNED> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(u64::try_from(v).map_or(Value::Int(v), Value::UInt))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::UInt(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if v.is_finite() {
            Ok(Value::Float(v))
        } else {
            Err(E::custom(format!("non-finite number {v} is not allowed")))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Plain::<SPANNED>::deserialize(d).map(|p| p.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Tree(node)) = seq.next_element::<Tree<SPANNED>>()? {
            items.push(node);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<Entry> = Vec::new();
        loop {
            let (key, key_pos) = if SPANNED {
                match map.next_key::<serde_saphyr::Spanned<String>>()? {
                    Some(k) => (k.value, location(k.referenced)),
                    None => break,
                }
            } else {
                match map.next_key::<String>()? {
                    Some(k) => (k, None),
                    None => break,
                }
            };
            if entries.iter().any(|e| e.key == key) {
                return Err(de::Error::custom(format!("duplicate key \"{key}\"")));
            }
            let Tree(value) = map.next_value::<Tree<SPANNED>>()?;
            entries.push(Entry {
                key,
                key_pos,
                value,
            });
        }
        Ok(Value::Map(entries))
    }
}

/// The most YAML nodes (scalars, sequences and mappings) a model file may hold:
/// 5,000,000. serde-saphyr's default budget (250,000) stops at about 25,000 layers; a layer
/// takes about 10 nodes (`- type: Activation` with its `transform` config: 9), so this
/// admits files of 100,000 layers and more while still bounding the memory of the tree
/// (about 60 bytes a node). A file past it is rejected with a "budget breached" syntax
/// error naming the limit.
pub const MAX_YAML_NODES: usize = 5_000_000;

/// The most parser events: every node is one event, a sequence or mapping two (start, end),
/// plus the stream and document events.
const MAX_YAML_EVENTS: usize = 2 * MAX_YAML_NODES + 16;

/// Parses YAML text (or JSON, which YAML reads too) into a tree with positions, within the
/// budget [`MAX_YAML_NODES`] (serde-saphyr's other limits keep their defaults: nesting 64
/// deep, 64 MiB of scalar text, aliases and anchors).
pub(super) fn parse_yaml(text: &str) -> Result<Node, ModelFileError> {
    let options = serde_saphyr::options! {
        with_snippet: false,
        // Let the tree reader reject non-finite numbers, with a plainer message.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
        budget: serde_saphyr::budget! {
            max_nodes: MAX_YAML_NODES,
            max_events: MAX_YAML_EVENTS,
        },
    };
    serde_saphyr::from_str_with_options::<Tree<true>>(text, options)
        .map(|t| t.0)
        .map_err(|e| {
            let pos = e.location().and_then(location);
            let message = match &e {
                serde_saphyr::Error::DuplicateMappingKey { key: Some(k), .. } => {
                    format!("duplicate key \"{k}\"")
                }
                serde_saphyr::Error::Budget {
                    breach:
                        serde_saphyr::budget::BudgetBreach::Nodes { .. }
                        | serde_saphyr::budget::BudgetBreach::Events { .. },
                    ..
                } => format!(
                    "budget breached: the file holds more than {MAX_YAML_NODES} YAML nodes \
                     (scalars, sequences and mappings), the most a model file may hold"
                ),
                _ => strip_position(
                    &e.to_string()
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            };
            ModelFileError::Syntax {
                format: "YAML",
                pos,
                message,
            }
        })
}

/// The parsers end their messages with " at line L, column C"; the error shows the place
/// itself, first.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Parses JSON text into a tree. serde_json does not report where values are; YAML does, so
/// the tree carries positions when the text, read as YAML, is the same document.
pub(super) fn parse_json(text: &str) -> Result<Node, ModelFileError> {
    let Tree(root) = serde_json::from_str::<Tree<false>>(text).map_err(|e| {
        let pos = (e.line() > 0).then(|| Position {
            line: e.line(),
            column: e.column(),
        });
        ModelFileError::Syntax {
            format: "JSON",
            pos,
            message: strip_position(&e.to_string()),
        }
    })?;
    // Valid JSON is YAML: read it again as YAML, and use that tree (for its positions) when
    // it is the same.
    Ok(match parse_yaml(text) {
        Ok(spanned) if spanned.same(&root) => spanned,
        _ => root,
    })
}
