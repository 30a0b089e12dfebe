//! The main loop: read decoded batches, run each INSERT's plan over them, write rows, and
//! commit each table with the offsets its rows cover.
//!
//! ```text
//!  source threads ──SourceEvent──▶ run loop ──▶ per INSERT: skip offsets the table has,
//!                                     │                 execute plan, write files
//!                                     ├─ tick: table due? ──▶ commit files + offsets
//!                                     │                        └▶ table positions, group offsets
//!                                     └─ shutdown: stop sources, drain, commit, exit
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use arrow_array::{BooleanArray, RecordBatch};
use arrow_select::filter::filter_record_batch;
use floe_catalog::{OffsetMap, TopicPartition};
use floe_sinks::{DeadLetter, DeadLetterBatch, RetryPolicy};
use floe_sql::CompiledJob;
use floe_sql::job::Policy;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::RecordCounts;
use super::progress::{Counters, Progress};
use super::rules::{Violation, row_numbers, run_insert, without_row_column};
use super::table_state::TableState;
use crate::error::{EngineError, Result};
use crate::observe::{health, metrics};
use crate::source::start::common_offsets;
use crate::source::{KafkaSource, SourceBatch, SourceEvent};
use floe_formats::evolution::{SchemaChange, SchemaMemory, watch_for};

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Exit (after committing) once no record has arrived for this long.
    pub stop_when_idle: Option<Duration>,
    /// How often to print the progress line.
    pub progress_interval: Duration,
    /// How long a graceful shutdown may take.
    pub shutdown_timeout: Duration,
    /// Commit retry settings.
    pub retry: RetryPolicy,
    /// `/healthz` fails once the pipeline loop has not turned for this long (outside a
    /// commit, which is bounded by the retry deadline instead).
    pub liveness_timeout: Duration,
}

/// How a run ended.
#[derive(Debug)]
pub struct Ended {
    /// What the run read, wrote and committed.
    pub counters: Counters,
    /// Set when a record's writer schema adds columns: everything before it is
    /// committed, and the job plans again (`floe_formats::evolution`).
    pub schema_change: Option<SchemaChange>,
}

