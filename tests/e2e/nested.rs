//! Nested and repeated fields: Avro records with a nested record, an array of records, a
//! map and an array of strings (serialized by confluent-kafka's `AvroSerializer`),
//! Protobuf messages of the same shape (its `ProtobufSerializer`), and JSON objects, land in Iceberg columns of ROW, ARRAY and MAP type
//! that PyIceberg reads back, or are taken apart in the job's SQL.

use serde_json::{Value, json};

use crate::fixture::{Broker, Lake};
use crate::pyiceberg::read_through;
use crate::registry::{RegistryProcess, dead_letters, reading, send, serialize, source_options};

const ORDERS: u64 = 60;

/// The job `job` describes: the nested orders in its format (its source columns may be
/// empty: they then come from the registry) into its table columns, with its select.
fn registry_job(registry: &RegistryProcess, job: &Job) -> Lake {
    let (name, source_columns, table_columns, select, format) = (
        job.name.to_string(),
        job.source_columns.to_string(),
        job.table_columns.to_string(),
        job.select.to_string(),
        job.format,
    );
    let lake = Lake::with_job(move |dir| {
        format!(
            "SET 'job.name' = '{name}';
CREATE CATALOG lake WITH ({catalog});
CREATE SOURCE orders {source_columns} WITH ({options});
CREATE TABLE lake.sales.orders ({table_columns}) WITH (
  'commit.interval' = '1s',
  'on-violation' = 'dead-letter',
  'dead-letter.table' = 'lake.sales.orders_dlq'
);
INSERT INTO lake.sales.orders {select};
",
            catalog = crate::fixture::sqlite_catalog(dir),
            options = source_options(format),
        )
    });
    reading(registry, lake)
}

/// A finished run of a `registry_job` over the nested orders; the broker and registry live
/// as long as it, for the checks.
struct NestedRun {
    lake: Lake,
    _registry: RegistryProcess,
    _state: tempfile::TempDir,
    _broker: Broker,
}

/// Serializes `ORDERS` nested Avro orders with confluent-kafka, sends them, and runs
/// the job that `registry_job` makes of the arguments until it is idle.
fn ingest_nested_avro(
    name: &str,
    source_columns: &str,
    table_columns: &str,
    select: &str,
) -> NestedRun {
    let job = Job {
        format: "avro-confluent",
        schema: "nested",
        name,
        source_columns,
        table_columns,
        select,
    };
    ingest_nested(&job)
}

/// What `ingest_nested` runs: a `registry_job` over orders serialized with `schema`.
struct Job<'a> {
    format: &'static str,
    schema: &'a str,
    name: &'a str,
    source_columns: &'a str,
    table_columns: &'a str,
    select: &'a str,
}

/// Serializes `ORDERS` nested orders with confluent-kafka, sends them, and runs `job`
/// until it is idle.
fn ingest_nested(job: &Job) -> NestedRun {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let registry = RegistryProcess::start(&state.path().join("registry.json"));
    let lake = registry_job(&registry, job);
    let file = serialize(
        &lake,
        &registry,
        json!([{"schema": job.schema, "from": 0, "to": ORDERS}]),
    );
    send(&broker, &file, 0..ORDERS as usize);
    lake.run_until_idle(&broker, "3s");
    NestedRun {
        lake,
        _registry: registry,
        _state: state,
        _broker: broker,
    }
}

/// Every row of `table` as PyIceberg reads it, by id.
fn pyiceberg_rows(lake: &Lake, table: &str) -> Vec<Value> {
    let dir = lake.dir.path();
    let read = read_through(
        &format!("sqlite:///{}/catalog.db", dir.display()),
        &format!("file://{}/warehouse", dir.display()),
        &["rows=all".to_string()],
        table,
    );
    let mut rows = read["rows"].as_array().cloned().unwrap_or_default();
    rows.sort_by_key(|r| r["id"].as_u64());
    rows
}

/// Order `i` as produce_registry.py's `nested_order` makes it, as PyIceberg reads it
/// back (a map as a list of key/value pairs).
fn nested_order(i: u64) -> Value {
    let lines: Vec<Value> = (0..i % 3)
        .map(|k| json!({"sku": format!("s{i}-{k}"), "qty": k + 1, "price": k as f64 + 0.5}))
        .collect();
    let tags: Vec<String> = (0..i % 2).map(|k| format!("t{k}")).collect();
    json!({
        "id": i,
        "customer": {"name": format!("c{}", i % 17), "segment": i.is_multiple_of(3).then_some("gold")},
        "lines": lines,
        "attrs": [["channel", if i % 2 == 1 { "web" } else { "app" }]],
        "tags": tags,
    })
}

#[test]
fn nested_avro_records_land_as_nested_columns_that_pyiceberg_reads() {
    // The source declares no columns: they come from the registry's nested schema.
    let run = ingest_nested_avro(
        "nested-whole",
        "",
        "id BIGINT NOT NULL,
  customer ROW<name VARCHAR NOT NULL, segment VARCHAR> NOT NULL,
  lines ARRAY<ROW<sku VARCHAR NOT NULL, qty INT NOT NULL, price DOUBLE NOT NULL> NOT NULL> NOT NULL,
  attrs MAP<VARCHAR, VARCHAR NOT NULL> NOT NULL,
  tags VARCHAR[]",
        "SELECT * FROM orders",
    );
    let rows = pyiceberg_rows(&run.lake, "sales.orders");
    let expected: Vec<Value> = (0..ORDERS).map(nested_order).collect();
    assert_eq!(rows, expected);
    assert!(dead_letters(&run.lake).is_empty());
}

