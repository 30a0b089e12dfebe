//! Snapshot expiry, and removal of the files only expired snapshots referenced.
//!
//! Expiry is iceberg-rust's own `expire_snapshots` action (metadata only), committed
//! pinned to the table state it was planned on, like every Floe commit. The files it
//! frees are then computed, not guessed: manifest lists of the expired snapshots, the
//! manifests only they listed, and the data files only those manifests held, none of
//! which any retained snapshot (of any branch or tag) reaches. No writer can commit them
//! again: a commit planned on an expired snapshot fails its `main` requirement.
//!
//! The job's checkpoint and the replay ledger live in table properties (see
//! `floe_catalog::checkpoint`, `floe_catalog::replayed`), which expiry does not touch.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use floe_catalog::orphans::reached;
use floe_catalog::{ManifestCache, OpenCatalog};
use iceberg::spec::SnapshotRef;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};

use tracing::warn;

use crate::commit_loop::{self, Attempt, Tried};
use crate::error::{Result, SinkError};
use crate::fenced_catalog::commit_planned_on;
use crate::retry_policy::RetryPolicy;

/// Which snapshots are kept.
#[derive(Debug, Clone)]
pub struct ExpiryConfig {
    /// Snapshots older than this are expired…
    pub max_age: Duration,
    /// …but `main` always keeps at least this many.
    pub min_snapshots: usize,
}

/// What an expiry did.
#[derive(Debug, Clone, Default)]
pub struct ExpiryOutcome {
    /// Snapshots expired.
    pub expired: usize,
    /// Files removed (manifest lists, manifests, data files).
    pub files_removed: usize,
}

/// Expires what `config` lets go and removes the files nothing retained reaches;
/// `committed` sees the table as soon as the expiry has landed, before the removals.
pub(crate) async fn expire(
    catalog: &OpenCatalog,
    table: Table,
    config: &ExpiryConfig,
    policy: &RetryPolicy,
    cache: &ManifestCache,
    committed: &dyn Fn(&Table),
) -> Result<(Table, ExpiryOutcome)> {
    let name = table.identifier().to_string();
    let older_than = now_ms() - i64::try_from(config.max_age.as_millis()).unwrap_or(i64::MAX);
    if !anything_to_expire(&table, older_than, config.min_snapshots) {
        return Ok((table, ExpiryOutcome::default()));
    }
    let mut expiry = Expire {
        catalog: catalog.catalog.as_ref(),
        older_than,
        keep: config.min_snapshots.max(1),
    };
    let base = table.clone();
    let (after, (), _) =
        commit_loop::run(catalog.catalog.as_ref(), table, policy, &mut expiry).await?;
    committed(&after);
    let kept: HashSet<i64> = after
        .metadata()
        .snapshots()
        .map(|s| s.snapshot_id())
        .collect();
    let gone: Vec<&SnapshotRef> = base
        .metadata()
        .snapshots()
        .filter(|s| !kept.contains(&s.snapshot_id()))
        .collect();
    if gone.is_empty() {
        return Ok((after, ExpiryOutcome::default()));
    }
    let retained = reached(&after, after.metadata().snapshots(), false, cache).await?;
    let freed = reached(&base, gone.iter().copied(), true, cache).await?;
    let mut removed = 0;
    for (freed, kept) in [
        (&freed.files, &retained.files),
        (&freed.manifests, &retained.manifests),
        (&freed.lists, &retained.lists),
    ] {
        for path in freed.difference(kept) {
            crate::commit_gate::yield_to_commits().await;
            // A file left behind (already gone, or the store refused) is an orphan for
            // the orphan pass; the expiry itself has landed.
            match after.file_io().delete(path).await {
                Ok(()) => removed += 1,
                Err(e) => warn!(table = %name, error = %e, "cannot remove {path}"),
            }
        }
    }
    let outcome = ExpiryOutcome {
        expired: gone.len(),
        files_removed: removed,
    };
    Ok((after, outcome))
}

/// Snapshot expiry, as the commit loop drives it: planned again on the table as
/// reloaded (another writer's snapshots change what is kept).
struct Expire<'a> {
    catalog: &'a dyn iceberg::Catalog,
    older_than: i64,
    keep: usize,
}

impl Attempt for Expire<'_> {
    type Output = ();

    fn what(&self) -> &'static str {
        "committing snapshot expiry"
    }

    async fn attempt(&mut self, base: &Table) -> Result<Tried<()>> {
        let tx = Transaction::new(base);
        let action = tx
            .expire_snapshots()
            .expire_older_than_ms(self.older_than)
            .retain_last(self.keep);
        let tx = action
            .apply(tx)
            .map_err(|e| SinkError::iceberg(base.identifier(), "planning snapshot expiry", e))?;
        Ok(commit_planned_on(self.catalog, base, tx).await)
    }
}

/// Whether some snapshot is older than `older_than` and beyond the newest `keep`.
fn anything_to_expire(table: &Table, older_than: i64, keep: usize) -> bool {
    let md = table.metadata();
    md.snapshots().count() > keep.max(1) && md.snapshots().any(|s| s.timestamp_ms() < older_than)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
