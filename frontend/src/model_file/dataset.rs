//! The `dataset:` entry: the data set names Xenon can load, and reading and writing the entry.

use super::de::typed;
use super::error::ModelFileError;
use super::tree::Node;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::BTreeMap;
use std::fmt;

/// A data set Xenon can load by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetName {
    /// `mnist`: 28×28 grey digits, 60,000 training and 10,000 test images.
    Mnist,
}

impl DatasetName {
    /// Every accepted name.
    pub const NAMES: [&'static str; 1] = ["mnist"];

    /// The name as written in model files.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
        }
    }

    /// The data set with this name (case-sensitive).
    pub fn from_name(name: &str) -> Option<DatasetName> {
        match name {
            "mnist" => Some(DatasetName::Mnist),
            _ => None,
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `dataset:` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    /// `name:` (required).
    pub name: DatasetName,
    /// Every other key (neon's `train_config`, `test_config`, ...), uninterpreted, as JSON
    /// values. Never contains `name`.
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl DatasetSpec {
    /// A spec with only a name.
    pub fn new(name: DatasetName) -> DatasetSpec {
        DatasetSpec {
            name,
            extra: BTreeMap::new(),
        }
    }
}

/// Reads the `dataset:` mapping: `name` (required) and every other key, kept as JSON.
pub(super) fn read(node: &Node) -> Result<DatasetSpec, ModelFileError> {
    let entries = node.entries("dataset", "a mapping such as {name: mnist}")?;
    let mut name = None;
    let mut extra = BTreeMap::new();
    for e in entries {
        if e.key == "name" {
            let s: String = typed(&e.value, "dataset.name")?;
            name = Some(
                DatasetName::from_name(&s).ok_or(ModelFileError::UnknownDataset {
                    name: s,
                    pos: e.value.pos,
                })?,
            );
        } else {
            extra.insert(e.key.clone(), e.value.to_json());
        }
    }
    let name = name.ok_or(ModelFileError::MissingKey {
        at: "dataset".into(),
        key: "name".into(),
        pos: node.pos,
    })?;
    Ok(DatasetSpec { name, extra })
}

impl Serialize for DatasetSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let extra: Vec<_> = self.extra.iter().filter(|(k, _)| *k != "name").collect();
        let mut map = s.serialize_map(Some(1 + extra.len()))?;
        map.serialize_entry("name", self.name.as_str())?;
        for (k, v) in extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
