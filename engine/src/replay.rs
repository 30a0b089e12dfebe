//! `floe replay`: push a table's dead letters through the job's current rules again.
//!
//! ```text
//!  ledger  = records resolved by earlier replays: target ancestry (floe.replayed), the
//!            target's floe.replayed.<job> property, the dead-letter table's marker rows
//!  pending = dead letters of the table, minus the ledger, matching --rule/--since/--until,
//!            below the target's committed offset (the live job reads the rest itself)
//!  first:  marker rows for ledger records that lack one
//!  pending ──decode──▶ SELECT ──▶ CHECKs ──┬─ rows ────────▶ one target commit carrying
//!                                          ├─ filtered ────▶   floe.replayed = resolved set
//!                                          │                   (summary and property)
//!                                          └─ still bad ───▶ left in the dead-letter table
//!  then: a `replayed` marker row in the dead-letter table for every resolved record (so
//!        other engines can hide resolved dead letters, and the ledger outlives expiry)
//! ```
//!
//! The target commit's id is derived from the resolved set, and the ledger is read before
//! anything is done, so a replay that is repeated, or crashes after committing, never
//! recovers a record twice; the next replay writes any markers that are missing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use arrow_array::{
    Array, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use floe_catalog::checkpoint::latest_checkpoint;
use floe_catalog::replayed::{
    REPLAYED_KEY, RecordSet, replayed_by_property, replayed_property, replayed_records,
};
use floe_catalog::{OpenCatalog, TopicPartition};
use floe_sinks::{
    CommitRequest, DeadLetter, DeadLetterBatch, RetryPolicy, TableWriter, WriterConfig, commit,
};
use floe_sql::CompiledJob;
use floe_sql::job::{JobFile, TableDef, TableName};
use iceberg::table::Table;

use crate::error::{EngineError, Result};
use crate::pipeline::rules::{row_numbers, run_insert, without_row_column};
use crate::pipeline::{lane_job, lane_start};
use crate::query::{run_sql, session_over};
use crate::setup::{catalog_of, open_catalogs, table_ident};
use floe_formats::{DecodePlan, PendingRecords, decode};

/// Which dead letters to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayArgs {
    /// The target table, as named in the job.
    pub table: String,
    /// Only dead letters of this rule or kind.
    pub rule: Option<String>,
    /// Only dead letters caught at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only dead letters caught before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Report what would happen without committing.
    pub dry_run: bool,
}

/// A dead letter to try again.
#[derive(Debug, Clone)]
struct Pending {
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Dead letters considered.
    pub considered: usize,
    /// Records whose rows are now in the table.
    pub recovered: usize,
    /// Records the SELECT now filters out.
    pub filtered: usize,
    /// Records still breaking a rule, per rule.
    pub still_bad: BTreeMap<String, u64>,
    /// The target snapshot that holds the recovered rows.
    pub snapshot_id: Option<i64>,
    /// Marker rows written to the dead-letter table.
    pub markers: usize,
}

/// Everything a replay works with: the job, its target and dead-letter tables.
struct Replay<'a> {
    compiled: &'a CompiledJob,
    def: &'a TableDef,
    dlq: TableName,
    catalogs: HashMap<String, OpenCatalog>,
    target_table: Table,
    dlq_table: Table,
    ctx: datafusion::prelude::SessionContext,
    policy: RetryPolicy,
}

