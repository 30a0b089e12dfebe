//! An Iceberg REST catalog with OAuth2 client credentials: Floe writes through it,
//! PyIceberg's REST client reads the same tables, and a wrong credential is refused at
//! start without the secret showing.

use crate::fixture::{Broker, Lake, assert_exactly_once, orders_job_in};
use crate::pyiceberg::{assert_pyiceberg_orders, read_through};
use crate::services::RestCatalog;

const SECRET: &str = "rest-secret-never-logged";

fn rest_lake(rest: &RestCatalog, secret: &str) -> Lake {
    let catalog = format!(
        "'type' = 'rest',\n  'uri' = '{}',\n  'warehouse' = '{}',\n  'credential' = 'floe:${{REST_SECRET}}'",
        rest.uri, rest.warehouse
    );
    let mut lake = Lake::with_job(|_| orders_job_in(&catalog, "1s"));
    lake.env = vec![("REST_SECRET".into(), secret.into())];
    lake
}

#[test]
fn a_rest_catalog_serves_floe_and_pyiceberg() {
    let broker = Broker::start(&["orders:4"]);
    let rest = RestCatalog::start(&format!("floe:{SECRET}"));
    let lake = rest_lake(&rest, SECRET);
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
fn a_wrong_rest_credential_is_refused_at_start() {
    let broker = Broker::start(&["orders:1"]);
    let rest = RestCatalog::start(&format!("floe:{SECRET}"));
    let wrong = "not-the-secret-either";
    let lake = rest_lake(&rest, wrong);
    let err = lake.run_failing(&broker, "3s");
    assert!(
        err.contains("catalog lake") && err.contains(&rest.uri),
        "the error names the catalog and its address: {err}"
    );
    assert!(!err.contains(wrong), "the error shows the secret: {err}");
}
