//! Floe's metrics: what a job read, wrote, committed and refused, per source, partition,
//! table and rule. Table counts move when a commit lands, so a scrape agrees with what
//! the tables hold (up to the commit in flight).

use std::time::{SystemTime, UNIX_EPOCH};

use super::registry::{Family, Kind};

/// Commit latency buckets, in seconds.
const COMMIT_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Every family `floe run` exports.
#[derive(Debug)]
pub struct Metrics {
    /// Records polled, per source and partition.
    pub records_read: Family,
    /// Payload bytes polled, per source and partition.
    pub read_bytes: Family,
    /// Records that could not be decoded, per source and kind.
    pub decode_errors: Family,
    /// Consumer lag from librdkafka's statistics, per partition.
    pub consumer_lag: Family,
    /// Partitions assigned now, per source.
    pub partitions_assigned: Family,
    /// Rebalance steps, per source and event (assigned, revoked, lost).
    pub rebalances: Family,
    /// Rows in committed data files, per table.
    pub rows_written: Family,
    /// Data files committed, per table.
    pub files_written: Family,
    /// Bytes of committed data files, per table.
    pub written_bytes: Family,
    /// Records the SELECT filtered out, per table (committed).
    pub filtered: Family,
    /// Records dead-lettered, per table and rule (committed).
    pub dead_letters: Family,
    /// Records dropped, per table and rule (committed).
    pub dropped: Family,
    /// Successful commits, per table.
    pub commits: Family,
    /// Commit attempts retried after a transient failure, per table.
    pub commit_retries: Family,
    /// Commit attempts re-planned because another writer committed first, per table.
    pub commit_conflicts: Family,
    /// Commits refused because another writer took the partitions over, per table.
    pub commits_fenced: Family,
    /// Commits that failed for good, per table.
    pub commit_failures: Family,
    /// Time from the start of a commit to its success, per table.
    pub commit_duration: Family,
    /// When the newest committed Kafka record was produced, per table (Unix seconds).
    pub newest_committed_record: Family,
    /// When the last commit landed, per table (Unix seconds).
    pub last_commit: Family,
    /// Maintenance steps that changed a table, per table and kind.
    pub maintenance_runs: Family,
    /// CPU seconds of maintenance, per table and step.
    pub maintenance_cpu: Family,
    /// Maintenance steps that failed (the pass went on), per table and step.
    pub maintenance_failures: Family,
    /// Rows of the lookup table version joins use now, per lookup table.
    pub lookup_rows: Family,
    /// Memory of that version (rows and index), per lookup table.
    pub lookup_bytes: Family,
    /// Loads of a lookup table's new version, per lookup table and outcome.
    pub lookup_loads: Family,
    /// Records of a topic read as a lookup table that could not become rows, per table
    /// and reason.
    pub lookup_skipped: Family,
}