/// Runs the job until `shutdown` resolves (or the source goes idle, or a writer schema
/// adds columns), then commits and returns.
pub async fn run(
    job: CompiledJob,
    mut tables: Vec<TableState>,
    bootstraps: Vec<String>,
    opts: RunOptions,
    schemas: &SchemaMemory,
    shutdown: impl Future<Output = ()>,
) -> Result<Ended> {
    let (tx, mut rx) = mpsc::channel::<SourceEvent>(8);
    let mut sources = vec![];
    for (i, def) in job.job.sources.iter().enumerate() {
        sources.push(KafkaSource::start(
            i,
            def,
            &bootstraps[i],
            reader_offsets(&tables, i),
            watch_for(&job, i, schemas),
            tx.clone(),
        )?);
    }
    drop(tx);
    // For each source: the INSERTs that read it, with their target table's index and
    // the index of the dead-letter lane of that target.
    let table_index: HashMap<_, _> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key(), i))
        .collect();
    let mut readers: Vec<Vec<Reader>> = vec![vec![]; sources.len()];
    for (ii, ins) in job.inserts.iter().enumerate() {
        let def = job.job.tables.iter().position(|t| t.name == ins.target);
        if let (Some(ti), Some(def)) = (table_index.get(&(ins.target.clone(), None)), def) {
            let dead_letter = job.job.tables[def]
                .quality
                .dead_letter
                .as_ref()
                .and_then(|d| {
                    table_index
                        .get(&(d.clone(), Some(ins.target.clone())))
                        .copied()
                });
            readers[ins.source].push(Reader {
                insert: ii,
                table: *ti,
                def,
                dead_letter,
            });
        }
    }
    let mut state = Loop {
        job: &job,
        readers,
        counters: Counters::default(),
        sources,
        retry: opts.retry.clone(),
        last_record: Instant::now(),
        assigned: false,
        held: vec![0; job.job.sources.len()],
    };
    health().start(
        state.sources.len(),
        opts.liveness_timeout,
        opts.retry.deadline + COMMIT_GRACE,
    );
    let _stopped = Stopped;
    let mut progress = Progress::new();
    let mut progress_tick = tokio::time::interval(opts.progress_interval);
    progress_tick.reset();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tokio::pin!(shutdown);
    let mut schema_change = None;
    let reason = loop {
        health().turned();
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(SourceEvent::SchemaChanged(change)) => {
                    info!(source = %change.source_name, schema_id = change.schema_id, version = ?change.version, columns = %change.columns.join(", "),
                        "a writer schema adds columns: committing what was read before its first record, then planning again");
                    schema_change = Some(change);
                    break "a writer schema adds columns";
                }
                Some(ev) => state.on_event(&mut tables, ev).await?,
                None => break "the sources stopped",
            },
            _ = tick.tick() => {
                state.commit_due(&mut tables, false).await?;
                if let Some(idle) = opts.stop_when_idle {
                    // Idleness counts only once partitions were assigned (joining a group
                    // takes seconds), or after ten idle periods without any assignment.
                    // A record waiting for its schema to appear in the registry is work.
                    let limit = if state.assigned { idle } else { idle * 10 };
                    if state.sources.iter().any(|s| s.shared.waiting_for_schemas()) {
                        state.last_record = Instant::now();
                    }
                    if state.last_record.elapsed() >= limit {
                        break "no records arrived for the idle timeout";
                    }
                }
            }
            _ = progress_tick.tick() => {
                let lag = state.sources.iter().map(|s| s.shared.lag.load(std::sync::atomic::Ordering::Relaxed)).max().unwrap_or(-1);
                let last = tables.iter().filter_map(|t| t.last_snapshot).max();
                info!("{}", progress.line(&state.counters, last, lag));
            }
            _ = &mut shutdown => break "shutdown requested",
        }
    };
    info!("stopping: {reason}");
    let drain = async {
        for s in &state.sources {
            s.request_stop();
        }
        // Whatever the sources already decoded is processed and committed too.
        while let Some(ev) = rx.recv().await {
            state.on_event(&mut tables, ev).await?;
        }
        crate::failpoint::hit("shutdown");
        state.commit_due(&mut tables, true).await?;
        for s in &mut state.sources {
            s.stop();
        }
        Ok::<_, EngineError>(())
    };
    match tokio::time::timeout(opts.shutdown_timeout, drain).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(EngineError::Runtime(format!(
                "shutdown did not finish within {:?}; uncommitted records will be read again on restart",
                opts.shutdown_timeout
            )));
        }
    }
    info!(
        "{}",
        progress.line(
            &state.counters,
            tables.iter().filter_map(|t| t.last_snapshot).max(),
            -1
        )
    );
    Ok(Ended {
        counters: state.counters,
        schema_change,
    })
}

/// The offsets of each table that reads source `source`: where its partitions start is
/// Where a batch is cut for one reader: the first record its table lacks, the first
/// its dead-letter table lacks, and when its bad records were caught.
#[derive(Debug, Clone, Copy)]
struct Cut {
    table_from: usize,
    dead_from: usize,
    caught_at: i64,
}

/// The good rows of an INSERT over records `from..`, without those of records before
/// `table_from` (which its table has; they ran only for the dead-letter table's sake)
/// and without the row column.
fn rows_from(good: Vec<RecordBatch>, from: usize, table_from: usize) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::with_capacity(good.len());
    for batch in good {
        let batch = if table_from > from {
            let rows = row_numbers(&batch)?;
            let keep: BooleanArray = rows
                .values()
                .iter()
                .map(|r| Some(*r as usize >= table_from))
                .collect();
            filter_record_batch(&batch, &keep).map_err(|e| EngineError::Internal(e.to_string()))?
        } else {
            batch
        };
        if batch.num_rows() > 0 {
            out.push(without_row_column(&batch)?);
        }
    }
    Ok(out)
}

/// decided from them (`source::start`).
fn reader_offsets(tables: &[TableState], source: usize) -> Vec<OffsetMap> {
    tables
        .iter()
        .filter(|t| t.sources.contains(&source))
        .map(TableState::positions)
        .collect()
}

/// An INSERT reading a source: which tables its records go to.
#[derive(Debug, Clone, Copy)]
struct Reader {
    /// Index into the job's INSERTs.
    insert: usize,
    /// Index of the target's state.
    table: usize,
    /// Index of the target's declaration in the job.
    def: usize,
    /// Index of the dead-letter table's state, if the target has one.
    dead_letter: Option<usize>,
}

