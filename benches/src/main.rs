//! `floe-bench`: the end-to-end ingest benchmark.
//!
//! In one run, on one pre-produced topic of Nexmark bids, it measures the ceilings
//! (consume-only, decode-only, encode-only), Floe end to end for each job in
//! `benches/jobs`, and the Python baseline (confluent-kafka + pyarrow + pyiceberg); the
//! `-avro` jobs read the same bids in Avro from a second topic, through `floe registry`,
//! beside ceilings of their own. Then, in a separate run at a fixed rate below
//! saturation, freshness. It prints a table and writes JSON to `benches/results/`.

mod broker;
mod ceilings;
mod commit_log;
mod floe_job;
mod long_run;
mod registry;
mod report;
mod scraper;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;
use floe_devtools::broker::retained_records;
use floe_devtools::generator::{Feed, typical_record_bytes};
use floe_sql::{EnvVariables, parse_job};
use serde_json::json;

use crate::broker::{Broker, floe_binary};
use crate::report::{Row, percentile};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Floe's end-to-end ingest benchmark (see the README's performance section)")]
struct Args {
    /// Bids to pre-produce. The broker keeps about 5 MB per partition (some 30 000
    /// bids), so more events need more partitions.
    #[arg(long, default_value_t = 800_000)]
    events: u64,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 32)]
    partitions: u32,
    /// Jobs of benches/jobs to run.
    /// `-avro` jobs read the same bids in Avro through a Schema Registry.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "q0,q1,q2,validate,q0-avro,validate-avro,enrich,enrich-1m,enrich-topic"
    )]
    jobs: Vec<String>,
    /// Producer settings, KEY=VALUE (for example compression.type=lz4).
    #[arg(long = "producer-property")]
    producer_properties: Vec<String>,
    /// Commit interval of the throughput runs (the Python baseline appends as often). The
    /// run ends with the commit that covers the last record, so a long interval adds up
    /// to one interval of waiting to Floe's time.
    #[arg(long, default_value = "1s")]
    commit_interval: String,
    /// Skip the Python baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Records per second of the freshness run (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    freshness_rate: u64,
    /// Seconds of the freshness run.
    #[arg(long, default_value_t = 20)]
    freshness_seconds: u64,
    /// Partitions of the freshness topic. librdkafka's mock broker spends about a core
    /// serving a 32-partition topic at 20 000 records/s, which on two cores would measure
    /// the broker rather than Floe.
    #[arg(long, default_value_t = 4)]
    freshness_partitions: u32,
    /// Scrape each Floe job's metrics endpoint this often while it runs (e.g. 100ms),
    /// to measure what scraping costs.
    #[arg(long, value_parser = floe_sql::parse_duration)]
    scrape_every: Option<std::time::Duration>,
    /// Instead of the throughput run: two jobs side by side, maintenance on and off,
    /// each committing every 200 ms this many times, sampled as they go (see
    /// `benches/src/long_run.rs`).
    #[arg(long)]
    long_run: Option<u64>,
    /// Bids per second of the long run.
    #[arg(long, default_value_t = 1000)]
    long_run_rate: u64,
    /// Commits between the long run's samples.
    #[arg(long, default_value_t = 1000)]
    long_run_every: u64,
    /// Jobs of the long run: `on` (maintenance on), `off`, or both.
    #[arg(long, value_delimiter = ',', default_value = "on,off")]
    long_run_modes: Vec<String>,
    /// A tiny run that checks the benchmark still works (CI).
    #[arg(long)]
    smoke: bool,
    /// Where JSON results go.
    #[arg(long, default_value = "benches/results")]
    out: PathBuf,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn python() -> PathBuf {
    std::env::var_os("FLOE_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"))
}