#[test]
fn nested_protobuf_messages_land_as_nested_columns_that_pyiceberg_reads() {
    // The same orders serialized by confluent-kafka's ProtobufSerializer: a message, a
    // repeated message, a map and a repeated string; the columns come from the registry.
    let run = ingest_nested(&Job {
        format: "protobuf-confluent",
        schema: "proto-nested",
        name: "nested-protobuf",
        source_columns: "",
        table_columns: "id BIGINT,
  customer ROW<name VARCHAR, segment VARCHAR>,
  lines ARRAY<ROW<sku VARCHAR, qty INT, price DOUBLE>>,
  attrs MAP<VARCHAR, VARCHAR>,
  tags VARCHAR[]",
        select: "SELECT * FROM orders",
    });
    let rows = pyiceberg_rows(&run.lake, "sales.orders");
    let expected: Vec<Value> = (0..ORDERS).map(nested_order).collect();
    assert_eq!(rows, expected);
    assert!(dead_letters(&run.lake).is_empty());
}

#[test]
fn declared_nested_columns_are_read_by_name_and_taken_apart_in_sql() {
    // Fields in another order than the writer's, `price` and `tags` left out, `qty`
    // widened to BIGINT, and a field the writer lacks (`note`, read as null).
    let run = ingest_nested_avro(
        "nested-apart",
        "(
  id BIGINT NOT NULL,
  customer ROW<segment VARCHAR, name VARCHAR>,
  lines ARRAY<ROW<qty BIGINT, sku VARCHAR, note VARCHAR>>,
  attrs MAP<VARCHAR, VARCHAR>
)",
        "id BIGINT NOT NULL, customer_name VARCHAR, segment VARCHAR, line_count INT,
  first_sku VARCHAR, channel VARCHAR, lines ARRAY<ROW<qty BIGINT, sku VARCHAR, note VARCHAR>>",
        "SELECT id, customer.name, customer.segment, cardinality(lines), lines[1]['sku'],
  attrs['channel'], lines FROM orders",
    );
    let rows = pyiceberg_rows(&run.lake, "sales.orders");
    assert_eq!(rows.len() as u64, ORDERS);
    for (i, row) in (0..ORDERS).zip(&rows) {
        let order = nested_order(i);
        let lines: Vec<Value> = order["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| json!({"qty": l["qty"], "sku": l["sku"], "note": null}))
            .collect();
        let expected = json!({
            "id": i,
            "customer_name": order["customer"]["name"],
            "segment": order["customer"]["segment"],
            "line_count": i % 3,
            "first_sku": lines.first().map(|l| l["sku"].clone()),
            "channel": order["attrs"][0][1],
            "lines": lines,
        });
        assert_eq!(row, &expected);
    }
}

#[test]
fn nested_json_values_land_and_a_misfit_is_dead_lettered() {
    let broker = Broker::start(&["orders:1"]);
    let lake = Lake::with_job(|dir| {
        format!(
            "SET 'job.name' = 'nested-json';
CREATE CATALOG lake WITH ({catalog});
CREATE SOURCE orders (
  id BIGINT NOT NULL,
  customer ROW<name VARCHAR NOT NULL, segment VARCHAR>,
  lines ARRAY<ROW<sku VARCHAR, qty INT>>,
  attrs MAP<VARCHAR, VARCHAR>
) WITH (
  'connector' = 'kafka', 'topic' = 'orders', 'format' = 'json',
  'properties.bootstrap.servers' = '${{KAFKA_BOOTSTRAP}}',
  'scan.startup.mode' = 'earliest-offset'
);
CREATE TABLE lake.sales.orders (
  id BIGINT NOT NULL,
  customer ROW<name VARCHAR NOT NULL, segment VARCHAR>,
  lines ARRAY<ROW<sku VARCHAR, qty INT>>,
  attrs MAP<VARCHAR, VARCHAR>,
  CONSTRAINT has_lines CHECK (cardinality(lines) > 0)
) WITH (
  'commit.interval' = '1s',
  'on-violation' = 'dead-letter',
  'dead-letter.table' = 'lake.sales.orders_dlq'
);
INSERT INTO lake.sales.orders SELECT * FROM orders;
",
            catalog = crate::fixture::sqlite_catalog(dir)
        )
    });
    broker.send(&[
        r#"{"id": 1, "customer": {"name": "Ada", "segment": "gold"}, "lines": [{"sku": "a", "qty": 2}], "attrs": {"channel": "web"}}"#.into(),
        r#"{"id": 2, "customer": {"name": "Bo"}, "lines": [{"qty": 1, "sku": "b"}, {"sku": "c"}]}"#.into(),
        // A line that is not an object: a type error, dead-lettered.
        r#"{"id": 3, "customer": {"name": "Cy"}, "lines": ["d"]}"#.into(),
        // A customer without its NOT NULL name.
        r#"{"id": 4, "customer": {"segment": "gold"}, "lines": [{"sku": "e"}]}"#.into(),
        // No lines: breaks the rule.
        r#"{"id": 5, "customer": {"name": "Di"}, "lines": []}"#.into(),
    ]);
    lake.run_until_idle(&broker, "3s");

    let rows = pyiceberg_rows(&lake, "sales.orders");
    assert_eq!(
        rows,
        vec![
            json!({"id": 1, "customer": {"name": "Ada", "segment": "gold"},
                   "lines": [{"sku": "a", "qty": 2}], "attrs": [["channel", "web"]]}),
            json!({"id": 2, "customer": {"name": "Bo", "segment": null},
                   "lines": [{"sku": "b", "qty": 1}, {"sku": "c", "qty": null}], "attrs": null}),
        ]
    );
    let dead = dead_letters(&lake);
    let kinds: Vec<(u64, &str)> = dead.iter().map(|d| (d.0, d.1.as_str())).collect();
    assert_eq!(kinds, [(2, "type"), (3, "type"), (4, "check")], "{dead:?}");
}
