//! The `floe` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod commands;
mod embedded;
mod logging;

use clap::{Parser, Subcommand};
use floe_devtools::generator::Feed;
use floe_engine::exit::exit_code;

use crate::commands::query::OutputFormat;
use floe_engine::job::RunArgs;

/// Floe moves Kafka topics into Apache Iceberg tables, exactly once, with the cleaning and
/// validation written as SQL.
///
/// A job file declares catalogs (CREATE CATALOG), Kafka sources (CREATE SOURCE), Iceberg
/// tables (CREATE TABLE … PARTITIONED BY …) and the INSERT INTO … SELECT statements that
/// connect them. `${VAR}` and `${VAR:-default}` in option values come from the environment.
#[derive(Debug, Parser)]
#[command(name = "floe", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a job until SIGINT/SIGTERM: read, transform, write and commit continuously.
    ///
    /// The first signal stops reading, commits what was read and exits 0; a second one
    /// exits at once (safe: uncommitted records are read again on the next start).
    Run {
        /// The job file.
        job: PathBuf,
        /// Stop (after committing) once no record has arrived for this long, e.g. '10s'.
        #[arg(long, value_parser = duration)]
        stop_when_idle: Option<Duration>,
        /// How often to print the progress line.
        #[arg(long, value_parser = duration, default_value = "5s")]
        progress_interval: Duration,
        /// How long a graceful stop may take before Floe gives up committing.
        #[arg(long, value_parser = duration, default_value = "60s")]
        shutdown_timeout: Duration,
        /// Serve Prometheus metrics (/metrics) and the liveness and readiness probes
        /// (/healthz, /readyz) on this address, e.g. 0.0.0.0:9249.
        #[arg(long, env = "FLOE_METRICS_ADDR")]
        metrics_addr: Option<String>,
        /// /healthz fails once the pipeline loop has not turned for this long (a commit
        /// that is retrying counts as turning, up to its retry deadline).
        #[arg(long, value_parser = duration, default_value = "60s")]
        liveness_timeout: Duration,
    },
    /// Parse and plan a job without touching Kafka or the catalog.
    Validate {
        /// The job file.
        job: PathBuf,
    },
    /// Print the DataFusion plan of each INSERT.
    Explain {
        /// The job file.
        job: PathBuf,
    },
    /// Run ad-hoc SQL over the job's Iceberg tables, e.g.
    /// `floe query --job job.sql "SELECT count(*) FROM lake.sales.orders_clean"`.
    Query {
        /// The job file whose catalogs to open.
        #[arg(long)]
        job: PathBuf,
        /// The query; tables are catalog.namespace.table.
        sql: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
    },
    /// Show a table's snapshots, row count and the Kafka offsets the job has committed.
    Describe {
        /// The job file whose catalogs to open.
        #[arg(long)]
        job: PathBuf,
        /// The table, as named in the job (catalog.namespace.table).
        table: String,
    },
    /// Produce generated events (orders, or Nexmark bids, auctions, persons) to a topic,
    /// with a fixed seed (for trials and benchmarks).
    Produce {
        /// Bootstrap servers.
        #[arg(long)]
        bootstrap: String,
        /// Topic.
        #[arg(long, default_value = "orders")]
        topic: String,
        /// Number of records.
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        /// Partitions to spread them over.
        #[arg(long, default_value_t = 4)]
        partitions: u32,
        /// First record index in every partition (to continue an earlier run).
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Records per second (default: as fast as possible).
        #[arg(long)]
        rate: Option<u64>,
        /// Seed of the generator.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// librdkafka producer settings, KEY=VALUE (for example compression.type=lz4).
        #[arg(long = "property", value_parser = key_value)]
        properties: Vec<(String, String)>,
        /// Make one record in N bad, taking turns through every kind of bad record
        /// (not JSON, truncated, invalid UTF-8, wrong types, missing fields, too large, …).
        #[arg(long)]
        dirty_every: Option<u64>,
        /// Which events: orders, or the Nexmark streams bids, auctions, persons.
        #[arg(long, value_enum, default_value_t = Feed::Orders)]
        generator: Feed,
        /// Write orders or bids in Avro (Confluent wire format), their schema registered
        /// under TOPIC-value in the Schema Registry at this URL.
        #[arg(long)]
        avro_registry: Option<String>,
    },
    /// Send the given values as records to a topic, one record each.
    Send {
        /// Bootstrap servers.
        #[arg(long)]
        bootstrap: String,
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition (default: the producer's choice).
        #[arg(long)]
        partition: Option<i32>,
        /// Record key (of every record).
        #[arg(long, conflicts_with = "key_separator")]
        key: Option<String>,
        /// Read each value as key, separator, value (split at the first separator).
        #[arg(long)]
        key_separator: Option<String>,
        /// Send a value equal to this as a null value (a tombstone).
        #[arg(long)]
        null_marker: Option<String>,
        /// Record values.
        #[arg(required = true)]
        values: Vec<String>,
    },
    /// Push a table's dead letters through the job's current rules again: recovered
    /// records land in the table exactly once and are marked in the dead-letter table;
    /// records that still break a rule stay where they are.
    Replay {
        /// The job file.
        #[arg(long)]
        job: PathBuf,
        /// The target table whose dead letters to replay (catalog.namespace.table).
        table: String,
        /// Only dead letters of this rule (a CHECK constraint's name) or kind (malformed,
        /// type, not-null, too-large, expression, check).
        #[arg(long)]
        rule: Option<String>,
        /// Only dead letters caught at or after this time (RFC 3339, e.g. 2026-11-22T10:00:00Z).
        #[arg(long, value_parser = timestamp)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only dead letters caught before this time (RFC 3339).
        #[arg(long, value_parser = timestamp)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Report what would be recovered without committing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// List data files of a table that no snapshot references (written by a writer that
    /// crashed or was fenced before committing), and optionally remove the old ones.
    Orphans {
        /// The job file.
        #[arg(long)]
        job: PathBuf,
        /// The table (catalog.namespace.table).
        table: String,
        /// Remove orphans older than --older-than.
        #[arg(long)]
        remove: bool,
        /// Only orphans at least this old are removed, so that a running writer's files
        /// are left alone until it commits.
        #[arg(long, value_parser = duration, default_value = "1h")]
        older_than: Duration,
    },
    /// Run one maintenance pass on a table (compaction, manifest merging, snapshot
    /// expiry, orphan cleanup) with the job's `maintenance.*` options, for a table whose
    /// job is stopped; a running job maintains its tables itself.
    Maintain {
        /// The job file.
        #[arg(long)]
        job: PathBuf,
        /// The table (catalog.namespace.table).
        table: String,
        /// Say what the pass would do, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the embedded Kafka-protocol broker as a process of its own; prints
    /// `bootstrap.servers=HOST:PORT` and runs until standard input closes.
    Broker {
        /// Topics to create, as name:partitions.
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// How long a new consumer group waits for more members before its first
        /// assignment (Kafka's group.initial.rebalance.delay.ms).
        #[arg(long, value_parser = duration, default_value = "3s")]
        group_join_delay: Duration,
    },
    /// Run the embedded Schema Registry as a process of its own; prints
    /// `url=http://HOST:PORT` and runs until standard input closes (`down` and `up` on
    /// standard input take it down and bring it back).
    Registry {
        /// Where to listen (a free loopback port when not given).
        #[arg(long)]
        listen: Option<String>,
        /// `user:password` that clients must present (HTTP basic authentication).
        #[arg(long, env = "FLOE_REGISTRY_USER_INFO")]
        user_info: Option<String>,
        /// A file that keeps the registered schemas across restarts.
        #[arg(long)]
        state: Option<PathBuf>,
    },
}

fn duration(s: &str) -> Result<Duration, String> {
    floe_sql::parse_duration(s)
}

fn timestamp(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("'{s}' is not an RFC 3339 time like 2026-11-22T10:00:00Z: {e}"))
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{s}' is not KEY=VALUE"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        match cli.command {
            Command::Run {
                job,
                stop_when_idle,
                progress_interval,
                shutdown_timeout,
                metrics_addr,
                liveness_timeout,
            } => {
                commands::run::run(
                    &job,
                    metrics_addr.as_deref(),
                    RunArgs {
                        stop_when_idle,
                        progress_interval,
                        shutdown_timeout,
                        liveness_timeout,
                    },
                )
                .await?
            }
            Command::Validate { job } => commands::explain::validate(&job).await?,
            Command::Explain { job } => commands::explain::explain(&job).await?,
            Command::Query { job, sql, format } => {
                commands::query::query(&job, &sql, format).await?
            }
            Command::Describe { job, table } => commands::describe::describe(&job, &table).await?,
            Command::Produce {
                bootstrap,
                topic,
                records,
                partitions,
                start,
                rate,
                seed,
                properties,
                dirty_every,
                generator,
                avro_registry,
            } => commands::produce::produce(
                &bootstrap,
                commands::produce::ProduceArgs {
                    topic,
                    records,
                    partitions,
                    start,
                    rate,
                    seed,
                    properties,
                    dirty_every,
                    feed: generator,
                    avro_registry,
                },
            )?,
            Command::Send {
                bootstrap,
                topic,
                partition,
                key,
                key_separator,
                null_marker,
                values,
            } => {
                let opts = commands::send::SendOptions {
                    partition,
                    key,
                    key_separator,
                    null_marker,
                };
                commands::send::send(&bootstrap, &topic, &opts, &values)?
            }
            Command::Replay {
                job,
                table,
                rule,
                since,
                until,
                dry_run,
            } => {
                let args = floe_engine::replay::ReplayArgs {
                    table,
                    rule,
                    since,
                    until,
                    dry_run,
                };
                let mut parsed = floe_engine::setup::load_job_for_catalogs(&job)?;
                embedded::Embedded::wire(&mut parsed)?;
                let r = floe_engine::replay::replay(parsed, &job, &args).await?;
                let still: u64 = r.still_bad.values().sum();
                println!(
                    "{}{} dead letters considered: {} recovered into {}{}, {} filtered by the SELECT, {} still break a rule{}",
                    if dry_run { "dry run: " } else { "" },
                    r.considered,
                    r.recovered,
                    args.table,
                    r.snapshot_id.map(|s| format!(" (snapshot {s})")).unwrap_or_default(),
                    r.filtered,
                    still,
                    if still == 0 {
                        String::new()
                    } else {
                        format!(" ({})", floe_engine::pipeline::RecordCounts::show(&r.still_bad))
                    },
                );
                if r.markers > 0 {
                    println!("{} dead letters marked as resolved", r.markers);
                }
            }
            Command::Orphans {
                job,
                table,
                remove,
                older_than,
            } => commands::orphans::orphans(&job, &table, remove, older_than).await?,
            Command::Maintain {
                job,
                table,
                dry_run,
            } => commands::maintain::maintain(&job, &table, dry_run).await?,
            Command::Broker {
                topics,
                group_join_delay,
            } => commands::broker::broker(&topics, group_join_delay)?,
            Command::Registry {
                listen,
                user_info,
                state,
            } => commands::registry::registry(listen, user_info, state)?,
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}
