//! A job announces the commit interval it is about to use on a table before it writes
//! the first file under it, so that orphan cleanup run by anyone (another replica's
//! maintenance, `floe orphans` by hand) keeps the job's uncommitted files for as long
//! as the job may hold them (see `floe_catalog::orphans`). The checkpoint records the
//! interval too, but only with a commit: without the announcement, a job's first
//! interval after a start, or a longer one than before, would be unknown until then.
//!
//! The announcement is one table property, `floe.commit-interval-ms.<job>`, set by a
//! catalog commit that changes nothing else and commutes with every other writer's
//! commits: a conflict only means reloading and setting it again (if still needed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_catalog::checkpoint::interval_property;
use floe_catalog::is_transient;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, ErrorKind};

use crate::commit::{RetryPolicy, refresh};
use crate::error::{Result, SinkError};
use crate::fenced_catalog::FencedCatalog;

/// Sets `job`'s announced commit interval on `table` to `interval` unless it already
/// says so; returns the table as committed.
pub async fn announce_interval(
    catalog: &Arc<dyn Catalog>,
    table: Table,
    job: &str,
    interval: Duration,
    policy: &RetryPolicy,
) -> Result<Table> {
    let key = interval_property(job);
    let ms = interval.as_millis().to_string();
    let name = table.identifier().to_string();
    let started = Instant::now();
    let mut backoff = policy.min_backoff;
    let mut base = table;
    loop {
        if base.metadata().properties().get(&key) == Some(&ms) {
            return Ok(base);
        }
        let tx = Transaction::new(&base);
        let tx = tx
            .update_table_properties()
            .set(key.clone(), ms.clone())
            .apply(tx)
            .map_err(|e| SinkError::iceberg(&name, "announcing the commit interval", e))?;
        let fenced = FencedCatalog {
            inner: catalog.as_ref(),
            planned: base.clone(),
        };
        let err = match tx.commit(&fenced).await {
            Ok(t) => return Ok(t),
            Err(e) => e,
        };
        if !is_transient(&err) || started.elapsed() > policy.deadline {
            return Err(SinkError::iceberg(
                &name,
                "announcing the commit interval",
                err,
            ));
        }
        if err.kind() != ErrorKind::CatalogCommitConflicts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
        base = refresh(catalog.as_ref(), &base, policy).await?;
    }
}
