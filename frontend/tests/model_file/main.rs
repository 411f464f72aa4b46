//! Reading and writing model description files (`xenon_frontend::model_file`), through the
//! public API: the example files, what the schema accepts, writing, and the located errors.

mod errors;
mod examples;
mod no_arguments;
mod schema;
mod support;
mod writing;
