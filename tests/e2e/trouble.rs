//! Trouble outside Floe: a catalog that is locked for a while, a catalog server that
//! crashes and comes back, a broker that goes down mid-run, and a topic that was deleted
//! and re-created behind the job's back.

use std::process::{Child, Command};
use std::time::Duration;

use crate::fixture::{
    Broker, Lake, StderrLog, assert_exactly_once, assert_same_ids, expected_clean_ids,
    orders_job_in, produced_range, wait_until,
};
use crate::pyiceberg::python;
use crate::scrape::{free_port, probe};
use crate::services::Postgres;

/// Orders per partition (of 4) that the trouble tests produce while the trouble lasts.
const PER_PARTITION: u64 = 3000;

/// Waits for the first commit of `run`, causes `trouble`, and checks that the job rode
/// it out, said `says` meanwhile, and holds every order `producer` wrote exactly once.
fn rides_out(
    lake: &Lake,
    mut producer: Child,
    (mut run, log): (Child, StderrLog),
    trouble: impl FnOnce(),
    says: &str,
) {
    assert!(
        log.wait_for("committed", Duration::from_secs(60)),
        "{}",
        log.text()
    );
    trouble();
    assert!(producer.wait().expect("producer").success());
    let status = run.wait().expect("floe");
    let text = log.text();
    assert!(status.success(), "the job rides the trouble out:\n{text}");
    assert!(
        text.contains(says),
        "the job says what it is waiting for ({says}):\n{text}"
    );
    assert_exactly_once(lake, PER_PARTITION);
}

#[test]
fn a_locked_catalog_delays_commits_and_loses_nothing() {
    let broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("500ms");
    let producer = broker.produce(PER_PARTITION * 4, 4, 0, Some(3000));
    let run = lake.spawn_replica(&broker, "floe-e2e", "5s");
    // Another process holds the catalog database exclusively for eight seconds: every
    // commit and reload in that time waits (or fails and is retried), never skipped.
    let lock = || {
        let locker = Command::new(python())
            .args([
                "-c",
                "import sqlite3, sys, time\n\
                 c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
                 c.execute('BEGIN EXCLUSIVE')\n\
                 print('locked', flush=True)\n\
                 time.sleep(8)\n\
                 c.execute('ROLLBACK')",
            ])
            .arg(lake.dir.path().join("catalog.db"))
            .output()
            .expect("lock the catalog");
        assert!(
            locker.status.success() && String::from_utf8_lossy(&locker.stdout).contains("locked"),
            "{}",
            String::from_utf8_lossy(&locker.stderr)
        );
    };
    rides_out(&lake, producer, run, lock, "waiting for the catalog");
}

#[test]
fn a_postgres_catalog_that_goes_down_delays_commits_and_loses_nothing() {
    let broker = Broker::start(&["orders:4"]);
    let pg = Postgres::start();
    let lake = Lake::with_job(|dir| {
        orders_job_in(
            &format!(
                "'type' = 'sql',\n  'uri' = 'postgres://floe@127.0.0.1:{}/postgres',\n  'warehouse' = 'file://{}/warehouse'",
                pg.port,
                dir.display()
            ),
            "500ms",
        )
    });
    let producer = broker.produce(PER_PARTITION * 4, 4, 0, Some(3000));
    let run = lake.spawn_replica(&broker, "floe-e2e", "5s");
    // The catalog server crashes: open connections break, new ones are refused, for
    // eight seconds, while records keep arriving. Then it comes back with its data.
    let crash = || {
        pg.stop_server();
        std::thread::sleep(Duration::from_secs(8));
        pg.start_server();
    };
    rides_out(
        &lake,
        producer,
        run,
        crash,
        "the commit is waiting for the catalog",
    );
}

