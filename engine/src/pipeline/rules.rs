//! Running one INSERT over a batch and sorting its records into good rows and violations.
//!
//! The SELECT runs over the whole batch at once; only when it fails is the batch split
//! in halves until the failing records stand alone (kind `expression`); only errors a
//! row's values can cause are split that way, a failure of the whole query (memory, an
//! internal error) stops the job (see [`is_row_error`]). NOT NULL and
//! CHECK constraints are evaluated over each output batch as whole columns; a row is
//! reported for the first rule it breaks, NOT NULL before the CHECKs in declared order.

use std::sync::Arc;

use arrow_array::{Array, BooleanArray, RecordBatch, UInt32Array};
use arrow_select::filter::filter_record_batch;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use floe_sql::job::ViolationKind;
use floe_sql::{BatchSlot, CompiledInsert, ROW_COLUMN};

use crate::error::{EngineError, Result};

/// A record that breaks a rule of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The record's index in its batch.
    pub index: usize,
    /// What kind of rule.
    pub kind: ViolationKind,
    /// The constraint's name, for `check`.
    pub rule: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl Violation {
    /// The name policies and counters use: the constraint's name, else the kind's.
    pub fn rule_name(&self) -> &str {
        self.rule.as_deref().unwrap_or(self.kind.as_str())
    }
}

/// What an INSERT made of a batch.
#[derive(Debug, Default)]
pub struct Sorted {
    /// Rows for the table: its columns, then the row column.
    pub good: Vec<RecordBatch>,
    /// Records that broke a rule (not yet including those that failed to decode).
    pub violations: Vec<Violation>,
    /// Records at or after `count_from` that the SELECT filtered out.
    pub filtered: u64,
}

/// Runs `insert` over `input` (rows with the slot schema, from a batch of `records`
/// records) and sorts the result; filtered records are counted from `count_from` on.
pub async fn run_insert(
    insert: &CompiledInsert,
    slot: &BatchSlot,
    ctx: &Arc<TaskContext>,
    input: RecordBatch,
    records: usize,
    count_from: usize,
) -> Result<Sorted> {
    let mut sorted = Sorted::default();
    // Ranges of `input` still to run, last first; a failing range is split in halves.
    let mut todo = vec![(0, input.num_rows())];
    while let Some((from, to)) = todo.pop() {
        if from >= to {
            continue;
        }
        slot.set(vec![input.slice(from, to - from)]);
        match insert.execute(ctx.clone()).await {
            Ok(out) => sorted
                .good
                .extend(out.into_iter().filter(|b| b.num_rows() > 0)),
            Err(e) if !is_row_error(&e) => {
                slot.set(vec![]);
                return Err(EngineError::QueryFailed {
                    table: insert.target.to_string(),
                    message: e.strip_backtrace(),
                });
            }
            Err(e) if to - from == 1 => sorted.violations.push(Violation {
                index: row_numbers(&input.slice(from, 1))?
                    .values()
                    .first()
                    .copied()
                    .unwrap_or_default() as usize,
                kind: ViolationKind::Expression,
                rule: None,
                message: e.strip_backtrace(),
            }),
            Err(_) => {
                let mid = from + (to - from) / 2;
                todo.push((mid, to));
                todo.push((from, mid));
            }
        }
    }
    slot.set(vec![]);

    // Which records produced at least one row (a row-wise SELECT may also unnest).
    let mut produced = vec![false; records];
    let mut checked = Vec::with_capacity(sorted.good.len());
    for batch in std::mem::take(&mut sorted.good) {
        let rows = row_numbers(&batch)?;
        for r in rows.values().iter() {
            if let Some(p) = produced.get_mut(*r as usize) {
                *p = true;
            }
        }
        let broken = broken_rules(insert, &batch)?;
        if broken.is_empty() {
            checked.push(batch);
            continue;
        }
        let mut keep = vec![true; batch.num_rows()];
        for (row, k) in keep.iter_mut().enumerate() {
            if let Some((kind, rule, message, _)) = broken.iter().find(|(.., m)| m.value(row)) {
                *k = false;
                sorted.violations.push(Violation {
                    index: rows.value(row) as usize,
                    kind: *kind,
                    rule: rule.clone(),
                    message: message.clone(),
                });
            }
        }
        let kept = filter_record_batch(&batch, &BooleanArray::from(keep)).map_err(internal)?;
        if kept.num_rows() > 0 {
            checked.push(kept);
        }
    }
    sorted.good = checked;
    for v in &sorted.violations {
        if v.kind == ViolationKind::Expression
            && let Some(p) = produced.get_mut(v.index)
        {
            *p = true;
        }
    }
    sorted.filtered = row_numbers(&input)?
        .values()
        .iter()
        .filter(|r| {
            **r as usize >= count_from && !produced.get(**r as usize).copied().unwrap_or(true)
        })
        .count() as u64;
    sorted.violations.sort_by_key(|v| v.index);
    Ok(sorted)
}