/// Replays dead letters of `args.table` of `job`, parsed from `path` by
/// [`crate::setup::load_job_for_catalogs`] (replay reads no Kafka, so variables only the sources use
/// may be unset); the command line hands it over with its `embedded` registry served.
pub async fn replay(mut job: JobFile, path: &Path, args: &ReplayArgs) -> Result<ReplayReport> {
    if job.sources.iter().any(|s| s.columns_from_schema) {
        crate::plan::read_writer_schemas(&mut job)?;
    }
    crate::lookup::read_schemas(&mut job).await?;
    let compiled = floe_sql::compile(job).await?;
    let def = target_def(&compiled, path, &args.table)?;
    let dlq = def.quality.dead_letter.clone().ok_or_else(|| {
        EngineError::Config(format!(
            "table {} has no dead-letter table ('dead-letter.table'), so there is nothing to replay",
            def.name
        ))
    })?;
    let catalogs = open_catalogs(&compiled.job).await?;
    // Replayed records are joined with the lookup tables as they are now.
    let _lookups = crate::lookup::start(&compiled, &catalogs).await?;
    let r = Replay {
        target_table: load(&catalogs, &def.name).await?,
        dlq_table: load(&catalogs, &dlq).await?,
        ctx: session_over(&catalogs).await?,
        compiled: &compiled,
        def,
        dlq,
        catalogs,
        policy: RetryPolicy::default(),
    };
    r.run(args).await
}

fn target_def<'a>(compiled: &'a CompiledJob, path: &Path, table: &str) -> Result<&'a TableDef> {
    compiled
        .job
        .tables
        .iter()
        .find(|t| {
            t.name.to_string() == table
                || format!("{}.{}", t.name.namespace.join("."), t.name.name) == table
        })
        .ok_or_else(|| EngineError::Config(format!("{table} is not a table of {}", path.display())))
}

