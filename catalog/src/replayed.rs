//! The ledger of replayed dead letters.
//!
//! A replay appends the recovered rows to the target table in one commit whose summary
//! lists the records it resolved (`floe.replayed`: offsets per topic-partition, as
//! ranges). That list, in the target's ancestry, is the source of truth for "this dead
//! letter has been dealt with": it commits atomically with the rows, so a replay that
//! crashes or is run twice never recovers a record twice. The markers a replay also
//! appends to the dead-letter table are derived from it and repaired on every replay.
//!
//! Snapshots expire, and the ledger in their summaries with them. Two more records of it
//! outlive expiry:
//!
//! ```text
//!   marker rows      the dead-letter table's `replayed` rows: written after each replay's
//!                    target commit, and repaired *before* the next replay commits, so
//!                    every replay but the newest has all of its markers
//!   the property     `floe.replayed.<job>` on the target: the newest replay's set, set in
//!                    the same catalog commit as its rows (covers the gap until its
//!                    markers are written)
//!   ledger = summaries still in the ancestry ∪ marker rows ∪ the property
//! ```

use std::collections::{BTreeMap, BTreeSet};

use iceberg::spec::TableMetadata;
use uuid::Uuid;

use crate::offsets::{JOB_KEY, TopicPartition, ancestry};

/// Summary key: the records a replay resolved, `{"topic":{"0":[[first,last],…]}}`.
pub const REPLAYED_KEY: &str = "floe.replayed";

/// A set of records, by topic-partition and offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSet(BTreeSet<(TopicPartition, i64)>);

impl RecordSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record.
    pub fn insert(&mut self, tp: TopicPartition, offset: i64) -> bool {
        self.0.insert((tp, offset))
    }

    /// Whether the record is in the set.
    pub fn contains(&self, tp: &TopicPartition, offset: i64) -> bool {
        self.0.contains(&(tp.clone(), offset))
    }

    /// Adds every record of `other`.
    pub fn extend(&mut self, other: &RecordSet) {
        self.0.extend(other.0.iter().cloned());
    }

    /// Records of this set that `other` lacks.
    pub fn minus(&self, other: &RecordSet) -> RecordSet {
        RecordSet(self.0.difference(&other.0).cloned().collect())
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The records in order.
    pub fn iter(&self) -> impl Iterator<Item = &(TopicPartition, i64)> {
        self.0.iter()
    }

    /// The summary form: offsets as inclusive ranges per topic and partition.
    pub fn to_json(&self) -> String {
        let mut out: BTreeMap<&str, BTreeMap<String, Vec<[i64; 2]>>> = BTreeMap::new();
        for (tp, o) in &self.0 {
            let ranges = out
                .entry(tp.topic.as_str())
                .or_default()
                .entry(tp.partition.to_string())
                .or_default();
            match ranges.last_mut() {
                Some(r) if r[1] + 1 == *o => r[1] = *o,
                _ => ranges.push([*o, *o]),
            }
        }
        serde_json::to_string(&out).unwrap_or_else(|_| "{}".into())
    }

    /// Parses the summary form.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let parsed: BTreeMap<String, BTreeMap<String, Vec<[i64; 2]>>> =
            serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut out = RecordSet::new();
        for (topic, parts) in parsed {
            for (p, ranges) in parts {
                let p: i32 = p
                    .parse()
                    .map_err(|_| format!("partition '{p}' of topic {topic} is not a number"))?;
                for [a, b] in ranges {
                    if b < a || b - a > 100_000_000 {
                        return Err(format!("bad range {a}..{b} of {topic}/{p}"));
                    }
                    for o in a..=b {
                        out.insert(TopicPartition::new(topic.clone(), p), o);
                    }
                }
            }
        }
        Ok(out)
    }

    /// A deterministic id for work on exactly this set (`what` tells kinds of work apart).
    pub fn id(&self, what: &str) -> Uuid {
        Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("{what}\n{}", self.to_json()).as_bytes(),
        )
    }
}

/// Prefix of the target-table property that holds the newest replay's resolved set.
pub const REPLAYED_PROPERTY_PREFIX: &str = "floe.replayed.";

/// The property key of `job`'s newest replay.
pub fn replayed_property(job: &str) -> String {
    format!("{REPLAYED_PROPERTY_PREFIX}{job}")
}

/// The records the newest replay of `job` resolved, from the table's property.
pub fn replayed_by_property(metadata: &TableMetadata, job: &str) -> Result<RecordSet, String> {
    let key = replayed_property(job);
    match metadata.properties().get(&key) {
        Some(text) => RecordSet::from_json(text).map_err(|e| format!("property {key}: {e}")),
        None => Ok(RecordSet::new()),
    }
}

/// Every record that replays of `job` have resolved into the table, from its ancestry.
pub fn replayed_records(metadata: &TableMetadata, job: &str) -> Result<RecordSet, String> {
    let mut out = RecordSet::new();
    for s in ancestry(metadata) {
        let p = &s.summary().additional_properties;
        if p.get(JOB_KEY).map(String::as_str) != Some(job) {
            continue;
        }
        if let Some(text) = p.get(REPLAYED_KEY) {
            let set = RecordSet::from_json(text)
                .map_err(|e| format!("snapshot {}: {REPLAYED_KEY}: {e}", s.snapshot_id()))?;
            out.extend(&set);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip() {
        let mut s = RecordSet::new();
        for o in [1, 2, 3, 7, 9, 10] {
            s.insert(TopicPartition::new("t", 0), o);
        }
        s.insert(TopicPartition::new("t", 1), 4);
        let text = s.to_json();
        assert_eq!(text, r#"{"t":{"0":[[1,3],[7,7],[9,10]],"1":[[4,4]]}}"#);
        assert_eq!(RecordSet::from_json(&text), Ok(s.clone()));
        assert_eq!(s.id("a"), s.id("a"));
        assert_ne!(s.id("a"), s.id("b"));
    }
}
