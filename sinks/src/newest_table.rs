//! The newest state of a table that several committers in one process write to.
//!
//! A running job commits to a table every few seconds while its maintenance thread
//! commits compaction and expiry to the same table. Each committer plans on the table
//! state it last saw, so a commit by the other makes its next commit fail its
//! compare-and-swap and re-plan (reload the metadata, write the manifests again): at a
//! pass every 10 s and a commit every 200 ms that was 2–4 % of the job's commits, the
//! whole of its p99 commit latency. Committers in the same process instead hand each
//! other the state they committed: before planning, a committer takes the shared state
//! when it descends from its own (its own metadata file is in the shared state's
//! metadata log). Only a commit landing during the other's planning still conflicts.
//! Writers in other processes are unaffected: their commits still surface as conflicts.

use std::sync::{Arc, Mutex};

use iceberg::table::Table;

/// Shared between the committers of one table (clones share the state).
#[derive(Debug, Clone, Default)]
pub struct NewestTable(Arc<Mutex<Option<Table>>>);

impl NewestTable {
    /// Records `table` (as a committer just committed or loaded it) unless what is held
    /// already descends from it.
    pub fn offer(&self, table: &Table) {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let keep_held = held.as_ref().is_some_and(|h| descends_from(h, table));
        if !keep_held {
            *held = Some(table.clone());
        }
    }

    /// The held state when it is newer than `base` and descends from it, else `None`.
    pub fn newer_than(&self, base: &Table) -> Option<Table> {
        let held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .filter(|h| h.metadata_location() != base.metadata_location())
            .filter(|h| descends_from(h, base))
            .cloned()
    }

    /// `base` itself, or the held state when it descends from `base`.
    pub fn newest(&self, base: Table) -> Table {
        self.newer_than(&base).unwrap_or(base)
    }
}

/// Whether `candidate` was committed on top of `base` (directly or after others): same
/// table, and `base`'s metadata file is in `candidate`'s metadata log.
fn descends_from(candidate: &Table, base: &Table) -> bool {
    let Some(location) = base.metadata_location() else {
        return false;
    };
    candidate.metadata().uuid() == base.metadata().uuid()
        && (candidate.metadata_location() == Some(location)
            || candidate
                .metadata()
                .metadata_log()
                .iter()
                .any(|l| l.metadata_file == location))
}
