//! Row-delta snapshots: data files and position-delete files committed in one snapshot
//! (operation `overwrite`, or `delete` when it only deletes), as a merge-on-read
//! `DELETE`, `UPDATE` or `MERGE` of another engine commits them.
//!
//! iceberg-rust 0.10.1 has no row-delta action (its `fast_append` refuses delete files),
//! so the snapshot is built like a replace snapshot (`super::replace`): new manifests
//! for the added data and delete files beside the base's manifests, committed through
//! the catalog's compare-and-swap with the same conflict and lost-response rules. Every
//! data file the deletes name must still be live when the commit lands: deletes naming
//! a file that compaction (or anyone) removed meanwhile would name nothing, and the rows
//! they meant would live on in the rewritten file. Such a commit fails
//! (`RewriteAbandoned`) and the caller resolves its deletes again. Drop this module for
//! iceberg-rust's own row-delta action once a release has one.

use std::collections::HashMap;

use floe_catalog::{ManifestCache, OpenCatalog};
use iceberg::spec::DataFile;
use iceberg::table::Table;

use super::replace::{ReplaceOutcome, Replacement, commit_replace};
use crate::error::Result;
use crate::retry_policy::RetryPolicy;

/// What a row-delta snapshot adds.
#[derive(Debug, Clone, Default)]
pub struct RowDelta {
    /// New data files (rows written by the change).
    pub data_files: Vec<DataFile>,
    /// Position-delete files (see `crate::position_deletes`).
    pub delete_files: Vec<DataFile>,
    /// The partition spec both were written for.
    pub spec_id: i32,
    /// The data files the delete files name: each must be live when the commit lands.
    pub named: Vec<String>,
    /// More snapshot-summary entries.
    pub properties: HashMap<String, String>,
}

/// Commits `delta` on `table`, re-planning when other writers commit first; the
/// manifest list is kept at `max_manifests` as a replace snapshot keeps it.
pub async fn commit_row_delta(
    catalog: &OpenCatalog,
    table: Table,
    delta: &RowDelta,
    max_manifests: usize,
    policy: &RetryPolicy,
) -> Result<(Table, ReplaceOutcome)> {
    let r = Replacement {
        added: delta.data_files.clone(),
        spec_id: delta.spec_id,
        added_deletes: delta.delete_files.clone(),
        named: delta.named.clone(),
        properties: delta.properties.clone(),
        kind: "row-delta",
        ..Replacement::default()
    };
    let cache = ManifestCache::default();
    commit_replace(catalog, table, &r, max_manifests, policy, &cache).await
}
