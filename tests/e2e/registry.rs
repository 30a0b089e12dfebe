//! Sources in the registry formats: records serialized by confluent-kafka's own
//! `AvroSerializer`, `ProtobufSerializer`, `JSONSerializer` and `SchemaRegistryClient`
//! against `floe registry` (with basic authentication), decoded by the job across schema
//! versions, bad ones dead-lettered.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::fixture::{Broker, Lake, StderrLog, announced, floe, signal, succeeded, wait_until};
use crate::pyiceberg::python;

pub(crate) const USER_INFO: &str = "floe:s3cret";

/// `floe registry` in a process of its own, stopped on drop.
pub(crate) struct RegistryProcess {
    child: Child,
    out: BufReader<ChildStdout>,
    pub(crate) url: String,
}

impl RegistryProcess {
    pub(crate) fn start(state: &Path) -> RegistryProcess {
        let mut cmd = floe();
        cmd.args(["registry", "--user-info", USER_INFO, "--state"])
            .arg(state);
        let (child, out, url) = announced(&mut cmd, "url=");
        RegistryProcess { child, out, url }
    }

    /// `down` (connections refused) or `up`, confirmed.
    fn switch(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().expect("registry stdin");
        writeln!(stdin, "{command}").expect("send a command");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read the answer");
        assert_eq!(line.trim(), command, "the registry did not confirm");
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/produce_registry.py")
}

/// Serializes `plan` (see produce_registry.py) with confluent-kafka against `registry`;
/// returns the file of values.
pub(crate) fn serialize(
    lake: &Lake,
    registry: &RegistryProcess,
    plan: serde_json::Value,
) -> PathBuf {
    let file = lake.dir.path().join(format!("values-{}.hex", uuid_ish()));
    succeeded(
        Command::new(python())
            .arg(script())
            .args([
                "serialize",
                &registry.url,
                USER_INFO,
                "orders",
                &plan.to_string(),
            ])
            .arg(&file),
        "produce_registry.py serialize",
    );
    file
}

fn uuid_ish() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Sends lines `range` of `file` to the orders topic.
pub(crate) fn send(broker: &Broker, file: &Path, range: std::ops::Range<usize>) {
    succeeded(
        Command::new(python())
            .arg(script())
            .args(["send", &broker.bootstrap, "orders"])
            .arg(file)
            .args([range.start.to_string(), range.end.to_string()]),
        "produce_registry.py send",
    );
}

/// How the orders job's source gets its columns.
#[derive(Clone, Copy)]
enum Columns {
    Declared,
    /// From the subject's latest schema (the source declares none).
    FromSchema,
}

/// The orders job, its source in `format` (a registry format).
fn job_in(dir: &Path, format: &str, columns: Columns) -> String {
    let (source_columns, placed) = match columns {
        Columns::Declared => (
            "(
  id BIGINT NOT NULL, customer VARCHAR, amount DOUBLE, status VARCHAR, placed TIMESTAMP,
  note VARCHAR
)",
            "TIMESTAMP",
        ),
        // Avro's timestamp-millis is an instant: a column with a time zone.
        Columns::FromSchema => ("", "TIMESTAMP WITH TIME ZONE"),
    };
    format!(
        "SET 'job.name' = 'avro-orders';
CREATE CATALOG lake WITH ({catalog});
CREATE SOURCE orders {source_columns} WITH ({options});
CREATE TABLE lake.sales.orders (
  id BIGINT NOT NULL, customer VARCHAR, amount DOUBLE, status VARCHAR, placed {placed},
  note VARCHAR
) WITH (
  'commit.interval' = '1s',
  'on-violation' = 'dead-letter',
  'dead-letter.table' = 'lake.sales.orders_dlq'
);
INSERT INTO lake.sales.orders SELECT * FROM orders;
",
        catalog = crate::fixture::sqlite_catalog(dir),
        options = source_options(format),
    )
}

/// The options of the orders source in registry `format`, reading the registry and the
/// broker from `REGISTRY_URL`, `REGISTRY_AUTH` and `KAFKA_BOOTSTRAP`.
pub(crate) fn source_options(format: &str) -> String {
    format!(
        "
  'connector' = 'kafka', 'topic' = 'orders', 'format' = '{format}',
  '{format}.url' = '${{REGISTRY_URL}}',
  '{format}.basic-auth.user-info' = '${{REGISTRY_AUTH}}',
  'properties.bootstrap.servers' = '${{KAFKA_BOOTSTRAP}}',
  'scan.startup.mode' = 'earliest-offset'
"
    )
}

