//! kill -9 at random moments and at the worst ones, restart, reconcile: every expected id
//! exactly once in every table.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::fixture::{Broker, Lake, StderrLog, assert_exactly_once, signal, wait_for_line};

#[test]
fn kill_minus_nine_at_random_moments_loses_and_duplicates_nothing() {
    let seed: u64 = std::env::var("FLOE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let kills: usize = std::env::var("FLOE_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = SmallRng::seed_from_u64(seed);
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("700ms");
    // Records keep arriving while the job is killed and restarted: about three seconds'
    // worth per kill.
    let per_partition = 1500 * kills as u64;
    let mut producer = broker.produce(per_partition * 4, 4, 0, Some(2000));
    for k in 0..kills {
        let mut child = lake
            .run_cmd(&broker)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start floe run");
        // Kill at a random moment after the run has its partitions, so the kill hits a
        // job that is reading, writing files or committing.
        assert!(
            wait_for_line(&mut child, "partition assigned", Duration::from_secs(60)),
            "run {} was never assigned partitions",
            k + 1
        );
        let wait = Duration::from_millis(rng.random_range(200..3000));
        std::thread::sleep(wait);
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        eprintln!("kill {} of {kills}, {wait:?} after assignment", k + 1);
    }
    assert!(producer.wait().expect("producer").success());
    // The killed runs made progress, so the kills hit a job at work, not one still joining.
    let committed_before_final_run = lake.ids("lake.sales.orders_clean").len();
    assert!(
        committed_before_final_run > 0,
        "no run committed anything before it was killed"
    );
    eprintln!("{committed_before_final_run} rows were committed by the killed runs");
    lake.run_until_idle(&broker, "5s");
    assert_exactly_once(&lake, per_partition);
    // An independent reader agrees.
    let v = crate::pyiceberg::read_with_pyiceberg(&lake, "sales.orders_clean");
    crate::pyiceberg::assert_pyiceberg_orders(&v, per_partition);
}

#[test]
fn a_crash_between_writing_files_and_committing_loses_nothing() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("500ms");
    // Each point gets fresh records, so that it is reached: (fail-point, whether the run
    // must fail, what its log must say).
    let points = [
        ("before-write=abort@3", true, "failpoint before-write"),
        ("before-commit=abort@2", true, "failpoint before-commit"),
        ("commit-error=error@1", false, "commit failed; retrying"),
        (
            "commit-lost-response=error@1",
            false,
            "commit had landed although the catalog reported an error",
        ),
        ("commit-fatal=error@1", true, "cannot heal by retrying"),
        ("after-commit=abort@1", true, "failpoint after-commit"),
        ("shutdown=abort@1", true, "failpoint shutdown"),
    ];
    for (i, (point, fails, says)) in points.iter().enumerate() {
        broker.produce_all(2000, 4, 500 * i as u64);
        let out = lake
            .run_cmd(&broker)
            .env("FLOE_FAILPOINTS", point)
            .args(["--stop-when-idle", "4s"])
            .output()
            .expect("run");
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(!out.status.success(), *fails, "{point}: {log}");
        assert!(log.contains(says), "{point}: expected '{says}' in: {log}");
    }
    let total = 500 * points.len() as u64;
    lake.run_until_idle(&broker, "5s");
    assert_exactly_once(&lake, total);

    // The aborted commit left its files behind: orphans, listed and safely removed.
    let orphans = |table: &str, args: &[&str]| lake.table_command("orphans", table, args);
    let tables = ["lake.sales.orders_clean", "lake.sales.big_orders"];
    let with_orphans: Vec<&str> = tables
        .into_iter()
        .filter(|t| orphans(t, &[]).contains(".parquet"))
        .collect();
    assert!(
        !with_orphans.is_empty(),
        "the aborted commit's files are orphans"
    );
    for t in &with_orphans {
        assert!(
            lake.describe(t).contains("referenced by no snapshot"),
            "describe mentions them"
        );
        let kept = orphans(t, &["--remove"]);
        assert!(
            kept.contains("removed 0 of"),
            "young orphans are kept: {kept}"
        );
        let still_kept = orphans(t, &["--remove", "--older-than", "0s"]);
        assert!(
            still_kept.contains("removed 0 of"),
            "orphans younger than the commit retry deadline are kept: {still_kept}"
        );
    }
    lake.age_files(Duration::from_secs(3600));
    for t in with_orphans {
        let removed = orphans(t, &["--remove", "--older-than", "0s"]);
        assert!(
            removed.contains("removed") && !removed.contains("removed 0 of"),
            "{removed}"
        );
        assert!(orphans(t, &[]).contains("no orphan data files"));
    }
    assert_exactly_once(&lake, total);
}