impl Replay<'_> {
    fn job(&self) -> &str {
        &self.compiled.job.name
    }

    fn target(&self) -> String {
        self.def.name.to_string()
    }

    async fn run(mut self, args: &ReplayArgs) -> Result<ReplayReport> {
        let (ledger, markers) = self.ledger().await?;
        let pending = self.pending(&ledger, args).await?;
        let mut report = ReplayReport {
            considered: pending.values().map(BTreeMap::len).sum(),
            ..ReplayReport::default()
        };
        let mut resolved = RecordSet::new();
        let mut rows = vec![];
        for (tp, records) in &pending {
            let outcome = run_partition(self.compiled, &self.def.name, tp, records).await?;
            report.recovered += outcome.recovered.len();
            report.filtered += outcome.filtered.len();
            for (rule, n) in outcome.still_bad {
                *report.still_bad.entry(rule).or_default() += n;
            }
            for o in outcome.recovered.iter().chain(&outcome.filtered) {
                resolved.insert(tp.clone(), *o);
            }
            rows.extend(outcome.rows);
        }
        if args.dry_run {
            return Ok(report);
        }
        // Markers of earlier replays first: after this, only the newest replay's records
        // may lack markers, and the target's property names exactly those.
        let missing = ledger.minus(&markers);
        if !missing.is_empty() {
            let message = format!("resolved by an earlier replay into {}", self.target());
            report.markers += self.write_markers(&missing, &pending, &message).await?;
        }
        if resolved.is_empty() {
            return Ok(report);
        }
        let snapshot_id = self.commit_recovered(&resolved, &rows).await?;
        report.snapshot_id = Some(snapshot_id);
        crate::failpoint::hit("replay-after-commit");
        let message = format!(
            "resolved by a replay into {} (snapshot {snapshot_id})",
            self.target()
        );
        report.markers += self.write_markers(&resolved, &pending, &message).await?;
        Ok(report)
    }

    /// What earlier replays resolved (summaries still in the target's ancestry, its
    /// property, the dead-letter table's marker rows), and the marker rows alone.
    async fn ledger(&self) -> Result<(RecordSet, RecordSet)> {
        let target = self.target();
        let in_table = |e: String| EngineError::Runtime(format!("table {target}: {e}"));
        let md = self.target_table.metadata();
        let mut ledger = replayed_records(md, self.job()).map_err(in_table)?;
        ledger.extend(&replayed_by_property(md, self.job()).map_err(in_table)?);
        let markers = record_set(
            &run_sql(
                &self.ctx,
                &format!(
                    "SELECT topic, partition, \"offset\" {} AND error_kind = 'replayed'",
                    self.dead_letters()
                ),
            )
            .await?,
        )?;
        ledger.extend(&markers);
        Ok((ledger, markers))
    }

    /// The FROM and WHERE of this job's dead letters for the target.
    fn dead_letters(&self) -> String {
        format!(
            "FROM {} WHERE job = '{}' AND target_table = '{}'",
            self.dlq,
            sql_quote(self.job()),
            sql_quote(&self.target())
        )
    }

    /// Dead letters to try again: not in the ledger, matching the arguments, and below
    /// the target's committed offset (the live job reads the others again itself).
    async fn pending(&self, ledger: &RecordSet, args: &ReplayArgs) -> Result<PendingByPartition> {
        let candidates = run_sql(
            &self.ctx,
            &format!(
                "SELECT topic, partition, \"offset\", kafka_timestamp, key, value, error_kind, rule, caught_at \
                 {} AND error_kind <> 'replayed'",
                self.dead_letters()
            ),
        )
        .await?;
        let committed =
            latest_checkpoint(&self.target(), self.target_table.metadata(), self.job())?
                .map(|c| c.offsets)
                .unwrap_or_default();
        let mut pending = select_pending(&candidates, ledger, args)?;
        for (tp, records) in pending.iter_mut() {
            let below = committed.get(tp).unwrap_or(0);
            records.retain(|o, _| *o < below);
        }
        pending.retain(|_, r| !r.is_empty());
        Ok(pending)
    }

    /// Appends the recovered rows to the target in one commit that records `resolved` in
    /// its summary and in the target's property.
    async fn commit_recovered(
        &mut self,
        resolved: &RecordSet,
        rows: &[RecordBatch],
    ) -> Result<i64> {
        let job = self.job().to_string();
        let target = self.target();
        let mut writer = TableWriter::new(
            &self.target_table,
            &WriterConfig {
                target_file_size: self.def.options.target_file_size,
                file_prefix: format!("{job}-replay-{}", uuid::Uuid::new_v4().simple()),
            },
        )?;
        for b in rows {
            writer.write(b).await?;
        }
        let files = writer.close().await?;
        let offsets = latest_checkpoint(&target, self.target_table.metadata(), &job)?
            .map(|c| c.offsets)
            .unwrap_or_default();
        let req = CommitRequest {
            job: job.clone(),
            files,
            from: offsets.clone(),
            to: offsets,
            properties: [(REPLAYED_KEY.to_string(), resolved.to_json())].into(),
            id: Some(resolved.id(&format!("replay\n{job}\n{target}"))),
            commit_interval: self.def.options.commit_interval,
            table_properties: [(replayed_property(&job), resolved.to_json())].into(),
            adopted: Default::default(),
            written_with: None,
        };
        let cat = catalog_of(&self.catalogs, &self.def.name)?;
        let (table, outcome) = commit(cat, self.target_table.clone(), &req, &self.policy).await?;
        self.target_table = table;
        Ok(outcome.snapshot_id)
    }

    /// Appends a `replayed` marker row for each record of `records` to the dead-letter
    /// table; returns how many.
    async fn write_markers(
        &mut self,
        records: &RecordSet,
        pending: &PendingByPartition,
        message: &str,
    ) -> Result<usize> {
        let job = self.job().to_string();
        let target = self.target();
        let mut batch = DeadLetterBatch::new(&job, chrono::Utc::now().timestamp_micros());
        for (tp, offset) in records.iter() {
            let key = pending
                .get(tp)
                .and_then(|r| r.get(offset))
                .and_then(|p| p.key.as_deref());
            batch.push(&DeadLetter {
                target: &target,
                kind: "replayed",
                rule: None,
                message,
                tp,
                offset: *offset,
                timestamp_ms: None,
                key,
                value: None,
            });
        }
        let mut writer = TableWriter::new(
            &self.dlq_table,
            &WriterConfig {
                target_file_size: 128 * 1024 * 1024,
                file_prefix: format!("{job}-replay-{}", uuid::Uuid::new_v4().simple()),
            },
        )?;
        writer.write(&batch.finish()?).await?;
        let files = writer.close().await?;
        // Markers commit in the target's dead-letter lane, without moving its offsets.
        let lane = lane_job(&job, &self.def.name);
        let dlq_md = self.dlq_table.metadata();
        let offsets = match latest_checkpoint(&self.dlq.to_string(), dlq_md, &lane)? {
            Some(c) => c.offsets,
            None => {
                let target = latest_checkpoint(&target, self.target_table.metadata(), &job)?
                    .map(|c| c.offsets)
                    .unwrap_or_default();
                lane_start(&self.dlq, dlq_md, &job, &target)?
            }
        };
        let req = CommitRequest {
            job: lane,
            files,
            from: offsets.clone(),
            to: offsets,
            properties: Default::default(),
            id: Some(records.id(&format!("markers\n{job}\n{target}"))),
            commit_interval: self.def.options.commit_interval,
            table_properties: Default::default(),
            adopted: Default::default(),
            written_with: None,
        };
        let cat = catalog_of(&self.catalogs, &self.dlq)?;
        let (table, _) = commit(cat, self.dlq_table.clone(), &req, &self.policy).await?;
        self.dlq_table = table;
        Ok(records.len())
    }
}

