//! Tables that stay healthy: compaction, manifest merging, snapshot expiry and orphan
//! cleanup inside the running job and by hand, read back by three implementations
//! (Floe, PyIceberg, DuckDB) and reconciled by order id, also across crashes.

use std::path::Path;
use std::time::Duration;

use crate::fixture::{
    BIG_ORDERS, Broker, Lake, ORDERS_CLEAN, StderrLog, assert_same_ids, expected_big_ids,
    expected_clean_ids, orders_job_of, produced, sqlite_catalog, succeeded, wait_until,
};
use crate::pyiceberg::{ids_of, read_with_duckdb, read_with_pyiceberg};
use crate::scrape::{free_port, has, scrape, sum};

/// Maintenance that acts within seconds: a pass every 2 s, partitions compacted from 4
/// small files, manifests merged past 4, snapshots kept for 1 s (at least 2).
pub const EAGER: &str = "'maintenance.interval' = '2s', 'maintenance.compaction.min-input-files' = '4', \
     'maintenance.max-manifests' = '4', 'maintenance.snapshot-retention' = '1s', \
     'maintenance.min-snapshots' = '2', 'maintenance.orphan-age' = '5s'";

/// The orders job committing every 200 ms, with `extra` table options on both tables.
pub fn lake_with(extra: &str) -> Lake {
    Lake::with_job(|d: &Path| {
        orders_job_of(&sqlite_catalog(d), "200ms", &[ORDERS_CLEAN, BIG_ORDERS]).replace(
            "'commit.interval' = '200ms'",
            &format!("'commit.interval' = '200ms', {extra}"),
        )
    })
}

/// Starts the job and produces orders `0..chunks * 100` of every partition, a chunk at
/// a time, each once the job has committed the previous one.
pub fn run_producing(
    lake: &Lake,
    broker: &Broker,
    chunks: u64,
    idle: &str,
) -> (std::process::Child, StderrLog) {
    let (child, log) = lake.spawn_replica(broker, "floe-e2e", idle);
    assert!(
        log.wait_for("partition assigned", Duration::from_secs(60)),
        "the job is assigned its partitions: {}",
        log.text()
    );
    produce_chunks(lake, broker, &log, 0..chunks, 0);
    (child, log)
}

/// Produces the chunks `chunks` (orders `c * 100..(c + 1) * 100` of every partition),
/// each once the running job has committed the previous one; `missing` clean orders
/// are known to be gone from the table (deleted by another writer).
pub fn produce_chunks(
    lake: &Lake,
    broker: &Broker,
    log: &StderrLog,
    chunks: std::ops::Range<u64>,
    missing: usize,
) {
    for c in chunks {
        broker.produce_all(400, 4, c * 100);
        let clean = expected_clean_ids(&produced(4, (c + 1) * 100)).len() - missing;
        assert!(
            wait_until(Duration::from_secs(60), || lake
                .ids("lake.sales.orders_clean")
                .len()
                == clean),
            "chunk {c} is committed: {}",
            log.text()
        );
    }
}

/// Both tables hold the orders `0..per_partition` of every partition exactly once, read
/// by Floe, PyIceberg and DuckDB.
fn assert_read_by_everyone(lake: &Lake, per_partition: u64) {
    let records = produced(4, per_partition);
    let clean = expected_clean_ids(&records);
    assert_same_ids("orders_clean", &lake.ids("lake.sales.orders_clean"), &clean);
    assert_same_ids(
        "big_orders",
        &lake.ids("lake.sales.big_orders"),
        &expected_big_ids(&records),
    );
    let py = read_with_pyiceberg(lake, "sales.orders_clean");
    assert_same_ids("PyIceberg orders_clean", &ids_of(&py), &clean);
    assert_same_ids(
        "DuckDB orders_clean",
        &read_with_duckdb(lake, "sales.orders_clean"),
        &clean,
    );
}

/// The number in `key` of PyIceberg's report on `table`.
fn shape(lake: &Lake, table: &str, key: &str) -> u64 {
    read_with_pyiceberg(lake, table)[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} of {table}"))
}