struct Loop<'a> {
    job: &'a CompiledJob,
    readers: Vec<Vec<Reader>>,
    counters: Counters,
    sources: Vec<KafkaSource>,
    retry: RetryPolicy,
    last_record: Instant,
    assigned: bool,
    /// Partitions each source holds now.
    held: Vec<usize>,
}

impl Loop<'_> {
    async fn on_batch(&mut self, tables: &mut [TableState], b: SourceBatch) -> Result<()> {
        self.last_record = Instant::now();
        let offsets = &b.records.offsets;
        let n = offsets.len();
        self.counters.records_in += n as u64;
        self.counters.bytes_in += b.records.bytes() as u64;
        self.note_read(&b);
        let (Some(first), Some(last)) = (offsets.first().copied(), offsets.last().copied()) else {
            return Ok(());
        };
        self.accept_jump(tables, b.source, &b.tp, first);
        let bounds = self.lower_bounds(tables, &b);
        let caught_at = chrono::Utc::now().timestamp_micros();
        let mut dead: HashMap<usize, DeadLetterBatch> = HashMap::new();
        let rows = row_numbers(&b.batch)?;
        let ctx = self.job.task_ctx();
        for r in &self.readers[b.source] {
            let table_from = bounds.get(&r.table).copied().unwrap_or(0);
            let dead_from = r
                .dead_letter
                .and_then(|d| bounds.get(&d).copied())
                .unwrap_or(n);
            let from = table_from.min(dead_from);
            if from >= n {
                continue;
            }
            let insert = &self.job.inserts[r.insert];
            let first_row = rows.values().partition_point(|x| (*x as usize) < from);
            let input = b.batch.slice(first_row, b.batch.num_rows() - first_row);
            let sorted = run_insert(
                insert,
                &self.job.slots[b.source],
                &ctx,
                input,
                n,
                table_from,
            )
            .await?;
            let mut violations: Vec<Violation> = b
                .bad
                .iter()
                .filter(|x| x.index >= from)
                .map(|x| Violation {
                    index: x.index,
                    kind: x.kind,
                    rule: None,
                    message: x.message.clone(),
                })
                .chain(sorted.violations)
                .collect();
            violations.sort_by_key(|v| v.index);
            let mut counts = RecordCounts {
                filtered: sorted.filtered,
                ..RecordCounts::default()
            };
            let cut = Cut {
                table_from,
                dead_from,
                caught_at,
            };
            self.apply_policies(r, &b, &violations, cut, &mut counts, &mut dead)?;
            let good = rows_from(sorted.good, from, table_from)?;
            self.counters.rows_out += good.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            tables[r.table].write(&good).await?;
            tables[r.table].add_counts(&counts);
            tables[r.table].note_lookups(insert.take_lineage());
            self.counters.records.add(&counts);
        }
        for (d, batch) in dead {
            let batch = batch.finish()?;
            tables[d].write(&[batch]).await?;
        }
        let newest = b.records.newest_timestamp();
        for (ti, start) in bounds {
            self.counters.skipped += start as u64;
            if start < n {
                tables[ti].note_newest(newest);
            }
            tables[ti].advance(&b.tp, last + 1);
        }
        Ok(())
    }

    /// For every table (and dead-letter table) a reader of the batch's source writes:
    /// the index of the first record of the batch it lacks. Computed before any INSERT
    /// runs, so that several INSERTs into one table see the same cut.
    fn lower_bounds(&self, tables: &[TableState], b: &SourceBatch) -> HashMap<usize, usize> {
        let offsets = &b.records.offsets;
        let mut bounds: HashMap<usize, usize> = HashMap::new();
        for r in &self.readers[b.source] {
            for ti in std::iter::once(r.table).chain(r.dead_letter) {
                bounds.entry(ti).or_insert_with(|| {
                    tables[ti]
                        .lower_bound(&b.tp)
                        .map_or(0, |lb| offsets.partition_point(|o| *o < lb))
                });
            }
        }
        bounds
    }

    /// Hands every bad record of reader `r` to its table's policy: a `fail` stops the
    /// job, a drop is counted, a dead letter is counted and queued for the dead-letter
    /// table (`dead`) if that table lacks it.
    fn apply_policies(
        &self,
        r: &Reader,
        b: &SourceBatch,
        violations: &[Violation],
        cut: Cut,
        counts: &mut RecordCounts,
        dead: &mut HashMap<usize, DeadLetterBatch>,
    ) -> Result<()> {
        let insert = &self.job.inserts[r.insert];
        let quality = &self.job.job.tables[r.def].quality;
        let offsets = &b.records.offsets;
        for v in violations {
            let rule = v.rule_name();
            let for_table = v.index >= cut.table_from;
            match quality.policy(rule) {
                Policy::Fail if for_table => {
                    return Err(EngineError::Rejected {
                        table: insert.target.to_string(),
                        tp: b.tp.clone(),
                        offset: offsets[v.index],
                        rule: rule.to_string(),
                        message: v.message.clone(),
                    });
                }
                Policy::Fail => {}
                Policy::Drop => {
                    if for_table {
                        *counts.dropped.entry(rule.to_string()).or_default() += 1;
                    }
                }
                Policy::DeadLetter => {
                    if for_table {
                        *counts.dead_lettered.entry(rule.to_string()).or_default() += 1;
                    }
                    if let Some(d) = r.dead_letter
                        && v.index >= cut.dead_from
                    {
                        let job = &self.job.job.name;
                        dead.entry(d)
                            .or_insert_with(|| DeadLetterBatch::new(job, cut.caught_at))
                            .push(&DeadLetter {
                                target: &insert.target.to_string(),
                                kind: v.kind.as_str(),
                                rule: v.rule.as_deref(),
                                message: &v.message,
                                tp: &b.tp,
                                offset: offsets[v.index],
                                timestamp_ms: b.records.timestamp(v.index),
                                key: b.records.key(v.index),
                                value: b.records.value(v.index),
                            });
                    }
                }
            }
        }
        Ok(())
    }

    /// Records of `tp` from `first` on, below every table's position: the consumer jumped
    /// back, which happens only when the topic was deleted and re-created (or truncated)
    /// and the source's `'properties.auto.offset.reset'` accepts the jump (without it the
    /// source stops with an error). Accepting means what it says: the new records go into
    /// the tables, whose checkpoints move back to the new offsets with the next commit.
    fn accept_jump(
        &self,
        tables: &mut [TableState],
        source: usize,
        tp: &TopicPartition,
        first: i64,
    ) {
        let accepted = self.job.job.sources[source]
            .kafka
            .properties
            .get("auto.offset.reset")
            .is_some_and(|v| v != "error");
        if !accepted {
            return;
        }
        let readers: Vec<usize> = self.readers[source]
            .iter()
            .flat_map(|r| std::iter::once(r.table).chain(r.dead_letter))
            .collect();
        let bounds: Option<Vec<i64>> = readers.iter().map(|t| tables[*t].lower_bound(tp)).collect();
        let Some(lowest) = bounds
            .and_then(|b| b.into_iter().min())
            .filter(|lowest| first < *lowest)
        else {
            return;
        };
        warn!(
            partition = %tp,
            from = lowest,
            to = first,
            "the partition's offsets went back: the topic was re-created or truncated, and \
             'properties.auto.offset.reset' accepts the jump; its records are read into the \
             tables from the new offsets, and the checkpoints move back with the next commit"
        );
        for t in readers {
            tables[t].restart_at(tp, first);
        }
    }

    async fn on_event(&mut self, tables: &mut [TableState], ev: SourceEvent) -> Result<()> {
        match ev {
            SourceEvent::Batch(b) => self.on_batch(tables, b).await,
            SourceEvent::Assigned {
                source,
                partitions,
                done,
            } => {
                self.note_rebalance(source, "assigned", partitions);
                self.on_assigned(tables, source, partitions).await?;
                crate::failpoint::hit("rebalance-assigned");
                done.done();
                Ok(())
            }
            SourceEvent::Started {
                source,
                offsets,
                done,
            } => {
                for t in tables.iter_mut().filter(|t| t.sources.contains(&source)) {
                    t.start_at(&offsets);
                }
                done.done();
                Ok(())
            }
            SourceEvent::Revoked {
                source,
                partitions,
                lost,
                done,
            } => {
                self.note_rebalance(source, if lost { "lost" } else { "revoked" }, partitions);
                self.on_revoked(tables, source, lost).await?;
                crate::failpoint::hit("rebalance-revoked");
                done.done();
                Ok(())
            }
            // Another source's writer schema, met while the run stops for one: the
            // next run's watch meets it again.
            SourceEvent::SchemaChanged(_) => Ok(()),
            SourceEvent::Failed(e) => Err(e),
        }
    }

    /// Counts what a batch read, and the records its source could not decode.
    fn note_read(&self, b: &SourceBatch) {
        let m = metrics();
        let source = self.job.job.sources[b.source].name.as_str();
        let partition = b.tp.partition.to_string();
        let labels = [source, b.tp.topic.as_str(), partition.as_str()];
        m.records_read.add(&labels, b.records.len() as f64);
        m.read_bytes.add(&labels, b.records.bytes() as f64);
        // One update per kind and batch, not per bad record.
        let mut kinds: HashMap<&str, f64> = HashMap::new();
        for bad in &b.bad {
            *kinds.entry(bad.kind.as_str()).or_default() += 1.0;
        }
        for (kind, n) in kinds {
            m.decode_errors.add(&[source, kind], n);
        }
    }

    /// Counts a rebalance step and keeps the health state's view of the group.
    fn note_rebalance(&mut self, source: usize, event: &str, partitions: usize) {
        let held = &mut self.held[source];
        if event == "assigned" {
            *held += partitions;
        } else {
            // An eager revocation gives everything up; a cooperative one only some.
            *held = held.saturating_sub(partitions);
        }
        let m = metrics();
        let name = self.job.job.sources[source].name.as_str();
        m.rebalances.add(&[name, event], 1.0);
        m.partitions_assigned.set(&[name], *held as f64);
        health().set_in_group(source, event == "assigned" || *held > 0);
    }

    /// Partitions arrive: reading starts from the offsets the tables hold now. An empty
    /// assignment (the group waits for a member that died to time out; tansu does this
    /// after a replica is killed) does not count as assigned for the idle timeout:
    /// `--stop-when-idle` would otherwise give up before the partitions come.
    async fn on_assigned(
        &mut self,
        tables: &mut [TableState],
        source: usize,
        partitions: usize,
    ) -> Result<()> {
        self.last_record = Instant::now();
        self.assigned |= partitions > 0;
        for t in tables.iter_mut().filter(|t| t.sources.contains(&source)) {
            t.reload(&self.retry).await?;
        }
        self.sources[source]
            .shared
            .set_tables(reader_offsets(tables, source));
        Ok(())
    }

    /// Partitions go: commit what was read of them while this job still owns them.
    async fn on_revoked(
        &mut self,
        tables: &mut [TableState],
        source: usize,
        lost: bool,
    ) -> Result<()> {
        // Until partitions come back, idleness means nothing: a member waiting through a
        // rebalance must not stop for want of records (--stop-when-idle).
        self.assigned = false;
        self.last_record = Instant::now();
        if lost && tables.iter().any(TableState::has_pending) {
            warn!(
                "the consumer group gave the partitions away before this job could commit them \
                 (it was cut off, or stalled longer than max.poll.interval.ms); committing anyway: \
                 the commit is refused if the next owner has already committed them"
            );
        }
        for t in tables.iter_mut().filter(|t| t.sources.contains(&source)) {
            if t.checkpoint(&self.retry).await?.is_some() {
                self.counters.commits += 1;
            }
        }
        self.sources[source]
            .shared
            .set_tables(reader_offsets(tables, source));
        Ok(())
    }

    async fn commit_due(&mut self, tables: &mut [TableState], all: bool) -> Result<()> {
        let now = Instant::now();
        let mut committed_any = false;
        for t in tables.iter_mut() {
            if ((all && t.has_pending()) || t.due(now))
                && t.checkpoint(&self.retry).await?.is_some()
            {
                self.counters.commits += 1;
                committed_any = true;
            }
        }
        if committed_any {
            for (i, s) in self.sources.iter().enumerate() {
                let readers = reader_offsets(tables, i);
                let topic = &self.job.job.sources[i].kafka.topic;
                s.commit_group_offsets(common_offsets(&readers, topic));
                s.shared.set_tables(readers);
            }
        }
        Ok(())
    }
}

/// How much longer than its retry deadline a commit may take before `/healthz` fails.
const COMMIT_GRACE: Duration = Duration::from_secs(60);

/// Marks the pipeline stopped for the probes however `run` returns.
struct Stopped;

impl Drop for Stopped {
    fn drop(&mut self) {
        health().stop();
    }
}
