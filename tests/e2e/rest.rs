//! An Iceberg REST catalog with OAuth2 client credentials and prefixed routes: Floe
//! writes through it, PyIceberg's REST client reads the same tables, and a wrong
//! credential is refused at start without the secret showing.

use crate::fixture::{Broker, Lake, assert_exactly_once, orders_job_in};
use crate::pyiceberg::{assert_pyiceberg_orders, read_through};
use crate::services::{PrefixFrom, REST_PREFIX, RestCatalog};

const SECRET: &str = "rest-secret-never-logged";

/// A lake on `rest`, with the catalog options `extra` besides the address, warehouse
/// and credential.
fn rest_lake(rest: &RestCatalog, secret: &str, extra: &str) -> Lake {
    let catalog = format!(
        "'type' = 'rest',\n  'uri' = '{}',\n  'warehouse' = '{}',\n  'credential' = 'floe:${{REST_SECRET}}'{extra}",
        rest.uri, rest.warehouse
    );
    let mut lake = Lake::with_job(|_| orders_job_in(&catalog, "1s"));
    lake.env = vec![("REST_SECRET".into(), secret.into())];
    lake
}

#[test]
fn a_rest_catalog_serves_floe_and_pyiceberg() {
    let broker = Broker::start(&["orders:4"]);
    let rest = RestCatalog::start(&format!("floe:{SECRET}"), PrefixFrom::Config);
    let lake = rest_lake(&rest, SECRET, "");
    broker.produce_all(4000, 4, 0);
    let out = lake.run_until_idle(&broker, "4s");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("committed"), "{log}");
    assert!(!log.contains(SECRET), "the log shows the secret: {log}");
    assert_exactly_once(&lake, 1000);
    let v = read_through(
        &rest.uri,
        &rest.warehouse,
        &[format!("credential=floe:{SECRET}")],
        "sales.orders_clean",
    );
    assert_pyiceberg_orders(&v, 1000);
    assert!(v["summary"]["floe.offsets"].is_string(), "{v}");
}

#[test]
fn a_prefix_the_server_does_not_hand_out_is_configured() {
    let broker = Broker::start(&["orders:4"]);
    let rest = RestCatalog::start(&format!("floe:{SECRET}"), PrefixFrom::Client);
    broker.produce_all(400, 4, 0);
    // Without the prefix, the server has no such routes: the first request fails at start.
    let err = rest_lake(&rest, SECRET, "").run_failing(&broker, "3s");
    assert!(err.contains("first request to the REST catalog"), "{err}");
    let lake = rest_lake(&rest, SECRET, &format!(",\n  'prefix' = '{REST_PREFIX}'"));
    lake.run_until_idle(&broker, "3s");
    assert_exactly_once(&lake, 100);
}

#[test]
fn a_warehouse_named_logically_is_placed_by_the_server() {
    let broker = Broker::start(&["orders:4"]);
    let rest = RestCatalog::start_named(
        &format!("floe:{SECRET}"),
        PrefixFrom::Config,
        Some("sales-lake"),
    );
    broker.produce_all(400, 4, 0);
    let named = |warehouse: &str| {
        let catalog = format!(
            "'type' = 'rest',\n  'uri' = '{}',\n  'warehouse' = '{warehouse}',\n  'credential' = 'floe:${{REST_SECRET}}'",
            rest.uri
        );
        let mut lake = Lake::with_job(|_| orders_job_in(&catalog, "1s"));
        lake.env = vec![("REST_SECRET".into(), SECRET.into())];
        lake
    };
    let err = named("no-such-lake").run_failing(&broker, "3s");
    assert!(err.contains("no warehouse named"), "{err}");
    let lake = named("sales-lake");
    lake.run_until_idle(&broker, "3s");
    assert_exactly_once(&lake, 100);
    // The tables live where the server put them, under its own warehouse location.
    let v = read_through(
        &rest.uri,
        "sales-lake",
        &[format!("credential=floe:{SECRET}")],
        "sales.orders_clean",
    );
    assert_pyiceberg_orders(&v, 100);
}

#[test]
fn a_wrong_rest_credential_is_refused_at_start() {
    let broker = Broker::start(&["orders:1"]);
    let rest = RestCatalog::start(&format!("floe:{SECRET}"), PrefixFrom::Config);
    let wrong = "not-the-secret-either";
    let lake = rest_lake(&rest, wrong, "");
    let err = lake.run_failing(&broker, "3s");
    assert!(
        err.contains("catalog lake") && err.contains(&rest.uri),
        "the error names the catalog and its address: {err}"
    );
    assert!(!err.contains(wrong), "the error shows the secret: {err}");
}

#[test]
fn a_table_is_compacted_through_the_rest_commit_endpoint() {
    let broker = Broker::start(&["orders:4"]);
    let rest = RestCatalog::start(&format!("floe:{SECRET}"), PrefixFrom::Config);
    let lake = rest_lake(&rest, SECRET, "");
    let text = std::fs::read_to_string(&lake.job).expect("job");
    let eager = "'commit.interval' = '1s', 'maintenance.compaction.min-input-files' = '2'";
    std::fs::write(&lake.job, text.replace("'commit.interval' = '1s'", eager)).expect("job");
    // Three runs: three small files of about one size in each bucket of big_orders.
    for from in [0, 100, 200] {
        broker.produce_all(400, 4, from);
        lake.run_until_idle(&broker, "3s");
    }
    let said = lake.maintain("lake.sales.big_orders", &[]);
    assert!(said.contains("compacted"), "{said}");
    let v = read_through(
        &rest.uri,
        &rest.warehouse,
        &[format!("credential=floe:{SECRET}")],
        "sales.big_orders",
    );
    assert_eq!(v["operation"], "replace", "{v}");
    let files = v["data_files"].as_u64().expect("data files");
    assert!(files < 12, "12 small files became {files}: {v}");
    crate::fixture::assert_same_ids(
        "PyIceberg big_orders",
        &crate::pyiceberg::ids_of(&v),
        &crate::fixture::expected_big_ids(&crate::fixture::produced(4, 300)),
    );
}
