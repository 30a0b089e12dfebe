//! Committing data files together with the Kafka offsets they cover, exactly once.
//!
//! ```text
//!  plan on table state S ──▶ fence: S's job offsets == offsets we started from?
//!        │ no: another writer took these partitions ──▶ Fenced (abandon files)
//!        ▼ yes
//!  append(files, summary{job, commit-id, offsets = S's offsets ⊕ ours}) requiring main == S
//!        │
//!        ├─ ok ───────────────────────────────────────────▶ done
//!        └─ error (conflict, timeout, lost response) ──▶ reload table
//!               ├─ commit-id in ancestry since S ──▶ done (it had landed)
//!               └─ otherwise: back off, plan again on the new state
//! ```
//!
//! The commit id is derived from the job, the table and the offset range, so every retry
//! of the same work carries the same id and is recognised in the ancestry, or in the
//! job's checkpoint property (`floe.checkpoint.<job>`), which the same catalog commit sets
//! and which outlives the snapshot when it is expired (see `floe_catalog::checkpoint`).
//! The manifests of each attempt get fresh file names: an attempt whose outcome was
//! unknown may land later, and must find its own manifests where it left them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_catalog::checkpoint::{CheckpointRecord, checkpoint_property};
use floe_catalog::counts::{RecordCounts, job_counts};
use floe_catalog::offsets::{
    COUNTS_KEY, commit_id, find_commit, latest_checkpoint, summary_properties,
};
use floe_catalog::{OffsetMap, TopicPartition, is_transient};
use iceberg::spec::DataFile;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, ErrorKind};
use tracing::{info, warn};

use crate::error::{Result, SinkError};
use crate::fenced_catalog::FencedCatalog;

/// One checkpoint's work for one table.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The job's identity.
    pub job: String,
    /// Data files written since the last commit (may be empty: offsets still advance).
    pub files: Vec<DataFile>,
    /// The job's offsets for this table when the files' records were read.
    pub from: OffsetMap,
    /// The job's offsets covering the files' records (only advanced partitions matter).
    pub to: OffsetMap,
    /// More snapshot-summary entries (counts of what the rows cover).
    pub properties: BTreeMap<String, String>,
    /// The commit id, when the work is not identified by offsets (a replay); otherwise it
    /// is derived from job, table and offsets.
    pub id: Option<uuid::Uuid>,
    /// How often the job commits this table, recorded with the checkpoint (maintenance
    /// reads it to know how long uncommitted files may wait).
    pub commit_interval: Duration,
    /// More table properties to set in the same catalog commit.
    pub table_properties: BTreeMap<String, String>,
}

/// What a successful commit did.
#[derive(Debug, Clone)]
pub struct CommitOutcome {
    /// The snapshot that holds the files and offsets.
    pub snapshot_id: i64,
    /// The full offset map now recorded for the job.
    pub offsets: OffsetMap,
    /// Attempts it took.
    pub attempts: u32,
    /// Attempts retried after a transient failure.
    pub retries: u32,
    /// Attempts re-planned because another writer committed first.
    pub conflicts: u32,
    /// True when a lost response was recovered by finding the commit id in the ancestry.
    pub recovered: bool,
}

/// Decides whether to inject the fault it is named (for recovery tests): `commit-error`
/// (the catalog commit fails, retryably), `commit-fatal` (it fails for good) and
/// `commit-lost-response` (it succeeds, but the caller sees an error).
pub type FaultHook = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Retry settings of the commit loop.
#[derive(Clone)]
pub struct RetryPolicy {
    /// First back-off.
    pub min_backoff: Duration,
    /// Largest back-off.
    pub max_backoff: Duration,
    /// Give up after this long.
    pub deadline: Duration,
    /// Fault injection, for tests; None in normal runs.
    pub faults: Option<FaultHook>,
}

impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("deadline", &self.deadline)
            .field("faults", &self.faults.is_some())
            .finish()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            deadline: Duration::from_secs(120),
            faults: None,
        }
    }
}

impl RetryPolicy {
    pub(crate) fn inject(&self, fault: &str) -> bool {
        self.faults.as_ref().is_some_and(|f| f(fault))
    }
}

/// Partitions whose offsets `req` advances.
fn advanced(req: &CommitRequest) -> Vec<(TopicPartition, i64)> {
    req.to
        .iter()
        .filter(|(tp, o)| req.from.get(tp) != Some(*o))
        .map(|(tp, o)| (tp.clone(), o))
        .collect()
}

