//! Shared fixtures: a broker process on loopback, a temporary warehouse, the `floe` binary.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

/// Runs `cmd` to the end and returns what it printed; panics with its error output,
/// naming it `what`, when it fails.
pub fn succeeded(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `done` every 50 ms until it holds or `limit` passes; says whether it held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends the signal named `signal` (`TERM`, `INT`, `STOP`, `CONT`) to `child`.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Reads the child's stderr until a line contains `needle`; keeps draining it afterwards.
pub fn wait_for_line(child: &mut Child, needle: &str, limit: Duration) -> bool {
    StderrLog::attach(child).is_some_and(|log| log.wait_for(needle, limit))
}

/// A child's stderr, drained by a thread and kept, so that a failure can show it.
#[derive(Clone)]
pub struct StderrLog {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl StderrLog {
    /// Starts draining `child`'s piped stderr; None when it was not piped.
    pub fn attach(child: &mut Child) -> Option<StderrLog> {
        let stderr = child.stderr.take()?;
        let log = StderrLog {
            lines: Default::default(),
        };
        let lines = log.lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        Some(log)
    }

    /// Waits until some line contains `needle`.
    pub fn wait_for(&self, needle: &str, limit: Duration) -> bool {
        self.wait_for_count(needle, 1, limit)
    }

    /// Waits until `needle` occurs at least `n` times.
    pub fn wait_for_count(&self, needle: &str, n: usize, limit: Duration) -> bool {
        wait_until(limit, || self.text().matches(needle).count() >= n)
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }
}

/// Spawns `cmd` with its stderr piped and kept.
pub fn spawn_logged(cmd: &mut Command) -> (Child, StderrLog) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("start floe run");
    let log = StderrLog::attach(&mut child).expect("piped stderr");
    (child, log)
}

/// Starts `cmd` (a `floe` server that takes commands on standard input) and reads the
/// first line it prints, `PREFIX…`; returns the child, its output and what follows the
/// prefix.
pub fn announced(cmd: &mut Command, prefix: &str) -> (Child, BufReader<ChildStdout>, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read the first line");
    let value = line
        .trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    (child, out, value)
}

/// The `floe` binary under test.
pub fn floe() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_floe"));
    c.env("FLOE_LOG", "info,iceberg=warn,sqlx=warn");
    c
}

/// A Kafka-protocol broker in a process of its own, stopped on drop: `floe broker`
/// (librdkafka's mock cluster), or tansu, a Kafka-compatible broker written by others,
/// when `FLOE_E2E_TANSU` names its binary (the second-broker leg of the suite).
pub struct Broker {
    child: Child,
    /// The broker's answers to commands (`floe broker` only).
    out: Option<BufReader<ChildStdout>>,
    /// `host:port`.
    pub bootstrap: String,
}

impl Broker {
    /// Starts a broker with `topics` (`name:partitions`).
    pub fn start(topics: &[&str]) -> Broker {
        match std::env::var("FLOE_E2E_TANSU") {
            Ok(bin) if !bin.is_empty() => Broker::start_tansu(Path::new(&bin), topics),
            _ => Broker::start_embedded(topics),
        }
    }

    /// Whether the broker answers ListOffsets by timestamp: tansu does (by when a batch
    /// was stored); librdkafka's mock cluster answers -1 ("FIXME: by timestamp" in its
    /// source), so the `timestamp` startup mode can only be tried against tansu.
    pub fn answers_timestamp_lookups(&self) -> bool {
        !self.is_mock_cluster()
    }

    /// Whether this is librdkafka's mock cluster (`floe broker`), not tansu.
    pub fn is_mock_cluster(&self) -> bool {
        self.out.is_some()
    }

    /// Starts tansu on a free loopback port, keeping its log in memory, with `topics`.
    fn start_tansu(bin: &Path, topics: &[&str]) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/", "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        assert!(
            wait_until(Duration::from_secs(30), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "tansu does not listen on {url}"
        );
        let broker = Broker {
            child,
            out: None,
            bootstrap: format!("127.0.0.1:{port}"),
        };
        for t in topics {
            let (name, partitions) = t.split_once(':').expect("topic as name:partitions");
            succeeded(
                Command::new(bin)
                    .args(["topic", "create", "--broker", &url])
                    .args(["--partitions", partitions, name]),
                "tansu topic create",
            );
        }
        broker
    }

