//! `floe-bench --long-run COMMITS`: what months of commits do to a table, compressed
//! into one run.
//!
//! Two jobs read the same paced topic side by side, committing every 200 ms into tables
//! of their own (`benches/jobs/long_run.sql`): one with maintenance on, one with it off.
//! Every `--long-run-every` commits of a job, the run records the commit latency (p50 and
//! p99 over those commits, and apart for the commits that overlapped a compaction pass
//! and those that did not: `commit_log`), the table's shape as PyIceberg sees it (snapshots, manifests,
//! live data files, metadata.json size) and the time PyIceberg takes to plan and to read
//! the table; at the end, the share of the job's CPU that its maintenance threads used
//! (from `/proc`), and per step (compaction, expiry, …) from the job's own
//! `floe_maintenance_cpu_seconds_total`.
//!
//! On a machine with two CPUs or more the maintained job has CPU 0 to itself, and the
//! unmaintained job runs at the lowest CPU and I/O priority on the others: the
//! unmaintained table's ever-growing metadata and PyIceberg's reads of it would
//! otherwise take the maintained job's CPU, and its latency would measure its
//! neighbours rather than its own maintenance. (On one CPU, the sampler runs at the
//! lowest priority too.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::broker::Broker;
use crate::commit_log::CommitLog;

/// What the long run does.
#[derive(Debug, Clone)]
pub struct LongRunSpec {
    /// Commits each job makes.
    pub commits: u64,
    /// Bids per second produced.
    pub rate: u64,
    /// Sample every this many commits.
    pub every: u64,
    /// Which jobs run: `on`, `off` or both.
    pub modes: Vec<String>,
    /// Where results go.
    pub out: PathBuf,
}

/// One job of the long run and what its log says so far.
struct Job {
    mode: &'static str,
    home: PathBuf,
    child: Child,
    /// Its commits and compaction passes, from its log.
    log: Arc<Mutex<CommitLog>>,
    /// The job's last log lines, to say why it stopped if it exits early.
    last_lines: Arc<Mutex<std::collections::VecDeque<String>>>,
    samples: Vec<Value>,
    /// Where the job serves its metrics.
    metrics_port: u16,
}

const TOPIC: &str = "bids";
const PARTITIONS: u32 = 4;

/// Runs the long run and writes its results.
pub fn run(floe: &Path, repo: &Path, python: &Path, spec: &LongRunSpec) -> Result<()> {
    let work = tempfile::tempdir()?;
    let isolated = leave_cpu0_to_the_maintained_job();
    let broker = Broker::start(floe, TOPIC, PARTITIONS)?;
    // The producer outlasts the jobs (it is stopped at the end): a commit cycle takes
    // longer than the 200 ms interval (about 330 ms here), and a producer that ran dry
    // first would leave the jobs idle short of their commits.
    let seconds = spec.commits + 600;
    let mut producer = start_producer(floe, &broker.bootstrap, spec.rate * seconds, spec.rate)?;
    let job_file = repo.join("benches/jobs/long_run.sql");
    let mut jobs = vec![];
    let modes = [
        ("maintenance on", "true", "on"),
        ("maintenance off", "false", "off"),
    ];
    for (mode, on, _) in modes
        .into_iter()
        .filter(|m| spec.modes.iter().any(|w| w == m.2))
    {
        let home = work.path().join(on);
        std::fs::create_dir_all(&home)?;
        jobs.push(start_job(
            floe,
            &job_file,
            &broker.bootstrap,
            (mode, on),
            home,
            isolated,
        )?);
    }
    eprintln!(
        "long run: {} commits per job at 200 ms, {} bids/s, a sample every {} commits …",
        spec.commits, spec.rate, spec.every
    );
    let started = Instant::now();
    let shape_script = repo.join("benches/table_shape.py");
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let path = spec.out.join(format!("{stamp}-long-run.json"));
    std::fs::create_dir_all(&spec.out)?;
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let (mut done, mut new_sample) = (true, false);
        for job in &mut jobs {
            if let Some(status) = job.child.try_wait()? {
                let last = job
                    .last_lines
                    .lock()
                    .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                bail!(
                    "the {} job exited early: {status}; its last log lines:\n{last}",
                    job.mode
                );
            }
            if job.mode == "maintenance off" {
                prune_superseded_metadata(&job.home);
            }
            let made = job.log.lock().map_or(0, |l| l.commits.len() as u64);
            let sampled = job.samples.len() as u64 * spec.every;
            if made >= sampled + spec.every && sampled < spec.commits {
                // With the maintained job on a CPU of its own, the sampler need not yield:
                // its plan and read times are then PyIceberg's own.
                let sampler = if isolated {
                    Command::new(python)
                } else {
                    lowest_priority(python)
                };
                let sample = sample(job, sampler, &shape_script, sampled, spec.every, started)?;
                eprintln!("  {}: {sample}", job.mode);
                job.samples.push(sample);
                new_sample = true;
            }
            done &= job.samples.len() as u64 * spec.every >= spec.commits;
        }
        if new_sample {
            // Written as it goes: a run cut short still leaves its samples.
            let doc = document(spec, &jobs_json(&jobs));
            std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
        }
        if done {
            break;
        }
    }
    let results = jobs_json(&jobs);
    for job in &mut jobs {
        stop(&mut job.child)?;
    }
    let _ = producer.kill();
    let _ = producer.wait();
    let doc = document(spec, &results);
    print_table(&doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
    eprintln!("results in {}", path.display());
    Ok(())
}