/// Commits `req` to `table` (whose state the caller last saw), returning the new table
/// state and what happened. Never appends the same files twice.
pub async fn commit(
    catalog: &Arc<dyn Catalog>,
    table: Table,
    req: &CommitRequest,
    policy: &RetryPolicy,
) -> Result<(Table, CommitOutcome)> {
    let name = table.identifier().to_string();
    let id = req
        .id
        .unwrap_or_else(|| commit_id(&req.job, &name, &req.from, &req.to));
    let moved = advanced(req);
    let started = Instant::now();
    let mut backoff = policy.min_backoff;
    let mut base = table;
    let mut attempts = 0u32;
    let (mut retries, mut conflicts) = (0u32, 0u32);
    loop {
        attempts += 1;
        // Fence: the table must still record, for every partition we advance, the offset
        // our records started from; otherwise someone else wrote them.
        let current = latest_checkpoint(&name, base.metadata(), &req.job)?
            .map(|c| c.offsets)
            .unwrap_or_default();
        for (tp, _) in &moved {
            let now = current.get(tp);
            let was = req.from.get(tp);
            if now != was {
                return Err(SinkError::Fenced {
                    table: name,
                    message: format!(
                        "offset of {tp} is {} in the table but this writer started from {}; its files are abandoned",
                        show(now),
                        show(was)
                    ),
                });
            }
        }
        let mut offsets = current.clone();
        for (tp, o) in &moved {
            offsets.set(tp.clone(), *o);
        }
        let planned_on = base.metadata().current_snapshot_id();
        let result = try_commit(catalog.as_ref(), &base, req, &id, &offsets, policy).await;
        let err = match result {
            Ok(t) => {
                let snapshot_id = t.metadata().current_snapshot_id().unwrap_or_default();
                return Ok((
                    t,
                    CommitOutcome {
                        snapshot_id,
                        offsets,
                        attempts,
                        retries,
                        conflicts,
                        recovered: false,
                    },
                ));
            }
            Err(e) => e,
        };
        // The outcome is unknown until the ancestry says otherwise.
        let reloaded = reload(
            catalog.as_ref(),
            &base,
            policy,
            started,
            "reloading after a failed commit",
        )
        .await?;
        if let Some(snapshot_id) = find_commit(reloaded.metadata(), &id, planned_on) {
            info!(table = %name, snapshot_id, "commit had landed although the catalog reported an error");
            return Ok((
                reloaded,
                CommitOutcome {
                    snapshot_id,
                    offsets,
                    attempts,
                    retries,
                    conflicts,
                    recovered: true,
                },
            ));
        }
        let conflict = matches!(
            err.kind(),
            ErrorKind::CatalogCommitConflicts | ErrorKind::DataInvalid
        ) && reloaded.metadata().current_snapshot_id() != planned_on;
        let retryable = is_transient(&err);
        if !retryable && !conflict {
            return Err(SinkError::iceberg(
                &name,
                "committing (the error cannot heal by retrying)",
                err,
            ));
        }
        if started.elapsed() > policy.deadline {
            return Err(SinkError::iceberg(
                &name,
                format!("committing (gave up after {attempts} attempts)"),
                err,
            ));
        }
        if conflict {
            conflicts += 1;
            info!(table = %name, attempts, "another writer committed first; re-planning the commit");
        } else {
            retries += 1;
            warn!(table = %name, attempts, error = %err, "commit failed; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(policy.max_backoff);
        }
        base = reloaded;
    }
}

fn show(o: Option<i64>) -> String {
    o.map_or_else(|| "none".into(), |o| o.to_string())
}

async fn try_commit(
    catalog: &dyn Catalog,
    base: &Table,
    req: &CommitRequest,
    id: &uuid::Uuid,
    offsets: &OffsetMap,
    policy: &RetryPolicy,
) -> iceberg::Result<Table> {
    if policy.inject("commit-error") {
        return Err(iceberg::Error::new(
            ErrorKind::Unexpected,
            "injected: the catalog is unavailable",
        )
        .with_retryable(true));
    }
    if policy.inject("commit-fatal") {
        return Err(iceberg::Error::new(
            ErrorKind::DataInvalid,
            "injected: the catalog rejected the commit",
        ));
    }
    let tx = Transaction::new(base);
    // The checkpoint property lands in the same catalog commit as the snapshot.
    let mut record = CheckpointRecord::new(&id.to_string(), offsets, req.commit_interval);
    record.counts = Some(running_totals(base, req));
    let properties = req
        .table_properties
        .iter()
        .fold(tx.update_table_properties(), |a, (k, v)| {
            a.set(k.clone(), v.clone())
        })
        .set(checkpoint_property(&req.job), record.to_json());
    let tx = properties.apply(tx)?;
    // Every attempt writes its manifests under names of its own: an earlier attempt may
    // still land (or have landed unseen), and its manifests must not be overwritten.
    let action = tx
        .fast_append()
        .set_commit_uuid(uuid::Uuid::new_v4())
        .with_check_duplicate(false)
        .add_data_files(req.files.clone())
        .set_snapshot_properties(
            summary_properties(&req.job, id, offsets)
                .into_iter()
                .chain(req.properties.clone())
                .collect(),
        );
    let tx = action.apply(tx)?;
    let fenced = FencedCatalog {
        inner: catalog,
        planned: base.clone(),
    };
    let table = tx.commit(&fenced).await?;
    if policy.inject("commit-lost-response") {
        return Err(iceberg::Error::new(
            ErrorKind::Unexpected,
            "injected: the commit landed but its response was lost",
        ));
    }
    Ok(table)
}

/// The job's running totals on `base` plus what this commit counts, kept in the
/// checkpoint property so that they outlive the snapshots whose summaries hold them.
fn running_totals(base: &Table, req: &CommitRequest) -> RecordCounts {
    let mut totals = job_counts(base.metadata(), &req.job);
    if let Some(c) = req
        .properties
        .get(COUNTS_KEY)
        .and_then(|t| RecordCounts::from_json(t))
    {
        totals.add(&c);
    }
    totals
}

/// The table's newest state, retrying transient catalog failures within the policy's deadline.
pub async fn refresh(catalog: &dyn Catalog, table: &Table, policy: &RetryPolicy) -> Result<Table> {
    reload(catalog, table, policy, Instant::now(), "reloading").await
}

async fn reload(
    catalog: &dyn Catalog,
    base: &Table,
    policy: &RetryPolicy,
    started: Instant,
    context: &str,
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
            Err(e) => {
                return Err(SinkError::iceberg(base.identifier(), context, e));
            }
        }
    }
}
