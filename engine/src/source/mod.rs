//! Sources: Kafka consumption and decoding into Arrow.

mod avro;
pub mod client_log;
mod context;
pub mod decode;
mod json_values;
mod kafka;
pub mod registry;
pub mod start;

pub use context::SourceShared;
pub use kafka::{KafkaSource, SourceBatch, SourceEvent, consumer_config};