fn machine() -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    json!({"cpus": cpus, "memory_gib": (mem_kb as f64 / 1048576.0 * 10.0).round() / 10.0, "cpu": model,
           "profile": if cfg!(debug_assertions) { "debug" } else { "release" }})
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.events = 4000;
        args.partitions = 4;
        args.freshness_rate = 2000;
        args.freshness_seconds = 3;
        args.commit_interval = "1s".into();
        // A million-row lookup table measures memory, which a smoke run does not.
        args.jobs.retain(|j| j != "enrich-1m");
        // The scraper and the endpoint are exercised too.
        args.scrape_every
            .get_or_insert(std::time::Duration::from_millis(100));
    }
    let floe = floe_binary()?;
    if let Some(commits) = args.long_run {
        let spec = long_run::LongRunSpec {
            commits,
            rate: args.long_run_rate,
            every: args.long_run_every.max(1),
            modes: args.long_run_modes.clone(),
            out: args.out.clone(),
        };
        return long_run::run(&floe, &repo(), &python(), &spec);
    }
    check_retention(&args)?;
    let jobs_dir = repo().join("benches/jobs");
    let work = tempfile::tempdir()?;
    let topic = "bids";
    let avro = args.jobs.iter().any(|j| j.ends_with("-avro"));
    let registry = avro.then(|| registry::Registry::start(&floe)).transpose()?;
    let auctions_topic = args.jobs.iter().any(|j| j == "enrich-topic");
    let mut topics = vec![topic];
    if avro {
        topics.push(AVRO_TOPIC);
    }
    if auctions_topic {
        topics.push(AUCTIONS_TOPIC);
    }
    let broker = Broker::start_with(&floe, &topics, args.partitions)?;
    let produce = produce_bids(&floe, &broker, registry.as_ref(), &args)?;
    if auctions_topic {
        produce_auctions(&floe, &broker, &args)?;
    }

    eprintln!("ceilings …");
    let vars = BenchVars {
        home: work.path().join("ceiling"),
        bootstrap: broker.bootstrap.clone(),
        registry: registry.as_ref().map(|r| r.url.clone()),
    };
    let (mut rows, mb, parquet_bytes) = ceiling_rows(&jobs_dir, "q0", &vars, &args, "")?;
    let mut avro_mb = mb;
    if avro {
        let (avro_rows, m, _) = ceiling_rows(&jobs_dir, "q0-avro", &vars, &args, " (Avro)")?;
        rows.extend(avro_rows);
        avro_mb = m;
    }
    let n = args.events as f64;
    let consume_rate = n / rows[0].seconds.max(1e-9);
    let avro_consume_rate = rows
        .iter()
        .find(|r| r.name == "consume-only (Avro)")
        .map_or(consume_rate, |r| n / r.seconds.max(1e-9));

    let mut results = serde_json::Map::new();
    for name in &args.jobs {
        let home = work.path().join(name);
        std::fs::create_dir_all(&home)?;
        let path = home.join("job.sql");
        std::fs::write(&path, job_text(&jobs_dir, name)?)?;
        eprintln!("floe {name} …");
        let table = match name.strip_suffix("-avro").unwrap_or(name) {
            "validate" => "validated",
            n if n.starts_with("enrich") => "enrich",
            other => other,
        };
        if let Some(rows) = lookup_rows(name) {
            eprintln!("  writing its lookup table of {rows} auctions …");
            write_auctions(&home, rows)?;
        }
        let mut env = vec![
            ("BENCH_GROUP", format!("floe-bench-{name}")),
            ("COMMIT_INTERVAL", args.commit_interval.clone()),
        ];
        if let Some(r) = registry.as_ref().filter(|_| name.ends_with("-avro")) {
            env.push(("REGISTRY_URL", r.url.clone()));
        }
        let spec = floe_job::JobSpec {
            job: &path,
            home: &home,
            env: &env,
            table,
            events: args.events,
            scrape_every: args.scrape_every,
        };
        let run = floe_job::run(&floe, &broker.bootstrap, &spec).await?;
        if args.scrape_every.is_some() {
            eprintln!("  /metrics answered {} scrapes during the run", run.scrapes);
            if run.scrapes == 0 {
                bail!("floe {name}: the metrics endpoint never answered");
            }
        }
        let (payload_mb, ceiling) = if name.ends_with("-avro") {
            (avro_mb, avro_consume_rate)
        } else {
            (mb, consume_rate)
        };
        let row = Row::floe(name, n, payload_mb, &run, ceiling);
        results.insert(name.clone(), row.to_json(&run));
        rows.push(row);

        if !args.no_baseline && ["q0", "q1", "q2"].contains(&name.as_str()) {
            eprintln!("python baseline {name} …");
            let b = baseline(&broker, topic, &args, name, &home)?;
            rows.push(b);
        }
    }

    // The throughput topic is done with; its broker would only compete for the machine.
    drop(broker);
    let mut freshness = json!(null);
    if args.freshness_rate > 0 {
        eprintln!(
            "freshness: {} bids/s for {} s with commit.interval = 1s …",
            args.freshness_rate, args.freshness_seconds
        );
        freshness = measure_freshness(&floe, &jobs_dir, work.path(), &args).await?;
    }

    for job in ["enrich", "enrich-topic"] {
        report::note_ratio(&mut rows, &format!("floe {job}"), "floe q0", |x| {
            format!("{x:.2}× floe q0 (target ≥ 0.70)")
        });
    }
    // Avro jobs against their JSON twins, the Python baseline against Floe.
    for q in ["q0", "validate"] {
        report::note_ratio(
            &mut rows,
            &format!("floe {q}-avro"),
            &format!("floe {q}"),
            |x| format!("{x:.2}× floe {q} (JSON)"),
        );
    }
    for q in ["q0", "q1", "q2"] {
        report::note_ratio(
            &mut rows,
            &format!("python {q}"),
            &format!("floe {q}"),
            |x| format!("Floe is {:.1}× faster", 1.0 / x.max(1e-9)),
        );
    }
    let table = report::table(&rows);
    println!("{table}");
    if !freshness.is_null() {
        println!(
            "freshness at {} bids/s over {} partitions, commit.interval 1s: p50 {} ms, p99 {} ms, commit p50 {} ms, p99 {} ms (produce time → snapshot visible, {} records after the first commit)",
            args.freshness_rate,
            args.freshness_partitions,
            freshness["p50_ms"],
            freshness["p99_ms"],
            freshness["commit_p50_ms"],
            freshness["commit_p99_ms"],
            freshness["records"]
        );
    }
    let doc = json!({
        "when": chrono::Utc::now().to_rfc3339(),
        "machine": machine(),
        "events": args.events,
        "partitions": args.partitions,
        "payload_mb": mb,
        "produce_seconds": produce.as_secs_f64(),
        "parquet_bytes_encode_only": parquet_bytes,
        "rows": rows.iter().map(Row::summary).collect::<Vec<_>>(),
        "floe": results,
        "freshness": freshness,
    });
    if !args.smoke {
        std::fs::create_dir_all(&args.out)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let text = serde_json::to_string_pretty(&doc)?;
        std::fs::write(args.out.join(format!("{stamp}.json")), &text)?;
        std::fs::write(args.out.join("latest.json"), &text)?;
        std::fs::write(args.out.join("latest.txt"), &table)?;
        eprintln!("results in {}", args.out.join("latest.json").display());
    }
    Ok(())
}

