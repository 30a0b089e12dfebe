//! Columns read from record keys: orders whose keys were serialized in Avro by
//! confluent-kafka's `AvroSerializer` (subject `orders-key`) and whose values in Avro
//! too, read with `'key.format'` and `'key.fields'`; a key that is not Avro is
//! dead-lettered with the reason, its value never written.

use serde_json::json;

use crate::fixture::{Broker, Lake};
use crate::registry::{RegistryProcess, dead_letters, reading, send, serialize, source_options};

#[test]
fn key_columns_come_from_avro_keys_and_a_bad_key_is_dead_lettered() {
    let broker = Broker::start(&["orders:1"]);
    let state = tempfile::tempdir().expect("tempdir");
    let registry = RegistryProcess::start(&state.path().join("registry.json"));
    let lake = Lake::with_job(|dir| {
        format!(
            "SET 'job.name' = 'keys';
CREATE CATALOG lake WITH ({catalog});
CREATE SOURCE orders (
  k_id BIGINT NOT NULL, k_region VARCHAR NOT NULL, id BIGINT NOT NULL, customer VARCHAR
) WITH ({options},
  'key.format' = 'avro-confluent', 'key.fields' = 'k_id;k_region', 'key.fields-prefix' = 'k_');
CREATE TABLE lake.sales.orders (
  id BIGINT NOT NULL, key_id BIGINT NOT NULL, region VARCHAR NOT NULL, customer VARCHAR
) WITH (
  'commit.interval' = '1s',
  'on-violation' = 'dead-letter',
  'dead-letter.table' = 'lake.sales.orders_dlq'
);
INSERT INTO lake.sales.orders SELECT id, k_id, k_region, customer FROM orders;
",
            catalog = crate::fixture::sqlite_catalog(dir),
            options = source_options("avro-confluent"),
        )
    });
    let lake = reading(&registry, lake);
    let plan = json!([
        {"schema": "v1", "key": "avro-key", "from": 0, "to": 40},
        {"raw": "bad-key"},
        {"schema": "v1", "key": "avro-key", "from": 40, "to": 50},
    ]);
    let file = serialize(&lake, &registry, plan);
    send(&broker, &file, 0..51);
    lake.run_until_idle(&broker, "3s");

    let rows = lake.query("SELECT id, key_id, region FROM lake.sales.orders ORDER BY id");
    let got: Vec<(u64, u64, String)> = rows
        .iter()
        .map(|r| {
            let region = r["region"].as_str().unwrap_or_default().to_string();
            (
                r["id"].as_u64().unwrap_or(u64::MAX),
                r["key_id"].as_u64().unwrap_or(u64::MAX),
                region,
            )
        })
        .collect();
    let expected: Vec<(u64, u64, String)> =
        (0..50).map(|i| (i, i, format!("r{}", i % 4))).collect();
    assert_eq!(
        got, expected,
        "each row's key columns come from its own key"
    );

    let dead = dead_letters(&lake);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (offset, kind, message) = &dead[0];
    assert_eq!((*offset, kind.as_str()), (40, "malformed"));
    assert!(message.starts_with("the key: "), "{message}");
}
