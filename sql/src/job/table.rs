use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::QualityDef;
use crate::error::Pos;

/// A resolved table name: catalog, namespace, table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// The `CREATE CATALOG` name.
    pub catalog: String,
    /// Namespace levels (usually one).
    pub namespace: Vec<String>,
    /// Table name.
    pub name: String,
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.catalog,
            self.namespace.join("."),
            self.name
        )
    }
}

/// `CREATE TABLE catalog.ns.name (…) PARTITIONED BY (…) WITH (…)`: an Iceberg table.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Resolved name.
    pub name: TableName,
    /// Where it is declared.
    pub pos: Pos,
    /// Columns in declared order.
    pub columns: Vec<TableColumn>,
    /// The partition spec.
    pub partition_by: Vec<PartitionField>,
    /// Commit and file settings.
    pub options: TableOptions,
    /// CHECK constraints and what happens to records that break a rule.
    pub quality: QualityDef,
}

impl TableDef {
    /// The Arrow schema rows must have before they are written.
    pub fn schema(&self) -> SchemaRef {
        std::sync::Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }
}

/// A table column.
#[derive(Debug, Clone)]
pub struct TableColumn {
    /// Column name.
    pub name: String,
    /// Arrow type.
    pub data_type: DataType,
    /// False for `NOT NULL`.
    pub nullable: bool,
    /// Where it is declared.
    pub pos: Pos,
}

/// One field of `PARTITIONED BY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionField {
    /// The source column.
    pub column: String,
    /// The Iceberg transform.
    pub transform: Transform,
    /// Where it is written.
    pub pos: Pos,
}

/// Iceberg partition transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// The value itself.
    Identity,
    /// Years since 1970.
    Year,
    /// Months since 1970.
    Month,
    /// Days since 1970.
    Day,
    /// Hours since 1970.
    Hour,
    /// Hash into N buckets.
    Bucket(u32),
    /// Truncate to width W.
    Truncate(u32),
}

/// Table options (`WITH (…)` of `CREATE TABLE`).
#[derive(Debug, Clone, PartialEq)]
pub struct TableOptions {
    /// Commit at least this often while records flow.
    pub commit_interval: Duration,
    /// Commit early once this many bytes of data files are pending.
    pub commit_max_bytes: Option<u64>,
    /// Commit early once this many rows are pending.
    pub commit_max_records: Option<u64>,
    /// Roll data files at about this size.
    pub target_file_size: u64,
    /// Extra Iceberg table properties (`write.*`, `commit.*`, …) set when the table is created.
    pub properties: BTreeMap<String, String>,
    /// `'checkpoint.missing' = 'startup-mode'`: a table that already holds rows but no
    /// checkpoint of this job is read into from the source's startup mode. Without it
    /// such a table stops the job, since the startup mode would re-read or skip records.
    pub start_without_checkpoint: bool,
    /// `maintenance.*`: how the running job keeps the table healthy.
    pub maintenance: MaintenanceOptions,
    /// `'schema.evolution'`: whether the table follows its source's writer schemas.
    pub schema_evolution: SchemaEvolution,
}

/// `'schema.evolution'` of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaEvolution {
    /// `none` (default): the table has the columns the job file declares.
    #[default]
    None,
    /// `add-columns`: columns the INSERT's query yields beyond the declared ones are
    /// added to the table (optional), and declared number types the query widens are
    /// widened, as Iceberg allows; the query's columns map to the table's by name.
    AddColumns,
}

/// `maintenance.*` options of a table: compaction, manifest merging, snapshot expiry and
/// orphan cleanup, run by the job between its commits.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceOptions {
    /// `'maintenance.enabled'` (default true): run passes while the job runs.
    pub enabled: bool,
    /// `'maintenance.interval'` (default 1 minute): time between passes.
    pub interval: Duration,
    /// `'maintenance.compaction'` (default true): rewrite small files.
    pub compaction: bool,
    /// `'maintenance.compaction.min-input-files'` (default 8): small files a partition
    /// needs before it is compacted.
    pub min_input_files: u64,
    /// `'maintenance.max-manifests'` (default 100): merge manifests past this many.
    pub max_manifests: u64,
    /// `'maintenance.snapshot-retention'` (default 1 hour): expire older snapshots…
    pub snapshot_retention: Duration,
    /// …`'maintenance.min-snapshots'` (default 10): but keep at least this many.
    pub min_snapshots: u64,
    /// `'maintenance.orphan-age'` (default 1 day): remove unreferenced files older than
    /// this plus the slowest writer's commit interval.
    pub orphan_age: Duration,
}

impl Default for MaintenanceOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(60),
            compaction: true,
            min_input_files: 8,
            max_manifests: 100,
            snapshot_retention: Duration::from_secs(3600),
            min_snapshots: 10,
            orphan_age: Duration::from_secs(24 * 3600),
        }
    }
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            commit_interval: Duration::from_secs(5),
            commit_max_bytes: None,
            commit_max_records: None,
            target_file_size: 128 * 1024 * 1024,
            properties: BTreeMap::new(),
            start_without_checkpoint: false,
            maintenance: MaintenanceOptions::default(),
            schema_evolution: SchemaEvolution::None,
        }
    }
}