/// Fails when the broker would drop bids before they are read: it keeps about 5 MB per
/// partition (less data per record when the producer compresses).
fn check_retention(args: &Args) -> Result<()> {
    let compressed = args
        .producer_properties
        .iter()
        .any(|p| p.starts_with("compression.type=") && !p.ends_with("=none"));
    let per_partition = args.events.div_ceil(u64::from(args.partitions.max(1)));
    let retained = retained_records(typical_record_bytes(Feed::Bids));
    if !compressed && per_partition > retained {
        bail!(
            "--events {} over --partitions {} puts {per_partition} bids in each partition, but the broker keeps only \
             about {retained} per partition (5 MB): use at least {} partitions, or fewer events",
            args.events,
            args.partitions,
            args.events.div_ceil(retained)
        );
    }
    Ok(())
}

/// Produces the bids, and the same bids in Avro when a registry is given; returns how
/// long the JSON ones took.
fn produce_bids(
    floe: &Path,
    broker: &Broker,
    registry: Option<&registry::Registry>,
    args: &Args,
) -> Result<std::time::Duration> {
    eprintln!(
        "producing {} bids over {} partitions to {} …",
        args.events, args.partitions, broker.bootstrap
    );
    let mut what = broker::Produce {
        topic: "bids",
        generator: "bids",
        events: args.events,
        partitions: args.partitions,
        rate: None,
        properties: &args.producer_properties,
        avro_registry: None,
    };
    let took = broker.produce(floe, &what)?;
    if let Some(r) = registry {
        eprintln!("producing the same bids in Avro to {AVRO_TOPIC} …");
        what.topic = AVRO_TOPIC;
        what.avro_registry = Some(&r.url);
        broker.produce(floe, &what)?;
    }
    Ok(took)
}