#[test]
fn a_running_job_keeps_its_tables_compact_and_its_snapshots_few() {
    let broker = Broker::start(&["orders:4"]);
    let mut lake = lake_with(EAGER);
    let port = free_port();
    lake.env
        .push(("FLOE_METRICS_ADDR".into(), format!("127.0.0.1:{port}")));
    let (mut child, log) = run_producing(&lake, &broker, 5, "8s");
    let compactions = |table: &str| {
        let with = [("table", table), ("kind", "compaction")];
        sum(&scrape(port), "floe_maintenance_runs_total", &with)
    };
    assert!(
        wait_until(Duration::from_secs(30), || compactions(
            "lake.sales.orders_clean"
        ) >= 1.0
            && compactions("lake.sales.big_orders") >= 1.0),
        "the passes are counted: {}",
        log.text()
    );
    let cpu = [("table", "lake.sales.orders_clean"), ("kind", "compaction")];
    assert!(
        has(&scrape(port), "floe_maintenance_cpu_seconds_total", &cpu),
        "compaction's CPU is exported"
    );
    assert!(child.wait().expect("floe run").success(), "{}", log.text());
    let text = log.text();
    for line in ["compacted", "expired snapshots"] {
        assert!(text.contains(line), "the job logs '{line}':\n{text}");
    }
    assert_read_by_everyone(&lake, 500);
    // The job committed dozens of times; retention and merging bound what is left.
    let snapshots = shape(&lake, "sales.orders_clean", "snapshots");
    assert!(
        snapshots <= 4,
        "snapshots kept by retention, not by age: {snapshots}"
    );
    let manifests = shape(&lake, "sales.orders_clean", "manifests");
    assert!(
        manifests <= 6,
        "manifests bounded by max-manifests: {manifests}"
    );

    // A restart after heavy maintenance resumes exactly where the job was.
    broker.produce_all(400, 4, 500);
    lake.run_until_idle(&broker, "3s");
    assert_read_by_everyone(&lake, 600);
}

