//! How a layer's `config` is read in a model file: as a mapping of arguments only.
//!
//! The derived `Deserialize` of an argument struct also accepts a positional list; a model
//! file's `config` must name its arguments, so every [`Layer`](super::Layer) variant is read
//! through [`config`], which accepts a mapping (or nothing, for "no arguments") and rejects
//! everything else with `invalid type: ..., expected struct variant Layer::<class>`.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};
use std::fmt;
use std::marker::PhantomData;

/// A layer's neon class name, implemented by the registry for every argument struct.
pub trait Class {
    /// The class name: the [`Layer`](super::Layer) variant and a model file's `type`.
    const CLASS: &'static str;
}

/// Reads the `config` of a layer of class `T::CLASS` from a mapping.
pub fn config<'de, D: Deserializer<'de>, T: Deserialize<'de> + Class>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(ConfigVisitor(PhantomData))
}

struct ConfigVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Class> Visitor<'de> for ConfigVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "struct variant Layer::{}", T::CLASS)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}
