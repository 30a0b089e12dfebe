//! Lookup joins end to end: orders enriched with a rates table that PyIceberg creates and
//! replaces while the job runs; a currency without a rate breaks a foreign-key CHECK and
//! is dead-lettered; kill -9 loses and duplicates nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use std::process::Child;

use crate::fixture::{
    Broker, Lake, StderrLog, assert_same_ids, produced_range, signal, wait_until,
};
use crate::pyiceberg::{ids_of, read_with_pyiceberg, run_on_lake};

pub const PRICED: &str = "lake.sales.orders_priced";
pub const DEAD: &str = "lake.sales.orders_dlq";
const RATES: &str = "ref.rates";

/// The priced table dead-letters orders without a rate.
const DEAD_LETTER: &str =
    "'on-violation' = 'dead-letter', 'dead-letter.table' = 'lake.sales.orders_dlq'";

pub fn job(dir: &Path, settings: &str) -> String {
    job_with(dir, settings, DEAD_LETTER)
}

/// The enrich job: orders priced with the rates lookup table; a record without a rate
/// breaks `known_currency`, handled by `on_violation`.
fn job_with(dir: &Path, settings: &str, on_violation: &str) -> String {
    format!(
        r#"SET 'job.name' = 'enrich';
{settings}
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite://{dir}/catalog.db', 'warehouse' = 'file://{dir}/warehouse');
CREATE SOURCE orders (
  order_id BIGINT NOT NULL, customer_id BIGINT, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP
) WITH (
  'connector' = 'kafka', 'topic' = 'orders', 'format' = 'json',
  'properties.bootstrap.servers' = '${{KAFKA_BOOTSTRAP}}',
  'properties.group.id' = 'floe-lookup',
  'properties.session.timeout.ms' = '6000',
  'properties.heartbeat.interval.ms' = '500'
);
CREATE TABLE lake.sales.orders_priced (
  order_id BIGINT NOT NULL, currency VARCHAR, amount DECIMAL(12, 2), rate DOUBLE,
  CONSTRAINT known_currency CHECK (rate IS NOT NULL)
) WITH ('commit.interval' = '500ms', {on_violation});
INSERT INTO lake.sales.orders_priced
SELECT o.order_id, upper(trim(o.currency)), o.amount, r.rate
FROM orders AS o
LEFT JOIN lake.ref.rates FOR SYSTEM_TIME AS OF o.proc_time AS r
  ON upper(trim(o.currency)) = r.code;
"#,
        dir = dir.display()
    )
}

/// Replaces the rates table's rows (creating it first if need be) with PyIceberg;
/// returns the new snapshot id.
fn set_rates(lake: &Lake, rates: &[&str]) -> String {
    let args: Vec<&str> = std::iter::once(RATES)
        .chain(rates.iter().copied())
        .collect();
    run_on_lake(
        lake,
        "lookup_table.py",
        "PyIceberg writing the rates table",
        &args,
    )
    .trim()
    .to_string()
}

