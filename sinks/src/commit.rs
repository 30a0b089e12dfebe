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

use crate::retry_policy::RetryPolicy;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use floe_catalog::checkpoint::{CheckpointRecord, checkpoint_property};
use floe_catalog::checkpoint::{find_commit, job_counts, latest_checkpoint};
use floe_catalog::counts::RecordCounts;
use floe_catalog::offsets::{COUNTS_KEY, commit_id, summary_properties};
use floe_catalog::{OffsetMap, OpenCatalog, TopicPartition};
use iceberg::spec::DataFile;
use iceberg::spec::{Schema, SchemaRef, Type};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, ErrorKind};

use crate::commit_loop::{self, Attempt, Tried};
use crate::error::{Result, SinkError};
use crate::fenced_catalog::{FencedCatalog, Pinned};

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
    /// Where this writer adopted partitions it had no offset for (a new dead-letter lane
    /// starts where its target is), as opposed to offsets it read from the table.
    pub adopted: OffsetMap,
    /// The schema the files were written with. When set, the commit requires the table's
    /// current schema (so that a schema change landing meanwhile fails it), and refuses
    /// to commit into a table that no longer has one of the fields the files hold (a
    /// column dropped by another writer): their values would be lost with it.
    pub written_with: Option<SchemaRef>,
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
    catalog: &OpenCatalog,
    table: Table,
    req: &CommitRequest,
    policy: &RetryPolicy,
) -> Result<(Table, CommitOutcome)> {
    let name = table.identifier().to_string();
    let mut append = Append {
        catalog,
        id: req
            .id
            .unwrap_or_else(|| commit_id(&req.job, &name, &req.from, &req.to)),
        moved: advanced(req),
        name,
        req,
        policy,
        planned: None,
    };
    let (table, (snapshot_id, offsets), stats) =
        commit_loop::run(catalog.catalog.as_ref(), table, policy, &mut append).await?;
    Ok((
        table,
        CommitOutcome {
            snapshot_id,
            offsets,
            attempts: stats.attempts,
            retries: stats.retries,
            conflicts: stats.conflicts,
            recovered: stats.recovered,
        },
    ))
}

/// The job's append, as the commit loop drives it.
struct Append<'a> {
    catalog: &'a OpenCatalog,
    name: String,
    req: &'a CommitRequest,
    policy: &'a RetryPolicy,
    id: uuid::Uuid,
    moved: Vec<(TopicPartition, i64)>,
    /// The last attempt's base snapshot and offsets, to recognise it once landed.
    planned: Option<(Option<i64>, OffsetMap)>,
}

impl Attempt for Append<'_> {
    type Output = (i64, OffsetMap);

    fn what(&self) -> &'static str {
        "committing"
    }

    async fn attempt(&mut self, base: &Table) -> Result<Tried<Self::Output>> {
        // Fence: the table must still record, for every partition we advance, the offset
        // our records started from; otherwise someone else wrote them.
        let current = latest_checkpoint(&self.name, base.metadata(), &self.req.job)?
            .map(|c| c.offsets)
            .unwrap_or_default();
        let mut offsets = current.clone();
        for (tp, o) in &self.moved {
            match fence(self.req, &current, tp, *o) {
                Fence::Advance => offsets.set(tp.clone(), *o),
                Fence::KeepTheTables => {}
                Fence::Fenced(message) => {
                    return Err(SinkError::Fenced {
                        table: self.name.clone(),
                        message,
                    });
                }
            }
        }
        if let Some(written_with) = &self.req.written_with {
            still_holds(&self.name, written_with, base.metadata().current_schema())?;
        }
        self.planned = Some((base.metadata().current_snapshot_id(), offsets.clone()));
        let tried = try_commit(
            self.catalog,
            base,
            self.req,
            &self.id,
            &offsets,
            self.policy,
        )
        .await;
        Ok(match tried {
            Ok(t) => {
                let snapshot_id = t.metadata().current_snapshot_id().unwrap_or_default();
                Tried::Landed(t, (snapshot_id, offsets))
            }
            Err(e) => Tried::Failed(e),
        })
    }

    fn landed(&self, reloaded: &Table) -> Option<Self::Output> {
        let (planned_on, offsets) = self.planned.as_ref()?;
        let snapshot_id = find_commit(reloaded.metadata(), &self.id, *planned_on)?;
        Some((snapshot_id, offsets.clone()))
    }
}

/// What the fence says of one partition a commit advances.
enum Fence {
    /// The table is where this writer started: advance it.
    Advance,
    /// Only adopted, and another writer committed it first: its offset stands.
    KeepTheTables,
    /// Another writer wrote records this one is about to write: abandon the files.
    Fenced(String),
}

/// The fence for `tp`, which `req` moves to `to`: the table must still record the
/// offset the writer's records started from. A partition the writer adopted (it had no
/// offset there) passes while the table has none or one at or below the adopted start
/// (another replica adopted it too, and wrote nothing past it); if the writer read no
/// record of it since, whatever the table has stands.
fn fence(req: &CommitRequest, current: &OffsetMap, tp: &TopicPartition, to: i64) -> Fence {
    let now = current.get(tp);
    let was = req.from.get(tp);
    if now == was {
        return Fence::Advance;
    }
    if let (None, Some(start)) = (was, req.adopted.get(tp)) {
        if to == start && now.is_some() {
            return Fence::KeepTheTables;
        }
        if now.is_none_or(|n| n <= start) {
            return Fence::Advance;
        }
    }
    Fence::Fenced(format!(
        "offset of {tp} is {} in the table but this writer started from {}; its files are abandoned",
        show(now),
        show(was)
    ))
}

fn show(o: Option<i64>) -> String {
    o.map_or_else(|| "none".into(), |o| o.to_string())
}

async fn try_commit(
    catalog: &OpenCatalog,
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
        inner: catalog.catalog.as_ref(),
        planned: base.clone(),
        pinned: req.written_with.as_ref().map(|_| Pinned {
            catalog,
            schema_id: base.metadata().current_schema_id(),
        }),
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

/// Refuses a table whose current schema lost a field the files hold (another writer
/// dropped it, or changed its type to one the values cannot be read as).
fn still_holds(table: &str, written_with: &Schema, current: &Schema) -> Result<()> {
    for f in written_with.as_struct().fields() {
        let kept = current.field_by_id(f.id).is_some_and(|now| {
            now.field_type == f.field_type || reads_as(&f.field_type, &now.field_type)
        });
        if !kept {
            return Err(SinkError::Incompatible {
                table: table.to_string(),
                message: format!(
                    "column {} (field id {}) was dropped from the table by another writer, or its \
                     type changed, while the job wrote it; nothing was committed, and the job \
                     stops rather than lose its values",
                    f.name, f.id
                ),
            });
        }
    }
    Ok(())
}

/// Whether values written as `from` read as `to` (an Iceberg type promotion).
fn reads_as(from: &Type, to: &Type) -> bool {
    match (from, to) {
        (Type::Primitive(a), Type::Primitive(b)) => crate::table_spec::promotes(a, b),
        _ => false,
    }
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
    commit_loop::reload(catalog, table, policy, Instant::now()).await
}