#[test]
fn replicas_in_one_group_share_the_partitions_exactly_once() {
    replicas_share_the_partitions(None);
}

/// With cooperative rebalancing, a replica keeps the partitions it is not asked to give
/// up, and its pending work on them, across the rebalance.
#[test]
fn replicas_rebalancing_cooperatively_share_the_partitions_exactly_once() {
    replicas_share_the_partitions(Some("cooperative-sticky"));
}

/// Two replicas in one group (partitions assigned by `assignor`, else the default); the
/// second joins mid-run, the first is killed; every record lands exactly once.
fn replicas_share_the_partitions(assignor: Option<&str>) {
    let broker = Broker::start(&["orders:4"]);
    let mut lake = Lake::new("700ms");
    if let Some(a) = assignor {
        lake.env.push(("FLOE_E2E_ASSIGNOR".into(), a.into()));
    }
    let per_partition = 5000;
    let mut producer = broker.produce(per_partition * 4, 4, 0, Some(2500));
    let (mut a, a_log) = lake.spawn_replica(&broker, "floe-replicas", "5s");
    assert!(a_log.wait_for("partition assigned", Duration::from_secs(60)));
    assert!(
        a_log.wait_for("committed", Duration::from_secs(60)),
        "{}",
        a_log.text()
    );
    // A second replica joins: the group rebalances the partitions between them, and each
    // commit merges its partitions' offsets into the tables' offset maps.
    let (mut b, b_log) = lake.spawn_replica(&broker, "floe-replicas", "5s");
    assert!(b_log.wait_for("partition assigned", Duration::from_secs(60)));
    assert!(
        b_log.wait_for("committed", Duration::from_secs(60)),
        "{}",
        b_log.text()
    );
    // One replica dies; the other takes its partitions over once its session expires.
    a.kill().expect("kill -9 replica a");
    a.wait().expect("reap a");
    assert!(producer.wait().expect("producer").success());
    let status = b.wait().expect("replica b");
    assert!(
        status.success(),
        "the surviving replica stops cleanly.\n--- replica a:\n{}\n--- replica b:\n{}",
        a_log.text(),
        b_log.text()
    );
    // Whatever the dead replica left behind, one more run completes the tables.
    lake.run_in_group(&broker, Some("floe-replicas"), "5s");
    assert_exactly_once(&lake, per_partition);
}

/// A replica stalled past the session timeout (SIGSTOP) loses its partitions to the
/// other; when it wakes up (SIGCONT) with records it read before, its commit is fenced:
/// nothing stale lands, and every record is in the tables exactly once.
#[test]
fn a_stalled_replica_commits_nothing_stale() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("700ms");
    // Records keep arriving for about 24 s: through the stall and the takeover.
    let per_partition = 6000;
    let mut producer = broker.produce(per_partition * 4, 4, 0, Some(1000));
    let (mut a, a_log) = lake.spawn_replica(&broker, "floe-stall", "8s");
    assert!(a_log.wait_for("partition assigned", Duration::from_secs(60)));
    let (mut b, b_log) = lake.spawn_replica(&broker, "floe-stall", "8s");
    assert!(b_log.wait_for("partition assigned", Duration::from_secs(60)));
    // Both hold partitions and have committed them.
    assert!(a_log.wait_for_count("committed", 2, Duration::from_secs(60)));
    let assigned_to_b = b_log.text().matches("partition assigned").count();
    signal(&a, "STOP");
    // The group gives the stalled replica's partitions to the other, which commits them.
    let taken_over = b_log.wait_for_count(
        "partition assigned",
        assigned_to_b + 1,
        Duration::from_secs(60),
    );
    let committed = b_log.text().matches("committed").count();
    let b_committed = b_log.wait_for_count("committed", committed + 2, Duration::from_secs(60));
    signal(&a, "CONT");
    assert!(
        taken_over && b_committed,
        "the other replica takes the partitions over:\n{}",
        b_log.text()
    );
    let a_status = a.wait().expect("replica a");
    assert_stopped_or_fenced("the stalled replica", a_status, &a_log);
    assert!(producer.wait().expect("producer").success());
    assert!(b.wait().expect("replica b").success(), "{}", b_log.text());
    lake.run_in_group(&broker, Some("floe-stall"), "5s");
    assert_exactly_once(&lake, per_partition);
}