/// Order id → normalised currency, for orders `indices` of the 4 partitions.
pub fn currencies(indices: std::ops::Range<u64>) -> BTreeMap<u64, String> {
    produced_range(4, indices)
        .iter()
        .map(|r| {
            let id = r["order_id"].as_u64().expect("order_id");
            let c = r["currency"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_uppercase();
            (id, c)
        })
        .collect()
}

/// Order id → rate, as the priced table holds them.
pub fn priced(lake: &Lake) -> BTreeMap<u64, f64> {
    lake.query(&format!("SELECT order_id, rate FROM {PRICED}"))
        .iter()
        .map(|r| {
            let id = r["order_id"].as_u64().expect("order_id");
            (id, r["rate"].as_f64().unwrap_or(f64::NAN))
        })
        .collect()
}

/// Rows of the priced table plus dead letters, once both exist (0 before).
pub fn landed(lake: &Lake) -> u64 {
    let count = |t: &str| {
        lake.try_query(&format!("SELECT count(*) AS n FROM {t}"))
            .ok()
            .and_then(|r| r.first().and_then(|r| r["n"].as_u64()))
            .unwrap_or(0)
    };
    count(PRICED) + count(DEAD)
}

/// Orders 100..200 of each partition while the job runs; then orders 200..300, with the
/// job killed (kill -9) while they stream in and restarted until idle: it reads some
/// again and joins them with the lookup table as it is then.
pub fn land_the_rest_through_a_kill(
    lake: &Lake,
    broker: &Broker,
    mut child: Child,
    log: &StderrLog,
) {
    broker.produce_all(400, 4, 100);
    assert!(
        wait_until(Duration::from_secs(90), || landed(lake) >= 800),
        "the next 400 orders land: {}",
        log.text()
    );
    let mut producer = broker.produce(400, 4, 200, Some(200));
    assert!(
        wait_until(Duration::from_secs(60), || landed(lake) > 800),
        "some of the last orders land before the kill: {}",
        log.text()
    );
    signal(&child, "KILL");
    let _ = child.wait();
    let _ = producer.wait();
    lake.run_until_idle(broker, "5s");
}

/// Checks that each of orders 0..300 of every partition landed once: priced with the
/// rate `early` (orders 0..100) or `late` (100..300) gives for its currency, or, when
/// that gives none, dead-lettered as breaking `known_currency`. PyIceberg reads the
/// priced table.
pub fn assert_priced_or_dead_lettered(
    lake: &Lake,
    early: impl Fn(&str) -> Option<f64>,
    late: impl Fn(&str) -> Option<f64>,
) {
    let rows = priced(lake);
    let (mut want, mut unpriced) = (vec![], vec![]);
    for (orders, rate, when) in [
        (
            currencies(0..100),
            &early as &dyn Fn(&str) -> Option<f64>,
            "before",
        ),
        (currencies(100..300), &late, "after"),
    ] {
        for (id, currency) in &orders {
            let rate = rate(currency);
            assert_eq!(
                rows.get(id).copied(),
                rate,
                "order {id} ({currency}) {when} the update"
            );
            match rate {
                Some(_) => want.push(*id),
                None => unpriced.push(*id),
            }
        }
    }
    want.sort_unstable();
    unpriced.sort_unstable();
    let table = read_with_pyiceberg(lake, "sales.orders_priced");
    assert_same_ids("PyIceberg orders_priced", &ids_of(&table), &want);
    let dead = lake.query(&format!(
        "SELECT CAST(key AS VARCHAR) AS k, rule, error_kind FROM {DEAD}"
    ));
    assert!(
        dead.iter()
            .all(|d| d["rule"] == "known_currency" && d["error_kind"] == "check"),
        "{dead:?}"
    );
    let mut dead_ids: Vec<u64> = dead
        .iter()
        .filter_map(|d| d["k"].as_str().and_then(|k| k.parse().ok()))
        .collect();
    dead_ids.sort_unstable();
    assert_same_ids("dead-lettered orders without a rate", &dead_ids, &unpriced);
}

#[test]
fn orders_are_priced_with_the_rates_pyiceberg_writes_while_the_job_runs() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::with_job(|dir| job(dir, "SET 'lookup.refresh-interval' = '500ms';"));
    let first = set_rates(&lake, &["EUR=1", "USD=2"]);
    broker.produce_all(400, 4, 0);
    let (child, log) = lake.spawn(&broker);
    assert!(
        wait_until(Duration::from_secs(90), || landed(&lake) >= 400),
        "the first 400 orders land: {}",
        log.text()
    );

    // New rates, and a currency that had none: later batches use them.
    let second = set_rates(&lake, &["EUR=10", "USD=2", "GBP=3"]);
    assert_ne!(first, second);
    assert!(
        log.wait_for("lookup table refreshed", Duration::from_secs(30)),
        "the job sees the new snapshot within its refresh interval: {}",
        log.text()
    );
    land_the_rest_through_a_kill(&lake, &broker, child, &log);
    // A pound order before pounds had a rate is dead-lettered; every other is priced.
    assert_priced_or_dead_lettered(
        &lake,
        |c| match c {
            "EUR" => Some(1.0),
            "USD" => Some(2.0),
            _ => None,
        },
        |c| {
            Some(match c {
                "EUR" => 10.0,
                "USD" => 2.0,
                _ => 3.0,
            })
        },
    );

    // Lineage: the job's newest snapshots name the rates snapshot their rows were joined
    // with (the last rows were all joined after the update).
    let described = lake.describe(PRICED);
    assert!(
        described.contains(&format!("lake.ref.rates @ {second}")),
        "{described}"
    );
}

