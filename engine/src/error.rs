//! Errors of the runtime: which source, table or record they concern, and whether the
//! job file is at fault or the outside world.

use floe_catalog::{CatalogError, TopicPartition};
use floe_sinks::SinkError;
use floe_sql::SqlError;

/// A failure of a running job.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The job file is wrong.
    #[error(transparent)]
    Job(#[from] SqlError),
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
    /// A record breaks a rule whose policy is `fail`; nothing at or after it is committed.
    #[error(
        "table {table}: record at {tp} offset {offset} breaks rule '{rule}': {message}. \
         The policy for '{rule}' is 'fail', so the job stops; nothing from this offset on is committed"
    )]
    Rejected {
        /// The target table.
        table: String,
        /// Where the record is.
        tp: TopicPartition,
        /// Its offset.
        offset: i64,
        /// The rule or kind of error.
        rule: String,
        /// What was wrong.
        message: String,
    },
    /// Kafka failed.
    #[error("kafka source {source_name}: {message}")]
    Kafka {
        /// The job's source name.
        source_name: String,
        /// What failed.
        message: String,
    },
    /// A query failed on a batch of records.
    #[error(
        "INSERT INTO {table}: query failed on records of {tp} from offset {first_offset}: {message}"
    )]
    Query {
        /// The target table.
        table: String,
        /// Where the batch came from.
        tp: TopicPartition,
        /// Its first offset.
        first_offset: i64,
        /// DataFusion's message.
        message: String,
    },
    /// A query failed as a whole (out of memory, an internal error): not a bad record, so
    /// nothing of the batch is dead-lettered and the job stops.
    #[error(
        "INSERT INTO {table}: the query failed as a whole, not because of a record's values: \
         {message}. The job stops; nothing from this batch on is committed"
    )]
    QueryFailed {
        /// The target table.
        table: String,
        /// DataFusion's message.
        message: String,
    },
    /// Writing or committing a table failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Opening or reading a catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Reading the job file or another local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A table holds rows but no checkpoint of this job: where to start is unknown.
    #[error(
        "table {table} holds rows but no checkpoint of job '{job}' (no snapshot of the job, \
         no 'floe.checkpoint.{job}' table property): the startup mode would read again or skip \
         records those rows may cover. If the job was renamed, restore its 'job.name'; if the \
         rows come from elsewhere and the startup mode is right for this table, add \
         'checkpoint.missing' = 'startup-mode' to its WITH options"
    )]
    NoCheckpoint {
        /// The table.
        table: String,
        /// The job's name.
        job: String,
    },
    /// A record's writer schema adds columns to its source: the end of a run rather
    /// than a failure; the job plans again before it reads the record
    /// (`floe_formats::evolution`).
    #[error("{0}")]
    SchemaChanged(Box<floe_formats::evolution::SchemaChange>),
    /// A lookup table cannot be used as it is.
    #[error("lookup table {table}: {message}")]
    Lookup {
        /// The table.
        table: String,
        /// What is wrong.
        message: String,
        /// Whether trying again may help.
        retryable: bool,
    },
    /// A version of a lookup table cannot be held (too large, rows that do not fit).
    #[error(transparent)]
    LookupVersion(#[from] floe_sql::plan::lookup::LookupError),
    /// The job file, an option or an argument is wrong: running again as it is fails
    /// the same way.
    #[error("{0}")]
    Config(String),
    /// Something around the job failed for good: a listener, the signal handlers, a
    /// shutdown past its deadline, a reading thread that could not start.
    #[error("{0}")]
    Runtime(String),
    /// An invariant of Floe's own did not hold: a bug, reported with what broke.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<floe_formats::FormatError> for EngineError {
    fn from(e: floe_formats::FormatError) -> Self {
        use floe_formats::FormatError as F;
        match e {
            F::Source {
                source_name,
                message,
            } => Self::Kafka {
                source_name,
                message,
            },
            F::Decode {
                tp,
                offset,
                message,
            } => Self::Decode {
                tp,
                offset,
                message,
            },
            F::SchemaChanged(change) => Self::SchemaChanged(change),
        }
    }
}

/// Result type of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
