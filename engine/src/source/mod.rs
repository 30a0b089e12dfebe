//! Sources: Kafka consumption and decoding into Arrow.

mod avro;
pub mod client_log;
mod conform;
mod context;
pub mod decode;
pub mod evolution;
mod framing;
mod json_schema;
mod json_values;
mod kafka;
pub(crate) mod keys;
mod protobuf;
pub mod registry;
mod runs;
pub mod start;
#[cfg(test)]
mod test_registry;
mod value_failure;

pub use context::SourceShared;
pub use kafka::{KafkaSource, SourceBatch, SourceEvent, consumer_config};
