//! What became of the records a commit covers, besides the rows it adds: how many the
//! SELECT filtered out, and how many each rule dropped or dead-lettered. Each target
//! table's snapshot summary carries its counts (`floe.counts`), so they are exactly-once
//! like the rows; the job's checkpoint property carries the running totals of the same
//! commit, so the totals outlive snapshot expiry ([`crate::checkpoint::job_counts`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts of one commit (or, summed, of many).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct RecordCounts {
    /// Records the SELECT's WHERE (or an empty result) left out.
    pub filtered: u64,
    /// Per rule or kind: records dropped by the `drop` policy.
    pub dropped: BTreeMap<String, u64>,
    /// Per rule or kind: records sent to the dead-letter table.
    pub dead_lettered: BTreeMap<String, u64>,
}

impl RecordCounts {
    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.filtered == 0 && self.dropped.is_empty() && self.dead_lettered.is_empty()
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &RecordCounts) {
        self.filtered += other.filtered;
        for (k, v) in &other.dropped {
            *self.dropped.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.dead_lettered {
            *self.dead_lettered.entry(k.clone()).or_default() += v;
        }
    }

    /// Total dropped.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Total dead-lettered.
    pub fn total_dead_lettered(&self) -> u64 {
        self.dead_lettered.values().sum()
    }

    /// The summary value.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a summary value; None when it is not one.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// `rule=n, rule=n` for messages.
    pub fn show(map: &BTreeMap<String, u64>) -> String {
        map.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_adds() {
        let mut a = RecordCounts {
            filtered: 2,
            dropped: BTreeMap::from([("known_currency".into(), 1)]),
            dead_lettered: BTreeMap::from([("malformed".into(), 3)]),
        };
        let text = a.to_json();
        assert!(text.contains("\"dead-lettered\""), "{text}");
        assert_eq!(RecordCounts::from_json(&text), Some(a.clone()));
        a.add(&a.clone());
        assert_eq!(a.filtered, 4);
        assert_eq!(a.total_dead_lettered(), 6);
    }
}
