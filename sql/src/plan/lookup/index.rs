//! The hash index of one version of a lookup table: from a key to the rows that hold it.
//!
//! Built once per version (per set of key columns), then probed by every batch of the
//! stream. A single integer key is hashed as an `i64`; other keys (strings, several
//! columns) in Arrow's row format, whose bytes compare equal exactly when the keys do.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow_schema::{ArrowError, DataType};
use datafusion::arrow::compute::cast;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::HashMap;

/// Marks the end of a chain of rows with one key.
const END: u32 = u32::MAX;

/// Key → first row, and each row → the next row with the same key.
pub struct LookupIndex {
    keys: Keys,
    /// For every row of the version, the next row (in table order) with its key.
    next: Vec<u32>,
}

enum Keys {
    Int(HashMap<i64, u32>),
    Rows {
        converter: RowConverter,
        map: HashMap<Box<[u8]>, u32>,
    },
}

/// Which stream rows meet which lookup rows: equal-length index arrays; the lookup index
/// is null for a stream row kept without a match (a LEFT join).
pub struct Matches {
    /// Stream rows.
    pub stream: UInt32Array,
    /// Lookup rows.
    pub lookup: UInt32Array,
    /// True when `stream` is exactly 0, 1, 2, … (every row met one lookup row).
    pub stream_in_order: bool,
}

impl LookupIndex {
    /// Indexes `batch` by the columns `keys`. Rows with a NULL key are not indexed: in SQL
    /// a NULL key meets nothing.
    pub fn build(batch: &RecordBatch, keys: &[usize]) -> Result<Self, ArrowError> {
        let columns: Vec<ArrayRef> = keys.iter().map(|k| batch.column(*k).clone()).collect();
        let n = batch.num_rows();
        let rows = u32::try_from(n)
            .ok()
            .filter(|n| *n < END)
            .ok_or_else(|| ArrowError::ComputeError(format!("{n} rows are too many to index")))?;
        let mut next = vec![END; n];
        let keys = match int_key(&columns)? {
            Some(ints) => {
                let mut map = HashMap::with_capacity(n);
                // Backwards, so that each chain runs in table order.
                for row in (0..rows).rev() {
                    if ints.is_valid(row as usize) {
                        let before = map.insert(ints.value(row as usize), row);
                        next[row as usize] = before.unwrap_or(END);
                    }
                }
                Keys::Int(map)
            }
            None => {
                let converter = converter(&columns)?;
                let converted = converter.convert_columns(&columns)?;
                let mut map: HashMap<Box<[u8]>, u32> = HashMap::with_capacity(n);
                for row in (0..rows).rev() {
                    if columns.iter().all(|c| c.is_valid(row as usize)) {
                        let key: Box<[u8]> = converted.row(row as usize).as_ref().into();
                        next[row as usize] = map.insert(key, row).unwrap_or(END);
                    }
                }
                Keys::Rows { converter, map }
            }
        };
        Ok(Self { keys, next })
    }

    /// The stream rows whose `keys` (already of the lookup key columns' types) meet
    /// lookup rows, with those rows; with `keep_unmatched`, also the rows that meet none.
    pub fn probe(&self, keys: &[ArrayRef], keep_unmatched: bool) -> Result<Matches, ArrowError> {
        let n = keys.first().map_or(0, |k| k.len());
        let mut stream = Vec::with_capacity(n);
        let mut lookup: Vec<Option<u32>> = Vec::with_capacity(n);
        let mut emit = |i: usize, first: Option<u32>| {
            let mut at = first.unwrap_or(END);
            if at == END && keep_unmatched {
                stream.push(i as u32);
                lookup.push(None);
            }
            while at != END {
                stream.push(i as u32);
                lookup.push(Some(at));
                at = self.next[at as usize];
            }
        };
        match &self.keys {
            Keys::Int(map) => {
                let ints = int_key(keys)?.ok_or_else(|| {
                    ArrowError::ComputeError("lookup keys changed type".to_string())
                })?;
                for i in 0..n {
                    let first = ints
                        .is_valid(i)
                        .then(|| map.get(&ints.value(i)).copied())
                        .flatten();
                    emit(i, first);
                }
            }
            Keys::Rows { converter, map } => {
                let rows = converter.convert_columns(keys)?;
                for i in 0..n {
                    let first = keys
                        .iter()
                        .all(|k| k.is_valid(i))
                        .then(|| map.get(rows.row(i).as_ref()).copied())
                        .flatten();
                    emit(i, first);
                }
            }
        }
        let stream_in_order =
            stream.len() == n && stream.iter().enumerate().all(|(i, s)| *s as usize == i);
        Ok(Matches {
            stream: UInt32Array::from(stream),
            lookup: UInt32Array::from(lookup),
            stream_in_order,
        })
    }

