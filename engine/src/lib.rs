//! Floe's runtime: Kafka sources, the checkpoint-and-commit cycle, lookup tables,
//! maintenance, shutdown, metrics and probes. It prints nothing: the `floe` command
//! line (`floe-cli`) drives it and prints what it returns.
#![warn(missing_docs)]

pub mod error;
pub mod exit;
pub mod failpoint;
pub mod job;
pub mod lookup;
pub mod maintenance;
pub mod observe;
pub mod pipeline;
pub mod plan;
pub mod query;
pub mod replay;
pub mod resources;
pub mod setup;
pub mod shutdown;
pub mod source;

pub use error::{EngineError, Result};
