//! Floe's developer tooling, apart from the data path: a Kafka-protocol broker inside
//! the process (librdkafka's mock cluster, the only FFI in Floe), a Schema Registry
//! served in-process, and the generators of orders and Nexmark events that fill them.
//!
//! The quickstart's embedded mode, `floe broker`, `floe registry`, `floe produce` and
//! `floe send`, the tests and the benchmark use these; the runtime never does. The
//! command line wires them in where a job says `embedded`.
#![warn(missing_docs)]

pub mod avro_feed;
pub mod broker;
mod delivery;
pub mod error;
pub mod feed_options;
pub mod generator;
mod mix;
pub mod nexmark;
pub mod orders;
pub mod registry;

pub use error::{Result, ToolError};
