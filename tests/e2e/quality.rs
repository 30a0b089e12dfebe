//! Shift-left quality end to end: a topic seeded with good records and every kind of bad
//! one; every record must end up in exactly one place (the table, the dead-letter table,
//! dropped or filtered, as counted in the snapshot summaries), also across kill -9.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use floe_devtools::generator::{dirt_of, record_bytes};

use crate::fixture::{Broker, Lake, assert_same_ids, floe, wait_for_line};
use crate::pyiceberg::read_with_pyiceberg;

pub(crate) const PARTITIONS: u32 = 4;
pub(crate) const CHECKED: &str = "lake.sales.orders_checked";
pub(crate) const DIRTY_EVERY: u64 = 7;

pub(crate) fn quality_job(dir: &Path, on_violation: &str) -> String {
    format!(
        r#"SET 'job.name' = 'quality-e2e';
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite://{dir}/catalog.db', 'warehouse' = 'file://{dir}/warehouse');
CREATE SOURCE orders (
  order_id BIGINT NOT NULL, customer_id BIGINT, amount DECIMAL(12, 2), currency VARCHAR, order_ts TIMESTAMP
) WITH (
  'connector' = 'kafka', 'topic' = 'orders', 'format' = 'json',
  'properties.bootstrap.servers' = '${{KAFKA_BOOTSTRAP}}',
  'properties.group.id' = '${{FLOE_E2E_GROUP:-floe-quality}}',
  'properties.session.timeout.ms' = '6000',
  'properties.heartbeat.interval.ms' = '500',
  'source.max-record-bytes' = '1KB'
);
CREATE TABLE lake.sales.orders_checked (
  order_id BIGINT NOT NULL, customer_id SMALLINT, amount DECIMAL(12, 2), currency VARCHAR,
  order_ts TIMESTAMP NOT NULL,
  CONSTRAINT positive_amount CHECK (amount > 0),
  CONSTRAINT known_currency CHECK (currency IN ('EUR', 'USD', 'GBP'))
) PARTITIONED BY (day(order_ts)) WITH (
  'commit.interval' = '700ms',
  {on_violation}
);
INSERT INTO lake.sales.orders_checked
SELECT order_id, CAST(customer_id AS SMALLINT), amount, upper(trim(currency)), order_ts
FROM orders WHERE customer_id IS NULL OR customer_id % 13 <> 0;
"#,
        dir = dir.display()
    )
}

pub(crate) const DEAD_LETTER: &str = "'on-violation' = 'dead-letter',
  'on-violation.known_currency' = 'drop',
  'dead-letter.table' = 'lake.quality.orders_dlq'";

/// Where each produced record must end up.
#[derive(Debug, Default)]
pub(crate) struct Expected {
    pub table: Vec<u64>,
    /// id → (error_kind, rule)
    pub dead: BTreeMap<u64, (String, String)>,
    pub dropped: u64,
    pub filtered: u64,
}

pub(crate) fn expected(per_partition: u64) -> Expected {
    let mut e = Expected::default();
    let mut buf = vec![];
    for p in 0..PARTITIONS {
        for i in 0..per_partition {
            let id = record_bytes(42, PARTITIONS, p, i, Some(DIRTY_EVERY), &mut buf);
            let dead = |kind: &str, rule: &str| Some((kind.to_string(), rule.to_string()));
            let outcome = match dirt_of(i, Some(DIRTY_EVERY)) {
                Some("not-json" | "truncated" | "invalid-utf8") => dead("malformed", ""),
                Some("string-in-bigint" | "bad-timestamp" | "decimal-overflow") => dead("type", ""),
                Some("missing-order-ts" | "missing-order-id") => dead("not-null", ""),
                Some("too-large") => dead("too-large", ""),
                Some("customer-overflow") => dead("expression", ""),
                Some("unknown-currency") => {
                    e.dropped += 1;
                    continue;
                }
                Some(other) => panic!("a new kind of bad record: {other}; say where it goes"),
                None => {
                    let v: serde_json::Value = serde_json::from_slice(&buf).expect("clean JSON");
                    let customer = v["customer_id"].as_i64().unwrap_or(1);
                    if customer % 13 == 0 {
                        e.filtered += 1;
                        continue;
                    }
                    if v["amount"].as_f64().unwrap_or(0.0) <= 0.0 {
                        dead("check", "positive_amount")
                    } else {
                        e.table.push(id);
                        continue;
                    }
                }
            };
            if let Some(o) = outcome {
                e.dead.insert(id, o);
            }
        }
    }
    e.table.sort_unstable();
    e
}

