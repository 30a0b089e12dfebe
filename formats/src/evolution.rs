//! Writer schemas that add columns to a source whose columns come from its schema.
//!
//! A registry source that declares no columns takes them from its subject's latest
//! schema when the job is planned. When one of its INSERTs writes a table that follows
//! its schema (`'schema.evolution' = 'add-columns'`), the source watches the writer
//! schema of every record:
//!
//! ```text
//!  record's schema id, first seen ─▶ its columns vs the source's
//!     ├─ nothing new ─────────────────────────▶ decoded as always
//!     ├─ a new field, or a number type Iceberg promotes (int → bigint, …)
//!     │     ─▶ the run ends before this record (`FormatError::SchemaChanged`): the
//!     │        pipeline commits what it decoded before it, the job plans again from
//!     │        the latest schema, evolves its tables, and reads on from the committed
//!     │        offsets (`commands::run`); the id is then settled
//!     └─ refused (planning again found a change a table cannot take)
//!           ─▶ its records are bad records (`type`), handled by each table's policy
//! ```
//!
//! A settled id is decoded into the columns as they are: if the latest schema still
//! lacks its fields (another version was registered meanwhile), they are not read, and
//! the job does not plan again for them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_schema::{DataType, Field};
use floe_sql::CompiledJob;
use floe_sql::job::{SchemaEvolution, SourceDef};
use floe_sql::plan::widens;

/// What a writer schema adds to a source's columns.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange {
    /// Index of the source in the job.
    pub source: usize,
    /// The source's name.
    pub source_name: String,
    /// The writer schema's id.
    pub schema_id: u32,
    /// Its version under the source's subject, when the registry says.
    pub version: Option<u32>,
    /// The version the source's columns were taken from.
    pub columns_version: Option<u32>,
    /// What it adds: `note (new)`, `qty Int32 to Int64`.
    pub columns: Vec<String>,
}

impl std::fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = self
            .version
            .map_or(String::new(), |v| format!(" (version {v})"));
        write!(
            f,
            "writer schema id {}{version} of source {} adds columns to those of {}: {}",
            self.schema_id,
            self.source_name,
            self.columns_version
                .map_or("the declaration".to_string(), |v| format!("version {v}")),
            self.columns.join(", ")
        )
    }
}

/// What a writer schema means for the running plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Its records decode into the source's columns.
    Fits,
    /// It adds columns: the job plans again.
    Adds(SchemaChange),
    /// A table cannot take its columns: its records are bad records, for this reason.
    Refused(String),
}

/// What a job learnt about writer schemas over its runs, per source.
#[derive(Debug, Default, Clone)]
pub struct SchemaMemory {
    /// Per source name: ids planned for already.
    settled: HashMap<String, HashSet<u32>>,
    /// Per source name: ids refused, with the reason.
    refused: HashMap<String, HashMap<u32, String>>,
}

impl SchemaMemory {
    /// Remembers that the job planned again for `change`.
    pub fn settle(&mut self, change: &SchemaChange) {
        self.settled
            .entry(change.source_name.clone())
            .or_default()
            .insert(change.schema_id);
    }

    /// Remembers that `change` cannot be taken, and why.
    pub fn refuse(&mut self, change: &SchemaChange, reason: String) {
        self.refused
            .entry(change.source_name.clone())
            .or_default()
            .insert(change.schema_id, reason);
    }

    /// The watch of `source` (index `index`) for the next run.
    pub fn watch(&self, index: usize, source: &SourceDef) -> SchemaWatch {
        SchemaWatch {
            source: index,
            source_name: source.name.clone(),
            columns: source
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.data_type.clone()))
                .collect(),
            columns_version: source.columns_version,
            subject: source
                .kafka
                .registry
                .as_ref()
                .map(|r| r.subject.subject(&source.kafka.topic))
                .unwrap_or_default(),
            settled: self.settled.get(&source.name).cloned().unwrap_or_default(),
            refused: self.refused.get(&source.name).cloned().unwrap_or_default(),
            seen: Mutex::new(HashMap::new()),
            last_fit: AtomicU64::new(0),
        }
    }
}

/// The watch of source `source` of `job` for a run: only a registry source that takes
/// its columns from its schema, read by an INSERT into a table with `'schema.evolution'
/// = 'add-columns'`, has one.
pub fn watch_for(job: &CompiledJob, source: usize, memory: &SchemaMemory) -> Option<SchemaWatch> {
    let def = job.job.sources.get(source)?;
    let follows = job
        .inserts
        .iter()
        .filter(|i| i.source == source)
        .filter_map(|i| job.job.table(&i.target))
        .any(|t| t.options.schema_evolution == SchemaEvolution::AddColumns);
    (follows && def.columns_from_schema && def.kafka.registry.is_some())
        .then(|| memory.watch(source, def))
}

