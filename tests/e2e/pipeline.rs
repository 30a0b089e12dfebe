//! The table holds exactly the result of the job's SQL over the produced records.

use crate::fixture::{
    Broker, Lake, assert_same_ids, expected_big_ids, expected_clean_ids, produced, signal,
    spawn_logged,
};

#[test]
fn tables_hold_the_sql_result_of_the_produced_records() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("1s");
    broker.produce_all(4000, 4, 0);
    lake.run_until_idle(&broker, "4s");

    let records = produced(4, 1000);
    assert_same_ids(
        "lake.sales.orders_clean",
        &lake.ids("lake.sales.orders_clean"),
        &expected_clean_ids(&records),
    );
    assert_same_ids(
        "lake.sales.big_orders",
        &lake.ids("lake.sales.big_orders"),
        &expected_big_ids(&records),
    );

    // Column values follow the SQL: trimmed, upper-cased currency; day of the timestamp.
    let rows = lake.query(
        "SELECT order_id, currency, CAST(amount AS VARCHAR) AS amount, CAST(order_date AS VARCHAR) AS d, \
         CAST(order_ts AS VARCHAR) AS ts, part, off FROM lake.sales.orders_clean",
    );
    let by_id: std::collections::HashMap<u64, &serde_json::Value> = records
        .iter()
        .map(|r| (r["order_id"].as_u64().unwrap_or(0), r))
        .collect();
    for row in &rows {
        let id = row["order_id"].as_u64().expect("id");
        let src = by_id[&id];
        let currency = src["currency"]
            .as_str()
            .expect("currency")
            .trim()
            .to_uppercase();
        assert_eq!(row["currency"].as_str(), Some(currency.as_str()));
        let amount: f64 = row["amount"]
            .as_str()
            .expect("amount")
            .parse()
            .expect("number");
        assert!((amount - src["amount"].as_f64().expect("amount")).abs() < 1e-9);
        let ts = src["order_ts"].as_str().expect("ts");
        assert_eq!(row["d"].as_str(), Some(&ts[..10]));
        assert!(row["ts"].as_str().expect("ts").starts_with(&ts[..19]));
        let (part, off) = (
            row["part"].as_u64().expect("part"),
            row["off"].as_u64().expect("off"),
        );
        assert_eq!((id - 1) % 4, part, "partition metadata");
        assert_eq!((id - 1) / 4, off, "offset metadata");
    }

    // A second run with new records continues where the first stopped.
    broker.produce_all(2000, 4, 1000);
    lake.run_until_idle(&broker, "4s");
    let records = produced(4, 1500);
    assert_same_ids(
        "lake.sales.orders_clean",
        &lake.ids("lake.sales.orders_clean"),
        &expected_clean_ids(&records),
    );
    assert_same_ids(
        "lake.sales.big_orders",
        &lake.ids("lake.sales.big_orders"),
        &expected_big_ids(&records),
    );

    // The newest snapshot records the next offset of every partition.
    let out = crate::fixture::floe()
        .args(["describe", "--job"])
        .arg(&lake.job)
        .arg("lake.sales.orders_clean")
        .output()
        .expect("describe");
    let text = String::from_utf8_lossy(&out.stdout);
    for p in 0..4 {
        assert!(
            text.contains(&format!("orders/{p}")) && text.contains("next offset 1500"),
            "{text}"
        );
    }
}

#[test]
fn an_idle_source_commits_nothing() {
    let broker = Broker::start(&["orders:2"]);
    let lake = Lake::new("500ms");
    broker.produce_all(200, 2, 0);
    lake.run_until_idle(&broker, "3s");
    let snapshots = |t: &str| {
        lake.query(&format!(
            "SELECT snapshot_id FROM lake.sales.\"{t}$snapshots\""
        ))
        .len()
    };
    let before = snapshots("orders_clean");
    lake.run_until_idle(&broker, "3s");
    assert_eq!(
        snapshots("orders_clean"),
        before,
        "a run without new records must not commit"
    );
}

#[test]
fn an_undecodable_record_stops_the_job_naming_its_offset() {
    let broker = Broker::start(&["orders:1"]);
    let lake = Lake::new("500ms");
    broker.produce_all(50, 1, 0);
    lake.run_until_idle(&broker, "3s");
    // A record whose order_id is not a number, at offset 50.
    broker.send(&[r#"{"order_id":"not a number","order_ts":"2026-11-01T00:00:00Z"}"#.into()]);
    broker
        .produce(10, 1, 50, None)
        .wait()
        .expect("produce after");
    let out = lake
        .run_cmd(&broker)
        .args(["--stop-when-idle", "3s"])
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "the job must stop on an undecodable record"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orders/0 offset 50"),
        "error must name topic/partition/offset: {err}"
    );
    // Nothing at or past the bad record is committed.
    let ids = lake.ids("lake.sales.orders_clean");
    assert!(ids.iter().all(|id| *id <= 50), "{ids:?}");
}

#[test]
fn sigterm_commits_what_was_read_and_exits_zero() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("1h");
    broker.produce_all(4000, 4, 0);
    let mut child = lake
        .run_cmd(&broker)
        .args(["--progress-interval", "500ms"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    let log = crate::fixture::StderrLog::attach(&mut child).expect("piped stderr");
    // With a one-hour commit interval nothing is committed until the signal.
    assert!(
        log.wait_for("total in 4000 ", std::time::Duration::from_secs(60)),
        "every record is read: {}",
        log.text()
    );
    signal(&child, "TERM");
    let status = child.wait().expect("wait");
    assert_eq!(
        status.code(),
        Some(0),
        "graceful stop must exit 0: {}",
        log.text()
    );
    let records = produced(4, 1000);
    assert_same_ids(
        "orders_clean",
        &lake.ids("lake.sales.orders_clean"),
        &expected_clean_ids(&records),
    );
}

#[test]
fn a_second_signal_exits_at_once_without_committing() {
    let broker = Broker::start(&["orders:2"]);
    let lake = Lake::new("1h");
    broker.produce_all(1000, 2, 0);
    // The graceful stop stalls just before its commit, so the second signal finds it busy.
    let mut cmd = lake.run_cmd(&broker);
    cmd.env("FLOE_FAILPOINTS", "before-commit=sleep:20000");
    let (mut child, log) = spawn_logged(&mut cmd);
    let limit = std::time::Duration::from_secs(60);
    assert!(
        log.wait_for("total in 1000", limit),
        "the job reads every record before the first signal:\n{}",
        log.text()
    );
    signal(&child, "INT");
    assert!(
        log.wait_for("failpoint before-commit: sleeping", limit),
        "the stop must have reached the commit:\n{}",
        log.text()
    );
    signal(&child, "INT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{}", log.text());
    assert!(
        lake.ids("lake.sales.orders_clean").is_empty(),
        "nothing may be committed"
    );
    // Whatever was or was not committed, a later run completes the tables exactly once,
    // even in another consumer group: group offsets are never the source of truth.
    lake.run_in_group(&broker, Some("floe-e2e-other"), "4s");
    let records = produced(2, 500);
    let mut want: Vec<u64> = records
        .iter()
        .filter(|r| r["amount"].as_f64().unwrap_or(0.0) > 0.0)
        .map(|r| r["order_id"].as_u64().unwrap_or(0))
        .collect();
    want.sort_unstable();
    assert_same_ids("orders_clean", &lake.ids("lake.sales.orders_clean"), &want);
}
