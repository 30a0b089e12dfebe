//! `floe run`: the long-lived job.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use floe_catalog::checkpoint::CheckpointSource;
use floe_catalog::{OpenCatalog, TopicPartition};
use floe_sinks::{MaintenanceConfig, NewestTable, RetryPolicy, SinkError};
use floe_sql::job::{EmbeddedFeed, JobFile, SourceDef, TableName, TableOptions};
use floe_sql::{CompiledJob, compile};
use tracing::{Instrument, error, info, warn};

use crate::embedded::broker::{EmbeddedBroker, RETENTION_BYTES_PER_PARTITION, retained_records};
use crate::embedded::generator::{Feed, GenerateSpec, produce, typical_record_bytes};
use crate::error::{EngineError, Result};
use crate::maintenance::{MaintainedTable, config_of};
use crate::pipeline::{self, Counters, RunOptions, TableState, lane_job, lane_start};
use crate::setup::{
    catalog_of, ensure_dead_letter_tables, ensure_tables, load_runnable_job, open_catalogs,
    plan_job, table_ident,
};
use crate::shutdown;
use floe_formats::evolution::{SchemaChange, SchemaMemory};

/// Settings from the command line.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// Exit once idle this long.
    pub stop_when_idle: Option<Duration>,
    /// Progress line interval.
    pub progress_interval: Duration,
    /// Graceful shutdown limit.
    pub shutdown_timeout: Duration,
    /// Where to serve metrics and probes, if anywhere.
    pub metrics_addr: Option<String>,
    /// Liveness bound of the pipeline loop.
    pub liveness_timeout: Duration,
}

/// Runs the job at `path` until a signal (or idleness) stops it.
pub async fn run(path: &Path, args: RunArgs) -> Result<()> {
    // Probes answer from the start: alive while the job starts, ready once it reads.
    if let Some(addr) = &args.metrics_addr {
        crate::observe::server::serve(addr).await?;
    }
    let parsed = load_runnable_job(path)?;
    let compiled = plan_job(parsed.clone()).await?;
    let span = tracing::info_span!("job", job = %compiled.job.name);
    run_job(parsed, compiled, args).instrument(span).await
}

/// Runs the job until it stops; each time a writer schema adds columns, the run ends
/// after committing, and the job is planned again from `parsed` (`replan`).
async fn run_job(parsed: JobFile, compiled: CompiledJob, args: RunArgs) -> Result<()> {
    let catalogs = open_catalogs(&compiled.job).await?;
    let mut states = job_states(&compiled, &catalogs).await?;
    let mut lookups = crate::lookup::start(&compiled, &catalogs).await?;
    let mut newest = HashMap::new();
    share_newest(&mut states, &mut newest);
    let (broker, bootstraps) = start_embedded(&compiled.job, &states)?;
    let opts = RunOptions {
        stop_when_idle: args.stop_when_idle,
        progress_interval: args.progress_interval,
        shutdown_timeout: args.shutdown_timeout,
        retry: RetryPolicy {
            faults: crate::failpoint::commit_faults(),
            ..RetryPolicy::default()
        },
        liveness_timeout: args.liveness_timeout,
    };
    let maintainer = crate::maintenance::start(
        maintained_tables(&compiled.job, &catalogs, &newest)?,
        opts.retry.clone(),
    );
    let stop = shutdown::install().map_err(|e| {
        crate::error::EngineError::Other(format!("cannot install signal handlers: {e}"))
    })?;
    let mut schemas = SchemaMemory::default();
    let mut totals = Counters::default();
    let mut compiled = compiled;
    loop {
        let previous = compiled.job.clone();
        let ended = pipeline::run(
            compiled,
            states,
            bootstraps.clone(),
            opts.clone(),
            &schemas,
            stop.requested(),
        )
        .await?;
        add_counters(&mut totals, &ended.counters);
        let Some(change) = ended.schema_change else {
            break;
        };
        crate::observe::health().replanning();
        (compiled, states) = replan(&parsed, previous, &catalogs, &change, &mut schemas).await?;
        lookups = crate::lookup::start(&compiled, &catalogs).await?;
        share_newest(&mut states, &mut newest);
    }
    let usage = crate::resources::usage();
    info!(
        records_in = totals.records_in,
        rows_out = totals.rows_out,
        commits = totals.commits,
        peak_rss_mib = usage.map_or(0, |u| u.peak_rss_bytes / (1024 * 1024)),
        cpu_seconds = usage.map_or(0.0, |u| (u.cpu_seconds * 100.0).round() / 100.0),
        "job stopped cleanly"
    );
    drop(lookups);
    drop(maintainer);
    drop(broker);
    Ok(())
}

fn add_counters(totals: &mut Counters, run: &Counters) {
    totals.records_in += run.records_in;
    totals.bytes_in += run.bytes_in;
    totals.rows_out += run.rows_out;
    totals.skipped += run.skipped;
    totals.commits += run.commits;
}

