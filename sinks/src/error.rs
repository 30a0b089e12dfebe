//! Errors of writing and committing, naming the table; `is_retryable` tells a caller
//! whether trying again may help.

use floe_catalog::CatalogError;

/// What went wrong while writing to or committing a table.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The table exists but does not match what the job declares.
    #[error("table {table}: {message}")]
    Incompatible {
        /// The table.
        table: String,
        /// The difference.
        message: String,
    },
    /// Rows do not fit the table (for example a NULL in a NOT NULL column).
    #[error("table {table}: {message}")]
    BadRows {
        /// The table.
        table: String,
        /// What is wrong with the rows.
        message: String,
    },
    /// Another writer committed offsets this writer was about to commit: its files are abandoned.
    #[error("table {table}: {message}")]
    Fenced {
        /// The table.
        table: String,
        /// Which offsets moved.
        message: String,
    },
    /// Writing files or committing failed.
    #[error("table {table}: {context}: {source}")]
    Iceberg {
        /// The table.
        table: String,
        /// What Floe was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<iceberg::Error>,
    },
    /// A maintenance pass cannot proceed (a file it must read is unreadable).
    #[error("table {table}: {message}")]
    Maintenance {
        /// The table.
        table: String,
        /// What failed.
        message: String,
    },
    /// Another writer removed files a compaction rewrote: the rewrite is abandoned (its
    /// files become orphans) and the next pass plans again.
    #[error("table {table}: compaction abandoned: {message}")]
    RewriteAbandoned {
        /// The table.
        table: String,
        /// Which files went away.
        message: String,
    },
    /// Reading the table's state failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl SinkError {
    /// Wraps an iceberg error.
    pub fn iceberg(
        table: impl ToString,
        context: impl Into<String>,
        source: iceberg::Error,
    ) -> Self {
        Self::Iceberg {
            table: table.to_string(),
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// Whether trying again may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Iceberg { source, .. } => source.retryable(),
            Self::Catalog(c) => c.is_retryable(),
            Self::RewriteAbandoned { .. } => true,
            _ => false,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = SinkError> = std::result::Result<T, E>;
