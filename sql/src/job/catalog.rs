use std::collections::BTreeMap;

use crate::error::Pos;
use crate::redact::{Redacted, redact_uri};

/// `CREATE CATALOG name WITH (…)`.
#[derive(Clone)]
pub struct CatalogDef {
    /// The catalog's name, the first part of table names.
    pub name: String,
    /// Where it is declared.
    pub pos: Pos,
    /// Which kind of catalog, with its settings.
    pub kind: CatalogKind,
    /// The warehouse: a location (`file:///…`, `s3://bucket/prefix`) where table data
    /// lives; for a REST catalog, the warehouse the server knows, given as its location.
    pub warehouse: String,
    /// Storage settings passed to the object store (`storage.*` options, prefix removed).
    pub storage: BTreeMap<String, String>,
}

impl std::fmt::Debug for CatalogDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogDef")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("warehouse", &self.warehouse)
            .field("storage", &Redacted(&self.storage))
            .finish()
    }
}

/// The catalog implementations Floe can use.
#[derive(Clone, PartialEq, Eq)]
pub enum CatalogKind {
    /// A JDBC-style SQL catalog (`'type' = 'sql'`) on SQLite or PostgreSQL.
    Sql {
        /// `sqlite://PATH` or `postgres://…`.
        uri: String,
    },
    /// An Iceberg REST catalog (`'type' = 'rest'`).
    Rest {
        /// The server's base URL.
        uri: String,
        /// Client settings: `credential`, `token`, `oauth2-server-uri`, `scope`,
        /// `audience`, `resource`, `prefix`, `header.*`.
        options: BTreeMap<String, String>,
    },
}

impl std::fmt::Debug for CatalogKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sql { uri } => f
                .debug_struct("Sql")
                .field("uri", &redact_uri(uri))
                .finish(),
            Self::Rest { uri, options } => f
                .debug_struct("Rest")
                .field("uri", &redact_uri(uri))
                .field("options", &Redacted(options))
                .finish(),
        }
    }
}