/// The topic of the Avro bids.
const AVRO_TOPIC: &str = "bids_avro";

/// The compacted topic of auctions that `enrich-topic` joins bids with.
const AUCTIONS_TOPIC: &str = "auctions";

/// Fills the auctions topic of `enrich-topic`, keyed by auction id: as many auctions as
/// `enrich`'s Iceberg lookup table holds (a smoke run: the 10 000 that bids name).
fn produce_auctions(floe: &Path, broker: &Broker, args: &Args) -> Result<()> {
    let auctions: u64 = if args.smoke { 10_000 } else { 100_000 };
    let per_partition = auctions.div_ceil(u64::from(args.partitions.max(1)));
    let retained = retained_records(typical_record_bytes(Feed::Auctions));
    if per_partition > retained {
        bail!(
            "enrich-topic puts {per_partition} auctions in each of {} partitions, but the broker \
             keeps only about {retained} per partition: use more partitions",
            args.partitions
        );
    }
    eprintln!("producing {auctions} auctions to {AUCTIONS_TOPIC} …");
    let what = broker::Produce {
        topic: AUCTIONS_TOPIC,
        generator: "auctions",
        events: auctions,
        partitions: args.partitions,
        rate: None,
        properties: &args.producer_properties,
        avro_registry: None,
    };
    broker.produce(floe, &what)?;
    Ok(())
}

/// Variables of the benchmark jobs when parsed in-process.
struct BenchVars {
    home: PathBuf,
    bootstrap: String,
    registry: Option<String>,
}

impl floe_sql::Variables for BenchVars {
    fn get(&self, name: &str) -> Option<String> {
        match name {
            "BENCH_HOME" => Some(self.home.display().to_string()),
            "KAFKA_BOOTSTRAP" => Some(self.bootstrap.clone()),
            "REGISTRY_URL" => self.registry.clone(),
            _ => floe_sql::Variables::get(&EnvVariables, name),
        }
    }
}

/// The text of job `name`: a file of `benches/jobs`, or for `NAME-avro` the Avro twin of
/// `NAME`: the same job reading the same bids in Avro from their own topic, through the
/// Schema Registry at `${REGISTRY_URL}`.
/// Auctions in the lookup table of an enrich job: `enrich` joins 100 000, `enrich-1m`
/// a million (to report the memory a large lookup table takes).
fn lookup_rows(job: &str) -> Option<u64> {
    match job {
        "enrich" => Some(100_000),
        "enrich-1m" => Some(1_000_000),
        _ => None,
    }
}

/// Writes the auctions lookup table of an enrich job into its catalog, with PyIceberg.
fn write_auctions(home: &Path, rows: u64) -> Result<()> {
    let status = std::process::Command::new(python())
        .arg(repo().join("benches/auctions.py"))
        .arg(home)
        .arg(rows.to_string())
        .status()?;
    if !status.success() {
        bail!("benches/auctions.py failed for {}", home.display());
    }
    Ok(())
}

