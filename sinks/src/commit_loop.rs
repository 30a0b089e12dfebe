//! The one commit loop every Floe writer goes through: the job's appends, schema
//! changes, replace and row-delta snapshots, snapshot expiry, the commit-interval
//! announcement. Each is an [`Attempt`]: it plans on a table state and tries the
//! catalog's compare-and-swap once; the loop decides what a failure means.
//!
//! ```text
//!  attempt(base) ── plans on base; may refuse for good (fenced, abandoned) or find
//!      │            nothing left to do
//!      ├─ landed ──────────────────────────────────────────────────────▶ done
//!      └─ failed ─▶ reload ─┬─ landed(reloaded): the commit was in fact made ─▶ done
//!                           └─ Retry::of(error, base, reloaded)
//!                                ├─ Conflict: another writer moved the table ─▶ attempt(reloaded)
//!                                ├─ Transient: down, slow, throttled ─▶ back off, attempt(reloaded)
//!                                └─ Permanent ─────────────────────────────────▶ error
//!                           (past the policy's deadline, any failure is an error)
//! ```
//!
//! Every attempt plans anew on the table as reloaded, so a conflict is never resolved
//! by re-applying a stale plan (iceberg-rust's own `Transaction::commit` retry does
//! that, which is why Floe's commits go through [`crate::fenced_catalog`]).

use std::time::Instant;

use floe_catalog::is_transient;
use iceberg::table::Table;
use iceberg::{Catalog, ErrorKind};
use tracing::{info, warn};

use crate::error::{Result, SinkError};
use crate::retry_policy::RetryPolicy;

/// What one attempt did.
pub(crate) enum Tried<T> {
    /// It landed (or there was nothing to do): the table as it left it.
    Landed(Table, T),
    /// The catalog (or the store under it) refused or failed; the outcome is unknown
    /// until the table is reloaded.
    Failed(iceberg::Error),
}

/// One kind of commit, as the loop drives it.
pub(crate) trait Attempt {
    /// What a commit that landed yields.
    type Output;

    /// What the loop is doing, for errors and logs (`committing`, `evolving the schema`).
    fn what(&self) -> &'static str;

    /// Plans on `base` and tries once. An error means no attempt can succeed (the writer
    /// was fenced, a rewrite lost its files): the loop ends with it.
    async fn attempt(&mut self, base: &Table) -> Result<Tried<Self::Output>>;

    /// What the failed attempt yielded, if `reloaded` shows that it had landed after all
    /// (a lost response). Attempts that plan nothing twice need not say.
    fn landed(&self, _reloaded: &Table) -> Option<Self::Output> {
        None
    }
}

/// What the loop saw on the way.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LoopStats {
    /// Attempts made.
    pub(crate) attempts: u32,
    /// Attempts made again after a transient failure.
    pub(crate) retries: u32,
    /// Attempts planned again because another writer committed first.
    pub(crate) conflicts: u32,
    /// True when a failed attempt was found to have landed.
    pub(crate) recovered: bool,
}

/// Whether, and how, a failed commit is tried again: the one rule every commit follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Another writer moved the table first: plan again on its state, at once.
    Conflict,
    /// The catalog or store is down, slow or throttling: back off, then try again.
    Transient,
    /// Trying again cannot help (refused, invalid, unsupported).
    Permanent,
}

impl Retry {
    /// The rule for `err`, raised by a commit planned on `base`; `reloaded` is the table
    /// as it is now. A compare-and-swap that lost (a conflict, or a requirement the table
    /// no longer meets) is a conflict only if the table moved; otherwise it is retried
    /// like any transient failure.
    pub fn of(err: &iceberg::Error, base: &Table, reloaded: &Table) -> Self {
        let lost_the_swap = matches!(
            err.kind(),
            ErrorKind::CatalogCommitConflicts | ErrorKind::DataInvalid
        );
        if lost_the_swap && moved(base, reloaded) {
            Retry::Conflict
        } else if is_transient(err) {
            Retry::Transient
        } else {
            Retry::Permanent
        }
    }
}

/// Whether any commit landed between `base` and `reloaded`.
fn moved(base: &Table, reloaded: &Table) -> bool {
    base.metadata_location() != reloaded.metadata_location()
        || base.metadata().current_snapshot_id() != reloaded.metadata().current_snapshot_id()
}

/// Drives `attempt` on `table` until it lands, fails for good, or the policy's deadline
/// passes (see the module doc).
pub(crate) async fn run<A: Attempt>(
    catalog: &dyn Catalog,
    table: Table,
    policy: &RetryPolicy,
    attempt: &mut A,
) -> Result<(Table, A::Output, LoopStats)> {
    let name = table.identifier().to_string();
    let started = Instant::now();
    let mut backoff = policy.min_backoff;
    let mut stats = LoopStats::default();
    let mut base = table;
    loop {
        stats.attempts += 1;
        let err = match attempt.attempt(&base).await? {
            Tried::Landed(t, out) => return Ok((t, out, stats)),
            Tried::Failed(e) => e,
        };
        let reloaded = reload(catalog, &base, policy, started).await?;
        if let Some(out) = attempt.landed(&reloaded) {
            info!(table = %name, what = attempt.what(), error = %err, "the commit had landed although the catalog reported an error");
            stats.recovered = true;
            return Ok((reloaded, out, stats));
        }
        let retry = Retry::of(&err, &base, &reloaded);
        if retry == Retry::Permanent {
            let context = format!("{} (the error cannot heal by retrying)", attempt.what());
            return Err(SinkError::iceberg(&name, context, err));
        }
        if started.elapsed() > policy.deadline {
            let context = format!(
                "{} (gave up after {} attempts)",
                attempt.what(),
                stats.attempts
            );
            return Err(SinkError::iceberg(&name, context, err));
        }
        if retry == Retry::Conflict {
            stats.conflicts += 1;
            info!(table = %name, what = attempt.what(), attempts = stats.attempts, "another writer committed first; planning the commit again on its state");
        } else {
            stats.retries += 1;
            warn!(table = %name, what = attempt.what(), attempts = stats.attempts, error = %err, "commit failed; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
        base = reloaded;
    }
}

/// The table's newest state, retrying transient catalog failures until `started` is
/// the policy's deadline ago.
pub(crate) async fn reload(
    catalog: &dyn Catalog,
    base: &Table,
    policy: &RetryPolicy,
    started: Instant,
) -> Result<Table> {
    let mut backoff = policy.min_backoff;
    loop {
        match catalog.load_table(base.identifier()).await {
            Ok(t) => return Ok(t),
            Err(e) if is_transient(&e) && started.elapsed() < policy.deadline => {
                warn!(table = %base.identifier(), error = %e, "cannot reload the table; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(policy.max_backoff);
            }
            Err(e) => return Err(SinkError::iceberg(base.identifier(), "reloading", e)),
        }
    }
}