#[test]
fn a_broker_that_goes_down_mid_run_delays_the_job_and_loses_nothing() {
    let mut broker = Broker::start(&["orders:4"]);
    let lake = Lake::new("500ms");
    // The producer retries what the outage interrupts; idempotence keeps those retries
    // from writing a record twice into the topic.
    let producer = broker.produce_with(
        PER_PARTITION * 4,
        4,
        0,
        Some(2000),
        &["enable.idempotence=true"],
    );
    // Idle time counts during the outage and the group's rejoin after it: the limit is
    // well above both.
    let port = free_port();
    let mut lake = lake;
    lake.env
        .push(("FLOE_METRICS_ADDR".into(), format!("127.0.0.1:{port}")));
    let run = lake.spawn_replica(&broker, "floe-e2e", "30s");
    // Connections drop and new ones are refused for eight seconds, longer than the
    // group's session timeout: the job's membership expires meanwhile. Readiness follows.
    let outage = || {
        assert_eq!(probe(port, "/readyz"), 200, "ready before the outage");
        broker.switch("down");
        std::thread::sleep(Duration::from_secs(8));
        assert!(
            wait_until(Duration::from_secs(10), || probe(port, "/readyz") == 503),
            "not ready while the broker is down"
        );
        broker.switch("up");
        assert!(
            wait_until(Duration::from_secs(60), || probe(port, "/readyz") == 200),
            "ready again once the broker is back"
        );
    };
    rides_out(&lake, producer, run, outage, "retrying");
}

#[test]
fn a_recreated_topic_stops_the_job_instead_of_reading_it_again() {
    let lake = Lake::new("500ms");
    let before = {
        let broker = Broker::start(&["orders:4"]);
        broker.produce_all(2000, 4, 0);
        lake.run_until_idle(&broker, "4s");
        lake.ids("lake.sales.orders_clean")
    };
    assert!(!before.is_empty());
    // The same topic name, re-created: its offsets restart far below the committed ones.
    let broker = Broker::start(&["orders:4"]);
    broker.produce_all(40, 4, 0);
    let err = lake.run_failing(&broker, "4s");
    assert!(
        err.contains("no longer in the topic") && err.contains("auto.offset.reset"),
        "the error says what happened and how to accept it: {err}"
    );
    assert_eq!(
        lake.ids("lake.sales.orders_clean"),
        before,
        "nothing was read again"
    );
}

#[test]
fn an_accepted_jump_reads_the_recreated_topic_into_the_tables() {
    let mut lake = Lake::new("500ms");
    let before = {
        let broker = Broker::start(&["orders:4"]);
        broker.produce_all(2000, 4, 0);
        lake.run_until_idle(&broker, "4s");
        lake.ids("lake.sales.orders_clean")
    };
    // Re-created with other orders (indices 1000.., so other ids), and the job file says
    // to accept the jump.
    let broker = Broker::start(&["orders:4"]);
    broker.produce_all(40, 4, 1000);
    lake.env.push(("FLOE_E2E_RESET".into(), "earliest".into()));
    let out = lake.run_until_idle(&broker, "4s");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("offsets went back"),
        "the job says what it did:\n{log}"
    );
    let mut want = before.clone();
    want.extend(expected_clean_ids(&produced_range(4, 1000..1010)));
    want.sort_unstable();
    assert_same_ids(
        "orders_clean after the jump",
        &lake.ids("lake.sales.orders_clean"),
        &want,
    );
    // The checkpoint moved back with the jump: a restart reads nothing again.
    lake.run_until_idle(&broker, "3s");
    assert_same_ids(
        "orders_clean after a restart",
        &lake.ids("lake.sales.orders_clean"),
        &want,
    );
    let text = lake.describe("lake.sales.orders_clean");
    for p in 0..4 {
        let line = format!("orders/{p}");
        assert!(
            text.lines()
                .any(|l| l.contains(&line) && l.trim_end().ends_with("next offset 10")),
            "the checkpoint of {line} is at the re-created topic's end: {text}"
        );
    }
}