    /// Starts `floe broker`.
    fn start_embedded(topics: &[&str]) -> Broker {
        let mut cmd = floe();
        cmd.arg("broker");
        for t in topics {
            cmd.args(["--topic", t]);
        }
        let (child, out, bootstrap) = announced(&mut cmd, "bootstrap.servers=");
        Broker {
            child,
            out: Some(out),
            bootstrap,
        }
    }

    /// Takes the broker down (`"down"`: connections drop, new ones are refused) or brings
    /// it back with its log (`"up"`), and waits until it has.
    pub fn switch(&mut self, command: &str) {
        let stdin = self.child.stdin.as_mut().expect("broker stdin");
        writeln!(stdin, "{command}").expect("send a command to the broker");
        stdin.flush().expect("flush broker stdin");
        let mut line = String::new();
        self.out
            .as_mut()
            .expect("only the embedded broker takes commands")
            .read_line(&mut line)
            .expect("read the broker's answer");
        assert_eq!(line.trim(), command, "the broker did not confirm");
    }

    /// Produces `records` generated orders over `partitions`, starting at index `start`.
    pub fn produce(&self, records: u64, partitions: u32, start: u64, rate: Option<u64>) -> Child {
        self.produce_with(records, partitions, start, rate, &[])
    }

    /// Like [`Self::produce`], with librdkafka producer `properties` (`key=value`).
    pub fn produce_with(
        &self,
        records: u64,
        partitions: u32,
        start: u64,
        rate: Option<u64>,
        properties: &[&str],
    ) -> Child {
        let mut c = floe();
        c.args([
            "produce",
            "--bootstrap",
            &self.bootstrap,
            "--topic",
            "orders",
        ])
        .args([
            "--records",
            &records.to_string(),
            "--partitions",
            &partitions.to_string(),
        ])
        .args(["--start", &start.to_string()]);
        if let Some(r) = rate {
            c.args(["--rate", &r.to_string()]);
        }
        for p in properties {
            c.args(["--property", p]);
        }
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start floe produce")
    }

    /// Produces `records` over `partitions` with one bad record in `dirty_every`, and waits.
    pub fn produce_dirty(&self, records: u64, partitions: u32, dirty_every: u64) {
        self.produce_dirty_from(records, partitions, dirty_every, 0);
    }

