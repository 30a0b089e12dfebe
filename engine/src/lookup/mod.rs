//! Lookup tables: the Iceberg tables and compacted topics a job's INSERTs join their streams with.
//!
//! Before the job is planned, each lookup table's columns are read from its catalog
//! ([`read_schemas`]). Before the first batch, each table's current snapshot is read
//! into memory and indexed ([`start`]); from then on a task per table checks the table
//! every `'lookup.refresh-interval'` and, when it has a new snapshot, reads and indexes
//! that one off the executor and swaps it in between batches. A table that cannot be
//! read, or that outgrows `'lookup.max-memory'`, stops the job at start; on a refresh it
//! is logged and counted, and joins go on with the version they have.
//!
//! A compacted topic declared with `'connector' = 'upsert-kafka'` is a lookup table too:
//! `topic` reads it to its end before the first batch and follows it from then on.

mod load;
mod refresh;
mod topic;
mod upserts;

use std::collections::HashMap;
use std::sync::Arc;

use floe_catalog::OpenCatalog;
use floe_sql::CompiledJob;
use floe_sql::job::JobFile;
use iceberg::arrow::schema_to_arrow_schema;
use tokio::task::JoinHandle;

use crate::error::{EngineError, Result};
use crate::setup::{catalog_of, open_catalogs};

pub use load::{LoadedVersion, load_version};

/// Gives every lookup table of `job` its columns: the table's current schema.
pub async fn read_schemas(job: &mut JobFile) -> Result<()> {
    if job.lookups.is_empty() {
        return Ok(());
    }
    let catalogs = open_catalogs(job).await?;
    for lookup in &mut job.lookups {
        let cat = catalog_of(&catalogs, &lookup.name)?;
        let table = load::load_table(cat, &lookup.name).await?;
        let schema = schema_to_arrow_schema(table.metadata().current_schema()).map_err(|e| {
            EngineError::Lookup {
                table: lookup.name.to_string(),
                message: format!("its schema has no Arrow form: {e}"),
                retryable: false,
            }
        })?;
        lookup.schema = Some(Arc::new(load::without_field_ids(&schema)));
    }
    Ok(())
}

/// The refresh tasks of a job's lookup tables and the threads that follow its lookup
/// topics; they stop when this is dropped.
#[derive(Debug, Default)]
pub struct Lookups {
    tasks: Vec<JoinHandle<()>>,
    topics: Vec<topic::TopicLookup>,
}

impl Drop for Lookups {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Loads the current version of every lookup table of `compiled` (Iceberg tables, and
/// topics read to their end) and starts keeping it up to date. Fails if a table cannot
/// be read or is too large.
pub async fn start(
    compiled: &CompiledJob,
    catalogs: &HashMap<String, OpenCatalog>,
) -> Result<Lookups> {
    let mut out = Lookups::default();
    let every = compiled.job.lookup_options.refresh_interval;
    for (def, slot) in compiled.job.lookups.iter().zip(&compiled.lookups) {
        let cat = catalog_of(catalogs, &def.name)?;
        let table = load::load_table(cat, &def.name).await?;
        let loaded = load_version(&table, slot.clone()).await?;
        let snapshot = loaded.snapshot;
        loaded.install(slot);
        out.tasks.push(tokio::spawn(refresh::keep_fresh(
            cat.clone(),
            def.name.clone(),
            slot.clone(),
            every,
            snapshot,
        )));
    }
    for (def, slot) in compiled
        .job
        .lookup_topics
        .iter()
        .zip(&compiled.topic_lookups)
    {
        let bootstrap = &def.kafka.bootstrap_servers;
        out.topics
            .push(topic::follow(def, bootstrap, slot.clone()).await?);
    }
    Ok(out)
}