/// True when `e` is an error a row's own values can cause (a cast, an overflow, a
/// division by zero, a function refusing its argument): the batch is then split until the
/// failing rows stand alone as `expression` violations. Anything else (memory exhausted,
/// an internal error, I/O) is a failure of the whole query: dead-lettering rows for it
/// would hide a fault in Floe or the machine behind bad-record counts.
fn is_row_error(e: &DataFusionError) -> bool {
    use arrow_schema::ArrowError as A;
    match e.find_root() {
        DataFusionError::ArrowError(a, _) => matches!(
            a.as_ref(),
            A::CastError(_)
                | A::ComputeError(_)
                | A::DivideByZero
                | A::ArithmeticOverflow(_)
                | A::ParseError(_)
                | A::InvalidArgumentError(_)
        ),
        DataFusionError::Execution(_) => true,
        _ => false,
    }
}

type Broken = (ViolationKind, Option<String>, String, BooleanArray);

/// Per rule that some row of `batch` breaks: the rule and the rows that break it.
fn broken_rules(insert: &CompiledInsert, batch: &RecordBatch) -> Result<Vec<Broken>> {
    let mut out = vec![];
    for (i, field) in insert.schema.fields().iter().enumerate() {
        let col = batch.column(i);
        if !field.is_nullable() && col.null_count() > 0 {
            let mask = arrow_arith::boolean::is_null(col).map_err(internal)?;
            out.push((
                ViolationKind::NotNull,
                None,
                format!(
                    "column {} of {} is NOT NULL but the SELECT gives NULL",
                    field.name(),
                    insert.target
                ),
                mask,
            ));
        }
    }
    for check in &insert.checks {
        let mask = check.broken(batch).map_err(|e| {
            EngineError::Internal(format!(
                "evaluating CHECK {} of {}: {}",
                check.name,
                insert.target,
                e.strip_backtrace()
            ))
        })?;
        if mask.true_count() > 0 {
            out.push((
                ViolationKind::Check,
                Some(check.name.clone()),
                format!("CHECK {} ({}) is false", check.name, check.sql),
                mask,
            ));
        }
    }
    Ok(out)
}

/// The row column of a batch.
pub fn row_numbers(batch: &RecordBatch) -> Result<UInt32Array> {
    batch
        .column_by_name(ROW_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<UInt32Array>())
        .cloned()
        .ok_or_else(|| EngineError::Internal(format!("batch without {ROW_COLUMN}")))
}

/// `batch` without its last column (the row column).
pub fn without_row_column(batch: &RecordBatch) -> Result<RecordBatch> {
    let keep: Vec<usize> = (0..batch.num_columns().saturating_sub(1)).collect();
    batch.project(&keep).map_err(internal)
}

fn internal(e: arrow_schema::ArrowError) -> EngineError {
    EngineError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::ArrowError;

    #[test]
    fn only_errors_of_a_rows_values_are_bad_records() {
        let row = |a: ArrowError| DataFusionError::ArrowError(Box::new(a), None);
        assert!(is_row_error(&row(ArrowError::DivideByZero)));
        assert!(is_row_error(&row(ArrowError::CastError("x".into()))));
        assert!(is_row_error(&DataFusionError::Execution(
            "bad argument".into()
        )));
        assert!(is_row_error(&DataFusionError::Context(
            "in a projection".into(),
            Box::new(row(ArrowError::ArithmeticOverflow("x".into())))
        )));
        assert!(!is_row_error(&DataFusionError::ResourcesExhausted(
            "out of memory".into()
        )));
        assert!(!is_row_error(&DataFusionError::Internal("a bug".into())));
        assert!(!is_row_error(&row(ArrowError::MemoryError("x".into()))));
    }
}
