use std::time::Duration;

use arrow_schema::SchemaRef;

use super::TableName;
use crate::error::Pos;

/// An Iceberg table that an INSERT joins its stream with: a lookup table, named
/// `catalog.namespace.table` in a JOIN of the INSERT's SELECT.
///
/// Its columns are the table's current schema, which the caller reads from the catalog
/// before the job is planned (this crate does no I/O).
#[derive(Debug, Clone)]
pub struct LookupDef {
    /// The table.
    pub name: TableName,
    /// Where the job first names it.
    pub pos: Pos,
    /// The table's columns, once read from its catalog.
    pub schema: Option<SchemaRef>,
}

/// How lookup tables are kept: `SET 'lookup.refresh-interval'` and `SET
/// 'lookup.max-memory'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupOptions {
    /// How often a lookup table is checked for a new snapshot.
    pub refresh_interval: Duration,
    /// The most memory one version of a lookup table (its rows and its index) may take.
    pub max_memory: u64,
}

impl Default for LookupOptions {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(60),
            max_memory: 1024 * 1024 * 1024,
        }
    }
}
