//! Sources: Kafka consumption; records are decoded by `floe_formats`.

pub mod client_log;
mod context;
mod kafka;
pub mod start;

pub use context::SourceShared;
pub use kafka::{KafkaSource, SourceBatch, SourceEvent, consumer_config};
