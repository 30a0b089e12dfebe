//! The states a job runs with: one per target table and per dead-letter lane, each
//! resumed from its checkpoint, and the tables kept healthy while it runs.

use std::collections::HashMap;

use floe_catalog::OpenCatalog;
use floe_catalog::checkpoint::CheckpointSource;
use floe_sinks::{MaintenanceConfig, NewestTable, RetryPolicy};
use floe_sql::CompiledJob;
use floe_sql::job::{TableName, TableOptions};
use tracing::info;

use crate::error::Result;
use crate::maintenance::{MaintainedTable, config_of};
use crate::pipeline::{TableState, lane_job, lane_start};
use crate::setup::{catalog_of, ensure_dead_letter_tables, ensure_tables, table_ident};

/// The states of the job's target tables and dead-letter lanes, ready to run.
pub(super) async fn job_states(
    compiled: &CompiledJob,
    catalogs: &HashMap<String, OpenCatalog>,
) -> Result<Vec<TableState>> {
    let mut states = target_states(compiled, catalogs).await?;
    let lanes = dead_letter_lanes(compiled, catalogs, &states).await?;
    states.extend(lanes);
    let policy = RetryPolicy::default();
    for s in &mut states {
        s.announce_interval(&policy).await?;
    }
    Ok(states)
}

/// One [`NewestTable`] per table, shared by every state that commits to it (a target, or
/// the dead-letter lanes of several targets) and by its maintenance, across the job's
/// runs.
pub(super) fn share_newest(
    states: &mut [TableState],
    shared: &mut HashMap<TableName, NewestTable>,
) {
    for s in states {
        s.share_newest(shared.entry(s.name.clone()).or_default().clone());
    }
}

/// The tables the job keeps healthy while it runs: its targets with maintenance on, and
/// their dead-letter tables (with the options of the first target that routes to them).
pub(super) fn maintained_tables(
    job: &floe_sql::job::JobFile,
    catalogs: &HashMap<String, OpenCatalog>,
    newest: &HashMap<TableName, NewestTable>,
) -> Result<Vec<MaintainedTable>> {
    let mut out: Vec<MaintainedTable> = vec![];
    let on = job.tables.iter().filter(|d| d.options.maintenance.enabled);
    for def in on {
        let names = std::iter::once(&def.name).chain(def.quality.dead_letter.as_ref());
        for name in names {
            if out.iter().any(|t| &t.name == name) {
                continue;
            }
            let m = &def.options.maintenance;
            out.push(MaintainedTable {
                name: name.clone(),
                ident: table_ident(name)?,
                catalog: catalog_of(catalogs, name)?.clone(),
                config: MaintenanceConfig {
                    publish_to: newest.get(name).cloned(),
                    ..config_of(m, def.options.target_file_size, &job.name)
                },
                interval: m.interval,
                cache: floe_catalog::ManifestCache::default(),
            });
        }
    }
    Ok(out)
}

/// The state of every target table of the job, each checked for a checkpoint it can
/// resume from.
async fn target_states(
    compiled: &CompiledJob,
    catalogs: &HashMap<String, OpenCatalog>,
) -> Result<Vec<TableState>> {
    let job = &compiled.job;
    let tables = ensure_tables(job, catalogs).await?;
    let mut states = vec![];
    for (def, table) in job.tables.iter().zip(tables) {
        let cat = catalog_of(catalogs, &def.name)?;
        let state = TableState::new(
            def.name.clone(),
            cat.clone(),
            table,
            def.options.clone(),
            &job.name,
            sources_of(compiled, &def.name),
            &column_names(&def.schema()),
        )?;
        state.check_checkpoint()?;
        match state.checkpoint {
            Some(CheckpointSource::Ancestry) => {
                info!(table = %def.name, offsets = %state.committed.to_json(), "resuming from committed offsets");
            }
            Some(CheckpointSource::Property) => {
                info!(table = %def.name, offsets = %state.committed.to_json(),
                    "resuming from the checkpoint kept in the table's properties (the job's snapshots were expired or are hidden by another writer's)");
            }
            None => {}
        }
        states.push(state);
    }
    Ok(states)
}

/// The names of a schema's columns.
fn column_names(schema: &arrow_schema::SchemaRef) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// The sources the INSERTs into `target` read.
fn sources_of(compiled: &CompiledJob, target: &TableName) -> Vec<usize> {
    compiled
        .inserts
        .iter()
        .filter(|i| &i.target == target)
        .map(|i| i.source)
        .collect()
}

/// One dead-letter lane per target that routes bad records to a dead-letter table (see
/// `pipeline::dead_letter_lanes`), committed on its target's interval; a lane without a
/// checkpoint starts where its target is.
async fn dead_letter_lanes(
    compiled: &CompiledJob,
    catalogs: &HashMap<String, OpenCatalog>,
    targets: &[TableState],
) -> Result<Vec<TableState>> {
    let job = &compiled.job;
    let mut lanes = vec![];
    for (name, _, table) in ensure_dead_letter_tables(job, catalogs).await? {
        let cat = catalog_of(catalogs, &name)?;
        let served = job
            .tables
            .iter()
            .filter(|t| t.quality.dead_letter.as_ref() == Some(&name));
        for def in served {
            let mut lane = TableState::new(
                name.clone(),
                cat.clone(),
                table.clone(),
                TableOptions {
                    commit_interval: def.options.commit_interval,
                    ..TableOptions::default()
                },
                &lane_job(&job.name, &def.name),
                sources_of(compiled, &def.name),
                &column_names(&floe_sinks::dead_letter_schema()),
            )?;
            lane.dead_letters_of = Some(def.name.clone());
            if lane.checkpoint.is_none() {
                let target = targets
                    .iter()
                    .find(|t| t.name == def.name)
                    .map(TableState::positions)
                    .unwrap_or_default();
                lane.adopt(&lane_start(&name, table.metadata(), &job.name, &target)?);
            }
            lanes.push(lane);
        }
    }
    Ok(lanes)
}
