//! Kafka offsets carried in Iceberg snapshot summaries: the heart of exactly-once.
//!
//! # The protocol
//!
//! ```text
//!   Kafka ──poll──▶ decode ──▶ SQL ──▶ data files (uncommitted, invisible)
//!                                          │
//!                 checkpoint: one atomic Iceberg commit per table
//!                                          ▼
//!        snapshot summary { floe.job, floe.commit-id, floe.offsets = next offset per
//!                           topic-partition, cumulative }
//!                                          │ only after it succeeded
//!                                          ▼
//!                       consumer-group offset commit (for lag dashboards only)
//!
//!   start / assignment:  walk each table's snapshot ancestry from `main` to the newest
//!                        snapshot of this job ──▶ offsets ──▶ seek; each table skips
//!                        records below its own offsets.
//!   unknown outcome:     walk the ancestry for the commit id before retrying; found
//!                        means committed, so the files are never appended twice.
//! ```
//!
//! The invariant: a record's effect is in a table if and only if the table's newest job
//! snapshot has an offset above the record's. Data files never become visible without the
//! offsets that cover them, because both are written in the same catalog commit.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use iceberg::spec::{Snapshot, TableMetadata};
use uuid::Uuid;

use crate::error::Result;

/// Summary key: the job that wrote the snapshot.
pub const JOB_KEY: &str = "floe.job";
/// Summary key: the deterministic id of the commit.
pub const COMMIT_ID_KEY: &str = "floe.commit-id";
/// Summary key: next offsets to read, as JSON `{"topic": {"partition": offset}}`.
pub const OFFSETS_KEY: &str = "floe.offsets";
/// Summary key: what became of the commit's records besides its rows (JSON: filtered,
/// dropped and dead-lettered counts).
pub const COUNTS_KEY: &str = "floe.counts";
/// Summary key: which versions of each lookup table the commit's rows were joined with,
/// as JSON `{"catalog.namespace.table": ["snapshot id", …]}`.
pub const LOOKUPS_KEY: &str = "floe.lookups";
/// Summary key: the Floe version that wrote the snapshot.
pub const WRITER_KEY: &str = "floe.writer";

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Next offset to read, per topic-partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetMap(BTreeMap<TopicPartition, i64>);

impl OffsetMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// A map of `(topic, partition, next offset)` entries.
    pub fn of(entries: &[(&str, i32, i64)]) -> Self {
        let mut m = Self::new();
        for (t, p, o) in entries {
            m.set(TopicPartition::new(*t, *p), *o);
        }
        m
    }

    /// The next offset of `tp`, if known.
    pub fn get(&self, tp: &TopicPartition) -> Option<i64> {
        self.0.get(tp).copied()
    }

    /// Sets the next offset of `tp`.
    pub fn set(&mut self, tp: TopicPartition, next: i64) {
        self.0.insert(tp, next);
    }

    /// Forgets `tp`.
    pub fn remove(&mut self, tp: &TopicPartition) {
        self.0.remove(tp);
    }

    /// Raises `tp` to `next` if that is further (never moves backwards).
    pub fn advance(&mut self, tp: &TopicPartition, next: i64) {
        match self.0.get_mut(tp) {
            Some(v) if *v >= next => {}
            Some(v) => *v = next,
            None => {
                self.0.insert(tp.clone(), next);
            }
        }
    }

    /// This map with every entry of `other` laid over it.
    pub fn merged(&self, other: &OffsetMap) -> OffsetMap {
        let mut out = self.clone();
        for (tp, o) in &other.0 {
            out.0.insert(tp.clone(), *o);
        }
        out
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&TopicPartition, i64)> {
        self.0.iter().map(|(k, v)| (k, *v))
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The JSON form stored in summaries: `{"topic":{"0":12,"1":40}}`.
    pub fn to_json(&self) -> String {
        let mut by_topic: BTreeMap<&str, BTreeMap<String, i64>> = BTreeMap::new();
        for (tp, o) in &self.0 {
            by_topic
                .entry(tp.topic.as_str())
                .or_default()
                .insert(tp.partition.to_string(), *o);
        }
        serde_json::to_string(&by_topic).unwrap_or_else(|_| "{}".into())
    }

    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let by_topic: BTreeMap<String, BTreeMap<String, i64>> =
            serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut out = OffsetMap::new();
        for (topic, parts) in by_topic {
            for (p, o) in parts {
                let p: i32 = p
                    .parse()
                    .map_err(|_| format!("partition '{p}' of topic {topic} is not a number"))?;
                if o < 0 {
                    return Err(format!("offset {o} of {topic}/{p} is negative"));
                }
                out.set(TopicPartition::new(topic.clone(), p), o);
            }
        }
        Ok(out)
    }
}