fn lake_for(registry: &RegistryProcess) -> Lake {
    lake_in(registry, "avro-confluent", Columns::Declared)
}

fn lake_in(registry: &RegistryProcess, format: &str, columns: Columns) -> Lake {
    reading(registry, Lake::with_job(|dir| job_in(dir, format, columns)))
}

/// `lake` with `REGISTRY_URL` and `REGISTRY_AUTH` set for `registry`.
pub(crate) fn reading(registry: &RegistryProcess, mut lake: Lake) -> Lake {
    lake.env = vec![
        ("REGISTRY_URL".into(), registry.url.clone()),
        ("REGISTRY_AUTH".into(), USER_INFO.into()),
    ];
    lake
}

/// (id, note) of every row of the orders table, sorted by id.
fn rows(lake: &Lake) -> Vec<(u64, Option<String>)> {
    let mut out: Vec<(u64, Option<String>)> = lake
        .query("SELECT id, note, status, amount FROM lake.sales.orders")
        .iter()
        .map(|r| {
            let id = r["id"].as_u64().expect("id");
            let status = r["status"].as_str().expect("status");
            assert_eq!(status, if id % 2 == 1 { "PAID" } else { "NEW" });
            assert_eq!(r["amount"].as_f64(), Some(id as f64 * 1.25));
            (id, r["note"].as_str().map(str::to_string))
        })
        .collect();
    out.sort();
    out
}

/// What the plan v1 0..a, v2 a..b, v1 b..c produces.
fn expected(a: u64, b: u64, c: u64) -> Vec<(u64, Option<String>)> {
    (0..c)
        .map(|i| (i, (a..b).contains(&i).then(|| format!("note {i}"))))
        .collect()
}

#[test]
fn avro_records_of_every_schema_version_land_and_bad_ones_are_dead_lettered() {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let registry = RegistryProcess::start(&state.path().join("registry.json"));
    let lake = lake_for(&registry);
    let plan = serde_json::json!([
        {"schema": "v1", "from": 0, "to": 300},
        {"raw": "random"},
        {"schema": "v2", "from": 300, "to": 600},
        {"raw": "truncated"},
        {"raw": "unknown-id"},
        {"schema": "v1", "from": 600, "to": 900},
        {"raw": "json"}
    ]);
    let file = serialize(&lake, &registry, plan);
    send(&broker, &file, 0..905);
    lake.run_until_idle(&broker, "3s");

    assert_eq!(rows(&lake), expected(300, 600, 900));
    let dead = dead_letters(&lake);
    let all_malformed = [300, 601, 602, 903].map(|o| (o, "malformed"));
    assert_eq!(kinds(&dead), all_malformed, "{dead:?}");
    assert!(
        dead[2]
            .2
            .contains("schema id 999999 is not in the schema registry"),
        "{dead:?}"
    );
    assert!(dead[3].2.contains("magic byte 0"), "{dead:?}");
}

/// The dead letters of the orders job: (offset, kind, message), by offset.
pub(crate) fn dead_letters(lake: &Lake) -> Vec<(u64, String, String)> {
    lake.query(
        "SELECT \"offset\", error_kind, error_message FROM lake.sales.orders_dlq ORDER BY \"offset\"",
    )
    .iter()
    .map(|d| {
        let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
        (d["offset"].as_u64().unwrap_or(u64::MAX), text("error_kind"), text("error_message"))
    })
    .collect()
}

/// `(offset, kind)` of each dead letter.
fn kinds(dead: &[(u64, String, String)]) -> Vec<(u64, &str)> {
    dead.iter().map(|(o, k, _)| (*o, k.as_str())).collect()
}

#[test]
fn protobuf_records_of_every_schema_version_land_and_bad_ones_are_dead_lettered() {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let registry = RegistryProcess::start(&state.path().join("registry.json"));
    let lake = lake_in(&registry, "protobuf-confluent", Columns::Declared);
    let plan = serde_json::json!([
        {"schema": "proto-v1", "from": 0, "to": 200},
        {"raw": "random"},
        {"schema": "proto-v2", "from": 200, "to": 400},
        {"raw": "truncated"},
        {"schema": "proto-refund", "from": 0, "to": 1},
        {"raw": "unknown-id"},
        {"schema": "proto-v1", "from": 400, "to": 600}
    ]);
    let file = serialize(&lake, &registry, plan);
    send(&broker, &file, 0..604);
    lake.run_until_idle(&broker, "3s");

    assert_eq!(rows(&lake), expected(200, 400, 600));
    let dead = dead_letters(&lake);
    assert_eq!(
        kinds(&dead),
        [
            (200, "malformed"),
            (401, "malformed"),
            (402, "type"),
            (403, "malformed")
        ],
        "{dead:?}"
    );
    // The refund is the schema's second message (index path [1]); its string id does
    // not fit the BIGINT column.
    assert!(
        dead[2].2.contains("field 'id' is string") && dead[2].2.contains("shop.Refund"),
        "{dead:?}"
    );
    assert!(
        dead[3]
            .2
            .contains("schema id 999999 is not in the schema registry"),
        "{dead:?}"
    );
}

