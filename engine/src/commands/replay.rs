//! `floe replay`: push a table's dead letters through the job's current rules again.
//!
//! ```text
//!  ledger  = records resolved by earlier replays  (target ancestry, floe.replayed)
//!  pending = dead letters of the table, minus the ledger, matching --rule/--since/--until
//!  pending ──decode──▶ SELECT ──▶ CHECKs ──┬─ rows ────────▶ one target commit carrying
//!                                          ├─ filtered ────▶   floe.replayed = resolved set
//!                                          └─ still bad ───▶ left in the dead-letter table
//!  then: a `replayed` marker row in the dead-letter table for every ledger record that
//!        has none yet (so other engines can hide resolved dead letters)
//! ```
//!
//! The target commit's id is derived from the resolved set, and the ledger is read before
//! anything is done, so a replay that is repeated, or crashes after committing, never
//! recovers a record twice; the next replay writes any markers that are missing.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{
    Array, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use floe_catalog::offsets::latest_checkpoint;
use floe_catalog::replayed::{REPLAYED_KEY, RecordSet, replayed_records};
use floe_catalog::{OpenCatalog, TopicPartition};
use floe_sinks::{
    CommitRequest, DeadLetter, DeadLetterBatch, RetryPolicy, TableWriter, WriterConfig, commit,
};
use floe_sql::CompiledJob;
use floe_sql::job::TableName;
use iceberg::table::Table;

use super::query::{run_sql, session_over};
use crate::error::{EngineError, Result};
use crate::pipeline::rules::{row_numbers, run_insert, without_row_column};
use crate::setup::{catalog_of, load_job_for_catalogs, open_catalogs, table_ident};
use crate::source::decode::{DecodePlan, PendingRecords, decode};

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

