//! A job's checkpoint kept in the table's properties, beside the snapshot summaries.
//!
//! Snapshot summaries alone are not enough over a job's whole life: other tools expire
//! snapshots (Spark's `expire_snapshots`, PyIceberg's, Floe's own maintenance) and add
//! snapshots without Floe's summary (a delete, an overwrite, a compaction). Once the job's
//! last snapshot is expired, or a foreign snapshot's parent is gone, the ancestry walk
//! finds no checkpoint, and a restart would fall back to the startup mode: `earliest`
//! reads the topic again (duplicates), `latest` skips (loss).
//!
//! So every commit of a job also sets the table property `floe.checkpoint.<job>` to the
//! same offsets and commit id, **in the same catalog commit** as the snapshot:
//!
//! ```text
//!   one catalog commit (compare-and-swap on the table's metadata):
//!     AddSnapshot     summary { floe.job, floe.commit-id, floe.offsets }
//!     SetSnapshotRef  main ──▶ the new snapshot
//!     SetProperties   floe.checkpoint.<job> = { commit-id, offsets, commit-interval-ms }
//!
//!   reading a job's checkpoint:
//!     1. the newest snapshot of the job in main's ancestry   (as before; wins if found,
//!        so a table rolled back to an older snapshot of the job resumes from there)
//!     2. else the property   (the job's snapshots were expired, or a foreign snapshot
//!        without a parent hides them)
//!     3. else none: the job has never committed to this table
//! ```
//!
//! Properties are carried from one metadata version to the next by every Iceberg writer
//! and survive snapshot expiry, so the checkpoint lasts as long as the table. The
//! property also tells maintenance how often each job commits (`commit-interval-ms`),
//! which bounds how long a job's uncommitted files may wait (orphan-file grace).

use std::collections::BTreeMap;
use std::time::Duration;

use iceberg::spec::TableMetadata;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::counts::RecordCounts;
use crate::error::{CatalogError, Result};
use crate::offsets::{
    COMMIT_ID_KEY, COUNTS_KEY, JOB_KEY, JobCheckpoint, OFFSETS_KEY, OffsetMap, ancestry,
};

/// Prefix of the table property that holds a job's checkpoint.
pub const CHECKPOINT_PROPERTY_PREFIX: &str = "floe.checkpoint.";

/// The property key of `job`'s checkpoint.
pub fn checkpoint_property(job: &str) -> String {
    format!("{CHECKPOINT_PROPERTY_PREFIX}{job}")
}

/// The JSON value of a checkpoint property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckpointRecord {
    /// The commit id of the snapshot committed with this value.
    pub commit_id: String,
    /// Next offsets, `{"topic":{"partition":offset}}`.
    pub offsets: BTreeMap<String, BTreeMap<String, i64>>,
    /// The job's `commit.interval` for this table, in milliseconds.
    #[serde(default)]
    pub commit_interval_ms: u64,
    /// The job's running totals of filtered, dropped and dead-lettered records up to and
    /// including this commit (see [`job_counts`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<RecordCounts>,
}

impl CheckpointRecord {
    /// The record of a commit `commit_id` covering `offsets`.
    pub fn new(commit_id: &str, offsets: &OffsetMap, commit_interval: Duration) -> Self {
        let offsets = serde_json::from_str(&offsets.to_json()).unwrap_or_default();
        Self {
            commit_id: commit_id.to_string(),
            offsets,
            commit_interval_ms: u64::try_from(commit_interval.as_millis()).unwrap_or(u64::MAX),
            counts: None,
        }
    }

    /// The property value.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The offsets as a map.
    pub fn offset_map(&self) -> Result<OffsetMap, String> {
        let text = serde_json::to_string(&self.offsets).map_err(|e| e.to_string())?;
        OffsetMap::from_json(&text)
    }
}

/// Where a checkpoint was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointSource {
    /// A snapshot of the job in `main`'s ancestry.
    Ancestry,
    /// The `floe.checkpoint.<job>` table property (the job's snapshots are gone).
    Property,
}

