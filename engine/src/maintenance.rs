//! Table maintenance while the job runs, and by hand (`floe maintain`).
//!
//! Passes run on a thread of their own with its own single-threaded runtime: reading and
//! rewriting Parquet files is CPU work that must not take the job's executor threads, and
//! a pass must never hold up a data commit. The two meet only in the catalog: a pass's
//! replace commit and the job's appends re-plan on each other's commits (see
//! `floe_sinks::maintain`). Dropping the [`Maintainer`] stops the thread after the pass in
//! progress; a pass cut short by the process ending leaves only orphans behind.
//!
//! Between passes the thread waits on an async timer and channel, never blocking its
//! runtime: connections it opened in pools shared with the job (the object store's
//! client, a REST catalog's, a PostgreSQL pool) stay served. Each step of a pass fails on
//! its own; a failed step is logged, counted in `floe_maintenance_failures_total` and
//! held back with a growing back-off while the other steps go on. A panic in a pass is
//! caught and reported like a failure, and the thread lives on.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;

use floe_catalog::{ManifestCache, OpenCatalog};
use floe_sinks::{
    CompactionConfig, ExpiryConfig, MaintenanceConfig, MaintenanceReport, RetryPolicy, Step,
    maintain,
};
use floe_sql::job::{MaintenanceOptions, TableName};
use iceberg::TableIdent;
use tracing::{info, warn};

use crate::observe::metrics::metrics;

/// Bytes compaction rewrites in one pass at most.
const MAX_BYTES_PER_PASS: u64 = 2 << 30;

/// Orphan cleanup lists the table's directories and reads every retained snapshot, so a
/// running job does it at most this often (and at least once per orphan age).
const ORPHANS_EVERY: Duration = Duration::from_secs(3600);

/// One table to keep healthy.
#[derive(Debug, Clone)]
pub struct MaintainedTable {
    /// Its name in the job.
    pub name: TableName,
    /// Its identifier in the catalog.
    pub ident: TableIdent,
    /// The catalog it lives in.
    pub catalog: OpenCatalog,
    /// What a pass does.
    pub config: MaintenanceConfig,
    /// Time between passes.
    pub interval: Duration,
    /// Manifests read by earlier passes (shared by clones).
    pub cache: ManifestCache,
}

/// The pass settings of a table's `maintenance.*` options.
pub fn config_of(m: &MaintenanceOptions, target_file_size: u64, job: &str) -> MaintenanceConfig {
    MaintenanceConfig {
        compaction: m.compaction.then(|| CompactionConfig {
            target_file_size,
            min_input_files: usize::try_from(m.min_input_files).unwrap_or(usize::MAX),
            max_bytes_per_pass: MAX_BYTES_PER_PASS,
        }),
        max_manifests: usize::try_from(m.max_manifests).unwrap_or(usize::MAX),
        expiry: Some(ExpiryConfig {
            max_age: m.snapshot_retention,
            min_snapshots: usize::try_from(m.min_snapshots).unwrap_or(usize::MAX),
        }),
        orphan_age: Some(m.orphan_age),
        file_prefix: format!("{job}-compacted"),
        publish_to: None,
        paused: BTreeSet::new(),
    }
}

/// The running maintenance thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Maintainer {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// How much lower than the job's threads the maintenance thread is scheduled (a `nice`
/// increment, up to the lowest priority, 19).
const MAINTENANCE_NICENESS: i32 = 10;

/// Lowers the calling thread's scheduling priority, and so that of the threads it starts
/// (its runtime's blocking pool), so that on a busy CPU the job's own threads preempt a
/// pass: a commit that would otherwise share the CPU with a long rewrite waits less.
/// Linux keeps the nice value per thread; elsewhere this does nothing.
fn yield_to_the_job() {
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: getpriority and setpriority only read their arguments; `who` = 0 is the
    // calling thread.
    let lowered = unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (now + MAINTENANCE_NICENESS).min(19)) == 0
    };
    #[cfg(not(target_os = "linux"))]
    let lowered = false;
    if !lowered {
        warn!(
            "cannot lower the maintenance thread's priority; passes compete with the job for the CPU"
        );
    }
}