/// A replica slow to let a rebalance go on (its pipeline answers the revocation 15 s
/// late, past the 6 s session timeout): the group waits for it or moves on without it,
/// and either way both replicas end up reading, and every record lands exactly once.
#[test]
fn a_replica_slow_to_give_partitions_up_holds_no_one_up_for_good() {
    slow_rebalance_answer("rebalance-revoked=sleep:15000@1", "rebalance-revoked");
}

/// A replica whose pipeline takes 15 s to accept its first assignment (a catalog slow to
/// load the tables): the group moves on meanwhile; nothing is read twice into the tables.
#[test]
fn a_replica_slow_to_take_partitions_up_reads_nothing_twice() {
    slow_rebalance_answer("rebalance-assigned=sleep:15000@2", "rebalance-assigned");
}

/// Two replicas, the first with the fail-point `spec` slowing its answer to a rebalance
/// step when the second joins.
fn slow_rebalance_answer(spec: &str, point: &str) {
    let broker = Broker::start(&["orders:4"]);
    let mut lake = Lake::new("700ms");
    let per_partition = 4000;
    let mut producer = broker.produce(per_partition * 4, 4, 0, Some(1000));
    lake.env.push(("FLOE_FAILPOINTS".into(), spec.into()));
    let (mut a, a_log) = lake.spawn_replica(&broker, "floe-slow", "8s");
    lake.env.clear();
    assert!(a_log.wait_for("partition assigned", Duration::from_secs(60)));
    let (mut b, b_log) = lake.spawn_replica(&broker, "floe-slow", "8s");
    let both = a_log.wait_for(&format!("failpoint {point}"), Duration::from_secs(60))
        && b_log.wait_for("partition assigned", Duration::from_secs(120));
    assert!(
        both,
        "the slow replica stalls the rebalance, and the other is assigned partitions:\n--- a:\n{}\n--- b:\n{}",
        a_log.text(),
        b_log.text()
    );
    assert!(producer.wait().expect("producer").success());
    let a_status = a.wait().expect("replica a");
    let b_status = b.wait().expect("replica b");
    assert_stopped_or_fenced("the slow replica", a_status, &a_log);
    assert!(
        b_status.success(),
        "the other replica stops cleanly:\n{}",
        b_log.text()
    );
    lake.run_in_group(&broker, Some("floe-slow"), "5s");
    assert_exactly_once(&lake, per_partition);
}

/// Which way a replica that lost its partitions while it was held up ended, with the
/// evidence each way needs: fenced (exit status 4, its commit refused because the other
/// replica had committed those offsets), or a clean stop (exit status 0) because the
/// loss reached it before its next commit and it dropped the work on the partitions.
fn assert_stopped_or_fenced(who: &str, status: std::process::ExitStatus, log: &StderrLog) {
    let text = log.text();
    match status.code() {
        Some(4) => {
            assert!(
                text.contains("abandoned"),
                "{who} exits 4 only when fenced:\n{text}"
            );
            eprintln!("{who}: fenced, as the other replica had committed its partitions");
        }
        Some(0) => {
            assert!(
                !text.contains("abandoned"),
                "{who} was fenced, yet exited 0:\n{text}"
            );
            assert!(
                text.contains("lost=true") || text.contains("partitions revoked"),
                "{who} stopped cleanly without losing its partitions:\n{text}"
            );
            eprintln!("{who}: stopped cleanly, having learnt of the loss before committing");
        }
        other => panic!("{who} neither stopped cleanly nor was fenced ({other:?}):\n{text}"),
    }
}