/// Dead letters of `target` as (id from the key, kind, rule), checking none is there
/// twice; `only` checks that no other target's are there.
fn dead_letters_of(lake: &Lake, target: &str, only: bool) -> BTreeMap<u64, (String, String)> {
    let rows = lake.query(
        "SELECT CAST(key AS VARCHAR) AS k, error_kind, coalesce(rule, '') AS rule, \
         target_table, topic, \"offset\" FROM lake.quality.orders_dlq WHERE error_kind <> 'replayed'",
    );
    let mut out = BTreeMap::new();
    for r in rows {
        if !only && r["target_table"] != target {
            continue;
        }
        let id: u64 = r["k"].as_str().and_then(|k| k.parse().ok()).expect("key");
        assert_eq!(r["target_table"], target);
        assert_eq!(r["topic"], "orders");
        let kind = r["error_kind"].as_str().unwrap_or_default().to_string();
        let rule = r["rule"].as_str().unwrap_or_default().to_string();
        assert!(
            out.insert(id, (kind, rule)).is_none(),
            "record {id} is in the dead-letter table twice"
        );
    }
    out
}

/// A quality job that dropped its bad records through 350 records per partition, now
/// given a dead-letter table, with 350 more records per partition waiting.
fn gaining_a_dead_letter_table() -> (Broker, Lake) {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::with_job(|d| quality_job(d, "'on-violation' = 'drop'"));
    broker.produce_dirty_from(350 * u64::from(PARTITIONS), PARTITIONS, DIRTY_EVERY, 0);
    lake.run_until_idle(&broker, "4s");
    std::fs::write(&lake.job, quality_job(lake.dir.path(), DEAD_LETTER)).expect("write job");
    broker.produce_dirty_from(350 * u64::from(PARTITIONS), PARTITIONS, DIRTY_EVERY, 350);
    (broker, lake)
}

/// The dead letters of the records `from..to` of every partition.
fn dead_after(from: u64, to: u64) -> BTreeMap<u64, (String, String)> {
    let before = expected(from).dead;
    expected(to)
        .dead
        .into_iter()
        .filter(|(id, _)| !before.contains_key(id))
        .collect()
}

/// The count after `label` in `floe describe` output (0 when absent).
fn described(text: &str, label: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix(label)
                .and_then(|rest| rest.split_whitespace().last()?.parse().ok())
        })
        .unwrap_or(0)
}

fn assert_every_record_in_one_place(lake: &Lake, per_partition: u64) {
    assert_in_one_place_for(lake, CHECKED, per_partition, true);
}

/// Every record of `per_partition` per partition is, for `target`, in exactly one
/// place: a row, a dead letter of that target, or a count; the dead-lettered counts of
/// the target's summaries agree with its dead letters. `only`: no other target routes
/// records to the dead-letter table.
fn assert_in_one_place_for(lake: &Lake, target: &str, per_partition: u64, only: bool) {
    let e = expected(per_partition);
    assert_same_ids(target, &lake.ids(target), &e.table);
    let dead = dead_letters_of(lake, target, only);
    let wrong: Vec<_> = e
        .dead
        .iter()
        .filter(|(id, o)| dead.get(id) != Some(o))
        .take(5)
        .map(|(id, o)| (id, o, dead.get(id)))
        .collect();
    assert!(
        wrong.is_empty() && dead.len() == e.dead.len(),
        "dead letters differ ({} found, {} expected); first differences (id, expected, found): {wrong:?}",
        dead.len(),
        e.dead.len()
    );
    let text = lake.describe(target);
    assert_eq!(
        described(&text, "filtered by the SELECT"),
        e.filtered,
        "{text}"
    );
    let counted: u64 = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("dead-lettered"))
        .filter_map(|rest| rest.split_whitespace().last()?.parse::<u64>().ok())
        .sum();
    assert_eq!(
        counted,
        e.dead.len() as u64,
        "floe.counts agree with the dead letters: {text}"
    );
    assert_eq!(
        described(&text, "dropped       known_currency"),
        e.dropped,
        "{text}"
    );
    let total = e.table.len() as u64 + e.dead.len() as u64 + e.dropped + e.filtered;
    assert_eq!(total, per_partition * u64::from(PARTITIONS));
}