/// Dead letters to replay, per partition and offset (one per record).
type PendingByPartition = BTreeMap<TopicPartition, BTreeMap<i64, Pending>>;

async fn load(
    catalogs: &std::collections::HashMap<String, OpenCatalog>,
    name: &TableName,
) -> Result<Table> {
    catalog_of(catalogs, name)?
        .catalog
        .load_table(&table_ident(name)?)
        .await
        .map_err(|e| {
            EngineError::Config(format!(
                "table {name}: {e} (has the job run yet? `floe run` creates it)"
            ))
        })
}

fn sql_quote(s: &str) -> String {
    s.replace('\'', "''")
}

/// Column `name` of a dead-letter batch as `T` (readers may hand back, say, large or
/// view variants of the written types; they are cast to the plain ones).
fn column<T: Array + Clone + 'static>(b: &RecordBatch, name: &str) -> Result<T> {
    let want = floe_sinks::dead_letter_schema()
        .field_with_name(name)
        .map(|f| f.data_type().clone())
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    b.column_by_name(name)
        .and_then(|c| arrow_cast::cast(c, &want).ok())
        .and_then(|c| c.as_any().downcast_ref::<T>().cloned())
        .ok_or_else(|| {
            EngineError::Config(format!(
                "the dead-letter table's column {name} is missing or has another type"
            ))
        })
}

fn record_set(batches: &[RecordBatch]) -> Result<RecordSet> {
    let mut out = RecordSet::new();
    for b in batches {
        let topic = column::<StringArray>(b, "topic")?;
        let partition = column::<Int32Array>(b, "partition")?;
        let offset = column::<Int64Array>(b, "offset")?;
        for i in 0..b.num_rows() {
            out.insert(
                TopicPartition::new(topic.value(i), partition.value(i)),
                offset.value(i),
            );
        }
    }
    Ok(out)
}

