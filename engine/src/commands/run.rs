//! `floe run`: the long-lived job.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use floe_catalog::checkpoint::CheckpointSource;
use floe_catalog::{OpenCatalog, TopicPartition};
use floe_sinks::{MaintenanceConfig, NewestTable, RetryPolicy};
use floe_sql::CompiledJob;
use floe_sql::job::{EmbeddedFeed, SourceDef, TableName, TableOptions};
use tracing::{Instrument, error, info, warn};

use crate::embedded::broker::{EmbeddedBroker, RETENTION_BYTES_PER_PARTITION, retained_records};
use crate::embedded::generator::{Feed, GenerateSpec, produce, typical_record_bytes};
use crate::error::Result;
use crate::maintenance::{MaintainedTable, config_of};
use crate::pipeline::{self, RunOptions, TableState, lane_job, lane_start};
use crate::setup::{
    catalog_of, ensure_dead_letter_tables, ensure_tables, load_and_compile, open_catalogs,
    table_ident,
};
use crate::shutdown;

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
    let compiled = load_and_compile(path).await?;
    let span = tracing::info_span!("job", job = %compiled.job.name);
    run_job(compiled, args).instrument(span).await
}

async fn run_job(compiled: floe_sql::CompiledJob, args: RunArgs) -> Result<()> {
    let job = &compiled.job;
    let catalogs = open_catalogs(job).await?;
    let mut states = target_states(&compiled, &catalogs).await?;
    let lanes = dead_letter_lanes(&compiled, &catalogs, &states).await?;
    states.extend(lanes);
    let newest = share_newest(&mut states);

    // Sources on the embedded broker: start it and its generators.
    let mut broker: Option<EmbeddedBroker> = None;
    let mut bootstraps = vec![];
    let mut generators = vec![];
    for (i, s) in job.sources.iter().enumerate() {
        match &s.kafka.embedded {
            None => bootstraps.push(s.kafka.bootstrap_servers.clone()),
            Some(feed) => {
                if broker.is_none() {
                    // This job is the broker's only consumer: no other member is worth
                    // waiting for before the first assignment.
                    broker = Some(EmbeddedBroker::start(Duration::ZERO)?);
                }
                let Some(b) = broker.as_ref() else { continue };
                b.create_topic(&s.kafka.topic, feed.partitions)?;
                let bootstrap = b.bootstrap_servers();
                info!(source = %s.name, %bootstrap, topic = %s.kafka.topic, "embedded broker started");
                let spec = feed_spec(s, feed, &states, i)?;
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
                let addr = bootstrap.clone();
                generators.push(std::thread::spawn(move || match produce(&addr, &spec) {
                    Ok(n) => info!(records = n, topic = %spec.topic, "generator finished"),
                    Err(e) => error!(error = %e, "generator failed"),
                }));
                bootstraps.push(bootstrap);
            }
        }
    }

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
        maintained_tables(job, &catalogs, &newest)?,
        opts.retry.clone(),
    );
    let stop = shutdown::install().map_err(|e| {
        crate::error::EngineError::Other(format!("cannot install signal handlers: {e}"))
    })?;
    let counters = pipeline::run(compiled, states, bootstraps, opts, stop).await?;
    let usage = crate::resources::usage();
    info!(
        records_in = counters.records_in,
        rows_out = counters.rows_out,
        commits = counters.commits,
        peak_rss_mib = usage.map_or(0, |u| u.peak_rss_bytes / (1024 * 1024)),
        cpu_seconds = usage.map_or(0.0, |u| (u.cpu_seconds * 100.0).round() / 100.0),
        "job stopped cleanly"
    );
    drop(maintainer);
    drop(broker);
    Ok(())
}

/// One [`NewestTable`] per table, shared by every state that commits to it (a target, or
/// the dead-letter lanes of several targets) and by its maintenance.
fn share_newest(states: &mut [TableState]) -> HashMap<TableName, NewestTable> {
    let mut shared: HashMap<TableName, NewestTable> = HashMap::new();
    for s in states {
        s.share_newest(shared.entry(s.name.clone()).or_default().clone());
    }
    shared
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
            cat.catalog.clone(),
            table,
            def.options.clone(),
            &job.name,
            sources_of(compiled, &def.name),
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
                cat.catalog.clone(),
                table.clone(),
                TableOptions {
                    commit_interval: def.options.commit_interval,
                    ..TableOptions::default()
                },
                &lane_job(&job.name, &def.name),
                sources_of(compiled, &def.name),
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