/// What a snapshot written by a job says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCheckpoint {
    /// The snapshot.
    pub snapshot_id: i64,
    /// Its commit id.
    pub commit_id: String,
    /// Next offsets, cumulative over every partition the job has written to the table.
    pub offsets: OffsetMap,
}

/// The summary properties of a commit by `job` covering up to `offsets`.
pub fn summary_properties(
    job: &str,
    commit_id: &Uuid,
    offsets: &OffsetMap,
) -> HashMap<String, String> {
    HashMap::from([
        (JOB_KEY.to_string(), job.to_string()),
        (COMMIT_ID_KEY.to_string(), commit_id.to_string()),
        (OFFSETS_KEY.to_string(), offsets.to_json()),
        (
            WRITER_KEY.to_string(),
            format!("floe {}", env!("CARGO_PKG_VERSION")),
        ),
    ])
}

/// The deterministic id of the commit that moves `table` of `job` from `from` to `to`:
/// the same work always gets the same id, so a retry can recognise its own commit.
pub fn commit_id(job: &str, table: &str, from: &OffsetMap, to: &OffsetMap) -> Uuid {
    let text = format!("{job}\n{table}\n{}\n{}", from.to_json(), to.to_json());
    Uuid::new_v5(&Uuid::NAMESPACE_OID, text.as_bytes())
}

/// Snapshots of the `main` branch, newest first, following parent links.
pub fn ancestry(metadata: &TableMetadata) -> impl Iterator<Item = &Snapshot> + '_ {
    let mut next = metadata.current_snapshot().map(|s| s.snapshot_id());
    std::iter::from_fn(move || {
        let snap = metadata.snapshot_by_id(next?)?;
        next = snap.parent_snapshot_id();
        Some(snap.as_ref())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, i32, i64)]) -> OffsetMap {
        OffsetMap::of(entries)
    }

    #[test]
    fn json_round_trip() {
        let m = map(&[("orders", 0, 10), ("orders", 3, 7), ("users", 1, 0)]);
        assert_eq!(m.to_json(), r#"{"orders":{"0":10,"3":7},"users":{"1":0}}"#);
        assert_eq!(OffsetMap::from_json(&m.to_json()), Ok(m));
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(OffsetMap::from_json("{\"t\":{\"x\":1}}").is_err());
        assert!(OffsetMap::from_json("{\"t\":{\"0\":-1}}").is_err());
        assert!(OffsetMap::from_json("nope").is_err());
    }

    #[test]
    fn advance_never_goes_backwards() {
        let tp = TopicPartition::new("t", 0);
        let mut m = map(&[("t", 0, 10)]);
        m.advance(&tp, 5);
        assert_eq!(m.get(&tp), Some(10));
        m.advance(&tp, 12);
        assert_eq!(m.get(&tp), Some(12));
    }

    #[test]
    fn commit_ids_are_deterministic_and_distinct() {
        let a = map(&[("t", 0, 10)]);
        let b = map(&[("t", 0, 20)]);
        assert_eq!(commit_id("j", "x", &a, &b), commit_id("j", "x", &a, &b));
        assert_ne!(commit_id("j", "x", &a, &b), commit_id("j", "y", &a, &b));
        assert_ne!(commit_id("j", "x", &a, &b), commit_id("j", "x", &b, &a));
    }
}
