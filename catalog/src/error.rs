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
    /// A table property written by Floe cannot be read back.
    #[error("table {table}: the table property '{key}' cannot be read: {message}")]
    Property {
        /// The table.
        table: String,
        /// The property key.
        key: String,
        /// Why it cannot be read.
        message: String,
    },
}

impl CatalogError {
    /// Wraps an iceberg error with what Floe was doing.
    pub fn iceberg(context: impl Into<String>, source: iceberg::Error) -> Self {
        let retryable = is_transient(&source);
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

/// Whether trying again may heal `e`: a conflict, a server that is down or slow, a
/// throttled request. A missing table or namespace, a refused request (credentials,
/// permissions, a missing bucket or key: the store's 4xx answers), an invalid request
/// or an unsupported feature cannot heal, and retry loops give up on them at once.
pub fn is_transient(e: &iceberg::Error) -> bool {
    use iceberg::ErrorKind as K;
    if e.retryable() {
        return true;
    }
    match e.kind() {
        K::CatalogCommitConflicts => true,
        K::Unexpected => !refused_by_store(e),
        _ => false,
    }
}

/// True when an object store in `e`'s sources refused the request for good.
fn refused_by_store(e: &iceberg::Error) -> bool {
    use object_store::Error as S;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(store) = s.downcast_ref::<S>() {
            return matches!(
                store,
                S::NotFound { .. }
                    | S::PermissionDenied { .. }
                    | S::Unauthenticated { .. }
                    | S::InvalidPath { .. }
                    | S::NotSupported { .. }
                    | S::NotImplemented { .. }
                    | S::UnknownConfigurationKey { .. }
            );
        }
        source = s.source();
    }
    false
}

/// Result type of this crate.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
