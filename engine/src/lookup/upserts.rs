//! The table a compacted topic holds: the latest row of each record key.
//!
//! Decoded records are kept in the batches they were decoded in; a map from each record
//! key to the position of its latest row says which rows are live. A record without a
//! value (a tombstone) removes its key. Taking a [`Upserts::snapshot`] gathers the live
//! rows into one batch, in the order they arrived, and keeps only that batch: the rows
//! that updates and tombstones replaced are dropped then, so the store holds the table
//! plus what arrived since the last snapshot.

use std::collections::{BTreeMap, HashMap};

use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};

use floe_formats::{BadRecord, Decoded, PendingRecords};

/// Snapshots are taken early (without installing them) once the store holds this many
/// rows more than twice the live ones, so that reading a long topic's history to its end
/// does not hold every record it ever had.
const COMPACT_AFTER: usize = 1 << 16;

/// Where a row is held: (batch, row).
type Position = (u32, u32);

/// A record that could not become a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its offset.
    pub offset: i64,
    /// `no-key` or the decoding failure's kind.
    pub reason: &'static str,
    /// What was wrong with it.
    pub message: String,
}

/// The latest row of every key read so far.
pub struct Upserts {
    /// The source's columns.
    schema: SchemaRef,
    /// Rows as decoded, oldest first; after a snapshot, the first is that snapshot.
    batches: Vec<RecordBatch>,
    /// Record key → (batch, row) of its latest row.
    live: HashMap<Box<[u8]>, Position>,
    /// Rows held in `batches`, live or not.
    held: usize,
    /// Whether anything changed since the last snapshot.
    changed: bool,
    /// The next offset to read, per partition.
    next: BTreeMap<i32, i64>,
}

impl Upserts {
    /// An empty table with the source's columns.
    pub fn new(schema: SchemaRef) -> Self {
        Self {
            schema,
            batches: vec![],
            live: HashMap::new(),
            held: 0,
            changed: false,
            next: BTreeMap::new(),
        }
    }

    /// Applies the records of `partition` (in offset order) and what decoding made of
    /// them: a decoded record's row becomes its key's, a tombstone removes its key.
    /// Returns the records left out.
    pub fn apply(
        &mut self,
        partition: i32,
        recs: &PendingRecords,
        decoded: Decoded,
    ) -> Result<Vec<Skipped>, ArrowError> {
        let rows = row_of_record(recs.len(), &decoded.batch)?;
        let bad: HashMap<usize, &BadRecord> = decoded.bad.iter().map(|b| (b.index, b)).collect();
        let batch_no = self.keep(decoded.batch)?;
        let mut skipped = vec![];
        for (i, &offset) in recs.offsets.iter().enumerate() {
            let Some(key) = recs.key(i) else {
                skipped.push(Skipped {
                    offset,
                    reason: "no-key",
                    message: "the record has no key, so it is no row of the table".into(),
                });
                continue;
            };
            match (recs.value(i), rows[i]) {
                (None, _) => {
                    self.changed |= self.live.remove(key).is_some();
                }
                (Some(_), Some(row)) => {
                    self.live.insert(key.into(), (batch_no, row));
                    self.changed = true;
                }
                (Some(_), None) => {
                    let bad = bad.get(&i);
                    skipped.push(Skipped {
                        offset,
                        reason: bad.map_or("malformed", |b| b.kind.as_str()),
                        message: bad.map_or_else(|| "not decoded".into(), |b| b.message.clone()),
                    });
                }
            }
        }
        if let Some(last) = recs.offsets.last() {
            self.next.insert(partition, last + 1);
        }
        Ok(skipped)
    }

    /// Keeps the decoded rows (without the record-index column); their batch number.
    fn keep(&mut self, batch: RecordBatch) -> Result<u32, ArrowError> {
        let columns = batch.columns()[..self.schema.fields().len()].to_vec();
        let rows = RecordBatch::try_new(self.schema.clone(), columns)?;
        self.held += rows.num_rows();
        self.batches.push(rows);
        u32::try_from(self.batches.len() - 1)
            .map_err(|_| ArrowError::ComputeError("too many batches held".into()))
    }

    /// Whether the store holds so many replaced rows that it should be compacted.
    pub fn wants_compaction(&self) -> bool {
        self.held > COMPACT_AFTER + 2 * self.live.len()
    }

    /// Whether rows changed since the last snapshot.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Names what the table holds: `offsets ` and the next offset of each partition
    /// read, as `partition:offset`.
    pub fn label(&self) -> String {
        if self.next.is_empty() {
            return "empty".into();
        }
        let offsets: Vec<String> = self.next.iter().map(|(p, o)| format!("{p}:{o}")).collect();
        format!("offsets {}", offsets.join(","))
    }

    /// The live rows, in the order they arrived, as one batch, taking the changes: the
    /// next snapshot is wanted once rows change again.
    pub fn snapshot(&mut self) -> Result<RecordBatch, ArrowError> {
        let batch = self.compact()?;
        self.changed = false;
        Ok(batch)
    }