fn job_text(jobs_dir: &Path, name: &str) -> Result<String> {
    let base = name.strip_suffix("-avro").unwrap_or(name);
    let file = if lookup_rows(base).is_some() {
        "enrich"
    } else {
        base
    };
    let path = jobs_dir.join(format!("{file}.sql"));
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no job {} (have: q0, q1, q2, validate, enrich, enrich-1m, enrich-topic, and NAME-avro for q0 and validate)",
            path.display()
        )
    })?;
    if base == name {
        return Ok(text);
    }
    let twin = text
        .replace(
            "'format' = 'json',",
            "'format' = 'avro-confluent', 'avro-confluent.url' = '${REGISTRY_URL}',",
        )
        .replace(
            "${BENCH_TOPIC:-bids}",
            &format!("${{BENCH_TOPIC:-{AVRO_TOPIC}}}"),
        )
        .replace(
            &format!("'job.name' = 'bench-{base}'"),
            &format!("'job.name' = 'bench-{name}'"),
        );
    if !twin.contains("avro-confluent") {
        bail!("{}: no 'format' = 'json' to turn into Avro", path.display());
    }
    Ok(twin)
}

/// The ceilings of the source that job `name` declares: consume-only, decode-only and
/// encode-only rows (`suffix` after the kind), the payload's megabytes and the Parquet
/// bytes of the encode.
fn ceiling_rows(
    jobs_dir: &Path,
    name: &str,
    vars: &BenchVars,
    args: &Args,
    suffix: &str,
) -> Result<(Vec<Row>, f64, usize)> {
    let job = parse_job(&format!("{name}.sql"), &job_text(jobs_dir, name)?, vars)?;
    let source = job.sources.first().context("the job has a source")?.clone();
    let drained = ceilings::consume(&source, &vars.bootstrap, args.partitions, args.events)?;
    let (batches, decode_t) = ceilings::decode_all(&source, &drained)?;
    let payload_columns = source
        .columns
        .iter()
        .filter(|c| c.metadata.is_none())
        .count();
    let (encode_t, parquet_bytes) = ceilings::encode_all(&batches, payload_columns)?;
    let n = args.events as f64;
    let mb = drained.bytes as f64 / 1e6;
    let rows = vec![
        Row::ceiling(
            &format!("consume-only{suffix}"),
            n,
            mb,
            drained.elapsed.as_secs_f64(),
        ),
        Row::ceiling(
            &format!("decode-only{suffix}"),
            n,
            mb,
            decode_t.as_secs_f64(),
        ),
        Row::ceiling(
            &format!("encode-only{suffix} (zstd)"),
            n,
            mb,
            encode_t.as_secs_f64(),
        ),
    ];
    Ok((rows, mb, parquet_bytes))
}