/// Each job's samples and CPU seconds so far.
fn jobs_json(jobs: &[Job]) -> serde_json::Map<String, Value> {
    let mut results = serde_json::Map::new();
    for job in jobs {
        let cpu = cpu_shares(job.child.id());
        results.insert(
            job.mode.into(),
            json!({
                "samples": job.samples,
                "cpu_seconds": cpu.0,
                "maintenance_cpu_seconds": cpu.1,
                "maintenance_step_cpu_seconds": step_cpu(job.metrics_port),
            }),
        );
    }
    results
}

fn document(spec: &LongRunSpec, results: &serde_json::Map<String, Value>) -> Value {
    json!({
        "when": chrono::Utc::now().to_rfc3339(),
        "machine": crate::machine(),
        "commits": spec.commits,
        "rate": spec.rate,
        "every": spec.every,
        "commit_interval": "200ms",
        "jobs": results,
    })
}

fn start_producer(floe: &Path, bootstrap: &str, events: u64, rate: u64) -> Result<Child> {
    Command::new(floe)
        .args(["produce", "--generator", "bids", "--bootstrap", bootstrap])
        .args(["--topic", TOPIC, "--records", &events.to_string()])
        .args([
            "--partitions",
            &PARTITIONS.to_string(),
            "--rate",
            &rate.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting floe produce")
}

fn start_job(
    floe: &Path,
    job_file: &Path,
    bootstrap: &str,
    (mode, on): (&'static str, &str),
    home: PathBuf,
    isolated: bool,
) -> Result<Job> {
    let metrics_port = crate::scraper::free_port()?;
    let mut command = match (on, isolated) {
        ("true", true) => {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(floe);
            c
        }
        ("true", false) => Command::new(floe),
        _ => lowest_priority(floe),
    };
    let mut child = command
        .arg("run")
        .arg(job_file)
        .env("BENCH_HOME", &home)
        .env("KAFKA_BOOTSTRAP", bootstrap)
        .env("BENCH_GROUP", format!("long-run-{on}"))
        .env("MAINTENANCE", on)
        .env("FLOE_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .env("FLOE_LOG", "info,iceberg=warn,sqlx=warn,datafusion=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting floe run")?;
    let stderr = child.stderr.take().context("floe stderr")?;
    let log = Arc::new(Mutex::new(CommitLog::default()));
    let sink = log.clone();
    let last_lines = Arc::new(Mutex::new(std::collections::VecDeque::new()));
    let tail = last_lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut t) = tail.lock() {
                if t.len() == 20 {
                    t.pop_front();
                }
                t.push_back(line.clone());
            }
            if let Ok(mut l) = sink.lock() {
                l.read(&line, "lake.bench.long_run", Instant::now());
            }
        }
    });
    Ok(Job {
        mode,
        home,
        child,
        log,
        last_lines,
        samples: vec![],
        metrics_port,
    })
}

/// Superseded `metadata.json` files the unmaintained table leaves behind (its orphan
/// cleanup is off), all but the newest few: the JSON grows with every commit and is
/// written anew each time, so 10 000 commits would leave about 45 GB of them.
fn prune_superseded_metadata(home: &Path) {
    const KEEP: usize = 8;
    let dir = home.join("warehouse/bench/long_run/metadata");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    // Named `{version:05}-{uuid}.metadata.json`: the name orders them.
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".metadata.json"))
        .collect();
    names.sort_unstable();
    let superseded = names.len().saturating_sub(KEEP);
    for name in &names[..superseded] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// The maintenance CPU of the benchmark table per step, by the job's own metrics.
fn step_cpu(port: u16) -> Value {
    let Some(text) = crate::scraper::metrics_text(port) else {
        return Value::Null;
    };
    let steps = ["compaction", "manifests", "expiry", "orphans"].map(|step| {
        let with = [("table", "lake.bench.long_run"), ("kind", step)];
        let secs = crate::scraper::metric_sum(&text, "floe_maintenance_cpu_seconds_total", &with);
        (step.to_string(), json!(secs))
    });
    Value::Object(steps.into_iter().collect())
}

