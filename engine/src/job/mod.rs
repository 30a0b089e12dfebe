//! The long-lived job: plan it, open its tables, start its sources, lookups and
//! maintenance, and run the pipeline until a signal or idleness stops it. When a writer
//! schema adds columns the run ends after committing, the job is planned again and the
//! next run reads on from the committed offsets, in the same process.

mod brokers;
mod states;

use std::collections::HashMap;
use std::time::Duration;

use floe_catalog::OpenCatalog;
use floe_formats::evolution::{SchemaChange, SchemaMemory};
use floe_sinks::{RetryPolicy, SinkError};
use floe_sql::job::JobFile;
use floe_sql::{CompiledJob, compile};
use tracing::{Instrument, error, info};

pub use brokers::{ConfiguredBrokers, SourceBrokers, committed_per_source};
use states::{job_states, maintained_tables, share_newest};

use crate::error::{EngineError, Result};
use crate::pipeline::{self, Counters, RunOptions, TableState};
use crate::plan::plan_job;
use crate::setup::open_catalogs;
use crate::shutdown;

/// How a job runs.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// Exit once idle this long.
    pub stop_when_idle: Option<Duration>,
    /// Progress line interval.
    pub progress_interval: Duration,
    /// Graceful shutdown limit.
    pub shutdown_timeout: Duration,
    /// Liveness bound of the pipeline loop.
    pub liveness_timeout: Duration,
}

/// Plans the parsed job and runs it until a signal (or idleness) stops it; `brokers`
/// says where each source's Kafka is.
pub async fn run(parsed: JobFile, args: RunArgs, brokers: &mut dyn SourceBrokers) -> Result<()> {
    let compiled = plan_job(parsed.clone()).await?;
    let span = tracing::info_span!("job", job = %compiled.job.name);
    run_job(parsed, compiled, args, brokers)
        .instrument(span)
        .await
}

/// Runs the job until it stops; each time a writer schema adds columns, the run ends
/// after committing, and the job is planned again from `parsed` (`replan`).
async fn run_job(
    parsed: JobFile,
    compiled: CompiledJob,
    args: RunArgs,
    brokers: &mut dyn SourceBrokers,
) -> Result<()> {
    let catalogs = open_catalogs(&compiled.job).await?;
    let mut states = job_states(&compiled, &catalogs).await?;
    let mut lookups = crate::lookup::start(&compiled, &catalogs).await?;
    let mut newest = HashMap::new();
    share_newest(&mut states, &mut newest);
    let bootstraps =
        brokers.bootstraps(&compiled.job, &committed_per_source(&compiled.job, &states))?;
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
    let stop = shutdown::install()
        .map_err(|e| EngineError::Runtime(format!("cannot install signal handlers: {e}")))?;
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
