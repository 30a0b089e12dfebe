//! The parsed form of a job file: catalogs, sources, tables and the INSERTs that connect them.

mod catalog;
mod insert;
mod lookup;
mod quality;
mod registry;
mod source;
mod table;

pub use catalog::{CatalogDef, CatalogKind};
pub use insert::InsertDef;
pub use lookup::{LookupDef, LookupOptions};
pub use quality::{CheckDef, Policy, QualityDef, ViolationKind};
pub use registry::{EMBEDDED_REGISTRY, RegistryOptions, SubjectName};
pub use source::{
    AvroSchemaSource, KafkaOptions, KeyOptions, MetadataKey, SourceColumn, SourceDef, SourceFormat,
    StartupMode, TimestampNumbers, UpsertOptions,
};
pub use table::{
    MaintenanceOptions, PartitionField, SchemaEvolution, TableColumn, TableDef, TableName,
    TableOptions, Transform,
};

/// A whole job file.
#[derive(Debug, Clone)]
pub struct JobFile {
    /// The path the file was read from (for messages).
    pub path: String,
    /// The job's identity, recorded in every snapshot it commits: `SET 'job.name'`, else the file stem.
    pub name: String,
    /// True when `SET 'job.name'` gave the name. `floe run` requires it: a name taken from
    /// the file stem would let two job files of one name in different folders share
    /// their checkpoints in a table without anybody deciding so.
    pub name_is_set: bool,
    /// `CREATE CATALOG` statements.
    pub catalogs: Vec<CatalogDef>,
    /// `CREATE SOURCE` statements (and `CREATE TABLE … WITH ('connector' = …)`): the
    /// streams the INSERTs read.
    pub sources: Vec<SourceDef>,
    /// Sources with `'connector' = 'upsert-kafka'`: compacted topics read as lookup
    /// tables, which INSERTs join their streams with under the source's name.
    pub lookup_topics: Vec<SourceDef>,
    /// `CREATE TABLE` statements for Iceberg tables.
    pub tables: Vec<TableDef>,
    /// `INSERT INTO … SELECT` statements.
    pub inserts: Vec<InsertDef>,
    /// The Iceberg tables the INSERTs join their streams with, in order of first use.
    pub lookups: Vec<LookupDef>,
    /// How lookup tables are refreshed and how large they may be.
    pub lookup_options: LookupOptions,
    /// Options that hold a secret written inline (a password, a token, a URI with a
    /// password) rather than as `${VAR}`: the job file then is a secret itself.
    pub inline_secrets: Vec<InlineSecret>,
}

/// An option whose secret value is written in the job file itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSecret {
    /// The option's key.
    pub key: String,
    /// Where its value stands.
    pub line: u64,
    /// Column of the value.
    pub column: u64,
}

impl JobFile {
    /// The source called `name` (case-insensitive).
    pub fn source(&self, name: &str) -> Option<&SourceDef> {
        self.sources
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The table with this resolved name.
    pub fn table(&self, name: &TableName) -> Option<&TableDef> {
        self.tables.iter().find(|t| &t.name == name)
    }

    /// The catalog called `name`.
    pub fn catalog(&self, name: &str) -> Option<&CatalogDef> {
        self.catalogs
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }
}
