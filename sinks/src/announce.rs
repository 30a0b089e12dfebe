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
use std::time::Duration;

use floe_catalog::checkpoint::interval_property;
use iceberg::Catalog;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};

use crate::commit_loop::{self, Attempt, Tried};
use crate::error::{Result, SinkError};
use crate::fenced_catalog::commit_planned_on;
use crate::retry_policy::RetryPolicy;

/// Sets `job`'s announced commit interval on `table` to `interval` unless it already
/// says so; returns the table as committed.
pub async fn announce_interval(
    catalog: &Arc<dyn Catalog>,
    table: Table,
    job: &str,
    interval: Duration,
    policy: &RetryPolicy,
) -> Result<Table> {
    let mut announce = Announce {
        catalog: catalog.as_ref(),
        key: interval_property(job),
        ms: interval.as_millis().to_string(),
    };
    let (table, (), _) = commit_loop::run(catalog.as_ref(), table, policy, &mut announce).await?;
    Ok(table)
}

/// The announcement, as the commit loop drives it: done once the table says it.
struct Announce<'a> {
    catalog: &'a dyn Catalog,
    key: String,
    ms: String,
}

impl Attempt for Announce<'_> {
    type Output = ();

    fn what(&self) -> &'static str {
        "announcing the commit interval"
    }

    async fn attempt(&mut self, base: &Table) -> Result<Tried<()>> {
        if base.metadata().properties().get(&self.key) == Some(&self.ms) {
            return Ok(Tried::Landed(base.clone(), ()));
        }
        let tx = Transaction::new(base);
        let tx = tx
            .update_table_properties()
            .set(self.key.clone(), self.ms.clone())
            .apply(tx)
            .map_err(|e| SinkError::iceberg(base.identifier(), self.what(), e))?;
        Ok(commit_planned_on(self.catalog, base, tx).await)
    }
}