#[test]
fn lookup_tables_that_are_missing_or_too_large_stop_the_job_at_start() {
    let broker = Broker::start(&["orders:1"]);
    let lake = Lake::with_job(|dir| job(dir, ""));
    let err = lake.run_failing(&broker, "2s");
    assert!(
        err.contains("lookup table lake.ref.rates: cannot load it from catalog lake"),
        "{err}"
    );

    let codes: Vec<String> = (0..2000).map(|i| format!("C{i:04}=1.5")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    set_rates(&lake, &codes);
    std::fs::write(
        &lake.job,
        job(lake.dir.path(), "SET 'lookup.max-memory' = '16KB';"),
    )
    .expect("write job");
    let err = lake.run_failing(&broker, "2s");
    assert!(err.contains("lookup table lake.ref.rates"), "{err}");
    assert!(
        err.contains("'lookup.max-memory' allows (16384 bytes)"),
        "{err}"
    );
}

#[test]
fn validate_refuses_a_join_of_two_streams() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("job.sql");
    let text = job(dir.path(), "").replace(
        "LEFT JOIN lake.ref.rates FOR SYSTEM_TIME AS OF o.proc_time AS r\n  ON upper(trim(o.currency)) = r.code",
        "JOIN payments AS r ON o.order_id = r.order_id",
    ) + "CREATE SOURCE payments (order_id BIGINT, rate DOUBLE) WITH ('connector' = 'kafka', \
         'topic' = 'payments', 'format' = 'json', 'properties.bootstrap.servers' = 'k:1');\n";
    std::fs::write(&file, text).expect("write job");
    let out = crate::fixture::floe()
        .arg("validate")
        .arg(&file)
        .env("KAFKA_BOOTSTRAP", "k:1")
        .output()
        .expect("floe validate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "validate must fail");
    assert!(
        err.contains(
            "joins the streams orders and payments: a join between two streams is not supported"
        ),
        "{err}"
    );
}

#[test]
fn orders_without_a_rate_are_dropped_or_stop_the_job_per_policy() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::with_job(|dir| job_with(dir, "", "'on-violation' = 'drop'"));
    set_rates(&lake, &["EUR=1", "USD=2"]);
    broker.produce_all(400, 4, 0);
    lake.run_until_idle(&broker, "3s");
    let orders = currencies(0..100);
    let mut priced: Vec<u64> = orders
        .iter()
        .filter(|(_, c)| c.as_str() != "GBP")
        .map(|(id, _)| *id)
        .collect();
    priced.sort_unstable();
    assert_same_ids("priced orders", &lake.ids(PRICED), &priced);
    let described = lake.describe(PRICED);
    let dropped = described
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("dropped") && l.contains("known_currency"))
        .and_then(|l| l.split_whitespace().last()?.parse::<usize>().ok());
    assert_eq!(
        dropped,
        Some(orders.len() - priced.len()),
        "the pound orders are counted as dropped by known_currency:\n{described}"
    );

    let lake = Lake::with_job(|dir| job_with(dir, "", "'on-violation' = 'fail'"));
    set_rates(&lake, &["EUR=1", "USD=2"]);
    let err = lake.run_failing(&broker, "3s");
    assert!(err.contains("breaks rule 'known_currency'"), "{err}");
    let first_pound = orders
        .iter()
        .find(|(_, c)| c.as_str() == "GBP")
        .map(|(id, _)| *id)
        .expect("a pound order");
    assert!(
        lake.ids(PRICED).iter().all(|id| *id != first_pound),
        "nothing from the failing record on is committed"
    );
}
