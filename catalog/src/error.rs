//! Errors of catalog access, with the table they concern and whether a retry can help.

/// What went wrong with a catalog or its storage.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog's configuration is wrong (bad URI, unreachable path): fix the job file.
    #[error("catalog {catalog}: {message}")]
    Config {
        /// The catalog's name in the job file.
        catalog: String,
        /// What is wrong.
        message: String,
    },
    /// The catalog or storage failed; `retryable` says whether trying again may help.
    #[error("{context}: {source}")]
    Iceberg {
        /// What Floe was doing (names the table).
        context: String,
        /// The underlying error.
        #[source]
        source: Box<iceberg::Error>,
        /// Whether a retry can help.
        retryable: bool,
    },
    /// Reading a table's files for maintenance (orphan files) failed.
    #[error("table {table}: {message}")]
    Maintenance {
        /// The table.
        table: String,
        /// What failed.
        message: String,
    },
    /// A snapshot summary written by Floe cannot be read back.
    #[error(
        "table {table}: snapshot {snapshot_id} has an unreadable '{key}' summary property: {message}"
    )]
    Summary {
        /// The table.
        table: String,
        /// The snapshot.
        snapshot_id: i64,
        /// The summary key.
        key: String,
        /// Why it cannot be read.
        message: String,
    },
}

impl CatalogError {
    /// Wraps an iceberg error with what Floe was doing.
    pub fn iceberg(context: impl Into<String>, source: iceberg::Error) -> Self {
        let retryable = source.retryable()
            || matches!(
                source.kind(),
                iceberg::ErrorKind::CatalogCommitConflicts | iceberg::ErrorKind::Unexpected
            );
        Self::Iceberg {
            context: context.into(),
            source: Box::new(source),
            retryable,
        }
    }

    /// Whether trying the same operation again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Iceberg {
                retryable: true,
                ..
            }
        )
    }
}

/// Result type of this crate.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