/// One source's watch over its writer schemas for one run.
#[derive(Debug)]
pub struct SchemaWatch {
    source: usize,
    source_name: String,
    /// The source's columns (payload, key and metadata alike: a field named like any of
    /// them is not new).
    columns: Vec<(String, DataType)>,
    columns_version: Option<u32>,
    /// The subject the source's columns come from.
    subject: String,
    settled: HashSet<u32>,
    refused: HashMap<u32, String>,
    /// Verdicts of this run, by schema id.
    seen: Mutex<HashMap<u32, Verdict>>,
    /// The schema id (plus one; 0 for none) that last fit.
    last_fit: AtomicU64,
}

impl SchemaWatch {
    /// The verdict on schema `id` if it is already known (seen, settled or refused).
    pub fn known(&self, id: u32) -> Option<Verdict> {
        // Records come in runs of one schema id: the last one that fit is answered
        // without a lock or a lookup.
        if self.last_fit.load(Ordering::Relaxed) == u64::from(id) + 1 {
            return Some(Verdict::Fits);
        }
        let verdict = if let Some(reason) = self.refused.get(&id) {
            Some(Verdict::Refused(reason.clone()))
        } else if self.settled.contains(&id) {
            Some(Verdict::Fits)
        } else {
            self.seen.lock().ok().and_then(|m| m.get(&id).cloned())
        };
        if verdict == Some(Verdict::Fits) {
            self.last_fit.store(u64::from(id) + 1, Ordering::Relaxed);
        }
        verdict
    }

    /// The subject the source's columns come from.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Judges writer schema `id` (version `version`) with columns `fields`, and
    /// remembers the verdict for the rest of the run.
    pub fn judge(&self, id: u32, version: Option<u32>, fields: &[Field]) -> Verdict {
        let mut adds = vec![];
        for f in fields {
            match self.columns.iter().find(|(name, _)| name == f.name()) {
                None => adds.push(format!("{} (new)", f.name())),
                Some((_, t)) if widens(t, f.data_type()) => {
                    adds.push(format!("{} {t} to {}", f.name(), f.data_type()));
                }
                Some(_) => {}
            }
        }
        let verdict = if adds.is_empty() {
            Verdict::Fits
        } else {
            Verdict::Adds(SchemaChange {
                source: self.source,
                source_name: self.source_name.clone(),
                schema_id: id,
                version,
                columns_version: self.columns_version,
                columns: adds,
            })
        };
        if let Ok(mut m) = self.seen.lock() {
            m.insert(id, verdict.clone());
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SourceDef {
        let text = "CREATE CATALOG c WITH ('type' = 'sql', 'uri' = 'sqlite://x.db', 'warehouse' = 'file:///w');
            CREATE SOURCE orders (id BIGINT, qty INT) WITH ('connector' = 'kafka', \
              'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
            CREATE TABLE c.n.t (id BIGINT);
            INSERT INTO c.n.t SELECT id FROM orders;";
        let job = floe_sql::parse_job("job.sql", text, &floe_sql::EnvVariables).expect("parses");
        job.sources[0].clone()
    }

    #[test]
    fn new_fields_and_promotions_add_columns_and_the_rest_fits() {
        let memory = SchemaMemory::default();
        let watch = memory.watch(0, &source());
        let same = [
            Field::new("id", DataType::Int64, true),
            Field::new("qty", DataType::Int32, true),
        ];
        assert_eq!(watch.judge(1, Some(1), &same), Verdict::Fits);
        // Narrower is no change: the source's columns still take the values.
        let narrower = [Field::new("id", DataType::Int32, true)];
        assert_eq!(watch.judge(2, Some(2), &narrower), Verdict::Fits);
        let more = [
            Field::new("id", DataType::Int64, true),
            Field::new("qty", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
        ];
        let Verdict::Adds(change) = watch.judge(3, Some(3), &more) else {
            panic!("adds columns");
        };
        assert_eq!(change.columns, vec!["qty Int32 to Int64", "note (new)"]);
        assert_eq!(watch.known(3), Some(Verdict::Adds(change.clone())));
        assert_eq!(watch.known(4), None);

        // The next run: the id is settled, or refused.
        let mut memory = memory;
        memory.settle(&change);
        assert_eq!(memory.watch(0, &source()).known(3), Some(Verdict::Fits));
        memory.refuse(&change, "no".into());
        assert_eq!(
            memory.watch(0, &source()).known(3),
            Some(Verdict::Refused("no".into()))
        );
    }
}
