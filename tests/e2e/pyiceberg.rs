//! An independent reader: PyIceberg opens the same SQLite catalog and reads what Floe wrote.

use std::path::PathBuf;
use std::process::Command;

use crate::fixture::{Broker, Lake, assert_same_ids, expected_clean_ids, produced};

/// The Python interpreter with PyIceberg: `FLOE_TEST_PYTHON`, else the repository's `.venv`.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("FLOE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "PyIceberg is needed for this test: run the README's test command (scripts/test.sh), \
         which creates .venv, or set FLOE_TEST_PYTHON"
    );
    venv
}

/// Runs the script `tests/e2e/NAME` with the lake's catalog URI, its warehouse and `args`;
/// it must succeed. Its standard output.
pub fn run_on_lake(lake: &Lake, name: &str, what: &str, args: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e")
        .join(name);
    let dir = lake.dir.path();
    let out = crate::fixture::succeeded(
        Command::new(python())
            .arg(script)
            .arg(format!("sqlite:///{}/catalog.db", dir.display()))
            .arg(format!("file://{}/warehouse", dir.display()))
            .args(args),
        what,
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What `read_table.py` reports about `table` (namespace.table) of the lake.
pub fn read_with_pyiceberg(lake: &Lake, table: &str) -> serde_json::Value {
    let dir = lake.dir.path();
    read_through(
        &format!("sqlite:///{}/catalog.db", dir.display()),
        &format!("file://{}/warehouse", dir.display()),
        &[],
        table,
    )
}

/// What `read_table.py` reports about `table`, opening the catalog at `uri` (an SQLAlchemy
/// URI) with the catalog properties `props` (`key=value`, such as `s3.endpoint=…`).
pub fn read_through(
    uri: &str,
    warehouse: &str,
    props: &[String],
    table: &str,
) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/read_table.py");
    let out = crate::fixture::succeeded(
        Command::new(python())
            .arg(script)
            .arg(uri)
            .arg(warehouse)
            .arg(table)
            .args(props),
        "PyIceberg",
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the reader")
}

/// The order ids in what `read_table.py` reported, sorted.
pub fn ids_of(v: &serde_json::Value) -> Vec<u64> {
    let mut ids: Vec<u64> = v["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect();
    ids.sort_unstable();
    ids
}

/// PyIceberg's `orders_clean` rows (`v`, from `read_table.py`) are exactly the produced
/// orders with a positive amount (4 partitions × `per_partition`).
pub fn assert_pyiceberg_orders(v: &serde_json::Value, per_partition: u64) {
    assert_same_ids(
        "PyIceberg orders_clean",
        &ids_of(v),
        &expected_clean_ids(&produced(4, per_partition)),
    );
}

#[test]
fn pyiceberg_reads_the_rows_and_the_offsets() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("1s");
    broker.produce_all(2000, 4, 0);
    lake.run_until_idle(&broker, "4s");
    let v = read_with_pyiceberg(&lake, "sales.orders_clean");
    assert_pyiceberg_orders(&v, 500);
    let offsets: serde_json::Value = serde_json::from_str(
        v["summary"]["floe.offsets"]
            .as_str()
            .expect("offsets in the summary"),
    )
    .expect("offsets JSON");
    for p in 0..4 {
        assert_eq!(offsets["orders"][p.to_string()], 500, "{offsets}");
    }
    assert_eq!(v["summary"]["floe.job"], "e2e");
    assert_eq!(v["partition_spec"], "order_ts_day: day(order_ts)");
}

/// Order ids DuckDB's Iceberg reader reads from `table` (namespace.table), sorted.
pub fn read_with_duckdb(lake: &Lake, table: &str) -> Vec<u64> {
    let dir = lake.dir.path();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/read_duckdb.py");
    let out = crate::fixture::succeeded(
        Command::new(python())
            .arg(script)
            .arg(format!("sqlite:///{}/catalog.db", dir.display()))
            .arg(format!("file://{}/warehouse", dir.display()))
            .arg(table),
        "DuckDB",
    );
    ids_of(&serde_json::from_slice(&out.stdout).expect("JSON from DuckDB"))
}
