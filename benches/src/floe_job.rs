//! Running a `floe run` process on a benchmark job and reading back what it committed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use floe_catalog::offsets::{OFFSETS_KEY, ancestry};
use floe_catalog::{CatalogConfig, CatalogKind, OffsetMap, open_catalog};
use iceberg::TableIdent;

use crate::scraper::Scraper;

/// What one Floe run did.
#[derive(Debug, Default, Clone)]
pub struct FloeRun {
    /// Seconds from start until the snapshot that covers the last offset.
    pub seconds: f64,
    /// Seconds from the partition assignment until that snapshot.
    pub seconds_after_assignment: f64,
    /// Peak RSS of the process, MiB.
    pub peak_rss_mib: f64,
    /// CPU seconds of the process.
    pub cpu_seconds: f64,
    /// Commit durations, ms.
    pub commit_ms: Vec<f64>,
    /// Snapshots: (commit time ms since epoch, data files, bytes, offsets).
    pub snapshots: Vec<Snapshot>,
    /// Rows in the table.
    pub rows: u64,
    /// Scrapes of the metrics endpoint answered during the run (`--scrape-every`).
    pub scrapes: u64,
}

/// One committed snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Commit time, ms since the epoch.
    pub at_ms: i64,
    /// Data files it added.
    pub files: u64,
    /// Bytes of data files it added.
    pub bytes: u64,
    /// Offsets it records.
    pub offsets: OffsetMap,
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// What to run: a job file of `benches/jobs` and what it must commit.
#[derive(Debug)]
pub struct JobSpec<'a> {
    /// The job file.
    pub job: &'a Path,
    /// Its catalog and warehouse directory (`BENCH_HOME`).
    pub home: &'a Path,
    /// More variables the job file uses.
    pub env: &'a [(&'a str, String)],
    /// The table (in namespace `bench`) whose offsets count.
    pub table: &'a str,
    /// Offsets the table must have committed.
    pub events: u64,
    /// Scrape the job's metrics endpoint this often while it runs.
    pub scrape_every: Option<Duration>,
}

/// Runs `spec.job` until `spec.events` offsets are committed and the source is idle.
pub async fn run(floe: &Path, bootstrap: &str, spec: &JobSpec<'_>) -> Result<FloeRun> {
    let JobSpec {
        job,
        home,
        env,
        table,
        events,
        scrape_every,
    } = *spec;
    let scraper = scrape_every.map(Scraper::start).transpose()?;
    let start_ms = now_ms();
    let mut cmd = Command::new(floe);
    if let Some(s) = &scraper {
        cmd.env("FLOE_METRICS_ADDR", &s.addr);
    }
    let mut child = cmd
        .arg("run")
        .arg(job)
        .args(["--stop-when-idle", "3s", "--progress-interval", "2s"])
        .env("BENCH_HOME", home)
        .env("KAFKA_BOOTSTRAP", bootstrap)
        .env("FLOE_LOG", "info,iceberg=warn,sqlx=warn,datafusion=warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting floe run")?;
    let stderr = child.stderr.take().context("floe stderr")?;
    let mut run = FloeRun::default();
    let mut assigned_ms = None;
    let mut log_tail = vec![];
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        if assigned_ms.is_none() && line.contains("partition assigned") {
            assigned_ms = Some(now_ms());
        }
        if (line.contains(" committed ") || line.ends_with(" committed"))
            && let Some(ms) = field(&line, "commit_ms")
        {
            run.commit_ms.push(ms);
        }
        if line.contains("job stopped cleanly") {
            run.peak_rss_mib = field(&line, "peak_rss_mib").unwrap_or(0.0);
            run.cpu_seconds = field(&line, "cpu_seconds").unwrap_or(0.0);
        }
        log_tail.push(line);
        if log_tail.len() > 40 {
            log_tail.remove(0);
        }
    }
    let status = child.wait()?;
    run.scrapes = scraper.map_or(0, Scraper::finish);
    if !status.success() {
        bail!(
            "floe run {} failed:\n{}",
            job.display(),
            log_tail.join("\n")
        );
    }
    run.snapshots = snapshots(home, table).await?;
    run.rows = rows(home, table).await?;
    let done = run
        .snapshots
        .iter()
        .find(|s| s.offsets.iter().map(|(_, o)| o as u64).sum::<u64>() >= events)
        .with_context(|| format!("no snapshot of {table} covers all {events} records"))?;
    run.seconds = (done.at_ms as f64 - start_ms) / 1000.0;
    run.seconds_after_assignment = (done.at_ms as f64 - assigned_ms.unwrap_or(start_ms)) / 1000.0;
    Ok(run)
}

/// The value of `key=…` in a log line.
pub(crate) fn field(line: &str, key: &str) -> Option<f64> {
    let i = line.find(&format!("{key}="))? + key.len() + 1;
    line[i..]
        .split(|c: char| c.is_whitespace())
        .next()?
        .parse()
        .ok()
}

/// Opens the benchmark catalog under `home`.
pub async fn catalog(home: &Path) -> Result<floe_catalog::OpenCatalog> {
    Ok(open_catalog(&CatalogConfig {
        name: "lake".into(),
        kind: CatalogKind::Sql {
            uri: format!("sqlite://{}/catalog.db", home.display()),
        },
        warehouse: format!("file://{}/warehouse", home.display()),
        storage: Default::default(),
    })
    .await?)
}

/// The snapshots of `bench.<table>`, oldest first.
pub async fn snapshots(home: &Path, table: &str) -> Result<Vec<Snapshot>> {
    let cat = catalog(home).await?;
    let t = cat
        .catalog
        .load_table(&TableIdent::from_strs(["bench", table])?)
        .await?;
    let mut out = vec![];
    for s in ancestry(t.metadata()) {
        let p = &s.summary().additional_properties;
        let num = |k: &str| p.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        out.push(Snapshot {
            at_ms: s.timestamp_ms(),
            files: num("added-data-files"),
            bytes: num("added-files-size"),
            offsets: p
                .get(OFFSETS_KEY)
                .and_then(|j| OffsetMap::from_json(j).ok())
                .unwrap_or_default(),
        });
    }
    out.reverse();
    Ok(out)
}

/// Rows of `bench.<table>` (from the newest snapshot's summary).
pub async fn rows(home: &Path, table: &str) -> Result<u64> {
    let cat = catalog(home).await?;
    let t = cat
        .catalog
        .load_table(&TableIdent::from_strs(["bench", table])?)
        .await?;
    Ok(t.metadata()
        .current_snapshot()
        .and_then(|s| {
            s.summary()
                .additional_properties
                .get("total-records")
                .cloned()
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}
