//! Per-table state of a running job: the open writer, the offsets its rows cover, and the
//! offsets the table has committed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use arrow_array::RecordBatch;
use floe_catalog::checkpoint::latest_checkpoint;
use floe_catalog::checkpoint::{CheckpointSource, find_checkpoint, holds_rows};
use floe_catalog::offsets::{COUNTS_KEY, LOOKUPS_KEY};
use floe_catalog::{OffsetMap, OpenCatalog, TopicPartition};
use floe_sinks::binding::binding_property;
use floe_sinks::{
    ColumnBinding, CommitOutcome, CommitRequest, NewestTable, RetryPolicy, TableWriter,
    WriterConfig, announce_interval, commit, refresh,
};
use floe_sql::job::{TableName, TableOptions};
use iceberg::table::Table;
use tracing::info;

use super::RecordCounts;
use super::waiting::noting_waits;
use crate::error::Result;
use crate::observe::metrics::unix_seconds;
use crate::observe::{health, metrics};
use crate::source::start::{Need, need};

/// One target table of the job.
pub struct TableState {
    /// The job's name for it.
    pub name: TableName,
    catalog: OpenCatalog,
    table: Table,
    options: TableOptions,
    job: String,
    /// Offsets the table has committed for this job.
    pub committed: OffsetMap,
    /// Offsets covered by rows written since the last commit.
    pub pending: OffsetMap,
    /// What became of the pending records besides the rows.
    pending_counts: RecordCounts,
    /// The newest Kafka timestamp (epoch ms) of the pending records.
    pending_newest_ms: Option<i64>,
    /// The versions of each lookup table the pending rows were joined with.
    pending_lookups: BTreeMap<String, BTreeSet<String>>,
    writer: Option<TableWriter>,
    /// The schema the open writer's files are written with.
    writer_schema: Option<iceberg::spec::SchemaRef>,
    pending_since: Option<Instant>,
    checkpoints: u64,
    /// Sources its INSERTs read.
    pub sources: Vec<usize>,
    /// Commits made by this run.
    pub commits: u64,
    /// The newest snapshot id.
    pub last_snapshot: Option<i64>,
    /// Where the job's checkpoint was found at start (None: the job never committed here).
    pub checkpoint: Option<CheckpointSource>,
    /// For a dead-letter lane: the target whose bad records it holds.
    pub dead_letters_of: Option<TableName>,
    /// The table state the other committers of this table in this process (its
    /// maintenance, other dead-letter lanes) last committed.
    newest: NewestTable,
    /// Which field each declared column writes (by field id, see
    /// `floe_sinks::binding`), fixed at start.
    binding: ColumnBinding,
    /// Renames of bound fields already logged.
    renames_said: BTreeSet<(String, String)>,
    /// Where a lane without a checkpoint adopted its target's offsets (see
    /// [`TableState::adopt`]), for the partitions not committed since.
    adopted: OffsetMap,
}