    /// The live rows, in the order they arrived, as one batch; the store keeps only it.
    pub fn compact(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut entries: Vec<(Box<[u8]>, Position)> = self.live.drain().collect();
        entries.sort_unstable_by_key(|(_, at)| *at);
        let positions: Vec<(usize, usize)> = entries
            .iter()
            .map(|(_, (b, r))| (*b as usize, *r as usize))
            .collect();
        let batch = if positions.is_empty() {
            RecordBatch::new_empty(self.schema.clone())
        } else {
            let mut columns = vec![];
            for c in 0..self.schema.fields().len() {
                let arrays: Vec<&dyn Array> =
                    self.batches.iter().map(|b| b.column(c).as_ref()).collect();
                columns.push(arrow_select::interleave::interleave(&arrays, &positions)?);
            }
            RecordBatch::try_new(self.schema.clone(), columns)?
        };
        self.live = entries
            .into_iter()
            .enumerate()
            .map(|(row, (key, _))| (key, (0, row as u32)))
            .collect();
        self.held = batch.num_rows();
        self.batches = vec![batch.clone()];
        Ok(batch)
    }
}

/// For each record of a decoded run, the row it became, if any.
fn row_of_record(records: usize, batch: &RecordBatch) -> Result<Vec<Option<u32>>, ArrowError> {
    let column = batch
        .column_by_name(floe_sql::ROW_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<arrow_array::UInt32Array>())
        .ok_or_else(|| ArrowError::SchemaError("decoded rows lack their record index".into()))?;
    let mut out = vec![None; records];
    for (row, record) in column.values().iter().enumerate() {
        if let Some(slot) = out.get_mut(*record as usize) {
            *slot = Some(row as u32);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray, UInt32Array};
    use arrow_schema::{DataType, Field, Schema};
    use floe_sql::job::ViolationKind;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("code", DataType::Utf8, false),
            Field::new("rate", DataType::Int64, true),
        ]))
    }

    /// Records `(offset, key, value)` and their decoding: `rows` are `(record, code,
    /// rate)`; every other record with a value is bad.
    fn run(
        records: &[(i64, Option<&str>, Option<&str>)],
        rows: &[(u32, &str, i64)],
    ) -> (PendingRecords, Decoded) {
        let mut recs = PendingRecords::default();
        for (o, k, v) in records {
            recs.push(*o, None, k.map(str::as_bytes), v.map(str::as_bytes));
        }
        let mut fields: Vec<_> = schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(
            floe_sql::ROW_COLUMN,
            DataType::UInt32,
            false,
        )));
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.0))),
            ],
        )
        .expect("batch");
        let bad = (0..records.len())
            .filter(|i| records[*i].2.is_some() && !rows.iter().any(|r| r.0 as usize == *i))
            .map(|index| BadRecord {
                index,
                kind: ViolationKind::Malformed,
                message: "not JSON".into(),
            })
            .collect();
        (recs, Decoded { batch, bad })
    }

    fn table(u: &mut Upserts) -> Vec<(String, i64)> {
        let b = u.snapshot().expect("snapshot");
        let codes = b
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("codes");
        let rates = b
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("rates");
        (0..b.num_rows())
            .map(|i| (codes.value(i).to_string(), rates.value(i)))
            .collect()
    }

    #[test]
    fn the_latest_value_of_each_key_is_the_row_and_a_tombstone_deletes_it() {
        let mut u = Upserts::new(schema());
        let (recs, decoded) = run(
            &[
                (0, Some("EUR"), Some("e1")),
                (1, Some("USD"), Some("u1")),
                (2, Some("GBP"), Some("g1")),
                (3, Some("EUR"), Some("e2")),
                (4, Some("GBP"), None),
                (5, None, Some("x")),
                (6, Some("CHF"), Some("{")),
            ],
            &[(0, "EUR", 1), (1, "USD", 2), (2, "GBP", 3), (3, "EUR", 10)],
        );
        let skipped = u.apply(0, &recs, decoded).expect("apply");
        assert_eq!(
            skipped
                .iter()
                .map(|s| (s.offset, s.reason))
                .collect::<Vec<_>>(),
            vec![(5, "no-key"), (6, "malformed")]
        );
        assert!(u.changed());
        assert_eq!(u.label(), "offsets 0:7");
        assert_eq!(table(&mut u), vec![("USD".into(), 2), ("EUR".into(), 10)]);
        assert!(!u.changed(), "a snapshot takes the changes");

        // After compaction to the snapshot, later updates still replace the right rows.
        let (recs, decoded) = run(
            &[(7, Some("USD"), Some("u2")), (8, Some("GBP"), Some("g2"))],
            &[(0, "USD", 20), (1, "GBP", 30)],
        );
        u.apply(0, &recs, decoded).expect("apply");
        let (recs, decoded) = run(&[(0, Some("EUR"), None)], &[]);
        u.apply(1, &recs, decoded).expect("apply");
        assert_eq!(u.label(), "offsets 0:9,1:1");
        assert_eq!(table(&mut u), vec![("USD".into(), 20), ("GBP".into(), 30)]);
    }

    #[test]
    fn a_tombstone_for_an_unknown_key_changes_nothing() {
        let mut u = Upserts::new(schema());
        let (recs, decoded) = run(&[(0, Some("EUR"), None)], &[]);
        assert!(u.apply(0, &recs, decoded).expect("apply").is_empty());
        assert!(!u.changed());
        assert!(table(&mut u).is_empty());
    }
}