#[test]
fn json_schema_records_land_and_bad_ones_are_dead_lettered() {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let registry = RegistryProcess::start(&state.path().join("registry.json"));
    let lake = lake_in(&registry, "json-confluent", Columns::Declared);
    let plan = serde_json::json!([
        {"schema": "json-v1", "from": 0, "to": 200},
        {"raw": "json"},
        {"schema": "json-v2", "from": 200, "to": 400},
        {"raw": "truncated"},
        {"raw": "unknown-id"},
        {"schema": "json-v1", "from": 400, "to": 600}
    ]);
    let file = serialize(&lake, &registry, plan);
    send(&broker, &file, 0..603);
    lake.run_until_idle(&broker, "3s");

    assert_eq!(rows(&lake), expected(200, 400, 600));
    let dead = dead_letters(&lake);
    assert_eq!(
        kinds(&dead),
        [(200, "malformed"), (401, "malformed"), (402, "malformed")],
        "{dead:?}"
    );
    assert!(dead[0].2.contains("magic byte 0"), "{dead:?}");
    assert!(
        dead[2]
            .2
            .contains("schema id 999999 is not in the schema registry"),
        "{dead:?}"
    );
}

/// A job that committed v1 records 0..200 and is waiting for the registry (down) to
/// decode v2 records 200..400.
struct WaitingJob {
    broker: Broker,
    _state: tempfile::TempDir,
    registry: RegistryProcess,
    lake: Lake,
    run: Child,
    log: StderrLog,
}

fn job_waiting_for_the_registry(idle: &str) -> WaitingJob {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let mut registry = RegistryProcess::start(&state.path().join("registry.json"));
    let lake = lake_for(&registry);
    let plan = serde_json::json!([
        {"schema": "v1", "from": 0, "to": 200},
        {"schema": "v2", "from": 200, "to": 400}
    ]);
    let file = serialize(&lake, &registry, plan);
    send(&broker, &file, 0..200);
    let mut run = lake
        .run_cmd(&broker)
        .args(["--stop-when-idle", idle])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start floe run");
    let log = StderrLog::attach(&mut run).expect("stderr");
    assert!(
        log.wait_for("committed", Duration::from_secs(60)),
        "{}",
        log.text()
    );
    // The job has met schema id 1 only; id 2 arrives while the registry is down.
    registry.switch("down");
    send(&broker, &file, 200..400);
    assert!(
        log.wait_for(
            "the schema registry is unavailable",
            Duration::from_secs(60)
        ),
        "{}",
        log.text()
    );
    WaitingJob {
        broker,
        _state: state,
        registry,
        lake,
        run,
        log,
    }
}

#[test]
fn a_registry_that_is_down_delays_decoding_and_dead_letters_nothing() {
    let mut w = job_waiting_for_the_registry("4s");
    w.registry.switch("up");
    let status = w.run.wait().expect("floe run");
    assert!(status.success(), "{}", w.log.text());
    assert_eq!(rows(&w.lake), expected(200, 400, 400));
    assert!(
        dead_letters(&w.lake).is_empty(),
        "no good record is dead-lettered"
    );
}

#[test]
fn a_stop_while_the_registry_is_down_commits_what_was_decoded_and_exits() {
    let mut w = job_waiting_for_the_registry("120s");
    // One signal: the job stops waiting, commits what it decoded, and exits cleanly.
    signal(&w.run, "TERM");
    let stopped = wait_until(Duration::from_secs(30), || {
        w.run.try_wait().ok().flatten().is_some()
    });
    assert!(stopped, "the job did not stop: {}", w.log.text());
    let status = w.run.wait().expect("floe run");
    assert!(status.success(), "{}", w.log.text());
    assert_eq!(rows(&w.lake), expected(200, 400, 200));
    // The records it could not decode are read again by the next run. The broker may
    // hold the stopped member's place in the group until its session times out; the
    // idle limit leaves the next run time to be assigned.
    w.registry.switch("up");
    w.lake.run_until_idle(&w.broker, "8s");
    assert_eq!(rows(&w.lake), expected(200, 400, 400));
    assert!(dead_letters(&w.lake).is_empty());
}

