//! Where a partition starts: decided here, once, for the consumer and for every table.
//!
//! Each table that reads a source has its own checkpoint, and a job's tables need not
//! agree: a table added to a job that has run for months has none, a partition added to
//! the topic is missing from every table's. For one partition, each table needs one of:
//!
//! ```text
//!   At(o)      the table has an offset for it (committed, or pending in its writer)
//!   Beginning  the table knows the topic but not this partition: it was added to the
//!              topic after the table started, so all of it is new to the table
//!   Startup    the table knows nothing of the topic: the source's startup mode decides,
//!              and its answer, resolved to a number, is pinned as the table's start
//! ```
//!
//! The consumer starts at the lowest of those positions, and every table skips the
//! records below its own (`TableState::lower_bound`). So adding a table to a job never
//! moves the existing tables, and removing one leaves the others where they were.

use floe_catalog::{OffsetMap, TopicPartition};

/// What one table needs of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The table holds everything below this offset.
    At(i64),
    /// The partition is new to a table that knows the topic: read all of it.
    Beginning,
    /// The table knows nothing of the topic: the startup mode decides.
    Startup,
}

/// What the table whose offsets are `offsets` needs of `tp`.
pub fn need(offsets: &OffsetMap, tp: &TopicPartition) -> Need {
    match offsets.get(tp) {
        Some(o) => Need::At(o),
        None if offsets.iter().any(|(t, _)| t.topic == tp.topic) => Need::Beginning,
        None => Need::Startup,
    }
}

/// What all the tables reading a source need of one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// The lowest offset of the tables that have one.
    pub at: Option<i64>,
    /// Some table must read the partition from its beginning.
    pub beginning: bool,
    /// Some table starts where the startup mode says.
    pub startup: bool,
}

/// The needs of `tables` (each table's offsets) for `tp`, combined.
pub fn plan(tables: &[OffsetMap], tp: &TopicPartition) -> Plan {
    let mut out = Plan::default();
    for t in tables {
        match need(t, tp) {
            Need::At(o) => out.at = Some(out.at.map_or(o, |a| a.min(o))),
            Need::Beginning => out.beginning = true,
            Need::Startup => out.startup = true,
        }
    }
    // A source nobody reads yet (no tables) is a first start.
    if tables.is_empty() {
        out.startup = true;
    }
    out
}

/// Offsets of `topic` that every table has, at the lowest: where the whole job is, for
/// the consumer group's committed offsets (lag dashboards).
pub fn common_offsets(tables: &[OffsetMap], topic: &str) -> OffsetMap {
    let mut out = OffsetMap::new();
    let Some(first) = tables.first() else {
        return out;
    };
    for (tp, _) in first.iter().filter(|(tp, _)| tp.topic == topic) {
        let all: Option<Vec<i64>> = tables.iter().map(|t| t.get(tp)).collect();
        if let Some(min) = all.and_then(|v| v.into_iter().min()) {
            out.set(tp.clone(), min);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, i32, i64)]) -> OffsetMap {
        OffsetMap::of(entries)
    }

    #[test]
    fn each_table_needs_its_own_position() {
        let tp = TopicPartition::new("orders", 1);
        assert_eq!(need(&map(&[("orders", 1, 40)]), &tp), Need::At(40));
        assert_eq!(need(&map(&[("orders", 0, 40)]), &tp), Need::Beginning);
        assert_eq!(need(&map(&[("users", 1, 40)]), &tp), Need::Startup);
    }

    #[test]
    fn a_new_table_does_not_move_the_existing_ones() {
        let tp = TopicPartition::new("orders", 0);
        let existing = map(&[("orders", 0, 1000)]);
        let added = OffsetMap::new();
        let p = plan(&[existing.clone(), added], &tp);
        assert_eq!(
            p,
            Plan {
                at: Some(1000),
                beginning: false,
                startup: true
            }
        );
        assert_eq!(
            common_offsets(&[existing, OffsetMap::new()], "orders"),
            OffsetMap::new()
        );
    }

    #[test]
    fn the_lowest_offset_and_the_beginning_win() {
        let tp = TopicPartition::new("orders", 2);
        let a = map(&[("orders", 2, 70), ("orders", 0, 5)]);
        let b = map(&[("orders", 2, 30)]);
        let c = map(&[("orders", 0, 9)]);
        assert_eq!(plan(&[a.clone(), b.clone()], &tp).at, Some(30));
        assert!(plan(&[a.clone(), c], &tp).beginning);
        assert_eq!(common_offsets(&[a, b], "orders"), map(&[("orders", 2, 30)]));
    }
}
