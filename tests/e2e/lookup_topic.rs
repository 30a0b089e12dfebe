//! A compacted topic as a lookup table (`'connector' = 'upsert-kafka'`): orders priced
//! with the latest rate per currency key; the topic is read to its end before the first
//! order, updates and tombstones sent while the job runs apply to later orders, and a
//! kill -9 loses and duplicates nothing.

use std::time::Duration;

use crate::fixture::{Broker, Lake, wait_until};
use crate::lookup::{
    PRICED, assert_priced_or_dead_lettered, job, land_the_rest_through_a_kill, landed,
};
use crate::scrape::{free_port, scrape, sum};

/// The rates topic as a table source, refreshed quickly so the test does not wait.
const RATES_SOURCE: &str = "CREATE SOURCE rates (code VARCHAR NOT NULL, rate DOUBLE) WITH (
  'connector' = 'upsert-kafka', 'topic' = 'rates', 'format' = 'json',
  'properties.bootstrap.servers' = '${KAFKA_BOOTSTRAP}',
  'lookup.refresh-interval' = '200ms'
);";

fn rate(code: &str, rate: f64) -> String {
    format!(r#"{code}={{"code":"{code}","rate":{rate}}}"#)
}

/// The enrich job of the Iceberg lookup tests, joined with the rates topic instead.
fn topic_job(dir: &std::path::Path) -> String {
    topic_job_with(dir, "")
}

/// Like [`topic_job`], with `settings` (`SET …;`) too.
fn topic_job_with(dir: &std::path::Path, settings: &str) -> String {
    job(dir, &format!("{settings}\n{RATES_SOURCE}")).replace(
        "LEFT JOIN lake.ref.rates FOR SYSTEM_TIME AS OF o.proc_time AS r",
        "LEFT JOIN rates FOR SYSTEM_TIME AS OF o.proc_time AS r",
    )
}

#[test]
fn orders_are_priced_with_the_latest_rates_of_a_compacted_topic() {
    let broker = Broker::start(&["orders:4", "rates:1"]);
    let mut lake = Lake::with_job(topic_job);
    let port = free_port();
    lake.env
        .push(("FLOE_METRICS_ADDR".into(), format!("127.0.0.1:{port}")));
    // History before the job starts, all of it read before the first order: an update
    // (USD), a key deleted (CHF) and a value that is not JSON (left out, logged).
    broker.send_keyed(
        "rates",
        0,
        &[
            rate("EUR", 1.0),
            rate("USD", 5.0),
            rate("CHF", 7.0),
            rate("USD", 2.0),
            "CHF=NULL".into(),
            rate("GBP", 3.0),
            "XXX=not json".into(),
        ],
    );
    broker.produce_all(400, 4, 0);
    let (child, log) = lake.spawn(&broker);
    assert!(
        wait_until(Duration::from_secs(90), || landed(&lake) >= 400),
        "the first 400 orders land: {}",
        log.text()
    );
    assert!(
        log.wait_for("lookup topic read to its end", Duration::from_secs(1)),
        "{}",
        log.text()
    );
    assert!(
        log.text()
            .contains("a record of the lookup topic is left out"),
        "the undecodable rate is logged: {}",
        log.text()
    );
    let metrics = scrape(port);
    let rates = [("table", "rates")];
    let skipped = [("table", "rates"), ("reason", "malformed")];
    assert_eq!(
        sum(&metrics, "floe_lookup_skipped_records_total", &skipped),
        1.0,
        "the undecodable rate is counted"
    );
    assert_eq!(
        sum(&metrics, "floe_lookup_rows", &rates),
        3.0,
        "EUR, USD and GBP are the table (CHF was deleted)"
    );

    // A new euro rate, and pounds deleted: later orders see both.
    broker.send_keyed("rates", 0, &[rate("EUR", 10.0), "GBP=NULL".into()]);
    assert!(
        log.wait_for("offsets 0:9", Duration::from_secs(30)),
        "the job swaps in the topic's new rows within its refresh interval: {}",
        log.text()
    );
    land_the_rest_through_a_kill(&lake, &broker, child, &log);
    // A pound order after pounds were deleted is dead-lettered; every other is priced.
    assert_priced_or_dead_lettered(
        &lake,
        |c| {
            Some(match c {
                "EUR" => 1.0,
                "USD" => 2.0,
                _ => 3.0,
            })
        },
        |c| match c {
            "EUR" => Some(10.0),
            "USD" => Some(2.0),
            _ => None,
        },
    );

    // Lineage: the snapshots name the topic offsets their rows were joined with.
    let described = lake.describe(PRICED);
    assert!(described.contains("rates @ offsets 0:9"), "{described}");
}

#[test]
fn a_lookup_topic_that_is_missing_or_too_large_stops_the_job_at_start() {
    let broker = Broker::start(&["orders:1", "rates:1"]);
    let lake =
        Lake::with_job(|dir| topic_job(dir).replace("'topic' = 'rates'", "'topic' = 'no_rates'"));
    let err = lake.run_failing(&broker, "2s");
    assert!(
        err.contains("lookup table rates: topic no_rates does not exist"),
        "{err}"
    );

    let rates: Vec<String> = (0..2000).map(|i| rate(&format!("C{i:04}"), 1.5)).collect();
    broker.send_keyed("rates", 0, &rates);
    let text = topic_job_with(lake.dir.path(), "SET 'lookup.max-memory' = '16KB';");
    std::fs::write(&lake.job, text).expect("write job");
    let err = lake.run_failing(&broker, "2s");
    assert!(err.contains("lookup table rates (offsets 0:2000)"), "{err}");
    assert!(
        err.contains("'lookup.max-memory' allows (16384 bytes)"),
        "{err}"
    );
}