#[test]
fn declared_columns_that_do_not_fit_the_latest_schema_stop_the_job_before_reading() {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let registry = RegistryProcess::start(&state.path().join("registry.json"));
    let lake = lake_for(&registry);
    let plan = serde_json::json!([
        {"schema": "v1", "from": 0, "to": 10},
        {"schema": "amount-as-text", "from": 10, "to": 20}
    ]);
    let file = serialize(&lake, &registry, plan);
    send(&broker, &file, 0..20);
    let err = lake.run_failing(&broker, "3s");
    assert!(
        err.contains("subject 'orders-value'")
            && err.contains("field 'amount'")
            && err.contains("version 2")
            && err.contains("declares amount Float64"),
        "{err}"
    );
    let validate = lake
        .floe()
        .env("KAFKA_BOOTSTRAP", &broker.bootstrap)
        .args(["validate"])
        .arg(&lake.job)
        .output()
        .expect("floe validate");
    assert!(!validate.status.success());
    assert!(String::from_utf8_lossy(&validate.stderr).contains("field 'amount'"));
}

#[test]
fn a_source_without_columns_takes_them_from_the_latest_schema() {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let registry = RegistryProcess::start(&state.path().join("registry.json"));
    let lake = lake_in(&registry, "avro-confluent", Columns::FromSchema);
    // Before any schema is registered, there are no columns to take.
    let err = lake.run_failing(&broker, "3s");
    assert!(
        err.contains("subject 'orders-value'") && err.contains("declares no columns"),
        "{err}"
    );
    // v2 (with `note`) is the latest when the job starts; v1 records read a null note.
    let plan = serde_json::json!([
        {"schema": "v1", "from": 0, "to": 100},
        {"schema": "v2", "from": 100, "to": 200},
        {"schema": "v1", "from": 200, "to": 300}
    ]);
    let file = serialize(&lake, &registry, plan);
    send(&broker, &file, 0..300);
    lake.run_until_idle(&broker, "3s");
    assert_eq!(rows(&lake), expected(100, 200, 300));
    let placed =
        lake.query("SELECT CAST(placed AS BIGINT) AS us FROM lake.sales.orders WHERE id = 7");
    assert_eq!(
        placed[0]["us"].as_i64(),
        Some((1_700_000_000_000 + 7) * 1000)
    );
}

#[test]
fn the_avro_quickstart_runs_on_the_embedded_broker_and_registry() {
    let home = tempfile::tempdir().expect("tempdir");
    let job = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/avro.sql");
    let with_env = |c: &mut Command| {
        c.env("FLOE_HOME", home.path())
            .env("QUICKSTART_RECORDS", "4000")
            .env("QUICKSTART_RATE", "0")
            .env_remove("KAFKA_BOOTSTRAP")
            .env_remove("SCHEMA_REGISTRY_URL");
    };
    let mut run = floe();
    with_env(&mut run);
    succeeded(
        run.arg("run").arg(&job).args(["--stop-when-idle", "3s"]),
        "floe run examples/avro.sql",
    );
    let mut query = floe();
    with_env(&mut query);
    let out = succeeded(
        query
            .args(["query", "--format", "json", "--job"])
            .arg(&job)
            .arg(
                "SELECT order_id, customer_id, CAST(amount AS VARCHAR) AS amount, currency, \
             CAST(order_ts AS BIGINT) AS ts FROM lake.sales.orders_avro",
            ),
        "floe query",
    );
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json row"))
        .collect();
    // The same orders as the JSON feed's, filtered as the job filters them.
    let mut expected = vec![];
    for p in 0..4 {
        for i in 0..1000 {
            let o = floe_devtools::orders::order(42, 4, p, i);
            if o.cents > 0 {
                expected.push(o);
            }
        }
    }
    expected.sort_by_key(|o| o.id);
    let mut got: Vec<&serde_json::Value> = rows.iter().collect();
    got.sort_by_key(|r| r["order_id"].as_u64());
    assert_eq!(got.len(), expected.len());
    for (r, o) in got.iter().zip(&expected) {
        assert_eq!(r["order_id"].as_u64(), Some(o.id));
        assert_eq!(r["customer_id"].as_u64(), Some(o.customer));
        let amount = format!("{}.{:02}", o.cents / 100, o.cents % 100);
        assert_eq!(r["amount"].as_str(), Some(amount.as_str()), "{r}");
        assert_eq!(
            r["currency"].as_str(),
            Some(o.currency.trim().to_uppercase().as_str())
        );
        assert_eq!(r["ts"].as_i64(), Some(o.ts_ms * 1000), "{r}");
    }
}
