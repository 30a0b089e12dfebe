//! Errors of the formats: a source whose format cannot be set up, a record that cannot
//! be decoded, and a writer schema that adds columns (the end of a run, not a failure).

use floe_catalog::TopicPartition;

use crate::evolution::SchemaChange;

/// A failure to set up a source's format or to decode its records.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The source's format cannot be set up as declared: its registry, its writer
    /// schema, or its columns against that schema.
    #[error("kafka source {source_name}: {message}")]
    Source {
        /// The job's source name.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// A record cannot be decoded; nothing at or after it is committed.
    #[error("cannot decode record at {tp} offset {offset}: {message}")]
    Decode {
        /// Where the record is.
        tp: TopicPartition,
        /// Its offset.
        offset: i64,
        /// Why it cannot be decoded.
        message: String,
    },
    /// A record's writer schema adds columns to its source: the job plans again before
    /// it reads the record (see [`crate::evolution`]).
    #[error("{0}")]
    SchemaChanged(Box<SchemaChange>),
}

/// Result type of the formats.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;
