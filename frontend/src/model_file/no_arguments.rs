//! Reading the `config` of a class that takes no arguments (`Tanh`, `GlorotUniform`,
//! `SumSquared`, ...).
//!
//! Every unit variant of the typed enums names [`no_arguments`] in its
//! `#[serde(deserialize_with = ...)]`, so that serde itself (not the model-file reader)
//! decides what such a `config` may hold. It works with any deserializer: the model-file
//! reader, and plain `serde_json` for the layer stacks stored in saved models.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use std::fmt;

/// Deserializes the `config` of a class that takes no arguments: null or an empty mapping
/// (`{type: Tanh, config: null}`, `{type: Tanh, config: {}}`). A `config` that is left out
/// (`{type: Tanh}`, or the bare name `Tanh`) is accepted too, by serde's adjacently tagged
/// enums or by the model-file reader, which presents it as an empty mapping.
///
/// Any argument is an unknown field with an empty list of accepted names (raised while its
/// name is read, so the model-file reader places it at the name); anything other than null
/// or a mapping is an "invalid type ..., expected no arguments" error.
pub(crate) fn no_arguments<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    d.deserialize_option(NoArguments)
}

/// Reads null or an empty mapping.
struct NoArguments;

impl<'de> Visitor<'de> for NoArguments {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no arguments")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(NoArguments)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        map.next_key_seed(NoArgumentName).map(|_| ())
    }
}

/// Reads an argument's name, which is always unknown.
struct NoArgumentName;

impl<'de> DeserializeSeed<'de> for NoArgumentName {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for NoArgumentName {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no argument name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<(), E> {
        Err(E::unknown_field(name, &[]))
    }
}