/// Replays dead letters of `args.table` of the job at `path`.
pub async fn replay(path: &Path, args: &ReplayArgs) -> Result<ReplayReport> {
    // Replay reads no Kafka: variables only the sources use may be unset.
    let compiled = floe_sql::compile(load_job_for_catalogs(path)?).await?;
    let job = &compiled.job;
    let def = job
        .tables
        .iter()
        .find(|t| {
            t.name.to_string() == args.table
                || format!("{}.{}", t.name.namespace.join("."), t.name.name) == args.table
        })
        .ok_or_else(|| {
            EngineError::Other(format!(
                "{} is not a table of {}",
                args.table,
                path.display()
            ))
        })?;
    let dlq = def.quality.dead_letter.clone().ok_or_else(|| {
        EngineError::Other(format!(
            "table {} has no dead-letter table ('dead-letter.table'), so there is nothing to replay",
            def.name
        ))
    })?;
    let catalogs = open_catalogs(job).await?;
    let target_table = load(&catalogs, &def.name).await?;
    let dlq_table = load(&catalogs, &dlq).await?;
    let ctx = session_over(&catalogs).await?;
    let target = def.name.to_string();
    let ledger = replayed_records(target_table.metadata(), &job.name)
        .map_err(|e| EngineError::Other(format!("table {target}: {e}")))?;

    let filter = format!(
        "FROM {dlq} WHERE job = '{}' AND target_table = '{}'",
        sql_quote(&job.name),
        sql_quote(&target)
    );
    let markers = record_set(
        &run_sql(
            &ctx,
            &format!("SELECT topic, partition, \"offset\" {filter} AND error_kind = 'replayed'"),
        )
        .await?,
    )?;
    let candidates = run_sql(
        &ctx,
        &format!(
            "SELECT topic, partition, \"offset\", kafka_timestamp, key, value, error_kind, rule, caught_at \
             {filter} AND error_kind <> 'replayed'"
        ),
    )
    .await?;
    let pending = select_pending(&candidates, &ledger, args)?;

    let mut report = ReplayReport {
        considered: pending.values().map(BTreeMap::len).sum(),
        ..ReplayReport::default()
    };
    let mut resolved = RecordSet::new();
    let mut rows = vec![];
    for (tp, records) in &pending {
        let outcome = run_partition(&compiled, &def.name, tp, records).await?;
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

    let policy = RetryPolicy::default();
    let mut all_resolved = ledger.clone();
    if !resolved.is_empty() {
        let cat = catalog_of(&catalogs, &def.name)?;
        let mut writer = TableWriter::new(
            &target_table,
            &WriterConfig {
                target_file_size: def.options.target_file_size,
                file_prefix: format!("{}-replay-{}", job.name, uuid::Uuid::new_v4().simple()),
            },
        )?;
        for b in &rows {
            writer.write(b).await?;
        }
        let files = writer.close().await?;
        let offsets = latest_checkpoint(&target, target_table.metadata(), &job.name)?
            .map(|c| c.offsets)
            .unwrap_or_default();
        let req = CommitRequest {
            job: job.name.clone(),
            files,
            from: offsets.clone(),
            to: offsets,
            properties: [(REPLAYED_KEY.to_string(), resolved.to_json())].into(),
            id: Some(resolved.id(&format!("replay\n{}\n{target}", job.name))),
        };
        let (_, outcome) = commit(&cat.catalog, target_table, &req, &policy).await?;
        report.snapshot_id = Some(outcome.snapshot_id);
        all_resolved.extend(&resolved);
        crate::failpoint::hit("replay-after-commit");
    }

    // Markers for every resolved record that has none yet (including ones an earlier,
    // interrupted replay resolved).
    let missing = all_resolved.minus(&markers);
    if !missing.is_empty() {
        let mut batch = DeadLetterBatch::new(&job.name, chrono::Utc::now().timestamp_micros());
        let message = match report.snapshot_id {
            Some(s) => format!("resolved by a replay into {target} (snapshot {s})"),
            None => format!("resolved by an earlier replay into {target}"),
        };
        for (tp, offset) in missing.iter() {
            let key = pending
                .get(tp)
                .and_then(|r| r.get(offset))
                .and_then(|p| p.key.as_deref());
            batch.push(&DeadLetter {
                target: &target,
                kind: "replayed",
                rule: None,
                message: &message,
                tp,
                offset: *offset,
                timestamp_ms: None,
                key,
                value: None,
            });
        }
        let cat = catalog_of(&catalogs, &dlq)?;
        let mut writer = TableWriter::new(
            &dlq_table,
            &WriterConfig {
                target_file_size: 128 * 1024 * 1024,
                file_prefix: format!("{}-replay-{}", job.name, uuid::Uuid::new_v4().simple()),
            },
        )?;
        writer.write(&batch.finish()?).await?;
        let files = writer.close().await?;
        let offsets = latest_checkpoint(&dlq.to_string(), dlq_table.metadata(), &job.name)?
            .map(|c| c.offsets)
            .unwrap_or_default();
        let req = CommitRequest {
            job: job.name.clone(),
            files,
            from: offsets.clone(),
            to: offsets,
            properties: Default::default(),
            id: Some(missing.id(&format!("markers\n{}\n{target}", job.name))),
        };
        commit(&cat.catalog, dlq_table, &req, &policy).await?;
        report.markers = missing.len();
    }
    Ok(report)
}

async fn load(
    catalogs: &std::collections::HashMap<String, OpenCatalog>,
    name: &TableName,
) -> Result<Table> {
    catalog_of(catalogs, name)?
        .catalog
        .load_table(&table_ident(name)?)
        .await
        .map_err(|e| {
            EngineError::Other(format!(
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
        .map_err(|e| EngineError::Other(format!("internal: {e}")))?;
    b.column_by_name(name)
        .and_then(|c| arrow_cast::cast(c, &want).ok())
        .and_then(|c| c.as_any().downcast_ref::<T>().cloned())
        .ok_or_else(|| {
            EngineError::Other(format!(
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
) -> Result<BTreeMap<TopicPartition, BTreeMap<i64, Pending>>> {
    let mut out: BTreeMap<TopicPartition, BTreeMap<i64, Pending>> = BTreeMap::new();
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
            EngineError::Other(format!(
                "dead letters of {target} come from topic {}, which no INSERT INTO {target} reads any more",
                tp.topic
            ))
        })?;
    let plan = DecodePlan::new(&job.sources[insert.source]);
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
            .map_err(|e| EngineError::Other(format!("internal: {e}")))?;
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