#[test]
fn every_record_lands_in_exactly_one_place() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::with_job(|d| quality_job(d, DEAD_LETTER));
    let per_partition = 700;
    broker.produce_dirty(
        per_partition * u64::from(PARTITIONS),
        PARTITIONS,
        DIRTY_EVERY,
    );
    let out = lake.run_until_idle(&broker, "4s");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("dead-lettered"), "progress line: {log}");
    assert_every_record_in_one_place(&lake, per_partition);

    // PyIceberg reads the dead-letter table too.
    let v = read_with_pyiceberg(&lake, "quality.orders_dlq");
    assert_eq!(
        v["keys"].as_array().map(Vec::len),
        Some(expected(per_partition).dead.len())
    );
    // The dead-letter table keeps a checkpoint per target it serves (its lane).
    assert_eq!(
        v["summary"]["floe.job"],
        "quality-e2e/lake.sales.orders_checked"
    );
    assert_eq!(v["partition_spec"], "caught_at_day: day(caught_at)");

    // After a fix (negative amounts are refunds after all), a replay recovers exactly the
    // records that broke that rule, once, even when it crashes right after its commit.
    let refunds = allow_refunds(&lake, per_partition);
    let e = expected(per_partition);
    let replay = |failpoints: &str| replay_refunds(&lake, failpoints);
    let crashed = replay("replay-after-commit=abort@1");
    assert!(
        !crashed.status.success(),
        "the fail-point aborts the replay"
    );
    let again = replay("");
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        text.contains("0 dead letters considered")
            && text.contains(&format!("{} dead letters marked", refunds.len())),
        "the second replay only writes the missing markers: {text}"
    );
    let mut want = e.table.clone();
    want.extend(&refunds);
    want.sort_unstable();
    assert_same_ids(
        "orders_checked after replay",
        &lake.ids("lake.sales.orders_checked"),
        &want,
    );
    let live = lake.query(
        "SELECT count(*) AS n FROM lake.quality.orders_dlq d WHERE error_kind <> 'replayed' \
         AND NOT EXISTS (SELECT 1 FROM lake.quality.orders_dlq r WHERE r.error_kind = 'replayed' \
         AND r.topic = d.topic AND r.partition = d.partition AND r.\"offset\" = d.\"offset\")",
    );
    assert_eq!(
        live[0]["n"].as_u64(),
        Some((e.dead.len() - refunds.len()) as u64),
        "the live view leaves out the recovered dead letters"
    );
}

/// Runs `floe replay` of the refunds (`--rule positive_amount`) with `failpoints` armed.
fn replay_refunds(lake: &Lake, failpoints: &str) -> std::process::Output {
    floe()
        .args(["replay", "--job"])
        .arg(&lake.job)
        .args(["lake.sales.orders_checked", "--rule", "positive_amount"])
        .env("FLOE_FAILPOINTS", failpoints)
        .output()
        .expect("run floe replay")
}

