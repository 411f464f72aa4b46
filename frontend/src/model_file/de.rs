//! A serde [`Deserializer`] over the position-keeping tree, which reads the typed enums
//! (`{type, config}` objects) and records the path to any failing value.

use super::de_error::{DeError, DeKind, Seg};
use super::error::{ModelFileError, Position};
use super::tree::{Entry, Node, Value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deserializes `node` (the value of top-level key `key`) into `T`, turning the structured
/// deserialization error into a located [`ModelFileError`].
pub(super) fn typed<T: de::DeserializeOwned>(node: &Node, key: &str) -> Result<T, ModelFileError> {
    T::deserialize(NodeDe::new(node)).map_err(|e| e.prefix(Seg::Key(key.to_string())).finish())
}

/// The keys of a typed object, as the derived adjacently-tagged `Deserialize` impls of the
/// frontend enums name them.
const TYPED_KEYS: &[&str] = &["type", "config"];

/// A [`Deserializer`] over a [`Node`] whose errors say what and where.
#[derive(Clone, Copy)]
pub(super) struct NodeDe<'a> {
    node: &'a Node,
    /// The node is the `config` of a typed object, where null stands for an empty mapping
    /// (`{type: Explin, config: null}`: every argument takes its default).
    config: bool,
}

impl<'a> NodeDe<'a> {
    fn new(node: &'a Node) -> NodeDe<'a> {
        NodeDe {
            node,
            config: false,
        }
    }

    fn any<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Null if self.config => visitor.visit_map(MapAcc::new(&[])),
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::UInt(n) => visitor.visit_u64(*n),
            Value::Int(n) => visitor.visit_i64(*n),
            Value::Float(x) => visitor.visit_f64(*x),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqAcc {
                items: items.iter().enumerate(),
            }),
            Value::Map(entries) => visitor.visit_map(MapAcc::new(entries)),
        }
    }

    /// A `{type, config}` object (or a bare class name) for an adjacently tagged enum.
    fn typed_object<'de, V: Visitor<'de>>(
        self,
        enum_name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let node = self.node;
        let (tag, config) = match &node.value {
            Value::Str(_) => (node, None),
            Value::Map(entries) => {
                let mut tag = None;
                let mut config = None;
                for e in entries {
                    match e.key.as_str() {
                        "type" => tag = Some(&e.value),
                        "config" => config = Some(&e.value),
                        other => {
                            let err = DeError::new(DeKind::UnknownField {
                                name: other.to_string(),
                                accepted: TYPED_KEYS,
                            })
                            .at(e.key_pos);
                            return Err(match entries.iter().find(|e| e.key == "type") {
                                Some(Entry {
                                    value:
                                        Node {
                                            value: Value::Str(name),
                                            ..
                                        },
                                    ..
                                }) => err.prefix(Seg::Typed {
                                    enum_name,
                                    name: name.clone(),
                                }),
                                _ => err,
                            });
                        }
                    }
                }
                let tag = tag.ok_or_else(|| {
                    DeError::new(DeKind::MissingField("type".into())).at(node.pos)
                })?;
                (tag, config)
            }
            _ => {
                return Err(DeError::new(DeKind::Message(format!(
                    "expected a {{type: ..., config: {{...}}}} mapping or a class name, found {}",
                    node.describe()
                )))
                .at(node.pos));
            }
        };
        let Value::Str(name) = &tag.value else {
            return Err(DeError::new(DeKind::Message(format!(
                "the class name in `type` must be a string, found {}",
                tag.describe()
            )))
            .at(tag.pos)
            .prefix(Seg::Key("type".into())));
        };
        let empty = Node {
            value: Value::Map(Vec::new()),
            pos: node.pos,
        };
        let config = config.unwrap_or(&empty);
        visitor.visit_map(MapAcc::typed(tag, config)).map_err(|e| {
            e.prefix(Seg::Typed {
                enum_name,
                name: name.clone(),
            })
            .at(node.pos)
        })
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        self.any(visitor).map_err(|e| e.at(pos))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(pos))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if fields == TYPED_KEYS {
            self.typed_object(name, visitor)
        } else {
            self.deserialize_any(visitor)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    /// A string is a unit variant (how serde reads the class name of a typed object).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(s) => visitor
                .visit_enum(de::value::StrDeserializer::<DeError>::new(s))
                .map_err(|e| e.at(self.node.pos)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier
    }
}

/// Presents a sequence to serde item by item; an error in an item gets its index on its path.
struct SeqAcc<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
}

impl<'de> SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => seed
                .deserialize(NodeDe::new(node))
                .map(Some)
                .map_err(|e| e.prefix(Seg::Index(i))),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// Presents a mapping to serde entry by entry: an error in a key is placed at the key, and
/// one in a value gets the key on its path.
struct MapAcc<'a> {
    entries: std::vec::IntoIter<MapEntry<'a>>,
    current: Option<MapEntry<'a>>,
}

#[derive(Clone, Copy)]
struct MapEntry<'a> {
    key: &'a str,
    key_pos: Option<Position>,
    value: NodeDe<'a>,
}

impl<'a> MapAcc<'a> {
    /// The entries of a mapping in the file.
    fn new(entries: &'a [Entry]) -> MapAcc<'a> {
        MapAcc::of(
            entries
                .iter()
                .map(|e| MapEntry {
                    key: &e.key,
                    key_pos: e.key_pos,
                    value: NodeDe::new(&e.value),
                })
                .collect(),
        )
    }

    /// A typed object as the map `{type: ..., config: ...}`: `type` first (so that serde reads
    /// the class before the arguments and need not buffer them), and `config` always present
    /// (the caller passes an empty mapping when the file leaves it out).
    fn typed(tag: &'a Node, config: &'a Node) -> MapAcc<'a> {
        MapAcc::of(vec![
            MapEntry {
                key: "type",
                key_pos: None,
                value: NodeDe::new(tag),
            },
            MapEntry {
                key: "config",
                key_pos: None,
                value: NodeDe {
                    node: config,
                    config: true,
                },
            },
        ])
    }

    fn of(entries: Vec<MapEntry<'a>>) -> MapAcc<'a> {
        MapAcc {
            entries: entries.into_iter(),
            current: None,
        }
    }
}

impl<'de> MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        self.current = self.entries.next();
        match self.current {
            None => Ok(None),
            Some(e) => seed
                .deserialize(de::value::StrDeserializer::<DeError>::new(e.key))
                .map(Some)
                .map_err(|err| err.at(e.key_pos)),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let e = self
            .current
            .ok_or_else(|| de::Error::custom("value requested before its key"))?;
        seed.deserialize(e.value)
            .map_err(|err| err.prefix(Seg::Key(e.key.to_string())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
