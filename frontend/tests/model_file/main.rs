//! Reading and writing model description files (`xenon_frontend::model_file`), through the
//! public API: the example files, what the schema accepts, writing, and the located errors.

mod no_arguments;
mod support;
