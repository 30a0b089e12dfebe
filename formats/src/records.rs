//! The records handed to the decoder and what it hands back: one partition's raw
//! records, the rows decoded from them, and the records that could not be.

use arrow_array::{Array, RecordBatch, UInt32Array};
use floe_sql::job::ViolationKind;

/// Records of one partition: their raw bytes, gathered for decoding and kept so that bad
/// records can be dead-lettered as they arrived.
#[derive(Debug, Default)]
pub struct PendingRecords {
    /// Values, each followed by a newline.
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Offsets of the records, ascending.
    pub offsets: Vec<i64>,
    timestamps: Vec<Option<i64>>,
    keys: Vec<u8>,
    /// `(start, end)` in `keys`; None for a record without a key.
    key_spans: Vec<Option<(usize, usize)>>,
    /// Records without a value.
    missing_value: Vec<bool>,
}

impl PendingRecords {
    /// Number of records gathered.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True when nothing is gathered.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Bytes of payload gathered.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Adds a record.
    pub fn push(
        &mut self,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        if let Some(v) = value {
            self.buf.extend_from_slice(v);
        }
        self.buf.push(b'\n');
        self.ends.push(self.buf.len());
        self.offsets.push(offset);
        self.timestamps.push(timestamp);
        self.missing_value.push(value.is_none());
        self.key_spans.push(key.map(|k| {
            let start = self.keys.len();
            self.keys.extend_from_slice(k);
            (start, self.keys.len())
        }));
    }

    /// Where record `i` starts in the gathered buffer.
    pub(crate) fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] }
    }

    /// The value of record `i` (None when the record had none).
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        (!self.missing_value[i]).then(|| &self.buf[self.start(i)..self.ends[i] - 1])
    }

    /// The key of record `i`.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        self.key_spans[i].map(|(s, e)| &self.keys[s..e])
    }

    /// The Kafka timestamp of record `i`, in milliseconds.
    pub fn timestamp(&self, i: usize) -> Option<i64> {
        self.timestamps[i]
    }

    /// The newest Kafka timestamp (epoch milliseconds) of the gathered records.
    pub fn newest_timestamp(&self) -> Option<i64> {
        self.timestamps.iter().flatten().max().copied()
    }

    /// The bytes of records `from..to`, newline-separated, for one decoder pass.
    pub(crate) fn span(&self, from: usize, to: usize) -> &[u8] {
        &self.buf[self.start(from)..self.ends[to - 1]]
    }
}

/// A record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// Its index among the batch's records.
    pub index: usize,
    /// What kind of bad.
    pub kind: ViolationKind,
    /// Why.
    pub message: String,
}

/// The outcome of decoding one partition's records.
#[derive(Debug)]
pub struct Decoded {
    /// The good records' rows, with [`floe_sql::ROW_COLUMN`] naming their record index.
    pub batch: RecordBatch,
    /// The bad records, by index.
    pub bad: Vec<BadRecord>,
}

/// `array` as record indexes (the row column's type; empty if it is not that).
pub(crate) fn as_rows(array: &dyn Array) -> UInt32Array {
    array
        .as_any()
        .downcast_ref::<UInt32Array>()
        .cloned()
        .unwrap_or_else(|| UInt32Array::from(Vec::<u32>::new()))
}
