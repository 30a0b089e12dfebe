//! Floe's runtime: Kafka sources, decoding, the checkpoint-and-commit cycle, shutdown,
//! and the `floe` command's subcommands.
#![warn(missing_docs)]

pub mod commands;
pub mod embedded;
pub mod error;
pub mod exit;
pub mod failpoint;
pub mod logging;
pub mod lookup;
pub mod maintenance;
pub mod observe;
pub mod pipeline;
pub mod resources;
pub mod setup;
pub mod shutdown;
pub mod source;

pub use error::{EngineError, Result};
