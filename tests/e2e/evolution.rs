//! Schema evolution into the table (`'schema.evolution' = 'add-columns'`): a registry
//! source that takes its columns from its schema meets a new schema version mid-stream;
//! the running job commits, evolves the table, plans again and reads on, exactly once;
//! PyIceberg reads the evolved table. A version the table cannot take is dead-lettered.

use std::process::Child;
use std::time::Duration;

use crate::fixture::{Broker, Lake, StderrLog, signal, sqlite_catalog, wait_until};
use crate::pyiceberg::read_through;
use crate::registry::{RegistryProcess, dead_letters, reading, send, serialize, source_options};

/// The orders job: columns from the registry, `SELECT *` into a table that follows
/// them; `extra` adds declared table columns.
fn evolving_job(dir: &std::path::Path, extra: &str) -> String {
    format!(
        "SET 'job.name' = 'evolving-orders';
CREATE CATALOG lake WITH ({catalog});
CREATE SOURCE orders WITH ({options});
CREATE TABLE lake.sales.orders (
  id BIGINT NOT NULL, customer VARCHAR, amount DOUBLE, status VARCHAR,
  placed TIMESTAMP WITH TIME ZONE{extra}
) WITH (
  'commit.interval' = '1s',
  'schema.evolution' = 'add-columns',
  'on-violation' = 'dead-letter',
  'dead-letter.table' = 'lake.sales.orders_dlq'
);
INSERT INTO lake.sales.orders SELECT * FROM orders;
",
        catalog = sqlite_catalog(dir),
        options = source_options("avro-confluent"),
    )
}

fn lake(registry: &RegistryProcess, extra: &str) -> Lake {
    reading(registry, Lake::with_job(|dir| evolving_job(dir, extra)))
}

/// Rows in `table`; 0 while the job has not created it yet.
fn count(lake: &Lake, table: &str) -> u64 {
    let rows = lake.try_query(&format!("SELECT count(*) AS n FROM {table}"));
    rows.ok()
        .and_then(|r| r.first().and_then(|r| r["n"].as_u64()))
        .unwrap_or(0)
}

/// Waits until `table` holds `n` rows.
fn wait_for_rows(lake: &Lake, table: &str, n: u64, log: &StderrLog) {
    assert!(
        wait_until(Duration::from_secs(90), || count(lake, table) == n),
        "{table} never held {n} rows (it has {}):\n{}",
        count(lake, table),
        log.text()
    );
}

/// Stops the job with SIGTERM; it must exit cleanly.
fn stop(mut child: Child, log: &StderrLog) {
    signal(&child, "TERM");
    let status = child.wait().expect("floe run exits");
    assert!(status.success(), "floe run failed:\n{}", log.text());
}

/// Every row PyIceberg reads: (id, note).
fn pyiceberg_rows(lake: &Lake) -> (Vec<(u64, Option<String>)>, serde_json::Value) {
    let dir = lake.dir.path();
    let read = read_through(
        &format!("sqlite:///{}/catalog.db", dir.display()),
        &format!("file://{}/warehouse", dir.display()),
        &["rows=all".to_string()],
        "sales.orders",
    );
    let mut rows: Vec<(u64, Option<String>)> = read["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let id = r["id"].as_u64().expect("id");
            assert_eq!(r["amount"].as_f64(), Some(id as f64 * 1.25), "row {r}");
            (id, r["note"].as_str().map(str::to_string))
        })
        .collect();
    rows.sort();
    (rows, read)
}

#[test]
fn a_schema_version_met_mid_stream_adds_its_columns_and_loses_nothing() {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let registry = RegistryProcess::start(&state.path().join("registry.json"));
    let lake = lake(&registry, "");
    let v1 = serialize(
        &lake,
        &registry,
        serde_json::json!([{"schema": "v1", "from": 0, "to": 100}]),
    );
    send(&broker, &v1, 0..100);
    let (child, log) = lake.spawn(&broker);
    wait_for_rows(&lake, "lake.sales.orders", 100, &log);

    // v2 (with an optional `note`) is registered while the job runs, then v1 again.
    let later = serialize(
        &lake,
        &registry,
        serde_json::json!([
            {"schema": "v2", "from": 100, "to": 200},
            {"schema": "v1", "from": 200, "to": 300}
        ]),
    );
    send(&broker, &later, 0..200);
    wait_for_rows(&lake, "lake.sales.orders", 300, &log);
    stop(child, &log);
    let text = log.text();
    assert!(text.contains("a writer schema adds columns"), "{text}");
    assert!(text.contains("the table's schema evolved"), "{text}");
    assert!(
        text.contains("planned again for the new writer schema"),
        "{text}"
    );

    // Each record exactly once; v2's notes kept, NULL before and after.
    let (rows, read) = pyiceberg_rows(&lake);
    let expected: Vec<(u64, Option<String>)> = (0..300)
        .map(|i| (i, (100..200).contains(&i).then(|| format!("note {i}"))))
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(read["schemas"].as_u64(), Some(2), "{read}");
    assert_eq!(count(&lake, "lake.sales.orders_dlq"), 0);

    // A restart plans from v2, the latest, and finds the table already evolved.
    lake.run_until_idle(&broker, "3s");
    assert_eq!(pyiceberg_rows(&lake).0, expected);
}

#[test]
fn a_schema_version_the_table_cannot_take_is_dead_lettered_naming_both_versions() {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let registry = RegistryProcess::start(&state.path().join("registry.json"));
    // The table's `note` is a number: v2's text note cannot go into it.
    let lake = lake(&registry, ", note BIGINT");
    let v1 = serialize(
        &lake,
        &registry,
        serde_json::json!([{"schema": "v1", "from": 0, "to": 50}]),
    );
    send(&broker, &v1, 0..50);
    let (child, log) = lake.spawn(&broker);
    wait_for_rows(&lake, "lake.sales.orders", 50, &log);
    let later = serialize(
        &lake,
        &registry,
        serde_json::json!([
            {"schema": "v2", "from": 50, "to": 100},
            {"schema": "v1", "from": 100, "to": 150}
        ]),
    );
    send(&broker, &later, 0..100);
    wait_for_rows(&lake, "lake.sales.orders", 100, &log);
    wait_for_rows(&lake, "lake.sales.orders_dlq", 50, &log);
    stop(child, &log);

    let (rows, _) = pyiceberg_rows(&lake);
    let ids: Vec<u64> = rows.iter().map(|(id, _)| *id).collect();
    let expected: Vec<u64> = (0..50).chain(100..150).collect();
    assert_eq!(ids, expected);
    let dead = dead_letters(&lake);
    assert_eq!(
        dead.iter().map(|(o, _, _)| *o).collect::<Vec<_>>(),
        (50..100).collect::<Vec<_>>()
    );
    for (_, kind, message) in &dead {
        assert_eq!(kind, "type");
        assert!(
            message.contains("(version 2)")
                && message.contains("those of version 1")
                && message.contains("column note is BIGINT"),
            "{message}"
        );
    }
}
