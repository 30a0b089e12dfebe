//! Where partitions start. The startup mode answers once, on the job's first start, and
//! its answer is committed; a partition that appears later is read from its beginning.

use crate::fixture::{Broker, Lake, assert_same_ids};

/// An order with id `id` as the job's source expects it.
fn order(id: u64) -> String {
    format!(
        r#"{{"order_id":{id},"customer_id":7,"amount":12.50,"currency":"eur","order_ts":"2026-11-23T10:00:00.000Z"}}"#
    )
}

/// Sends one order per id to `partition`.
fn send(broker: &Broker, partition: i32, ids: &[u64]) {
    let values: Vec<String> = ids.iter().map(|id| order(*id)).collect();
    broker.send_to(partition, &values);
}

/// The topic as the tests fill it before the job's first start, and the orders sent
/// while the job was stopped (partition, ids).
fn fill(broker: &Broker, sent: &[(i32, Vec<u64>)]) {
    // Orders 1..=400, older than the job: 'latest-offset' must skip them, now and later.
    broker.produce_all(400, 4, 0);
    for (partition, ids) in sent {
        send(broker, *partition, ids);
    }
}

#[test]
fn latest_start_is_committed_and_added_partitions_are_read_from_the_beginning() {
    let mut lake = Lake::new("500ms");
    lake.env
        .push(("FLOE_E2E_STARTUP".into(), "latest-offset".into()));
    let table = "lake.sales.orders_clean";

    // First start on a quiet topic: nothing to read, yet the start positions are committed.
    let broker = Broker::start(&["orders:4"]);
    fill(&broker, &[]);
    lake.run_until_idle(&broker, "3s");
    assert!(lake.ids(table).is_empty(), "older records are skipped");

    // Records arrive while the job is stopped, in partitions it has never read a record
    // of. Asking the startup mode again would skip them ('latest' is later still).
    let stopped: Vec<(i32, Vec<u64>)> = vec![(0, vec![1_000_001, 1_000_002]), (2, vec![1_000_003])];
    for (partition, ids) in &stopped {
        send(&broker, *partition, ids);
    }
    lake.run_until_idle(&broker, "3s");
    assert_same_ids(
        "after a restart",
        &lake.ids(table),
        &[1_000_001, 1_000_002, 1_000_003],
    );
    drop(broker);

    // The broker comes back with two partitions more. The embedded broker keeps its log
    // in memory, so the same records go into the new one first: same partitions, same
    // offsets. Then orders arrive in an old partition and in both new ones.
    let broker = Broker::start(&["orders:6"]);
    fill(&broker, &stopped);
    send(&broker, 1, &[1_000_004]);
    send(&broker, 4, &[1_000_005, 1_000_006]);
    send(&broker, 5, &[1_000_007]);
    let out = lake.run_until_idle(&broker, "3s");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("partition new since the job started"),
        "the job says why it reads the new partitions from the beginning:\n{log}"
    );
    assert_same_ids(
        "after partitions were added",
        &lake.ids(table),
        &(1_000_001..=1_000_007).collect::<Vec<u64>>(),
    );
}