    /// An estimate of the memory the index takes, in bytes.
    pub fn memory(&self) -> usize {
        let entries = match &self.keys {
            Keys::Int(map) => map.capacity() * (8 + 4 + 1),
            Keys::Rows { map, .. } => {
                map.capacity() * (16 + 4 + 1) + map.keys().map(|k| k.len()).sum::<usize>()
            }
        };
        entries + self.next.capacity() * 4
    }
}

/// The keys as one `Int64Array`, when they are a single integer column.
fn int_key(columns: &[ArrayRef]) -> Result<Option<Arc<Int64Array>>, ArrowError> {
    let [column] = columns else {
        return Ok(None);
    };
    let integer = matches!(
        column.data_type(),
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Date32
    );
    if !integer {
        return Ok(None);
    }
    let ints = cast(column, &DataType::Int64)?;
    Ok(ints
        .as_any()
        .downcast_ref::<Int64Array>()
        .map(|a| Arc::new(a.clone())))
}

fn converter(columns: &[ArrayRef]) -> Result<RowConverter, ArrowError> {
    RowConverter::new(
        columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;
    use arrow_schema::{Field, Schema};

    fn table() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("code", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow_array::Int32Array::from(vec![
                    Some(1),
                    Some(2),
                    None,
                    Some(2),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("c"),
                    None,
                ])),
            ],
        )
        .expect("batch")
    }

    fn pairs(m: &Matches) -> Vec<(u32, Option<u32>)> {
        m.stream
            .values()
            .iter()
            .zip(m.lookup.iter())
            .map(|(s, l)| (*s, l))
            .collect()
    }

    #[test]
    fn an_integer_key_meets_every_row_that_holds_it_in_table_order() {
        let index = LookupIndex::build(&table(), &[0]).expect("index");
        let probe: ArrayRef = Arc::new(arrow_array::Int32Array::from(vec![
            Some(2),
            Some(9),
            None,
            Some(1),
        ]));
        let inner = index
            .probe(std::slice::from_ref(&probe), false)
            .expect("probe");
        assert_eq!(
            pairs(&inner),
            vec![(0, Some(1)), (0, Some(3)), (3, Some(0))]
        );
        assert!(!inner.stream_in_order);
        let left = index.probe(&[probe], true).expect("probe");
        assert_eq!(
            pairs(&left),
            vec![
                (0, Some(1)),
                (0, Some(3)),
                (1, None),
                (2, None),
                (3, Some(0))
            ]
        );
    }

    #[test]
    fn a_string_key_is_matched_through_the_row_format_and_null_meets_nothing() {
        let index = LookupIndex::build(&table(), &[1]).expect("index");
        let probe: ArrayRef = Arc::new(StringArray::from(vec![Some("c"), None, Some("a")]));
        let m = index.probe(&[probe], true).expect("probe");
        assert_eq!(pairs(&m), vec![(0, Some(2)), (1, None), (2, Some(0))]);
        assert!(m.stream_in_order);
    }

    #[test]
    fn two_keys_must_both_match() {
        let index = LookupIndex::build(&table(), &[0, 1]).expect("index");
        let ids: ArrayRef = Arc::new(arrow_array::Int32Array::from(vec![2, 2]));
        let codes: ArrayRef = Arc::new(StringArray::from(vec!["b", "a"]));
        let m = index.probe(&[ids, codes], false).expect("probe");
        assert_eq!(pairs(&m), vec![(0, Some(1))]);
    }
}