impl Metrics {
    const fn new() -> Self {
        use Kind::{Counter, Gauge, Histogram};
        const SP: &[&str] = &["source", "topic", "partition"];
        const T: &[&str] = &["table"];
        const TR: &[&str] = &["table", "rule"];
        const TK: &[&str] = &["table", "kind"];
        Self {
            records_read: Family::new(
                "floe_records_read_total",
                "Records read from Kafka.",
                Counter,
                SP,
            ),
            read_bytes: Family::new(
                "floe_read_bytes_total",
                "Payload bytes read from Kafka.",
                Counter,
                SP,
            ),
            decode_errors: Family::new(
                "floe_decode_errors_total",
                "Records that could not be decoded, by kind.",
                Counter,
                &["source", "kind"],
            ),
            consumer_lag: Family::new(
                "floe_consumer_lag_records",
                "Records behind the partition's end.",
                Gauge,
                SP,
            ),
            partitions_assigned: Family::new(
                "floe_partitions_assigned",
                "Partitions assigned to this process.",
                Gauge,
                &["source"],
            ),
            rebalances: Family::new(
                "floe_rebalances_total",
                "Rebalance steps: assigned, revoked, lost.",
                Counter,
                &["source", "event"],
            ),
            rows_written: Family::new(
                "floe_rows_written_total",
                "Rows in committed data files.",
                Counter,
                T,
            ),
            files_written: Family::new(
                "floe_files_written_total",
                "Data files committed.",
                Counter,
                T,
            ),
            written_bytes: Family::new(
                "floe_written_bytes_total",
                "Bytes of committed data files.",
                Counter,
                T,
            ),
            filtered: Family::new(
                "floe_filtered_records_total",
                "Records the SELECT left out (committed).",
                Counter,
                T,
            ),
            dead_letters: Family::new(
                "floe_dead_letters_total",
                "Records sent to the dead-letter table, by rule (committed).",
                Counter,
                TR,
            ),
            dropped: Family::new(
                "floe_dropped_records_total",
                "Records dropped by a rule (committed).",
                Counter,
                TR,
            ),
            commits: Family::new("floe_commits_total", "Successful commits.", Counter, T),
            commit_retries: Family::new(
                "floe_commit_retries_total",
                "Commit attempts retried after a transient failure.",
                Counter,
                T,
            ),
            commit_conflicts: Family::new(
                "floe_commit_conflicts_total",
                "Commit attempts re-planned after another writer committed first.",
                Counter,
                T,
            ),
            commits_fenced: Family::new(
                "floe_commits_fenced_total",
                "Commits refused: another writer took the partitions over.",
                Counter,
                T,
            ),
            commit_failures: Family::new(
                "floe_commit_failures_total",
                "Commits that failed for good.",
                Counter,
                T,
            ),
            commit_duration: Family::new(
                "floe_commit_duration_seconds",
                "Time from the start of a commit to its success.",
                Histogram(COMMIT_SECONDS),
                T,
            ),
            newest_committed_record: Family::new(
                "floe_newest_committed_record_timestamp_seconds",
                "Kafka timestamp of the newest committed record.",
                Gauge,
                T,
            ),
            last_commit: Family::new(
                "floe_last_commit_timestamp_seconds",
                "When the last commit landed.",
                Gauge,
                T,
            ),
            maintenance_runs: Family::new(
                "floe_maintenance_runs_total",
                "Maintenance steps that changed the table (compaction, manifests, expiry, orphans) or gave up (abandoned, failed).",
                Counter,
                TK,
            ),
            lookup_rows: Family::new(
                "floe_lookup_rows",
                "Rows of the lookup table version that joins use now.",
                Gauge,
                T,
            ),
            lookup_bytes: Family::new(
                "floe_lookup_memory_bytes",
                "Memory of the lookup table version that joins use now, rows and index.",
                Gauge,
                T,
            ),
            lookup_loads: Family::new(
                "floe_lookup_loads_total",
                "Loads of a lookup table's new version: loaded or failed.",
                Counter,
                &["table", "outcome"],
            ),
            lookup_skipped: Family::new(
                "floe_lookup_skipped_records_total",
                "Records of a topic read as a lookup table that could not become rows (no key, or a value that cannot be decoded): logged and left out.",
                Counter,
                &["table", "reason"],
            ),
            maintenance_cpu: Family::new(
                "floe_maintenance_cpu_seconds_total",
                "CPU seconds the maintenance thread spent per table and step (compaction, manifests, expiry, orphans), read from the thread's clock ticks.",
                Counter,
                TK,
            ),
            maintenance_failures: Family::new(
                "floe_maintenance_failures_total",
                "Maintenance steps that failed, per step (compaction, manifests, expiry, metadata, orphans, or pass: the table could not be loaded, or the pass panicked); the other steps still ran, and the failed one is tried again after a back-off.",
                Counter,
                &["table", "step"],
            ),
        }
    }

    fn families(&self) -> [&Family; 27] {
        [
            &self.records_read,
            &self.read_bytes,
            &self.decode_errors,
            &self.consumer_lag,
            &self.partitions_assigned,
            &self.rebalances,
            &self.rows_written,
            &self.files_written,
            &self.written_bytes,
            &self.filtered,
            &self.dead_letters,
            &self.dropped,
            &self.commits,
            &self.commit_retries,
            &self.commit_conflicts,
            &self.commits_fenced,
            &self.commit_failures,
            &self.commit_duration,
            &self.newest_committed_record,
            &self.last_commit,
            &self.maintenance_runs,
            &self.maintenance_cpu,
            &self.maintenance_failures,
            &self.lookup_rows,
            &self.lookup_bytes,
            &self.lookup_loads,
            &self.lookup_skipped,
        ]
    }

    /// The text exposition of every family, with freshness and commit age computed now.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 << 10);
        for f in self.families() {
            f.render(&mut out);
        }
        let now = unix_seconds(SystemTime::now());
        let ages = [
            (
                &self.newest_committed_record,
                Family::new(
                    "floe_freshness_seconds",
                    "Now minus the Kafka timestamp of the newest committed record.",
                    Kind::Gauge,
                    &["table"],
                ),
            ),
            (
                &self.last_commit,
                Family::new(
                    "floe_last_commit_age_seconds",
                    "Time since the last commit landed.",
                    Kind::Gauge,
                    &["table"],
                ),
            ),
        ];
        for (from, age) in ages {
            for (labels, at) in from.numbers() {
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                age.set(&labels, (now - at).max(0.0));
            }
            age.render(&mut out);
        }
        out
    }
}

/// Seconds since the Unix epoch, with a fraction.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: Metrics = Metrics::new();
    &METRICS
}