/// Replays the refunds, which must succeed; returns what the replay printed.
fn replayed_refunds(lake: &Lake) -> String {
    let out = replay_refunds(lake, "");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Relaxes the `positive_amount` rule (negative amounts are refunds after all) and
/// returns the ids of the refunds dead-lettered among `per_partition` records.
fn allow_refunds(lake: &Lake, per_partition: u64) -> Vec<u64> {
    let fixed = std::fs::read_to_string(&lake.job)
        .expect("job")
        .replace("CHECK (amount > 0)", "CHECK (amount > -100)");
    std::fs::write(&lake.job, fixed).expect("write fixed job");
    let refunds: Vec<u64> = expected(per_partition)
        .dead
        .iter()
        .filter(|(_, (_, rule))| rule == "positive_amount")
        .map(|(id, _)| *id)
        .collect();
    assert!(!refunds.is_empty());
    refunds
}

#[test]
fn a_replay_recovers_nothing_twice_after_the_snapshots_expired() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::with_job(|d| quality_job(d, DEAD_LETTER));
    let per_partition = 350;
    broker.produce_dirty(
        per_partition * u64::from(PARTITIONS),
        PARTITIONS,
        DIRTY_EVERY,
    );
    lake.run_until_idle(&broker, "4s");
    let refunds = allow_refunds(&lake, per_partition);
    replayed_refunds(&lake);

    // The live job commits on top of the replay's snapshot; then another tool expires
    // every snapshot but the current one of both tables.
    broker.send(&[r#"{"order_id":1000001,"customer_id":7,"amount":12.50,"currency":"eur","order_ts":"2026-11-23T10:00:00Z"}"#.to_string()]);
    lake.run_until_idle(&broker, "3s");
    for table in ["sales.orders_checked", "quality.orders_dlq"] {
        let left = crate::lifecycle::foreign(&lake, &["expire", table]);
        assert_eq!(left.trim(), "1", "{table}: one snapshot is left");
    }

    let text = replayed_refunds(&lake);
    assert!(text.contains("0 dead letters considered"), "{text}");
    let mut want = expected(per_partition).table;
    want.extend(&refunds);
    want.push(1_000_001);
    want.sort_unstable();
    assert_same_ids(
        "orders_checked after two replays and an expiry",
        &lake.ids("lake.sales.orders_checked"),
        &want,
    );
}

/// A replay recovers only dead letters below the target's checkpoint: those above it
/// the live job reads again. Here another tool rolls the target back to an older
/// snapshot of the job, so its checkpoint moves back while the dead-letter table keeps
/// the dead letters of the records after it.
#[test]
fn a_replay_leaves_the_records_above_the_targets_checkpoint_to_the_live_job() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::with_job(|d| quality_job(d, DEAD_LETTER));
    let half = 200;
    broker.produce_dirty(half * u64::from(PARTITIONS), PARTITIONS, DIRTY_EVERY);
    lake.run_until_idle(&broker, "3s");
    let between = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis()
        .to_string();
    broker.produce_dirty_from(half * u64::from(PARTITIONS), PARTITIONS, DIRTY_EVERY, half);
    lake.run_until_idle(&broker, "3s");
    crate::lifecycle::foreign(&lake, &["rollback", "sales.orders_checked", &between]);

    let refunds = allow_refunds(&lake, 2 * half);
    replayed_refunds(&lake);
    // The live job reads the second half again, under the relaxed rule.
    lake.run_until_idle(&broker, "3s");
    let mut want = expected(2 * half).table;
    want.extend(&refunds);
    want.sort_unstable();
    assert_same_ids(
        "orders_checked after a rollback, a replay and the live job",
        &lake.ids("lake.sales.orders_checked"),
        &want,
    );
}

#[test]
fn dead_letters_are_exactly_once_across_kill_minus_nine() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::with_job(|d| quality_job(d, DEAD_LETTER));
    let per_partition = 1500;
    broker.produce_dirty(
        per_partition * u64::from(PARTITIONS),
        PARTITIONS,
        DIRTY_EVERY,
    );
    for (i, after) in [900u64, 1600, 600].into_iter().enumerate() {
        let mut child = lake
            .run_cmd(&broker)
            .env("FLOE_E2E_GROUP", format!("quality-kill-{i}"))
            .env("FLOE_FAILPOINTS", "before-commit=sleep:300")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start floe");
        assert!(
            wait_for_line(&mut child, "partition assigned", Duration::from_secs(60)),
            "the job never got its partitions"
        );
        std::thread::sleep(Duration::from_millis(after));
        let _ = child.kill();
        let _ = child.wait();
    }
    lake.run_in_group(&broker, Some("quality-final"), "4s");
    assert_every_record_in_one_place(&lake, per_partition);
}