/// The dead letters to replay, per partition and offset (one per record).
fn select_pending(
    batches: &[RecordBatch],
    ledger: &RecordSet,
    args: &ReplayArgs,
) -> Result<PendingByPartition> {
    let mut out = PendingByPartition::new();
    for b in batches {
        let topic = column::<StringArray>(b, "topic")?;
        let partition = column::<Int32Array>(b, "partition")?;
        let offset = column::<Int64Array>(b, "offset")?;
        let ts = column::<TimestampMicrosecondArray>(b, "kafka_timestamp")?;
        let key = column::<BinaryArray>(b, "key")?;
        let value = column::<BinaryArray>(b, "value")?;
        let kind = column::<StringArray>(b, "error_kind")?;
        let rule = column::<StringArray>(b, "rule")?;
        let caught = column::<TimestampMicrosecondArray>(b, "caught_at")?;
        for i in 0..b.num_rows() {
            let tp = TopicPartition::new(topic.value(i), partition.value(i));
            let o = offset.value(i);
            if ledger.contains(&tp, o) {
                continue;
            }
            if let Some(r) = &args.rule
                && kind.value(i) != r
                && !(rule.is_valid(i) && rule.value(i) == r)
            {
                continue;
            }
            let at = caught.value(i);
            if args.since.is_some_and(|s| at < s.timestamp_micros())
                || args.until.is_some_and(|u| at >= u.timestamp_micros())
            {
                continue;
            }
            let opt = |a: &BinaryArray| a.is_valid(i).then(|| a.value(i).to_vec());
            out.entry(tp).or_default().entry(o).or_insert(Pending {
                offset: o,
                timestamp_ms: ts.is_valid(i).then(|| ts.value(i) / 1000),
                key: opt(&key),
                value: opt(&value),
            });
        }
    }
    Ok(out)
}

/// What the job's rules now make of one partition's dead letters.
struct PartitionOutcome {
    rows: Vec<RecordBatch>,
    recovered: Vec<i64>,
    filtered: Vec<i64>,
    still_bad: BTreeMap<String, u64>,
}

async fn run_partition(
    compiled: &CompiledJob,
    target: &TableName,
    tp: &TopicPartition,
    records: &BTreeMap<i64, Pending>,
) -> Result<PartitionOutcome> {
    let job = &compiled.job;
    let insert = compiled
        .inserts
        .iter()
        .find(|i| &i.target == target && job.sources[i.source].kafka.topic == tp.topic)
        .ok_or_else(|| {
            EngineError::Config(format!(
                "dead letters of {target} come from topic {}, which no INSERT INTO {target} reads any more",
                tp.topic
            ))
        })?;
    let plan = DecodePlan::new(&job.sources[insert.source])?;
    let mut recs = PendingRecords::default();
    let offsets: Vec<i64> = records.keys().copied().collect();
    for p in records.values() {
        recs.push(
            p.offset,
            p.timestamp_ms,
            p.key.as_deref(),
            p.value.as_deref(),
        );
    }
    let decoded = decode(&plan, tp, &recs)?;
    let sorted = run_insert(
        insert,
        &compiled.slots[insert.source],
        &compiled.task_ctx(),
        decoded.batch,
        recs.len(),
        0,
    )
    .await?;
    let mut bad = vec![false; recs.len()];
    let mut still_bad: BTreeMap<String, u64> = BTreeMap::new();
    for (index, rule) in decoded
        .bad
        .iter()
        .map(|b| (b.index, b.kind.as_str().to_string()))
        .chain(
            sorted
                .violations
                .iter()
                .map(|v| (v.index, v.rule_name().to_string())),
        )
    {
        if !bad[index] {
            bad[index] = true;
            *still_bad.entry(rule).or_default() += 1;
        }
    }
    let mut produced = vec![false; recs.len()];
    let mut rows = vec![];
    for b in sorted.good {
        let numbers = row_numbers(&b)?;
        let keep: arrow_array::BooleanArray = numbers
            .values()
            .iter()
            .map(|r| Some(!bad[*r as usize]))
            .collect();
        for r in numbers.values() {
            produced[*r as usize] = true;
        }
        let kept = arrow_select::filter::filter_record_batch(&b, &keep)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        if kept.num_rows() > 0 {
            rows.push(without_row_column(&kept)?);
        }
    }
    let mut recovered = vec![];
    let mut filtered = vec![];
    for (i, o) in offsets.iter().enumerate() {
        match (bad[i], produced[i]) {
            (true, _) => {}
            (false, true) => recovered.push(*o),
            (false, false) => filtered.push(*o),
        }
    }
    Ok(PartitionOutcome {
        rows,
        recovered,
        filtered,
        still_bad,
    })
}