/// Every job's checkpoint property on the table, by job name.
pub fn checkpoint_records(
    table: &str,
    metadata: &TableMetadata,
) -> Result<BTreeMap<String, CheckpointRecord>> {
    let mut out = BTreeMap::new();
    for (key, value) in metadata.properties() {
        let Some(job) = key.strip_prefix(CHECKPOINT_PROPERTY_PREFIX) else {
            continue;
        };
        let record = serde_json::from_str(value).map_err(|e| unreadable(table, key, &e))?;
        out.insert(job.to_string(), record);
    }
    Ok(out)
}

/// Prefix of the table property in which a job announces the commit interval it is
/// about to use, before its first commit under it (the checkpoint records the interval
/// only with a commit).
pub const INTERVAL_PROPERTY_PREFIX: &str = "floe.commit-interval-ms.";

/// The property key of `job`'s announced commit interval.
pub fn interval_property(job: &str) -> String {
    format!("{INTERVAL_PROPERTY_PREFIX}{job}")
}

/// Every job's longest commit interval on the table: recorded with its checkpoint or
/// announced before its first commit under a new one.
pub fn writer_intervals(table: &str, metadata: &TableMetadata) -> Result<Vec<(String, Duration)>> {
    let mut out: BTreeMap<String, u64> = checkpoint_records(table, metadata)?
        .into_iter()
        .map(|(job, r)| (job, r.commit_interval_ms))
        .collect();
    for (key, value) in metadata.properties() {
        let Some(job) = key.strip_prefix(INTERVAL_PROPERTY_PREFIX) else {
            continue;
        };
        let ms: u64 = value.parse().map_err(|e| unreadable(table, key, &e))?;
        let longest = out.entry(job.to_string()).or_default();
        *longest = (*longest).max(ms);
    }
    Ok(out
        .into_iter()
        .map(|(job, ms)| (job, Duration::from_millis(ms)))
        .collect())
}

fn unreadable(table: &str, key: &str, e: &dyn std::fmt::Display) -> CatalogError {
    CatalogError::Property {
        table: table.to_string(),
        key: key.to_string(),
        message: e.to_string(),
    }
}

/// The job's checkpoint from its property alone.
pub fn property_checkpoint(
    table: &str,
    metadata: &TableMetadata,
    job: &str,
) -> Result<Option<CheckpointRecord>> {
    let key = checkpoint_property(job);
    metadata
        .properties()
        .get(&key)
        .map(|v| serde_json::from_str(v).map_err(|e| unreadable(table, &key, &e)))
        .transpose()
}

/// The job's checkpoint: the newest snapshot of the job in `main`'s ancestry, else the
/// table property (see the module doc), with where it was found.
pub fn find_checkpoint(
    table: &str,
    metadata: &TableMetadata,
    job: &str,
) -> Result<Option<(JobCheckpoint, CheckpointSource)>> {
    if let Some(cp) = ancestry_checkpoint(table, metadata, job)? {
        return Ok(Some((cp, CheckpointSource::Ancestry)));
    }
    let Some(record) = property_checkpoint(table, metadata, job)? else {
        return Ok(None);
    };
    let offsets = record
        .offset_map()
        .map_err(|m| unreadable(table, &checkpoint_property(job), &m))?;
    // The snapshot it was committed with may be gone; the id of the current one stands in.
    let snapshot_id = metadata.current_snapshot_id().unwrap_or_default();
    Ok(Some((
        JobCheckpoint {
            snapshot_id,
            commit_id: record.commit_id,
            offsets,
        },
        CheckpointSource::Property,
    )))
}

/// The newest snapshot in the ancestry written by `job`, with its offsets.
fn ancestry_checkpoint(
    table: &str,
    metadata: &TableMetadata,
    job: &str,
) -> Result<Option<JobCheckpoint>> {
    for snap in ancestry(metadata) {
        let props = &snap.summary().additional_properties;
        if props.get(JOB_KEY).map(String::as_str) != Some(job) {
            continue;
        }
        let offsets = match props.get(OFFSETS_KEY) {
            Some(text) => OffsetMap::from_json(text).map_err(|message| CatalogError::Summary {
                table: table.to_string(),
                snapshot_id: snap.snapshot_id(),
                key: OFFSETS_KEY.into(),
                message,
            })?,
            None => OffsetMap::new(),
        };
        return Ok(Some(JobCheckpoint {
            snapshot_id: snap.snapshot_id(),
            commit_id: props.get(COMMIT_ID_KEY).cloned().unwrap_or_default(),
            offsets,
        }));
    }
    Ok(None)
}

