//! Floe's payload formats: records of a Kafka topic decoded into Arrow batches of a
//! source's columns. JSON, and Avro, Protobuf and JSON Schema in the Confluent wire
//! format with their writer schemas from a Schema Registry (or a fixed Avro schema);
//! record keys read into columns; writer schemas watched for columns they add.
//!
//! ```text
//!  PendingRecords ──decode()──▶ DecodePlan ──▶ payload format (json_values, avro/,
//!  (one partition's values,                     protobuf/, json_schema/)
//!   keys, metadata)                         ──▶ keys (key.fields)
//!                                          ──▶ Decoded: batch + bad records
//! ```
//!
//! Nothing here reads Kafka or writes tables: the engine polls and hands the records
//! over, and the benchmark and replay decode through the same plan.
#![warn(missing_docs)]

mod avro;
mod conform;
mod decode;
pub mod error;
pub mod evolution;
mod framing;
mod json_schema;
mod json_values;
mod keys;
pub mod plan;
mod protobuf;
pub mod records;
pub mod registry;
mod runs;
mod schema_format;
#[cfg(test)]
mod test_registry;
mod value_failure;

pub use decode::decode;
pub use error::{FormatError, Result};
pub use plan::{DecodePlan, key_columns_from_schema};
pub use records::{BadRecord, Decoded, PendingRecords};