fn baseline(broker: &Broker, topic: &str, args: &Args, query: &str, home: &Path) -> Result<Row> {
    let py = python();
    if !py.exists() {
        bail!(
            "{} is missing: benches/run.sh creates the venv (or pass --no-baseline)",
            py.display()
        );
    }
    let interval = floe_sql::parse_duration(&args.commit_interval)
        .map_err(anyhow::Error::msg)?
        .as_secs_f64();
    let out = Command::new(&py)
        .arg(repo().join("benches/baseline/pipeline.py"))
        .arg(&broker.bootstrap)
        .arg(topic)
        .arg(args.partitions.to_string())
        .arg(args.events.to_string())
        .arg(format!("sqlite:///{}/catalog.db", home.display()))
        .arg(format!("file://{}/warehouse", home.display()))
        .arg(query)
        .arg(interval.to_string())
        .output()
        .context("running the Python baseline")?;
    if !out.status.success() {
        bail!(
            "the Python baseline failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let secs = v["seconds"].as_f64().unwrap_or(f64::NAN);
    Ok(Row {
        name: format!("python {query}"),
        events_per_s: args.events as f64 / secs,
        mb_per_s: f64::NAN,
        seconds: secs,
        per_cpu_s: args.events as f64 / v["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
        peak_rss_mib: v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
        note: String::new(),
    })
}

async fn measure_freshness(
    floe: &Path,
    jobs_dir: &Path,
    work: &Path,
    args: &Args,
) -> Result<serde_json::Value> {
    let topic = "fresh";
    let broker = Broker::start(floe, topic, args.freshness_partitions)?;
    let home = work.join("freshness");
    std::fs::create_dir_all(&home)?;
    let events = args.freshness_rate * args.freshness_seconds;
    let producer = {
        let floe = floe.to_path_buf();
        let bootstrap = broker.bootstrap.clone();
        let (rate, parts, props) = (
            args.freshness_rate,
            args.freshness_partitions,
            args.producer_properties.clone(),
        );
        std::thread::spawn(move || {
            // Let the job start and join its group first (the broker assigns at once). It
            // stops after 3 s without records, so the producer must not wait much longer;
            // records that arrive before its first commit are not counted anyway.
            std::thread::sleep(std::time::Duration::from_secs(1));
            let what = broker::Produce {
                topic: "fresh",
                generator: "bids",
                events,
                partitions: parts,
                rate: Some(rate),
                properties: &props,
                avro_registry: None,
            };
            broker::produce(&floe, &bootstrap, &what)
        })
    };
    let env = [
        ("BENCH_GROUP", "floe-bench-freshness".into()),
        ("BENCH_TOPIC", topic.into()),
        ("COMMIT_INTERVAL", "1s".into()),
    ];
    let spec = floe_job::JobSpec {
        job: &jobs_dir.join("freshness.sql"),
        home: &home,
        env: &env,
        table: "fresh",
        events,
        scrape_every: None,
    };
    let run = floe_job::run(floe, &broker.bootstrap, &spec).await?;
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("the producer thread panicked"))??;
    let cat = floe_job::catalog(&home).await?;
    let ctx = floe_engine::query::session_over(&[("lake".to_string(), cat)].into_iter().collect())
        .await?;
    let batches = floe_engine::query::run_sql(
        &ctx,
        "SELECT kafka_partition AS p, kafka_offset AS o, CAST(kafka_ts AS BIGINT) / 1000 AS ts FROM lake.bench.fresh",
    )
    .await?;
    // Steady state: records produced after the job's first commit (earlier ones waited
    // for the consumer group to form, which says nothing about freshness).
    let since = run.snapshots.first().map_or(0, |s| s.at_ms);
    let mut samples = vec![];
    for b in &batches {
        let col = |i: usize| {
            arrow_array::cast::AsArray::as_primitive_opt::<arrow_array::types::Int64Type>(
                b.column(i).as_ref(),
            )
            .cloned()
        };
        let p = arrow_array::cast::AsArray::as_primitive_opt::<arrow_array::types::Int32Type>(
            b.column(0).as_ref(),
        )
        .cloned()
        .context("partition column")?;
        let (o, ts) = (
            col(1).context("offset column")?,
            col(2).context("ts column")?,
        );
        for i in 0..b.num_rows() {
            if ts.value(i) < since {
                continue;
            }
            let tp = floe_catalog::TopicPartition::new(topic, p.value(i));
            if let Some(s) = run
                .snapshots
                .iter()
                .find(|s| s.offsets.get(&tp).is_some_and(|next| next > o.value(i)))
            {
                samples.push((s.at_ms - ts.value(i)) as f64);
            }
        }
    }
    samples.sort_by(f64::total_cmp);
    Ok(json!({
        "rate": args.freshness_rate,
        "partitions": args.freshness_partitions,
        "seconds": args.freshness_seconds,
        "records": samples.len(),
        "p50_ms": percentile(&samples, 0.50),
        "p99_ms": percentile(&samples, 0.99),
        "max_ms": samples.last().copied().unwrap_or(f64::NAN),
        "commit_p50_ms": percentile_sorted(run.commit_ms.clone(), 0.50),
        "commit_p99_ms": percentile_sorted(run.commit_ms, 0.99),
    }))
}

fn percentile_sorted(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::parse_from(std::iter::once("floe-bench").chain(extra.iter().copied()))
    }

    #[test]
    fn more_bids_than_the_broker_keeps_are_refused_before_the_run() {
        check_retention(&args(&[])).expect("the defaults fit the broker");
        let too_many = ["--events", "1000000", "--partitions", "16"];
        let err = check_retention(&args(&too_many))
            .expect_err("1 000 000 bids over 16 partitions overflow it")
            .to_string();
        assert!(err.contains("use at least"), "{err}");
        let compressed = [
            &too_many[..],
            &["--producer-property", "compression.type=lz4"],
        ]
        .concat();
        check_retention(&args(&compressed)).expect("compressed batches are not judged");
    }
}