#[test]
fn a_pass_by_hand_says_what_it_would_do_then_does_it() {
    let broker = Broker::start(&["orders:4"]);
    let lake = lake_with(
        "'maintenance.enabled' = 'false', 'maintenance.compaction.min-input-files' = '4'",
    );
    let (mut child, log) = run_producing(&lake, &broker, 4, "2s");
    assert!(child.wait().expect("floe run").success(), "{}", log.text());
    assert!(
        !log.text().contains("compacted"),
        "maintenance is off in the job"
    );
    let files_before = shape(&lake, "sales.orders_clean", "data_files");
    let snapshots_before = shape(&lake, "sales.orders_clean", "snapshots");

    let maintain = |extra: &[&str]| lake.maintain("lake.sales.orders_clean", extra);
    // A pass that dies before its commit changes nothing; its files are orphans.
    let crashed = lake
        .floe()
        .env("FLOE_FAILPOINTS", "compaction-before-commit=abort")
        .args(["maintain", "--job"])
        .arg(&lake.job)
        .arg("lake.sales.orders_clean")
        .output()
        .expect("floe maintain");
    assert!(!crashed.status.success());
    let err = String::from_utf8_lossy(&crashed.stderr);
    assert!(err.contains("failpoint compaction-before-commit"), "{err}");
    assert_eq!(
        shape(&lake, "sales.orders_clean", "snapshots"),
        snapshots_before
    );
    let orphans = |extra: &[&str]| {
        let out = succeeded(
            lake.floe()
                .args(["orphans", "--job"])
                .arg(&lake.job)
                .arg("lake.sales.orders_clean")
                .args(extra),
            "floe orphans",
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = orphans(&[]);
    assert!(
        listed.contains("-compacted-"),
        "the aborted rewrite's files: {listed}"
    );
    lake.age_files(Duration::from_secs(3600));
    let removed = orphans(&["--remove", "--older-than", "0s"]);
    assert!(!removed.contains("removed 0 of"), "{removed}");
    assert!(orphans(&[]).contains("no orphan data files"));

    let plan = maintain(&["--dry-run"]);
    assert!(
        plan.contains("would compact") && plan.contains("dry run"),
        "{plan}"
    );
    assert_eq!(
        shape(&lake, "sales.orders_clean", "snapshots"),
        snapshots_before,
        "a dry run changes nothing"
    );

    let done = maintain(&[]);
    assert!(done.contains("compacted"), "{done}");
    let report = read_with_pyiceberg(&lake, "sales.orders_clean");
    assert_eq!(report["operation"], "replace", "{report}");
    let files_after = report["data_files"].as_u64().expect("data files");
    assert!(
        files_after < files_before,
        "{files_before} files became {files_after}"
    );
    assert_read_by_everyone(&lake, 400);

    broker.produce_all(400, 4, 400);
    lake.run_until_idle(&broker, "3s");
    assert_read_by_everyone(&lake, 500);
}

/// Produces chunks of 100 orders per partition, each a commit apart, until `child`
/// exits; returns the chunks produced and how it exited (None if it never did).
fn produce_until_exit(
    broker: &Broker,
    child: &mut std::process::Child,
) -> Option<(u64, std::process::ExitStatus)> {
    for c in 0..20 {
        broker.produce_all(400, 4, c * 100);
        let mut exited = None;
        wait_until(Duration::from_secs(3), || {
            exited = child.try_wait().expect("try_wait");
            exited.is_some()
        });
        if let Some(status) = exited {
            return Some((c + 1, status));
        }
    }
    None
}

#[test]
fn a_job_killed_right_after_its_rewrite_commit_resumes_exactly() {
    let broker = Broker::start(&["orders:4"]);
    let mut lake = lake_with(EAGER);
    lake.env.push((
        "FLOE_FAILPOINTS".into(),
        "compaction-after-commit=abort".into(),
    ));
    let (mut child, log) = lake.spawn_replica(&broker, "floe-e2e", "30s");
    assert!(log.wait_for("partition assigned", Duration::from_secs(60)));
    let Some((chunks, status)) = produce_until_exit(&broker, &mut child) else {
        let _ = child.kill();
        panic!("no compaction within 20 chunks: {}", log.text());
    };
    assert!(
        !status.success(),
        "the fail-point aborts the job: {}",
        log.text()
    );
    assert!(
        log.text().contains("failpoint compaction-after-commit"),
        "{}",
        log.text()
    );

    // Restarted, the job reads on from its checkpoint and maintains again; the killed
    // run's files have outlived any commit it could still make.
    lake.age_files(Duration::from_secs(3600));
    lake.env.retain(|(k, _)| k != "FLOE_FAILPOINTS");
    let (mut child, log) = lake.spawn_replica(&broker, "floe-e2e", "8s");
    assert!(child.wait().expect("floe run").success(), "{}", log.text());
    assert_read_by_everyone(&lake, chunks * 100);
    let orphans = succeeded(
        lake.floe()
            .args(["orphans", "--job"])
            .arg(&lake.job)
            .arg("lake.sales.orders_clean"),
        "floe orphans",
    );
    let text = String::from_utf8_lossy(&orphans.stdout);
    assert!(
        text.contains("no orphan data files"),
        "the job's passes removed them: {text}"
    );
}

/// A job that reads 60 000 orders at 3 000 a second from the embedded broker, with
/// passes every 2 s: compacted files outgrow the small-file tier and stay live while
/// later passes compact newer files beside them.
#[test]
fn a_table_compacted_while_it_grows_holds_each_record_once() {
    let lake = Lake::with_job(|d: &Path| {
        format!(
            r#"SET 'job.name' = 'grows';
CREATE CATALOG lake WITH ({catalog});
CREATE SOURCE orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2)) WITH (
  'connector' = 'kafka', 'topic' = 'orders', 'format' = 'json',
  'properties.bootstrap.servers' = 'embedded', 'embedded.records' = '60000',
  'embedded.rate' = '3000', 'embedded.partitions' = '4'
);
CREATE TABLE lake.sales.orders (order_id BIGINT NOT NULL, amount DECIMAL(12, 2))
  PARTITIONED BY (bucket(4, order_id)) WITH ('commit.interval' = '200ms', {EAGER});
INSERT INTO lake.sales.orders SELECT order_id, amount FROM orders;
"#,
            catalog = sqlite_catalog(d)
        )
    });
    let out = succeeded(
        lake.floe()
            .arg("run")
            .arg(&lake.job)
            .args(["--stop-when-idle", "5s"]),
        "floe run",
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let passes = log.matches("compacted table=").count();
    assert!(
        passes >= 5,
        "the job compacted on the way ({passes} passes):\n{log}"
    );
    let rows =
        lake.query("SELECT count(*) AS n, count(DISTINCT order_id) AS d FROM lake.sales.orders");
    assert_eq!(rows[0]["n"], 60000, "{rows:?}");
    assert_eq!(rows[0]["d"], 60000, "{rows:?}");
    let py = read_with_pyiceberg(&lake, "sales.orders");
    assert_eq!(ids_of(&py).len(), 60000);
}