impl std::fmt::Debug for TableState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableState")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TableState {
    /// State for `table`, reading the job's committed offsets from its ancestry and
    /// binding the `columns` its rows carry to the table's fields.
    pub fn new(
        name: TableName,
        catalog: OpenCatalog,
        table: Table,
        options: TableOptions,
        job: &str,
        sources: Vec<usize>,
        columns: &[String],
    ) -> Result<Self> {
        let found = find_checkpoint(&name.to_string(), table.metadata(), job)?;
        let binding = ColumnBinding::resolve(
            &name.to_string(),
            table.metadata(),
            Some(job),
            columns.iter().map(String::as_str),
        )?;
        let checkpoint = found.as_ref().map(|(_, source)| *source);
        let committed = found.map(|(c, _)| c.offsets).unwrap_or_default();
        let last_snapshot = table.metadata().current_snapshot_id();
        Ok(Self {
            binding,
            renames_said: BTreeSet::new(),
            adopted: OffsetMap::new(),
            checkpoint,
            dead_letters_of: None,
            newest: NewestTable::default(),
            name,
            catalog,
            table,
            options,
            job: job.to_string(),
            committed,
            pending: OffsetMap::new(),
            pending_counts: RecordCounts::default(),
            pending_newest_ms: None,
            pending_lookups: BTreeMap::new(),
            writer: None,
            writer_schema: None,
            pending_since: None,
            checkpoints: 0,
            sources,
            commits: 0,
            last_snapshot,
        })
    }

    /// Shares table states with the table's other committers in this process: each
    /// commit plans on the newest state any of them committed, instead of failing its
    /// compare-and-swap on it.
    pub fn share_newest(&mut self, newest: NewestTable) {
        newest.offer(&self.table);
        self.newest = newest;
    }

    /// Announces the commit interval this run uses on the table before any file is
    /// written (see `floe_sinks::announce_interval`).
    pub async fn announce_interval(&mut self, policy: &RetryPolicy) -> Result<()> {
        let interval = self.options.commit_interval;
        let table = announce_interval(
            &self.catalog.catalog,
            self.table.clone(),
            &self.job,
            interval,
            policy,
        );
        self.table = noting_waits(
            "announcing the commit interval",
            &self.name.to_string(),
            table,
        )
        .await?;
        Ok(())
    }

    /// The table name, and for a dead-letter lane the target it serves.
    pub fn key(&self) -> (TableName, Option<TableName>) {
        (self.name.clone(), self.dead_letters_of.clone())
    }

    /// Refuses a table that holds rows but no checkpoint of this job, unless its options
    /// allow starting it from the source's startup mode: without a checkpoint, the startup
    /// mode would read again (`earliest`) or skip (`latest`) records the rows may cover.
    pub fn check_checkpoint(&self) -> Result<()> {
        if self.checkpoint.is_some()
            || self.options.start_without_checkpoint
            || !holds_rows(self.table.metadata())
        {
            return Ok(());
        }
        Err(crate::error::EngineError::NoCheckpoint {
            table: self.name.to_string(),
            job: self.job.clone(),
        })
    }

    /// Records below this offset of `tp` are already in the table or in the open writer.
    pub fn lower_bound(&self, tp: &TopicPartition) -> Option<i64> {
        self.pending.get(tp).or_else(|| self.committed.get(tp))
    }

    /// Rows waiting in the open writer.
    pub fn pending_rows(&self) -> u64 {
        self.writer.as_ref().map_or(0, TableWriter::rows)
    }

    /// True when offsets or rows wait to be committed.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes query output rows.
    pub async fn write(&mut self, batches: &[RecordBatch]) -> Result<()> {
        if !batches.is_empty() {
            crate::failpoint::hit("before-write");
        }
        if self.writer.is_none() {
            self.checkpoints += 1;
            let config = WriterConfig {
                target_file_size: self.options.target_file_size,
                file_prefix: format!(
                    "{}-{}-{}",
                    self.job,
                    uuid::Uuid::new_v4().simple(),
                    self.checkpoints
                ),
            };
            self.note_renames();
            self.writer = Some(TableWriter::bound(&self.table, &config, &self.binding)?);
            self.writer_schema = Some(self.table.metadata().current_schema().clone());
        }
        if let Some(w) = self.writer.as_mut() {
            for b in batches {
                w.write(b).await?;
            }
        }
        Ok(())
    }

    /// Logs, once each, the declared columns whose field another writer renamed: the job
    /// keeps writing them under their new names.
    fn note_renames(&mut self) {
        for (declared, now) in self.binding.renamed(self.table.metadata().current_schema()) {
            if self.renames_said.insert((declared.clone(), now.clone())) {
                info!(table = %self.name, column = %declared, now_named = %now,
                    "another writer renamed the column; the job keeps writing the same field");
            }
        }
    }

    /// Counts filtered, dropped and dead-lettered records of the pending work.
    pub fn add_counts(&mut self, counts: &RecordCounts) {
        self.pending_counts.add(counts);
    }

    /// Notes the Kafka timestamp (epoch ms) of the newest record the pending work covers.
    pub fn note_newest(&mut self, timestamp_ms: Option<i64>) {
        self.pending_newest_ms = self.pending_newest_ms.max(timestamp_ms);
    }

    /// Notes that records of `tp` up to `next` (exclusive) have been handled.
    pub fn advance(&mut self, tp: &TopicPartition, next: i64) {
        if self.lower_bound(tp).is_some_and(|lb| lb >= next) {
            return;
        }
        self.pending.advance(tp, next);
        self.pending_since.get_or_insert_with(Instant::now);
    }

    /// The table's offsets: committed, or pending in its open writer.
    pub fn positions(&self) -> OffsetMap {
        self.committed.merged(&self.pending)
    }

    /// Notes where partitions start that the startup mode decides for this table (it
    /// knows nothing of their topic): committed with the next checkpoint even when no
    /// record of them follows.
    pub fn start_at(&mut self, offsets: &OffsetMap) {
        let before = self.positions();
        for (tp, o) in offsets.iter() {
            if need(&before, tp) == Need::Startup {
                self.restart_at(tp, o);
            }
        }
    }

    /// Starts from `offsets` although nothing was committed here yet (a new dead-letter
    /// lane starts where its target is): committed with the next checkpoint. Replicas of
    /// the job adopt alike; a partition another replica committed first keeps what it
    /// committed (taken at the next assignment, or left as it is by the commit), so a new
    /// lane met by several replicas at once fences none of them.
    pub fn adopt(&mut self, offsets: &OffsetMap) {
        for (tp, o) in offsets.iter() {
            self.restart_at(tp, o);
        }
        self.adopted = offsets.clone();
    }

    /// Takes the records of `tp` from `offset` on, whatever the checkpoint says (a start
    /// the startup mode or a target decided, or a re-created partition whose jump back
    /// was accepted); the next commit records `offset`, moved on by what is read.
    pub fn restart_at(&mut self, tp: &TopicPartition, offset: i64) {
        self.pending.set(tp.clone(), offset);
        self.pending_since.get_or_insert_with(Instant::now);
    }

    /// Whether a commit trigger has fired.
    pub fn due(&self, now: Instant) -> bool {
        let Some(since) = self.pending_since else {
            return false;
        };
        now.duration_since(since) >= self.options.commit_interval
            || self
                .options
                .commit_max_records
                .is_some_and(|m| self.pending_rows() >= m)
            || self
                .options
                .commit_max_bytes
                .is_some_and(|m| self.writer.as_ref().map_or(0, TableWriter::bytes) >= m)
    }

    /// Commits the open files with the offsets they cover.
    pub async fn checkpoint(&mut self, policy: &RetryPolicy) -> Result<Option<CommitOutcome>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        // The probes see a commit from the closing of its files to its answer, and
        // maintenance holds off for as long (`commit_gate`).
        health().commit_started();
        let committing = floe_sinks::commit_gate::committing();
        let result = self.commit_pending(policy).await;
        drop(committing);
        health().commit_ended(result.is_ok());
        result.map(Some)
    }

    async fn commit_pending(&mut self, policy: &RetryPolicy) -> Result<CommitOutcome> {
        let rows = self.pending_rows();
        let files = match self.writer.take() {
            Some(w) => w.close().await?,
            None => vec![],
        };
        // The newest state any committer of this table in this process has seen.
        let base = self.newest.newest(self.table.clone());
        let req = CommitRequest {
            job: self.job.clone(),
            files,
            from: self.committed.clone(),
            to: self.committed.merged(&self.pending),
            properties: self.summary_properties(),
            id: None,
            commit_interval: self.options.commit_interval,
            table_properties: self.binding_to_store(&base),
            adopted: self.adopted.clone(),
            written_with: self.writer_schema.take(),
        };
        crate::failpoint::hit("before-commit");
        let started = Instant::now();
        let name = self.name.to_string();
        let (table, outcome) = noting_waits(
            "the commit",
            &name,
            commit(&self.catalog, base, &req, policy),
        )
        .await
        .inspect_err(|e| note_failure(&name, e))?;
        self.newest.offer(&table);
        let took = started.elapsed();
        crate::failpoint::hit("after-commit");
        self.table = table;
        self.committed = outcome.offsets.clone();
        self.note_committed(&name, &req, &outcome, rows, took);
        self.pending = OffsetMap::new();
        self.adopted = OffsetMap::new();
        self.pending_counts = RecordCounts::default();
        self.pending_lookups.clear();
        self.pending_newest_ms = None;
        self.pending_since = None;
        self.commits += 1;
        self.last_snapshot = Some(outcome.snapshot_id);
        info!(
            table = %self.name,
            snapshot_id = outcome.snapshot_id,
            files = req.files.len(),
            attempts = outcome.attempts,
            commit_ms = (took.as_secs_f64() * 10_000.0).round() / 10.0,
            "committed"
        );
        Ok(outcome)
    }

    /// The column binding as a table property, unless `base` stores it already.
    fn binding_to_store(&self, base: &Table) -> BTreeMap<String, String> {
        if self.binding.is_stored(base.metadata(), &self.job) {
            return BTreeMap::new();
        }
        BTreeMap::from([(
            binding_property(&self.job),
            self.binding.to_json().to_string(),
        )])
    }

    /// Notes the lookup table versions that rows written since the last commit were
    /// joined with.
    pub fn note_lookups(&mut self, lineage: Vec<(String, BTreeSet<String>)>) {
        for (table, versions) in lineage {
            self.pending_lookups
                .entry(table)
                .or_default()
                .extend(versions);
        }
    }

    /// What the commit's snapshot summary says besides the offsets: what became of its
    /// records, and the lookup table versions its rows were joined with.
    fn summary_properties(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if !self.pending_counts.is_empty() {
            out.insert(COUNTS_KEY.to_string(), self.pending_counts.to_json());
        }
        if !self.pending_lookups.is_empty() {
            let json = serde_json::to_string(&self.pending_lookups).unwrap_or_default();
            out.insert(LOOKUPS_KEY.to_string(), json);
        }
        out
    }

    /// Counts a landed commit into the metrics.
    fn note_committed(
        &self,
        name: &str,
        req: &CommitRequest,
        outcome: &CommitOutcome,
        rows: u64,
        took: Duration,
    ) {
        let m = metrics();
        let t = [name];
        m.commits.add(&t, 1.0);
        m.commit_retries.add(&t, f64::from(outcome.retries));
        m.commit_conflicts.add(&t, f64::from(outcome.conflicts));
        m.commit_duration.observe(&t, took.as_secs_f64());
        m.rows_written.add(&t, rows as f64);
        m.files_written.add(&t, req.files.len() as f64);
        let bytes: u64 = req.files.iter().map(|f| f.file_size_in_bytes()).sum();
        m.written_bytes.add(&t, bytes as f64);
        m.filtered.add(&t, self.pending_counts.filtered as f64);
        for (rule, n) in &self.pending_counts.dead_lettered {
            m.dead_letters.add(&[name, rule], *n as f64);
        }
        for (rule, n) in &self.pending_counts.dropped {
            m.dropped.add(&[name, rule], *n as f64);
        }
        if let Some(ms) = self.pending_newest_ms {
            m.newest_committed_record.set(&t, ms as f64 / 1000.0);
        }
        m.last_commit.set(&t, unix_seconds(SystemTime::now()));
    }

    /// Reloads the table and the offsets it has committed for this job: another replica
    /// may have committed the partitions this one is about to read. Pending work stays,
    /// and so do the offsets it starts from: the commit's fence checks those.
    pub async fn reload(&mut self, policy: &RetryPolicy) -> Result<()> {
        let name = self.name.to_string();
        let table = noting_waits(
            "reloading the table",
            &name,
            refresh(self.catalog.catalog.as_ref(), &self.table, policy),
        )
        .await?;
        let mut committed = latest_checkpoint(&self.name.to_string(), table.metadata(), &self.job)?
            .map(|c| c.offsets)
            .unwrap_or_default();
        self.drop_adoptions_committed_elsewhere(&committed);
        for (tp, _) in self.pending.iter() {
            match self.committed.get(tp) {
                Some(o) => committed.set(tp.clone(), o),
                None => committed.remove(tp),
            }
        }
        self.committed = committed;
        self.last_snapshot = table.metadata().current_snapshot_id();
        self.newest.offer(&table);
        self.table = table;
        Ok(())
    }

    /// Partitions this lane only adopted (no record of them read since) that another
    /// replica has committed meanwhile: its offsets stand, the adoption goes.
    fn drop_adoptions_committed_elsewhere(&mut self, committed: &OffsetMap) {
        let taken: Vec<TopicPartition> = self
            .adopted
            .iter()
            .filter(|(tp, o)| committed.get(tp).is_some() && self.pending.get(tp) == Some(*o))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in taken {
            self.pending.remove(&tp);
            self.adopted.remove(&tp);
        }
    }

    /// Time until the next commit is due, if anything is pending.
    pub fn time_to_due(&self, now: Instant) -> Option<Duration> {
        self.pending_since.map(|s| {
            self.options
                .commit_interval
                .saturating_sub(now.duration_since(s))
        })
    }
}

/// Counts a commit that failed for good: fenced (another writer took the partitions
/// over) or otherwise.
fn note_failure(table: &str, e: &floe_sinks::SinkError) {
    let m = metrics();
    if matches!(e, floe_sinks::SinkError::Fenced { .. }) {
        m.commits_fenced.add(&[table], 1.0);
    } else {
        m.commit_failures.add(&[table], 1.0);
    }
}