/// Plans the job again after `change` ended a run: from the registry's latest schemas,
/// with its tables evolved to the new columns. If a table cannot take them (a column's
/// type changes family, a NOT NULL column the new version lacks), the previous plan goes
/// on and the writer schema is refused: its records are bad records of kind `type`,
/// which each table's policy dead-letters, drops or stops the job at.
async fn replan(
    parsed: &JobFile,
    previous: JobFile,
    catalogs: &HashMap<String, OpenCatalog>,
    change: &SchemaChange,
    schemas: &mut SchemaMemory,
) -> Result<(CompiledJob, Vec<TableState>)> {
    schemas.settle(change);
    let attempt = async {
        let compiled = plan_job(parsed.clone()).await?;
        let states = job_states(&compiled, catalogs).await?;
        Ok::<_, EngineError>((compiled, states))
    }
    .await;
    match attempt {
        Ok(planned) => {
            info!(source = %change.source_name, schema_id = change.schema_id, version = ?change.version, "planned again for the new writer schema");
            Ok(planned)
        }
        Err(e) if cannot_take(&e) => {
            let reason = format!("{change}, which the tables cannot take: {e}");
            error!(source = %change.source_name, schema_id = change.schema_id, %reason,
                "refusing the writer schema: its records are bad records (kind 'type'), handled by each table's policy");
            schemas.refuse(change, reason);
            let compiled = compile(previous).await?;
            let states = job_states(&compiled, catalogs).await?;
            Ok((compiled, states))
        }
        Err(e) => Err(e),
    }
}

/// Whether planning failed because of what the new columns are (rather than, say, a
/// catalog that cannot be reached).
fn cannot_take(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::Job(_) | EngineError::Sink(SinkError::Incompatible { .. })
    )
}

/// The states of the job's target tables and dead-letter lanes, ready to run.
async fn job_states(
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

/// Starts the embedded broker and the generators of the sources that use it; returns
/// the broker (stopped when dropped) and every source's bootstrap servers.
fn start_embedded(
    job: &JobFile,
    states: &[TableState],
) -> Result<(Option<EmbeddedBroker>, Vec<String>)> {
    let mut broker: Option<EmbeddedBroker> = None;
    let mut bootstraps = vec![];
    for (i, s) in job.sources.iter().enumerate() {
        let Some(feed) = &s.kafka.embedded else {
            bootstraps.push(s.kafka.bootstrap_servers.clone());
            continue;
        };
        if broker.is_none() {
            // This job is the broker's only consumer: no other member is worth waiting
            // for before the first assignment.
            broker = Some(EmbeddedBroker::start(Duration::ZERO)?);
        }
        let Some(b) = broker.as_ref() else { continue };
        b.create_topic(&s.kafka.topic, feed.partitions)?;
        let bootstrap = b.bootstrap_servers();
        info!(source = %s.name, %bootstrap, topic = %s.kafka.topic, "embedded broker started");
        start_generator(s, feed, states, i, &bootstrap)?;
        bootstraps.push(bootstrap);
    }
    Ok((broker, bootstraps))
}

/// Starts the generator of embedded source `s` (index `i`) on a thread of its own.
fn start_generator(
    s: &SourceDef,
    feed: &EmbeddedFeed,
    states: &[TableState],
    i: usize,
    bootstrap: &str,
) -> Result<()> {
    let spec = feed_spec(s, feed, states, i)?;
    let per_partition = feed
        .records
        .map_or(u64::MAX, |n| n.div_ceil(u64::from(feed.partitions)));
    let retained = retained_records(typical_record_bytes(spec.feed));
    if feed.rate.is_none() && per_partition > retained {
        warn!(
            source = %s.name,
            "the embedded broker keeps only the newest {} MB (about {retained} records of this feed) per partition; \
             unpaced, the generator can outrun the job and records will expire unread (the job then stops with an \
             out-of-range error). Set 'embedded.rate' or more 'embedded.partitions'",
            RETENTION_BYTES_PER_PARTITION >> 20
        );
    }
    let addr = bootstrap.to_string();
    std::thread::spawn(move || match produce(&addr, &spec) {
        Ok(n) => info!(records = n, topic = %spec.topic, "generator finished"),
        Err(e) => error!(error = %e, "generator failed"),
    });
    Ok(())
}

/// One [`NewestTable`] per table, shared by every state that commits to it (a target, or
/// the dead-letter lanes of several targets) and by its maintenance, across the job's
/// runs.
fn share_newest(states: &mut [TableState], shared: &mut HashMap<TableName, NewestTable>) {
    for s in states {
        s.share_newest(shared.entry(s.name.clone()).or_default().clone());
    }
}

/// The tables the job keeps healthy while it runs: its targets with maintenance on, and
/// their dead-letter tables (with the options of the first target that routes to them).
fn maintained_tables(
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

/// What the generator of an embedded source produces: first the log up to what the
/// tables have committed (rebuilt deterministically, so offsets line up with the
/// committed ones), then the configured number of new records.
fn feed_spec(
    s: &SourceDef,
    feed: &EmbeddedFeed,
    tables: &[TableState],
    source: usize,
) -> Result<GenerateSpec> {
    let parts = feed.partitions;
    let new_per_partition = feed
        .records
        .map_or(u64::MAX / 4, |n| n.div_ceil(u64::from(parts)));
    let mut ranges = vec![];
    let mut paced_from = vec![];
    for p in 0..parts {
        let tp = TopicPartition::new(s.kafka.topic.clone(), p as i32);
        let committed = tables
            .iter()
            .filter(|t| t.sources.contains(&source))
            .filter_map(|t| t.committed.get(&tp))
            .max()
            .unwrap_or(0)
            .max(0) as u64;
        ranges.push((0, committed.saturating_add(new_per_partition)));
        paced_from.push(committed);
    }
    Ok(GenerateSpec {
        topic: s.kafka.topic.clone(),
        partitions: parts,
        ranges,
        rate: feed.rate,
        paced_from,
        seed: feed.seed,
        properties: vec![],
        dirty_every: feed.dirty_every,
        feed: Feed::parse(&feed.generator).unwrap_or_default(),
        avro_schema_id: crate::embedded::avro_feed::register_for(s, feed)?,
    })
}