#[test]
fn the_fail_policy_stops_at_the_record_and_commits_nothing_past_it() {
    let broker = Broker::start(&["orders:1"]);
    let lake = Lake::with_job(|d| quality_job(d, "'on-violation' = 'fail'"));
    let ts = "2026-11-01T00:00:00Z";
    let values = [
        format!(r#"{{"order_id":1,"amount":5,"currency":"EUR","order_ts":"{ts}"}}"#),
        format!(r#"{{"order_id":2,"amount":6,"currency":"USD","order_ts":"{ts}"}}"#),
        format!(r#"{{"order_id":3,"amount":-1,"currency":"EUR","order_ts":"{ts}"}}"#),
        format!(r#"{{"order_id":4,"amount":7,"currency":"EUR","order_ts":"{ts}"}}"#),
    ];
    let status = floe()
        .args([
            "send",
            "--bootstrap",
            &broker.bootstrap,
            "--topic",
            "orders",
        ])
        .args(["--partition", "0", "--"])
        .args(&values)
        .status()
        .expect("floe send");
    assert!(status.success());
    let out = lake
        .run_cmd(&broker)
        .args(["--stop-when-idle", "4s"])
        .output()
        .expect("run floe");
    assert!(!out.status.success(), "the job must stop");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("orders/0 offset 2") && err.contains("positive_amount"),
        "the error names the record and the rule: {err}"
    );
    let ids = lake.ids("lake.sales.orders_checked");
    assert!(
        ids.iter().all(|id| *id < 3),
        "nothing past the record: {ids:?}"
    );
}

#[test]
fn fuzzed_payloads_never_crash_the_job() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let broker = Broker::start(&["orders:1"]);
    let lake = Lake::with_job(|d| quality_job(d, DEAD_LETTER));
    let mut rng = SmallRng::seed_from_u64(11);
    let mut values: Vec<String> = vec![
        "[".repeat(5000) + &"]".repeat(5000),
        format!(r#"{{"order_id":{}}}"#, "9".repeat(400)),
        r#"{"order_id":NaN,"amount":Infinity}"#.into(),
        r#"{"order_id":1,"order_id":2,"order_ts":"2026-11-01T00:00:00Z"}"#.into(),
        format!(r#"{{"order_id":5,"currency":"{}"}}"#, "€".repeat(300)),
        r#"{"order_id":6,"amount":"1e400","order_ts":"2026-11-01T00:00:00Z"}"#.into(),
        r#"{"order_id":{"nested":{"deeper":[1,2,3]}}}"#.into(),
        "null".into(),
        "\u{1}\u{2}\u{7f}".into(),
        format!(r#"{{"order_id":7,"currency":"{}"}}"#, "x".repeat(100_000)),
    ];
    for _ in 0..40 {
        let len = rng.random_range(1..200);
        let s: String = (0..len)
            .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
            .collect();
        values.push(s);
    }
    let status = floe()
        .args([
            "send",
            "--bootstrap",
            &broker.bootstrap,
            "--topic",
            "orders",
        ])
        .args(["--partition", "0", "--"])
        .args(&values)
        .status()
        .expect("floe send");
    assert!(status.success());
    let out = lake.run_until_idle(&broker, "4s");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("panicked"), "{log}");
    let dead = lake.query("SELECT count(*) AS n FROM lake.quality.orders_dlq");
    let rows = lake.ids("lake.sales.orders_checked").len() as u64;
    let text = lake.describe("lake.sales.orders_checked");
    let accounted = dead[0]["n"].as_u64().unwrap_or(0)
        + rows
        + described(&text, "filtered by the SELECT")
        + described(&text, "dropped       known_currency");
    assert_eq!(accounted, values.len() as u64, "{text}");
}

/// A second target with the same rules and dead-letter table as orders_checked,
/// committed less often.
fn audit_table() -> String {
    format!(
        r#"CREATE TABLE lake.sales.orders_audit (
  order_id BIGINT NOT NULL, customer_id SMALLINT, amount DECIMAL(12, 2), currency VARCHAR,
  order_ts TIMESTAMP NOT NULL,
  CONSTRAINT positive_amount CHECK (amount > 0),
  CONSTRAINT known_currency CHECK (currency IN ('EUR', 'USD', 'GBP'))
) WITH ('commit.interval' = '2s', {DEAD_LETTER});
INSERT INTO lake.sales.orders_audit
SELECT order_id, CAST(customer_id AS SMALLINT), amount, upper(trim(currency)), order_ts
FROM orders WHERE customer_id IS NULL OR customer_id % 13 <> 0;
"#
    )
}

#[test]
fn a_dead_letter_table_keeps_each_targets_bad_records_exactly_once() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::with_job(|d| quality_job(d, DEAD_LETTER));
    broker.produce_dirty_from(350 * u64::from(PARTITIONS), PARTITIONS, DIRTY_EVERY, 0);
    lake.run_until_idle(&broker, "4s");
    assert_in_one_place_for(&lake, CHECKED, 350, true);

    // A second target joins the dead-letter table, on another commit interval, and more
    // records arrive. The new target reads the topic from its start: its bad records of
    // the first 350 per partition belong in the dead-letter table too, and orders_checked's
    // must not be written again.
    let job = std::fs::read_to_string(&lake.job).expect("job") + &audit_table();
    std::fs::write(&lake.job, job).expect("write job");
    broker.produce_dirty_from(350 * u64::from(PARTITIONS), PARTITIONS, DIRTY_EVERY, 350);
    lake.run_until_idle(&broker, "4s");
    assert_in_one_place_for(&lake, CHECKED, 700, false);
    assert_in_one_place_for(&lake, "lake.sales.orders_audit", 700, false);
    let text = lake.describe("lake.quality.orders_dlq");
    assert!(
        text.contains("dead letters of lake.sales.orders_audit"),
        "describe shows each lane: {text}"
    );
}

#[test]
fn a_dead_letter_table_added_to_a_target_takes_its_bad_records_from_its_checkpoint_on() {
    // The table gains a dead-letter table: the bad records it already dropped stay
    // dropped; those after its checkpoint are dead-lettered, once.
    let (broker, lake) = gaining_a_dead_letter_table();
    lake.run_until_idle(&broker, "4s");
    let after = dead_after(350, 700);
    let dead = dead_letters_of(&lake, CHECKED, true);
    assert_eq!(
        dead.len(),
        after.len(),
        "only the records after the table's checkpoint are dead-lettered"
    );
    assert!(
        after.iter().all(|(id, o)| dead.get(id) == Some(o)),
        "the dead letters are those of the new records"
    );
    assert_same_ids("orders_checked", &lake.ids(CHECKED), &expected(700).table);
}

#[test]
fn replicas_that_meet_a_new_dead_letter_table_together_fence_none_of_each_other() {
    // The table gains a dead-letter table, and two replicas start on it at once: each
    // adopts every partition of the new lane, and reads its own.
    let (broker, lake) = gaining_a_dead_letter_table();
    let (mut a, a_log) = lake.spawn_replica(&broker, "floe-quality", "6s");
    let (mut b, b_log) = lake.spawn_replica(&broker, "floe-quality", "6s");
    let (a_status, b_status) = (a.wait().expect("a"), b.wait().expect("b"));
    let logs = format!("--- a:\n{}\n--- b:\n{}", a_log.text(), b_log.text());
    assert_eq!(
        (a_status.code(), b_status.code()),
        (Some(0), Some(0)),
        "neither replica is fenced: {logs}"
    );
    let after = dead_after(350, 700);
    let dead = dead_letters_of(&lake, CHECKED, true);
    assert_eq!(
        dead, after,
        "each new bad record dead-lettered once: {logs}"
    );
    assert_same_ids("orders_checked", &lake.ids(CHECKED), &expected(700).table);
}

/// Compaction and expiry of the target and its dead-letter table (by hand, as after a
/// long run) leave the replay ledger whole: a second replay recovers nothing again.
#[test]
fn a_replay_after_maintenance_recovers_nothing_twice() {
    let broker = Broker::start(&["orders:4"]);
    let eager = "'commit.interval' = '700ms', 'maintenance.compaction.min-input-files' = '2', \
                 'maintenance.snapshot-retention' = '0s', 'maintenance.min-snapshots' = '1'";
    let lake = Lake::with_job(|d| {
        quality_job(d, DEAD_LETTER).replace("'commit.interval' = '700ms'", eager)
    });
    let per_partition = 200;
    let mut want = vec![];
    for round in 0..2u64 {
        broker.produce_dirty_from(
            per_partition * u64::from(PARTITIONS),
            PARTITIONS,
            DIRTY_EVERY,
            round * per_partition,
        );
        lake.run_until_idle(&broker, "3s");
    }
    let refunds = allow_refunds(&lake, 2 * per_partition);
    replayed_refunds(&lake);
    for table in ["lake.sales.orders_checked", "lake.quality.orders_dlq"] {
        let said = lake.maintain(table, &[]);
        assert!(
            said.contains("compacted") && said.contains("expired"),
            "{table}: {said}"
        );
    }
    let text = replayed_refunds(&lake);
    assert!(text.contains("0 dead letters considered"), "{text}");
    want.extend(expected(2 * per_partition).table);
    want.extend(&refunds);
    want.sort_unstable();
    assert_same_ids(
        "orders_checked after maintenance and two replays",
        &lake.ids("lake.sales.orders_checked"),
        &want,
    );
    // The counts of what never became rows outlive the expired snapshots that held them.
    let e = expected(2 * per_partition);
    let text = lake.describe("lake.sales.orders_checked");
    assert_eq!(
        described(&text, "filtered by the SELECT"),
        e.filtered,
        "{text}"
    );
    assert_eq!(
        described(&text, "dropped       known_currency"),
        e.dropped,
        "{text}"
    );
}