/// Starts passes over `tables` on a thread of their own (none when `tables` is empty).
pub fn start(tables: Vec<MaintainedTable>, policy: RetryPolicy) -> Option<Maintainer> {
    if tables.is_empty() {
        return None;
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Its blocking pool (file reads and deletes) carries the same name, so the thread
    // list shows all of maintenance's CPU.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .thread_name("floe-maintenance")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "cannot start the maintenance runtime; tables are not maintained");
            return None;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("floe-maintenance".into())
        .spawn(move || {
            yield_to_the_job();
            runtime.block_on(passes(tables, policy, stopped))
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the maintenance thread; tables are not maintained");
        return None;
    }
    Some(Maintainer { _stop: stop })
}

/// Longest back-off of a failing step.
const MAX_STEP_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// When a table's passes and steps are due.
struct Schedule {
    next_pass: Instant,
    next_orphans: Instant,
    /// Failing steps: consecutive failures and when the step may run again.
    backoff: BTreeMap<Step, (u32, Instant)>,
    /// Steps the table cannot take, already said.
    said: BTreeSet<Step>,
}

impl Schedule {
    /// The pass settings for now: orphan cleanup only when it is due, failing steps held
    /// back until their back-off ends.
    fn pass_of(&mut self, t: &MaintainedTable, now: Instant) -> MaintainedTable {
        let mut pass = t.clone();
        match t.config.orphan_age {
            Some(age) if self.next_orphans <= now => {
                self.next_orphans = now + ORPHANS_EVERY.min(age).max(t.interval);
            }
            _ => pass.config.orphan_age = None,
        }
        pass.config.paused = self
            .backoff
            .iter()
            .filter(|(_, (_, until))| *until > now)
            .map(|(step, _)| *step)
            .collect();
        pass
    }

    /// Backs failed steps off and forgives the ones that ran; says once what the table
    /// cannot take.
    fn note(
        &mut self,
        name: &str,
        report: &MaintenanceReport,
        paused: &BTreeSet<Step>,
        interval: Duration,
    ) {
        let failed: BTreeSet<Step> = report.failures.iter().map(|f| f.step).collect();
        for f in &report.failures {
            let n = self.backoff.get(&f.step).map_or(0, |(n, _)| *n);
            let wait = backoff(interval, n + 1);
            self.backoff.insert(f.step, (n + 1, Instant::now() + wait));
            warn!(table = %name, step = f.step.name(), error = %f.error, retry_in_s = wait.as_secs(),
                "maintenance step failed; the other steps went on");
        }
        self.backoff
            .retain(|step, _| failed.contains(step) || paused.contains(step));
        for (step, why) in &report.skipped {
            if self.said.insert(*step) {
                info!(table = %name, step = step.name(), "maintenance step skipped: {why}");
            }
        }
    }
}

/// The wait after the `n`th failure in a row: the pass interval doubled per failure.
fn backoff(interval: Duration, n: u32) -> Duration {
    let base = interval.max(Duration::from_secs(1));
    base.saturating_mul(1 << n.min(16)).min(MAX_STEP_BACKOFF)
}

/// Runs each table's pass when it is due, until the sender is dropped; orphan cleanup
/// joins a pass when it is due itself (see [`ORPHANS_EVERY`]).
async fn passes(
    tables: Vec<MaintainedTable>,
    policy: RetryPolicy,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    if tables.is_empty() {
        return;
    }
    let start = Instant::now();
    let mut schedules: Vec<Schedule> = tables
        .iter()
        .map(|t| Schedule {
            next_pass: start + t.interval,
            next_orphans: start,
            backoff: BTreeMap::new(),
            said: BTreeSet::new(),
        })
        .collect();
    loop {
        let next = schedules.iter().map(|s| s.next_pass).min().unwrap_or(start);
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep_until(next.into()) => {}
        }
        for (t, schedule) in tables.iter().zip(schedules.iter_mut()) {
            let now = Instant::now();
            if schedule.next_pass > now {
                continue;
            }
            let pass = schedule.pass_of(t, now);
            if let Some(report) = run_pass(&pass, &policy).await {
                schedule.note(
                    &t.name.to_string(),
                    &report,
                    &pass.config.paused,
                    t.interval,
                );
            }
            schedule.next_pass = Instant::now() + t.interval;
        }
    }
}

/// One pass over `t`, logged and counted. A step that fails is in the report's
/// failures; None when the table could not be loaded or the pass panicked (logged and
/// counted as the `pass` step). Maintenance never stops the job.
pub async fn run_pass(t: &MaintainedTable, policy: &RetryPolicy) -> Option<MaintenanceReport> {
    let name = t.name.to_string();
    let started = Instant::now();
    let pass = async {
        let table = t
            .catalog
            .catalog
            .load_table(&t.ident)
            .await
            .map_err(|e| format!("loading the table: {e}"))?;
        Ok::<_, String>(maintain(&t.catalog, table, &t.config, policy, &t.cache).await)
    };
    let result = AssertUnwindSafe(pass)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(format!("the pass panicked: {}", panic_message(&*panic))));
    t.cache.end_pass();
    match result {
        Ok((_, report)) => {
            count(&name, &report);
            log(&name, &report, started.elapsed());
            Some(report)
        }
        Err(e) => {
            metrics().maintenance_runs.add(&[&name, "failed"], 1.0);
            metrics().maintenance_failures.add(&[&name, "pass"], 1.0);
            warn!(table = %name, error = %e, "maintenance pass failed; the next pass tries again");
            None
        }
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

fn count(name: &str, r: &MaintenanceReport) {
    let m = &metrics().maintenance_runs;
    let steps = [
        ("compaction", r.compaction.is_some()),
        ("abandoned", r.abandoned.is_some()),
        ("manifests", r.manifests.is_some()),
        ("expiry", r.expiry.expired > 0),
        ("orphans", r.orphans_removed > 0),
    ];
    for (kind, ran) in steps {
        if ran {
            m.add(&[name, kind], 1.0);
        }
    }
    for f in &r.failures {
        metrics()
            .maintenance_failures
            .add(&[name, f.step.name()], 1.0);
    }
    for (step, cpu) in r.cpu.steps() {
        metrics()
            .maintenance_cpu
            .add(&[name, step], cpu.as_secs_f64());
    }
}

fn log(name: &str, r: &MaintenanceReport, took: Duration) {
    if let Some(c) = &r.compaction {
        info!(table = %name, files_in = c.files_in, files_out = c.files_out, bytes_in = c.bytes_in,
            bytes_out = c.bytes_out, snapshot_id = c.commit.snapshot_id, manifests_before = c.commit.manifests.0,
            manifests_after = c.commit.manifests.1, conflicts = c.commit.conflicts,
            took_ms = took.as_millis() as u64, "compacted");
    }
    if let Some(m) = &r.manifests {
        info!(table = %name, before = m.manifests.0, after = m.manifests.1, snapshot_id = m.snapshot_id, "merged manifests");
    }
    if r.expiry.expired > 0 || r.orphans_removed > 0 || r.superseded_removed > 0 {
        info!(table = %name, expired = r.expiry.expired, files_removed = r.expiry.files_removed,
            superseded_metadata_removed = r.superseded_removed, orphans_removed = r.orphans_removed,
            took_ms = took.as_millis() as u64, "expired snapshots");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of a SQLite lake in `dir` with passes every hour.
    async fn hourly_table(dir: &tempfile::TempDir) -> MaintainedTable {
        let config = floe_catalog::CatalogConfig {
            name: "lake".into(),
            kind: floe_catalog::CatalogKind::Sql {
                uri: format!("sqlite://{}/c.db", dir.path().display()),
            },
            warehouse: format!("file://{}/wh", dir.path().display()),
            storage: Default::default(),
        };
        let catalog = floe_catalog::open_catalog(&config).await.expect("catalog");
        MaintainedTable {
            name: TableName {
                catalog: "lake".into(),
                namespace: vec!["ns".into()],
                name: "t".into(),
            },
            ident: TableIdent::from_strs(["ns", "t"]).expect("ident"),
            catalog,
            config: config_of(&MaintenanceOptions::default(), 1 << 20, "job"),
            interval: Duration::from_secs(3600),
            cache: ManifestCache::default(),
        }
    }

    #[test]
    fn the_maintenance_runtime_serves_its_other_tasks_between_passes() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let ticks = runtime.block_on(async {
                let dir = tempfile::tempdir().expect("tempdir");
                let table = hourly_table(&dir).await;
                let (stop, stopped) = tokio::sync::oneshot::channel();
                // Another task of the runtime (a connection pool's, say) runs meanwhile.
                let other = async move {
                    let mut ticks = 0;
                    for _ in 0..10 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        ticks += 1;
                    }
                    drop(stop);
                    ticks
                };
                let ((), ticks) =
                    tokio::join!(passes(vec![table], RetryPolicy::default(), stopped), other);
                ticks
            });
            let _ = done.send(ticks);
        });
        let ticks = finished.recv_timeout(Duration::from_secs(20));
        assert_eq!(ticks.ok(), Some(10), "the runtime was not blocked");
    }

    #[cfg(target_os = "linux")]
    #[test]
    #[allow(unsafe_code)]
    fn the_maintenance_thread_runs_below_the_jobs_priority() {
        // SAFETY: getpriority only reads its arguments; `who` = 0 is the calling thread.
        let priority = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let job = priority();
        let (maintenance, spawned) = std::thread::spawn(move || {
            yield_to_the_job();
            // A thread the maintenance thread starts (its runtime's blocking pool).
            let spawned = std::thread::spawn(priority).join().expect("spawned thread");
            (priority(), spawned)
        })
        .join()
        .expect("maintenance thread");
        let expected = (job + MAINTENANCE_NICENESS).min(19);
        assert_eq!((maintenance, spawned), (expected, expected));
        assert_eq!(priority(), job, "the job's own thread keeps its priority");
    }
}
