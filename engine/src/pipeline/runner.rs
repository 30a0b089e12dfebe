//! The main loop: read decoded batches, run each INSERT's plan over them, write rows, and
//! commit each table with the offsets its rows cover.
//!
//! ```text
//!  source threads ──SourceEvent──▶ run loop ──▶ per INSERT: skip offsets the table has,
//!                                     │                 execute plan, write files
//!                                     ├─ tick: table due? ──▶ commit files + offsets
//!                                     │                        └▶ resume points, group offsets
//!                                     └─ shutdown: stop sources, drain, commit, exit
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use floe_catalog::OffsetMap;
use floe_sinks::RetryPolicy;
use floe_sql::CompiledJob;
use tokio::sync::mpsc;
use tracing::info;

use super::progress::{Counters, Progress};
use super::table_state::TableState;
use crate::error::{EngineError, Result};
use crate::source::{KafkaSource, SourceBatch, SourceEvent};

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
}

/// Runs the job until `shutdown` resolves (or the source goes idle), then commits and returns.
pub async fn run(
    job: CompiledJob,
    mut tables: Vec<TableState>,
    bootstraps: Vec<String>,
    opts: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Counters> {
    let (tx, mut rx) = mpsc::channel::<SourceEvent>(8);
    let mut sources = vec![];
    for (i, def) in job.job.sources.iter().enumerate() {
        let resume = resume_points(&tables, i, &def.kafka.topic);
        sources.push(KafkaSource::start(
            i,
            def,
            &bootstraps[i],
            resume,
            tx.clone(),
        )?);
    }
    drop(tx);
    // For each source: the INSERTs that read it, with their target table's index.
    let table_index: HashMap<_, _> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut readers: Vec<Vec<(usize, usize)>> = vec![vec![]; sources.len()];
    for (ii, ins) in job.inserts.iter().enumerate() {
        if let Some(ti) = table_index.get(&ins.target) {
            readers[ins.source].push((ii, *ti));
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
    };
    let mut progress = Progress::new();
    let mut progress_tick = tokio::time::interval(opts.progress_interval);
    progress_tick.reset();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tokio::pin!(shutdown);
    let reason = loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(SourceEvent::Batch(b)) => state.on_batch(&mut tables, b).await?,
                Some(SourceEvent::Rebalanced { source }) => state.on_rebalance(&mut tables, source).await,
                Some(SourceEvent::Failed(e)) => return Err(e),
                None => break "the sources stopped",
            },
            _ = tick.tick() => {
                state.commit_due(&mut tables, false).await?;
                if let Some(idle) = opts.stop_when_idle {
                    // Idleness counts only once partitions were assigned (joining a group
                    // takes seconds), or after ten idle periods without any assignment.
                    let limit = if state.assigned { idle } else { idle * 10 };
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
            match ev {
                SourceEvent::Batch(b) => state.on_batch(&mut tables, b).await?,
                SourceEvent::Rebalanced { source } => state.on_rebalance(&mut tables, source).await,
                SourceEvent::Failed(e) => return Err(e),
            }
        }
        state.commit_due(&mut tables, true).await?;
        for s in &mut state.sources {
            s.stop();
        }
        Ok::<_, EngineError>(())
    };
    match tokio::time::timeout(opts.shutdown_timeout, drain).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(EngineError::Other(format!(
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
    Ok(state.counters)
}

/// Where source `source` resumes per partition: the lowest committed offset over the
/// tables that read it. A partition some table has never committed is left out, so that
/// the startup mode decides for it.
fn resume_points(tables: &[TableState], source: usize, topic: &str) -> OffsetMap {
    let readers: Vec<&TableState> = tables
        .iter()
        .filter(|t| t.sources.contains(&source))
        .collect();
    let mut out = OffsetMap::new();
    let Some(first) = readers.first() else {
        return out;
    };
    for (tp, _) in first.committed.iter().filter(|(tp, _)| tp.topic == topic) {
        let all: Option<Vec<i64>> = readers.iter().map(|t| t.committed.get(tp)).collect();
        if let Some(min) = all.and_then(|v| v.into_iter().min()) {
            out.set(tp.clone(), min);
        }
    }
    out
}

struct Loop<'a> {
    job: &'a CompiledJob,
    readers: Vec<Vec<(usize, usize)>>,
    counters: Counters,
    sources: Vec<KafkaSource>,
    retry: RetryPolicy,
    last_record: Instant,
    assigned: bool,
}

impl Loop<'_> {
    async fn on_batch(&mut self, tables: &mut [TableState], b: SourceBatch) -> Result<()> {
        self.last_record = Instant::now();
        let n = b.offsets.len();
        self.counters.records_in += n as u64;
        self.counters.bytes_in += b.bytes as u64;
        let Some(last) = b.offsets.last().copied() else {
            return Ok(());
        };
        let slot = &self.job.slots[b.source];
        // Lower bounds first: several INSERTs into one table see the same cut.
        let bounds: HashMap<usize, usize> = self.readers[b.source]
            .iter()
            .map(|(_, ti)| {
                let start = tables[*ti]
                    .lower_bound(&b.tp)
                    .map_or(0, |lb| b.offsets.partition_point(|o| *o < lb));
                (*ti, start)
            })
            .collect();
        for (ii, ti) in &self.readers[b.source] {
            let start = bounds.get(ti).copied().unwrap_or(0);
            if start >= n {
                continue;
            }
            let insert = &self.job.inserts[*ii];
            slot.set(vec![b.batch.slice(start, n - start)]);
            let out =
                insert
                    .execute(self.job.task_ctx())
                    .await
                    .map_err(|e| EngineError::Query {
                        table: insert.target.to_string(),
                        tp: b.tp.clone(),
                        first_offset: b.offsets[start],
                        message: e.strip_backtrace(),
                    })?;
            self.counters.rows_out += out.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            tables[*ti].write(&out).await?;
        }
        slot.set(vec![]);
        for (ti, start) in bounds {
            self.counters.skipped += start as u64;
            tables[ti].advance(&b.tp, last + 1);
        }
        Ok(())
    }

    async fn on_rebalance(&mut self, tables: &mut [TableState], source: usize) {
        self.last_record = Instant::now();
        self.assigned = true;
        for t in tables.iter_mut().filter(|t| t.sources.contains(&source)) {
            if t.has_pending() {
                info!(table = %t.name, "partitions were reassigned: dropping uncommitted work, it will be read again");
            }
            t.abort().await;
        }
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
                let resume = resume_points(tables, i, &self.job.job.sources[i].kafka.topic);
                s.shared.set_resume(&resume);
                s.commit_group_offsets(resume);
            }
        }
        Ok(())
    }
}
