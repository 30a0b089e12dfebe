//! Running as a service: the metrics endpoint agrees with the tables, the probes follow
//! the job's state, exit codes say what stopped it, and JSON logs parse.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::fixture::{Broker, Lake, StderrLog, signal, wait_until};
use crate::quality::{CHECKED, DEAD_LETTER, DIRTY_EVERY, PARTITIONS, expected, quality_job};
use crate::scrape::{free_port, has, probe, scrape, sum};

const DLQ: &str = "lake.quality.orders_dlq";

/// Starts `floe run` on the lake's job with the metrics endpoint on `port`, `env` and
/// more `args`.
fn spawn_serving(
    lake: &Lake,
    broker: &Broker,
    port: u16,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Child, StderrLog) {
    let mut child = lake
        .run_cmd(broker)
        .env("FLOE_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .envs(env.iter().copied())
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start floe run");
    let log = StderrLog::attach(&mut child).expect("piped stderr");
    (child, log)
}

/// The snapshot count `floe describe` reports for `table`.
fn snapshots(lake: &Lake, table: &str) -> f64 {
    let text = lake.describe(table);
    text.lines()
        .find_map(|l| l.strip_prefix("snapshots"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no snapshot count in:\n{text}"))
}

#[test]
fn the_metrics_agree_with_what_the_tables_hold() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::with_job(|d| quality_job(d, DEAD_LETTER));
    let per_partition = 300;
    let total = (per_partition * u64::from(PARTITIONS)) as f64;
    broker.produce_dirty(
        per_partition * u64::from(PARTITIONS),
        PARTITIONS,
        DIRTY_EVERY,
    );
    let port = free_port();
    let (mut child, log) = spawn_serving(&lake, &broker, port, &[], &[]);
    let target = [("table", CHECKED)];
    let e = expected(per_partition);
    // Every record read and every one of them accounted for by a landed commit, the
    // dead-letter table's included: it commits on its own timer, after or before the
    // target's.
    let settled = wait_until(Duration::from_secs(90), || {
        let m = scrape(port);
        let accounted = sum(&m, "floe_rows_written_total", &target)
            + sum(&m, "floe_dead_letters_total", &target)
            + sum(&m, "floe_dropped_records_total", &target)
            + sum(&m, "floe_filtered_records_total", &target);
        sum(&m, "floe_records_read_total", &[]) == total
            && accounted == total
            && sum(&m, "floe_rows_written_total", &[("table", DLQ)]) == e.dead.len() as f64
    });
    assert!(settled, "the counters never added up:\n{}", log.text());
    let m = scrape(port);
    assert_eq!(
        sum(&m, "floe_rows_written_total", &target),
        lake.ids(CHECKED).len() as f64
    );
    assert_eq!(
        sum(&m, "floe_rows_written_total", &target),
        e.table.len() as f64
    );
    let mut per_rule: BTreeMap<String, f64> = BTreeMap::new();
    for (kind, rule) in e.dead.values() {
        let key = if rule.is_empty() { kind } else { rule };
        *per_rule.entry(key.clone()).or_default() += 1.0;
    }
    for (rule, n) in &per_rule {
        let got = sum(
            &m,
            "floe_dead_letters_total",
            &[("table", CHECKED), ("rule", rule)],
        );
        assert_eq!(got, *n, "dead letters of rule {rule}");
    }
    let dlq_rows = lake.query(&format!("SELECT count(*) AS n FROM {DLQ}"));
    assert_eq!(
        sum(&m, "floe_rows_written_total", &[("table", DLQ)]),
        dlq_rows[0]["n"].as_f64().unwrap_or(-1.0)
    );
    assert_eq!(
        sum(
            &m,
            "floe_dropped_records_total",
            &[("table", CHECKED), ("rule", "known_currency")]
        ),
        e.dropped as f64
    );
    assert_eq!(
        sum(&m, "floe_filtered_records_total", &target),
        e.filtered as f64
    );
    let malformed = e.dead.values().filter(|(k, _)| k == "malformed").count();
    assert_eq!(
        sum(&m, "floe_decode_errors_total", &[("kind", "malformed")]),
        malformed as f64
    );
    // One commit, one snapshot, one latency observation.
    let commits = sum(&m, "floe_commits_total", &target);
    assert_eq!(commits, snapshots(&lake, CHECKED));
    assert_eq!(
        sum(&m, "floe_commit_duration_seconds_count", &target),
        commits
    );
    for name in ["floe_freshness_seconds", "floe_last_commit_age_seconds"] {
        assert!(has(&m, name, &target), "{name} of {CHECKED}");
    }
    assert_eq!(sum(&m, "floe_partitions_assigned", &[]), 4.0);
    assert_eq!(probe(port, "/healthz"), 200);
    assert_eq!(probe(port, "/readyz"), 200);
    // The client's statistics come every 5 s: lag per partition follows.
    assert!(
        wait_until(Duration::from_secs(20), || {
            has(
                &scrape(port),
                "floe_consumer_lag_records",
                &[("partition", "3")],
            )
        }),
        "consumer lag is exported per partition"
    );

    // SIGTERM drains, commits and exits 0.
    signal(&child, "TERM");
    let status = child.wait().expect("floe run");
    assert_eq!(status.code(), Some(0), "{}", log.text());
    assert!(log.text().contains("job stopped cleanly"));
}

#[test]
fn liveness_holds_through_a_long_commit_but_not_a_stalled_loop() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("500ms");
    broker.produce_all(400, 4, 0);
    // The first commit takes 8 s, past the 3 s liveness bound: a commit is bounded by its
    // retry deadline instead, so the job stays alive.
    let bound = ["--liveness-timeout", "3s"];
    let port = free_port();
    let slow_commit = [("FLOE_FAILPOINTS", "before-commit=sleep:8000")];
    let (mut child, log) = spawn_serving(&lake, &broker, port, &slow_commit, &bound);
    assert!(log.wait_for("failpoint before-commit", Duration::from_secs(60)));
    assert!(
        !wait_until(Duration::from_secs(6), || probe(port, "/healthz") != 200),
        "alive through the commit:\n{}",
        log.text()
    );
    assert!(log.wait_for("committed", Duration::from_secs(30)));
    let _ = child.kill();
    let _ = child.wait();

    // Writing rows stalls for 8 s outside any commit: past the bound, the job is dead.
    broker.produce_all(400, 4, 100);
    let port = free_port();
    let slow_write = [("FLOE_FAILPOINTS", "before-write=sleep:8000")];
    let (mut child, log) = spawn_serving(&lake, &broker, port, &slow_write, &bound);
    assert!(log.wait_for("failpoint before-write", Duration::from_secs(60)));
    assert!(
        wait_until(Duration::from_secs(7), || probe(port, "/healthz") == 503),
        "a loop stalled past the bound is not alive:\n{}",
        log.text()
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn exit_codes_say_what_stopped_the_job() {
    let broker = Broker::start(&["orders:4"]);
    // A job file that does not plan: configuration (2).
    let lake = Lake::with_job(|d| quality_job(d, "'on-violation' = 'sideways'"));
    assert_exit(&lake, &broker, 2);
    // A record that breaks a 'fail' rule: data policy (3).
    let lake = Lake::with_job(|d| quality_job(d, "'on-violation' = 'fail'"));
    broker.produce_dirty(200 * u64::from(PARTITIONS), PARTITIONS, DIRTY_EVERY);
    assert_exit(&lake, &broker, 3);
}

/// Runs the lake's job until idle and checks its exit status.
fn assert_exit(lake: &Lake, broker: &Broker, code: i32) {
    let out = lake
        .run_cmd(broker)
        .args(["--stop-when-idle", "5s"])
        .output()
        .expect("floe run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
}

#[test]
fn json_logs_parse_and_carry_the_job_and_the_table() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("500ms");
    broker.produce_all(400, 4, 0);
    let out = lake
        .run_cmd(&broker)
        .env("FLOE_LOG_FORMAT", "json")
        .args(["--stop-when-idle", "3s"])
        .output()
        .expect("floe run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let committed = lines
        .iter()
        .find(|l| l["message"] == "committed")
        .unwrap_or_else(|| panic!("no commit logged:\n{text}"));
    assert_eq!(committed["table"], "lake.sales.orders_clean", "{committed}");
    assert_eq!(committed["span"]["job"], "e2e", "{committed}");
    let assigned = lines
        .iter()
        .find(|l| l["message"] == "partition assigned")
        .unwrap_or_else(|| panic!("no assignment logged:\n{text}"));
    assert_eq!(assigned["span"]["job"], "e2e", "{assigned}");
    assert!(
        assigned["partition"]
            .as_str()
            .is_some_and(|p| p.starts_with("orders/"))
    );
}

#[test]
fn secrets_in_the_job_file_stay_out_of_debug_logs_and_are_warned_of() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("500ms");
    let job = std::fs::read_to_string(&lake.job).expect("job");
    let job = job.replace(
        "'properties.session.timeout.ms' = '6000',",
        "'properties.session.timeout.ms' = '6000',\n  'properties.sasl.password' = 'hunter2-inline',",
    );
    std::fs::write(&lake.job, job).expect("write job");
    let out = lake
        .floe()
        .args(["validate"])
        .arg(&lake.job)
        .env("FLOE_LOG", "debug")
        .env("KAFKA_BOOTSTRAP", &broker.bootstrap)
        .output()
        .expect("floe validate");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("hunter2-inline"),
        "the secret reached the log:\n{text}"
    );
    assert!(
        text.contains("option 'properties.sasl.password' holds a secret written in the job file"),
        "{text}"
    );
}

/// The Kubernetes example's job file (in its ConfigMap) passes `floe validate` with the
/// variables its Secret provides, and the pod's grace period outlasts the drain.
#[test]
fn the_kubernetes_example_holds_a_valid_job() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/floe.yaml");
    let manifest = std::fs::read_to_string(&path).expect("deploy/kubernetes/floe.yaml");
    let job: String = manifest
        .lines()
        .skip_while(|l| l.trim() != "job.sql: |")
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert!(
        job.contains("INSERT INTO"),
        "the ConfigMap holds the job:\n{job}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("job.sql");
    std::fs::write(&file, &job).expect("write job");
    let out = crate::fixture::floe()
        .arg("validate")
        .arg(&file)
        .envs([
            ("KAFKA_BOOTSTRAP", "kafka:9092"),
            ("CATALOG_PASSWORD", "x"),
            ("S3_ENDPOINT", "http://minio:9000"),
            ("S3_ACCESS_KEY_ID", "x"),
            ("S3_SECRET_ACCESS_KEY", "x"),
        ])
        .output()
        .expect("floe validate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("written in the job file"),
        "no inline secret: {err}"
    );
    let grace: u64 = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("terminationGracePeriodSeconds:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("terminationGracePeriodSeconds");
    assert!(manifest.contains(r#"args: ["--shutdown-timeout", "60s"]"#));
    assert!(
        grace > 60,
        "the grace period outlasts the 60 s shutdown timeout"
    );
}

/// A restart after a clean stop is assigned its partitions within seconds, not after the
/// session timeout (45 s here): a clean stop leaves the group; a static member
/// (`group.instance.id`) is taken back as itself. librdkafka's mock cluster keeps a
/// group whose last member left in a rebalance for the session timeout, so the test is
/// ignored there, and the suite runs it in its tansu leg (`--include-ignored`).
#[test]
#[ignore = "the mock cluster holds an emptied group for the session timeout: run with FLOE_E2E_TANSU"]
fn a_restart_after_a_clean_stop_is_assigned_within_seconds() {
    for instance in [None, Some("replica-0")] {
        let broker = Broker::start(&["orders:4"]);
        assert!(
            !broker.is_mock_cluster(),
            "the mock cluster holds an emptied group for the session timeout: run the test \
             against tansu (FLOE_E2E_TANSU, as scripts/test.sh does)"
        );
        let lake = Lake::new("500ms");
        let job = std::fs::read_to_string(&lake.job).expect("job");
        let membership = instance
            .map(|i| format!("\n  'properties.group.instance.id' = '{i}',"))
            .unwrap_or_default();
        let short = "'properties.session.timeout.ms' = '6000',";
        assert!(job.contains(short));
        let long = format!("'properties.session.timeout.ms' = '45000',{membership}");
        std::fs::write(&lake.job, job.replace(short, &long)).expect("write job");
        broker.produce_all(400, 4, 0);
        lake.run_until_idle(&broker, "3s");
        broker.produce_all(400, 4, 100);
        let (mut child, log) = lake.spawn_replica(&broker, "floe-e2e", "3s");
        assert!(
            log.wait_for("partition assigned", Duration::from_secs(15)),
            "{instance:?}: assigned within seconds, not after the session timeout:\n{}",
            log.text()
        );
        assert!(child.wait().expect("floe run").success(), "{}", log.text());
        crate::fixture::assert_exactly_once(&lake, 200);
    }
}