/// True when the table's current snapshot holds rows (by its summary's `total-records`;
/// a snapshot without that figure counts as holding rows).
pub fn holds_rows(metadata: &TableMetadata) -> bool {
    metadata.current_snapshot().is_some_and(|s| {
        s.summary()
            .additional_properties
            .get("total-records")
            .and_then(|n| n.parse::<u64>().ok())
            .is_none_or(|n| n > 0)
    })
}

/// The job's checkpoint: the newest snapshot of the job in `main`'s ancestry, else the
/// `floe.checkpoint.<job>` table property, which survives snapshot expiry and foreign
/// snapshots (see this module).
pub fn latest_checkpoint(
    table: &str,
    metadata: &TableMetadata,
    job: &str,
) -> Result<Option<JobCheckpoint>> {
    Ok(find_checkpoint(table, metadata, job)?.map(|(cp, _)| cp))
}

/// The snapshot that carries `commit_id`, looking back along the ancestry until
/// `stop_at` (the snapshot the commit was planned on; `None` walks everything).
pub fn find_commit(
    metadata: &TableMetadata,
    commit_id: &Uuid,
    stop_at: Option<i64>,
) -> Option<i64> {
    let id = commit_id.to_string();
    for snap in ancestry(metadata) {
        if Some(snap.snapshot_id()) == stop_at {
            break;
        }
        if snap.summary().additional_properties.get(COMMIT_ID_KEY) == Some(&id) {
            return Some(snap.snapshot_id());
        }
    }
    // The checkpoint property is set in the same catalog commit as the snapshot, and
    // outlives it when the snapshot is expired.
    let landed = metadata
        .properties()
        .iter()
        .filter(|(k, _)| k.starts_with(CHECKPOINT_PROPERTY_PREFIX))
        .filter_map(|(_, v)| serde_json::from_str::<CheckpointRecord>(v).ok())
        .any(|r| r.commit_id == id);
    landed.then(|| {
        metadata
            .snapshots()
            .find(|s| s.summary().additional_properties.get(COMMIT_ID_KEY) == Some(&id))
            .map_or_else(
                || metadata.current_snapshot_id().unwrap_or_default(),
                |s| s.snapshot_id(),
            )
    })
}

/// `job`'s running totals on the table: those its checkpoint property carries when the
/// property belongs to the newest snapshot of the job still in `main`'s ancestry (or no
/// snapshot of the job is left), else the sum over the job's snapshots in the ancestry
/// (a table written before the property carried totals, or rolled back).
pub fn job_counts(md: &TableMetadata, job: &str) -> RecordCounts {
    let record = md
        .properties()
        .get(&checkpoint_property(job))
        .and_then(|v| serde_json::from_str::<CheckpointRecord>(v).ok());
    let mut snapshots = ancestry(md)
        .filter(|s| {
            s.summary()
                .additional_properties
                .get(JOB_KEY)
                .map(String::as_str)
                == Some(job)
        })
        .peekable();
    let newest_id = snapshots.peek().and_then(|s| {
        s.summary()
            .additional_properties
            .get(COMMIT_ID_KEY)
            .cloned()
    });
    if let Some(r) = record
        && let Some(totals) = r.counts
        && newest_id.as_ref().is_none_or(|id| *id == r.commit_id)
    {
        return totals;
    }
    let mut total = RecordCounts::default();
    for s in snapshots {
        let p = &s.summary().additional_properties;
        if let Some(c) = p.get(COUNTS_KEY).and_then(|t| RecordCounts::from_json(t)) {
            total.add(&c);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::TopicPartition;

    #[test]
    fn record_round_trip() {
        let mut m = OffsetMap::new();
        m.set(TopicPartition::new("orders", 3), 40);
        m.set(TopicPartition::new("orders", 0), 12);
        let r = CheckpointRecord::new("c-1", &m, Duration::from_secs(5));
        assert_eq!(
            r.to_json(),
            r#"{"commit-id":"c-1","offsets":{"orders":{"0":12,"3":40}},"commit-interval-ms":5000}"#
        );
        let back: CheckpointRecord = serde_json::from_str(&r.to_json()).expect("parse");
        assert_eq!(back.offset_map(), Ok(m));
        assert_eq!(checkpoint_property("orders"), "floe.checkpoint.orders");
    }
}
