//! Dead-letter lanes: a dead-letter table keeps one checkpoint per target table.
//!
//! A dead-letter table may serve several target tables of a job, and targets come and
//! go: a target is added to a dead-letter table that has run for months, a dead-letter
//! table is added to a target, targets commit at different intervals. One checkpoint for
//! the whole dead-letter table cannot say, for each target, which of its bad records are
//! already there. So each (dead-letter table, target) pair is a lane with a checkpoint of
//! its own, kept like a job's under the identity `<job>/<target>`:
//!
//! ```text
//!   orders_dlq  summary floe.job = "orders/lake.sales.orders_checked", floe.offsets …
//!               property floe.checkpoint.orders/lake.sales.orders_checked = { … }
//!               property floe.checkpoint.orders/lake.sales.refunds         = { … }
//! ```
//!
//! Lanes commit as separate snapshots (on their target's `commit.interval`), fenced and
//! retried like any commit. A lane without a checkpoint starts where its target is, so
//! a target's records are dead-lettered exactly from where the lane begins: a
//! dead-letter table added to a target takes the target's bad records from its
//! checkpoint on; a target new to a dead-letter table starts with its target (both ask
//! the startup mode). A dead-letter table written before lanes existed holds one
//! checkpoint under the job's own name: a new lane starts from it, so nothing that table
//! already holds is written again.

use floe_catalog::OffsetMap;
use floe_catalog::checkpoint::latest_checkpoint;
use floe_sql::job::TableName;
use iceberg::spec::TableMetadata;

use crate::error::Result;

/// The checkpoint identity of the lane of `target`'s dead letters.
pub fn lane_job(job: &str, target: &TableName) -> String {
    format!("{job}/{target}")
}

/// Where a lane without a checkpoint starts: the dead-letter table's checkpoint under
/// the job's own name, if it was written before lanes existed, else its target's
/// offsets `target_offsets`.
pub fn lane_start(
    dead_letter_table: &TableName,
    metadata: &TableMetadata,
    job: &str,
    target_offsets: &OffsetMap,
) -> Result<OffsetMap> {
    let legacy = latest_checkpoint(&dead_letter_table.to_string(), metadata, job)?;
    Ok(legacy.map_or_else(|| target_offsets.clone(), |c| c.offsets))
}
