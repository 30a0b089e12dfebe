use std::collections::BTreeMap;

use crate::error::Pos;

/// `CREATE CATALOG name WITH (…)`.
#[derive(Debug, Clone)]
pub struct CatalogDef {
    /// The catalog's name, the first part of table names.
    pub name: String,
    /// Where it is declared.
    pub pos: Pos,
    /// Which kind of catalog, with its settings.
    pub kind: CatalogKind,
    /// The warehouse location (`file:///…`), where table data lives.
    pub warehouse: String,
    /// Storage settings passed to the object store (`storage.*` options, prefix removed).
    pub storage: BTreeMap<String, String>,
}

/// The catalog implementations Floe can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogKind {
    /// A JDBC-style SQL catalog (`'type' = 'sql'`) on SQLite or PostgreSQL.
    Sql {
        /// `sqlite://PATH` or `postgres://…`.
        uri: String,
    },
}