    /// Like [`Self::produce_dirty`], from index `start` of every partition.
    pub fn produce_dirty_from(&self, records: u64, partitions: u32, dirty_every: u64, start: u64) {
        let status = floe()
            .args([
                "produce",
                "--bootstrap",
                &self.bootstrap,
                "--topic",
                "orders",
            ])
            .args(["--records", &records.to_string()])
            .args(["--partitions", &partitions.to_string()])
            .args(["--dirty-every", &dirty_every.to_string()])
            .args(["--start", &start.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run floe produce");
        assert!(status.success(), "floe produce failed");
    }

    /// Sends `values` as records to partition 0 of `orders` (`floe send`).
    pub fn send(&self, values: &[String]) {
        self.send_to(0, values);
    }

    /// Sends `values` as records to `partition` of `orders`.
    pub fn send_to(&self, partition: i32, values: &[String]) {
        let status = floe()
            .args(["send", "--bootstrap", &self.bootstrap, "--topic", "orders"])
            .args(["--partition", &partition.to_string(), "--"])
            .args(values)
            .status()
            .expect("run floe send");
        assert!(status.success(), "floe send failed");
    }

    /// Sends `records` (`key=value`, or `key=NULL` for a tombstone) to `partition` of
    /// `topic`.
    pub fn send_keyed(&self, topic: &str, partition: i32, records: &[String]) {
        let status = floe()
            .args(["send", "--bootstrap", &self.bootstrap, "--topic", topic])
            .args(["--partition", &partition.to_string()])
            .args(["--key-separator", "=", "--null-marker", "NULL", "--"])
            .args(records)
            .status()
            .expect("run floe send");
        assert!(status.success(), "floe send failed");
    }

    /// Produces and waits.
    pub fn produce_all(&self, records: u64, partitions: u32, start: u64) {
        let status = self
            .produce(records, partitions, start, None)
            .wait()
            .expect("wait for produce");
        assert!(status.success(), "floe produce failed");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary catalog and warehouse with a job file in it.
pub struct Lake {
    pub dir: tempfile::TempDir,
    pub job: PathBuf,
    /// Environment of every `floe` command on this lake (secrets the job file refers to).
    pub env: Vec<(String, String)>,
}

/// The orders job used by the end-to-end tests: two tables fed by one read of the topic.
pub fn orders_job(dir: &Path, commit_interval: &str) -> String {
    orders_job_in(&sqlite_catalog(dir), commit_interval)
}

/// The orders job with the catalog `lake` declared by the options `catalog`.
pub fn orders_job_in(catalog: &str, commit_interval: &str) -> String {
    orders_job_of(catalog, commit_interval, &[ORDERS_CLEAN, BIG_ORDERS])
}

/// The orders table of the orders job, and its INSERT.
pub const ORDERS_CLEAN: &str = r#"CREATE TABLE lake.sales.orders_clean (
  order_id BIGINT NOT NULL,
  customer_id BIGINT,
  amount DECIMAL(12, 2),
  currency VARCHAR,
  order_ts TIMESTAMP NOT NULL,
  order_date DATE,
  part INT,
  off BIGINT
) PARTITIONED BY (day(order_ts)) WITH ('commit.interval' = '{commit_interval}');
INSERT INTO lake.sales.orders_clean
SELECT order_id, customer_id, amount, upper(trim(currency)), order_ts, CAST(order_ts AS DATE), part, off
FROM orders WHERE amount > 0;
"#;

/// The big-orders table of the orders job, and its INSERT.
pub const BIG_ORDERS: &str = r#"CREATE TABLE lake.sales.big_orders (
  order_id BIGINT NOT NULL,
  amount DECIMAL(12, 2)
) PARTITIONED BY (bucket(4, order_id)) WITH ('commit.interval' = '{commit_interval}');
INSERT INTO lake.sales.big_orders
SELECT order_id, amount FROM orders WHERE amount >= 500;
"#;

/// The orders job (its name, catalog and source) with the `tables` blocks
/// ([`ORDERS_CLEAN`], [`BIG_ORDERS`]), each committed every `commit_interval`.
pub fn orders_job_of(catalog: &str, commit_interval: &str, tables: &[&str]) -> String {
    let mut text = format!(
        r#"SET 'job.name' = '${{FLOE_E2E_JOB:-e2e}}';
CREATE CATALOG lake WITH (
  {catalog}
);
CREATE SOURCE orders (
  order_id BIGINT NOT NULL,
  customer_id BIGINT,
  amount DECIMAL(12, 2),
  currency VARCHAR,
  order_ts TIMESTAMP NOT NULL,
  part INT METADATA FROM 'partition',
  off BIGINT METADATA FROM 'offset'
) WITH (
  'connector' = 'kafka',
  'topic' = 'orders',
  'format' = 'json',
  'properties.bootstrap.servers' = '${{KAFKA_BOOTSTRAP}}',
  'properties.group.id' = '${{FLOE_E2E_GROUP:-floe-e2e}}',
  'properties.partition.assignment.strategy' = '${{FLOE_E2E_ASSIGNOR:-range,roundrobin}}',
  'properties.session.timeout.ms' = '6000',
  'properties.heartbeat.interval.ms' = '500',
  'properties.auto.offset.reset' = '${{FLOE_E2E_RESET:-error}}',
  'scan.startup.mode' = '${{FLOE_E2E_STARTUP:-earliest-offset}}'
);
"#
    );
    for t in tables {
        text.push_str(&t.replace("{commit_interval}", commit_interval));
    }
    text
}

/// The catalog options of a SQLite lake in `dir`.
pub fn sqlite_catalog(dir: &Path) -> String {
    format!(
        "'type' = 'sql',\n  'uri' = 'sqlite://{dir}/catalog.db',\n  'warehouse' = 'file://{dir}/warehouse'",
        dir = dir.display()
    )
}

impl Lake {
    /// A fresh lake with the orders job.
    pub fn new(commit_interval: &str) -> Lake {
        Lake::with_job(|dir| orders_job(dir, commit_interval))
    }

    /// A fresh lake with the job `text(dir)` gives.
    pub fn with_job(text: impl FnOnce(&Path) -> String) -> Lake {
        let dir = tempfile::tempdir().expect("temp dir");
        let job = dir.path().join("job.sql");
        std::fs::write(&job, text(dir.path())).expect("write job");
        Lake {
            dir,
            job,
            env: vec![],
        }
    }

    /// `floe` with this lake's environment.
    pub fn floe(&self) -> Command {
        let mut c = floe();
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Makes every file of the lake look `by` older, as if that much time had passed:
    /// orphans are removed only once older than a grace that covers a writer's commit
    /// interval and its commit retries (two minutes and more).
    pub fn age_files(&self, by: Duration) {
        fn walk(dir: &Path, at: std::time::SystemTime) {
            for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, at);
                } else if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    f.set_modified(at).expect("set the file's time");
                }
            }
        }
        walk(self.dir.path(), std::time::SystemTime::now() - by);
    }

    /// `floe describe` output for `table`.
    pub fn describe(&self, table: &str) -> String {
        let out = succeeded(
            self.floe()
                .args(["describe", "--job"])
                .arg(&self.job)
                .arg(table),
            "floe describe",
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `floe run` on this lake's job against `broker`.
    pub fn run_cmd(&self, broker: &Broker) -> Command {
        let mut c = self.floe();
        c.arg("run")
            .arg(&self.job)
            .env("KAFKA_BOOTSTRAP", &broker.bootstrap);
        c
    }

    /// Starts `floe run` in consumer group `group`, stopping when idle for `idle`, with
    /// its stderr kept.
    pub fn spawn_replica(&self, broker: &Broker, group: &str, idle: &str) -> (Child, StderrLog) {
        let mut cmd = self.run_cmd(broker);
        cmd.env("FLOE_E2E_GROUP", group)
            .args(["--stop-when-idle", idle]);
        spawn_logged(&mut cmd)
    }

    /// Starts `floe run` until a signal stops it, with its stderr kept.
    pub fn spawn(&self, broker: &Broker) -> (Child, StderrLog) {
        spawn_logged(&mut self.run_cmd(broker))
    }

    /// Runs the job, which must fail; returns its stderr.
    pub fn run_failing(&self, broker: &Broker, idle: &str) -> String {
        let out = self
            .run_cmd(broker)
            .args(["--stop-when-idle", idle])
            .output()
            .expect("run floe");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "the run must fail: {err}");
        err
    }

    /// Runs the job until it has been idle for `idle`, and checks that it exited cleanly.
    pub fn run_until_idle(&self, broker: &Broker, idle: &str) -> Output {
        self.run_in_group(broker, None, idle)
    }

    /// Like [`Self::run_until_idle`], in consumer group `group` when given.
    pub fn run_in_group(&self, broker: &Broker, group: Option<&str>, idle: &str) -> Output {
        let mut cmd = self.run_cmd(broker);
        if let Some(g) = group {
            cmd.env("FLOE_E2E_GROUP", g);
        }
        succeeded(cmd.args(["--stop-when-idle", idle]), "floe run")
    }

    /// `floe maintain` on `table` with `extra` arguments; its standard output.
    pub fn maintain(&self, table: &str, extra: &[&str]) -> String {
        self.table_command("maintain", table, extra)
    }

    /// `floe COMMAND --job JOB TABLE EXTRA…`, which must succeed; its standard output.
    pub fn table_command(&self, command: &str, table: &str, extra: &[&str]) -> String {
        let out = succeeded(
            self.floe()
                .args([command, "--job"])
                .arg(&self.job)
                .arg(table)
                .args(extra),
            &format!("floe {command}"),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Rows of `sql` through `floe query --format json`.
    pub fn query(&self, sql: &str) -> Vec<serde_json::Value> {
        self.try_query(sql)
            .unwrap_or_else(|e| panic!("floe query failed: {e}"))
    }

    /// Rows of `sql`, or why `floe query` failed (a table the job has not created yet).
    pub fn try_query(&self, sql: &str) -> Result<Vec<serde_json::Value>, String> {
        let out = self
            .floe()
            .args(["query", "--format", "json", "--job"])
            .arg(&self.job)
            .arg(sql)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("query output is JSON"))
            .collect())
    }

    /// Order ids in `table`, sorted.
    pub fn ids(&self, table: &str) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .query(&format!("SELECT order_id FROM {table}"))
            .iter()
            .map(|r| r["order_id"].as_u64().expect("order_id"))
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// What the generator produced for indices `0..per_partition` of every partition.
pub fn produced(partitions: u32, per_partition: u64) -> Vec<serde_json::Value> {
    produced_range(partitions, 0..per_partition)
}

/// What the generator produced for `indices` of every partition.
pub fn produced_range(partitions: u32, indices: std::ops::Range<u64>) -> Vec<serde_json::Value> {
    let mut out = vec![];
    let mut json = String::new();
    for p in 0..partitions {
        for i in indices.clone() {
            floe_devtools::generator::order_json(42, partitions, p, i, &mut json);
            out.push(serde_json::from_str(&json).expect("generated JSON"));
        }
    }
    out
}

/// Ids the orders_clean table must hold: positive amounts.
pub fn expected_clean_ids(records: &[serde_json::Value]) -> Vec<u64> {
    let mut ids: Vec<u64> = records
        .iter()
        .filter(|r| r["amount"].as_f64().unwrap_or(0.0) > 0.0)
        .map(|r| r["order_id"].as_u64().unwrap_or(0))
        .collect();
    ids.sort_unstable();
    ids
}

/// Ids the big_orders table must hold.
pub fn expected_big_ids(records: &[serde_json::Value]) -> Vec<u64> {
    let mut ids: Vec<u64> = records
        .iter()
        .filter(|r| r["amount"].as_f64().unwrap_or(0.0) >= 500.0)
        .map(|r| r["order_id"].as_u64().unwrap_or(0))
        .collect();
    ids.sort_unstable();
    ids
}

/// Asserts that `actual` ids equal `expected`, describing the difference briefly.
pub fn assert_same_ids(what: &str, actual: &[u64], expected: &[u64]) {
    if actual == expected {
        return;
    }
    let exp: std::collections::BTreeSet<u64> = expected.iter().copied().collect();
    let mut seen = std::collections::BTreeSet::new();
    let dups: Vec<u64> = actual
        .iter()
        .copied()
        .filter(|id| !seen.insert(*id))
        .take(10)
        .collect();
    let missing: Vec<u64> = exp.difference(&seen).copied().take(10).collect();
    let extra: Vec<u64> = seen.difference(&exp).copied().take(10).collect();
    panic!(
        "{what}: {} rows, {} expected; first duplicates {dups:?}, first missing {missing:?}, first unexpected {extra:?}",
        actual.len(),
        expected.len()
    );
}

/// Every produced order (4 partitions × `per_partition`) is in both tables exactly once.
pub fn assert_exactly_once(lake: &Lake, per_partition: u64) {
    let records = produced(4, per_partition);
    assert_same_ids(
        "orders_clean",
        &lake.ids("lake.sales.orders_clean"),
        &expected_clean_ids(&records),
    );
    assert_same_ids(
        "big_orders",
        &lake.ids("lake.sales.big_orders"),
        &expected_big_ids(&records),
    );
}
