//! Floe's own path for committing a metadata change that iceberg-rust's public
//! `Transaction` cannot express (a `replace` snapshot for compaction and manifest merging;
//! a schema change that promotes column types, which its `UpdateSchemaAction` cannot; later
//! row-delta snapshots). All of Floe's metadata changes other than appends go through it,
//! so that they share one compare-and-swap per catalog.
//!
//! iceberg-rust 0.10.1 builds such commits only through crate-private actions and a
//! crate-private `TableCommit` builder. Its public parts are enough to do the same work:
//! the caller writes manifests and a manifest list and describes the change as the REST
//! protocol's `TableRequirement`s and `TableUpdate`s; this module commits it through the
//! catalog's own compare-and-swap.
//!
//! ```text
//!  TableChange { requirements (uuid, main == planned snapshot), updates (add-snapshot, set-ref) }
//!        │
//!        ├─ SQL catalog:  current metadata (the base's, when the row still points at it)
//!        │                 ─▶ check requirements ─▶ apply updates
//!        │                 ─▶ write vN+1.metadata.json
//!        │                 ─▶ UPDATE iceberg_tables SET metadata_location = new
//!        │                      WHERE … AND metadata_location = current   (0 rows: conflict)
//!        │
//!        └─ REST catalog: POST /v1/{prefix}/namespaces/{ns}/tables/{table}
//!                          { identifier, requirements, updates }           (409: conflict)
//! ```
//!
//! Errors are iceberg errors with the same kinds as the catalogs' own commits
//! (`CatalogCommitConflicts` when a requirement no longer holds, retryable transport
//! failures), so callers use the same retry and commit-id lookup rules as for appends.
//! A failed SQL update leaves its metadata file unreferenced: an orphan the cleanup removes.
//!
//! Drop this module when an iceberg-rust release offers rewrite-files / replace and
//! row-delta actions through `Transaction`.

mod rest;
mod sql;

use iceberg::spec::{SnapshotReference, SnapshotRetention};
use iceberg::table::Table;
use iceberg::{Catalog, TableRequirement, TableUpdate};

pub(crate) use rest::RestCommits;
pub(crate) use sql::SqlCommits;

/// The branch Floe writes.
const MAIN: &str = "main";

/// A metadata change and the table state it requires.
#[derive(Debug, Clone)]
pub struct TableChange {
    /// What must still hold when the change lands.
    pub requirements: Vec<TableRequirement>,
    /// The change itself.
    pub updates: Vec<TableUpdate>,
}

impl TableChange {
    /// Adds `snapshot` as `main`'s new head, requiring that `base` is still the table's
    /// state (same table, same `main` head) when the change lands.
    pub fn new_head(base: &Table, snapshot: iceberg::spec::Snapshot) -> Self {
        let id = snapshot.snapshot_id();
        Self {
            requirements: vec![
                TableRequirement::UuidMatch {
                    uuid: base.metadata().uuid(),
                },
                TableRequirement::RefSnapshotIdMatch {
                    r#ref: MAIN.to_string(),
                    snapshot_id: base.metadata().current_snapshot_id(),
                },
            ],
            updates: vec![
                TableUpdate::AddSnapshot { snapshot },
                TableUpdate::SetSnapshotRef {
                    ref_name: MAIN.to_string(),
                    reference: SnapshotReference::new(
                        id,
                        SnapshotRetention::branch(None, None, None),
                    ),
                },
            ],
        }
    }
}

/// How a catalog takes a [`TableChange`].
#[derive(Debug)]
pub(crate) enum ChangeCommitter {
    Sql(SqlCommits),
    Rest(RestCommits),
}

impl ChangeCommitter {
    /// Commits `change` to the table `base` names, returning the table as committed.
    pub(crate) async fn commit(
        &self,
        catalog: &dyn Catalog,
        base: &Table,
        change: TableChange,
    ) -> iceberg::Result<Table> {
        match self {
            Self::Sql(s) => s.commit(catalog, base, change).await,
            Self::Rest(r) => r.commit(catalog, base, change).await,
        }
    }
}