/// The sample after commits `from..from + every` of `job`.
fn sample(
    job: &Job,
    mut python: Command,
    script: &Path,
    from: u64,
    every: u64,
    started: Instant,
) -> Result<Value> {
    let latency = job.log.lock().map_or(Value::Null, |l| {
        l.window_figures(from as usize, every as usize)
    });
    let out = python
        .arg(script)
        .arg(format!("sqlite:///{}/catalog.db", job.home.display()))
        .arg(format!("file://{}/warehouse", job.home.display()))
        .arg("bench.long_run")
        .output()
        .context("running table_shape.py")?;
    if !out.status.success() {
        bail!("table_shape.py: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut shape: Value = serde_json::from_slice(&out.stdout)?;
    shape["commits"] = json!(from + every);
    shape["minutes"] = json!((started.elapsed().as_secs_f64() / 6.0).round() / 10.0);
    if let (Some(shape), Value::Object(latency)) = (shape.as_object_mut(), latency) {
        shape.extend(latency);
    }
    Ok(shape)
}

/// On a machine with more than one CPU, moves this process (and so everything it starts
/// from now on: broker, producer, the unmaintained job, the sampler) off CPU 0, which the
/// maintained job then gets to itself: its commit latency measures its own work and its
/// own maintenance, not its neighbours' (the unmaintained table's growing commits, and
/// PyIceberg reading it for a minute at a time). Returns whether it did.
fn leave_cpu0_to_the_maintained_job() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        return false;
    }
    let others = format!("1-{}", cpus - 1);
    let pid = std::process::id().to_string();
    let moved = Command::new("taskset")
        .args(["-a", "-p", "-c", &others, &pid])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if moved {
        eprintln!("the maintained job runs alone on CPU 0; everything else on CPUs {others}");
    }
    moved
}

/// `program` run at the lowest CPU and I/O priority; `nice` and `ionice` exec it, so its
/// pid is the program's own.
fn lowest_priority(program: &Path) -> Command {
    let mut c = Command::new("nice");
    c.args(["-n", "19", "ionice", "-c", "3"]).arg(program);
    c
}

/// CPU seconds of process `pid` and of its maintenance thread, from /proc.
fn cpu_shares(pid: u32) -> (f64, f64) {
    let ticks = |stat: &str| -> f64 {
        // Fields after the command name (which may hold spaces) start at ") ".
        let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (n(11) + n(12)) / 100.0
    };
    let process = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(0.0, |s| ticks(&s));
    let mut maintenance = 0.0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.starts_with("floe-maint") {
                maintenance +=
                    std::fs::read_to_string(t.path().join("stat")).map_or(0.0, |s| ticks(&s));
            }
        }
    }
    (process, maintenance)
}

fn stop(child: &mut Child) -> Result<()> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait()?;
    Ok(())
}

fn print_table(doc: &Value) {
    println!(
        "{:<16} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>12} {:>8} {:>8}",
        "job",
        "commits",
        "min",
        "p50 ms",
        "p99 ms",
        "snapshots",
        "manifests",
        "data files",
        "metadata KiB",
        "plan s",
        "read s"
    );
    let Some(jobs) = doc["jobs"].as_object() else {
        return;
    };
    for (mode, j) in jobs {
        for s in j["samples"].as_array().into_iter().flatten() {
            let n = |k: &str| s[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "{:<16} {:>7} {:>6.1} {:>9.1} {:>9.1} {:>9} {:>9} {:>10} {:>12.0} {:>8.2} {:>8.2}",
                mode,
                n("commits"),
                n("minutes"),
                n("commit_p50_ms"),
                n("commit_p99_ms"),
                n("snapshots"),
                n("manifests"),
                n("data_files"),
                n("metadata_json_bytes") / 1024.0,
                n("plan_seconds"),
                n("read_seconds"),
            );
        }
        let cpu = j["cpu_seconds"].as_f64().unwrap_or(0.0);
        let m = j["maintenance_cpu_seconds"].as_f64().unwrap_or(0.0);
        println!(
            "{mode}: {cpu:.1} CPU seconds, {m:.1} of them maintenance ({:.1} %)",
            100.0 * m / cpu.max(1e-9)
        );
        if let Some(steps) = j["maintenance_step_cpu_seconds"].as_object() {
            let shares: Vec<String> = steps
                .iter()
                .map(|(step, secs)| {
                    let secs = secs.as_f64().unwrap_or(0.0);
                    format!("{step} {secs:.1} s ({:.1} %)", 100.0 * secs / cpu.max(1e-9))
                })
                .collect();
            println!("{mode}: by step: {}", shares.join(", "));
        }
    }
}
