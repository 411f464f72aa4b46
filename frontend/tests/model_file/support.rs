//! Documents and helpers shared by the model-file tests.

use xenon_frontend::model_file::{ModelFile, ModelFileError};

/// The error of reading `yaml`, which must fail.
pub fn err(yaml: &str) -> ModelFileError {
    match ModelFile::from_yaml_str(yaml) {
        Ok(m) => panic!("expected an error, got {m:?}"),
        Err(e) => e,
    }
}

/// A layer whose arguments are all given or defaulted.
pub const ACT: &str = "{type: Activation, config: {transform: Tanh}}";

/// A minimal valid document with `layer` as its only layer.
pub fn one_layer(layer: &str) -> String {
    format!("layers:\n  - {layer}\ncost: SumSquared\n")
}
