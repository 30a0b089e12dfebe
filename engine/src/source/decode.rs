//! Decoding Kafka record values into Arrow batches with a source's declared schema.
//!
//! Records of one partition are gathered into one buffer and decoded by arrow-json in a
//! single pass, straight into Arrow arrays: no per-record `serde_json::Value`. Only when
//! the batch fails, or the number of rows does not match the number of records, is each
//! record decoded on its own, to name the exact offset that is bad.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_json::ReaderBuilder;
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use floe_catalog::TopicPartition;
use floe_sql::job::{MetadataKey, SourceDef};

use crate::error::{EngineError, Result};

/// What the decoder needs to know about a source.
#[derive(Debug, Clone)]
pub struct DecodePlan {
    payload: SchemaRef,
    full: SchemaRef,
    /// For each column of `full`: where it comes from.
    columns: Vec<ColumnSource>,
    needs_keys: bool,
}

#[derive(Debug, Clone)]
enum ColumnSource {
    Payload(usize),
    Meta(MetadataKey, DataType),
}

impl DecodePlan {
    /// The plan for `source`.
    pub fn new(source: &SourceDef) -> Self {
        let mut payload_idx = 0;
        let columns = source
            .columns
            .iter()
            .map(|c| match c.metadata {
                Some(k) => ColumnSource::Meta(k, c.data_type.clone()),
                None => {
                    payload_idx += 1;
                    ColumnSource::Payload(payload_idx - 1)
                }
            })
            .collect();
        Self {
            payload: source.payload_schema(),
            full: source.schema(),
            needs_keys: source
                .columns
                .iter()
                .any(|c| c.metadata == Some(MetadataKey::Key)),
            columns,
        }
    }

    /// The schema of decoded batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.full
    }
}

/// Records of one partition waiting to be decoded.
#[derive(Debug, Default)]
pub struct PendingRecords {
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Offsets of the records, ascending.
    pub offsets: Vec<i64>,
    timestamps: Vec<Option<i64>>,
    keys: Vec<Option<Vec<u8>>>,
    has_empty: bool,
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

    /// Adds a record. A record without a value is kept as empty, which fails decoding.
    pub fn push(
        &mut self,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        keep_key: bool,
    ) {
        self.has_empty |= value.is_none_or(|v| v.iter().all(u8::is_ascii_whitespace));
        if let Some(v) = value {
            self.buf.extend_from_slice(v);
        }
        self.buf.push(b'\n');
        self.ends.push(self.buf.len());
        self.offsets.push(offset);
        self.timestamps.push(timestamp);
        if keep_key {
            self.keys.push(key.map(<[u8]>::to_vec));
        }
    }

    fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i] - 1]
    }
}

fn decode_bytes(schema: &SchemaRef, bytes: &[u8], rows: usize) -> Result<RecordBatch, String> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.max(1))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = decoder.decode(rest).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        rest = &rest[n..];
        if decoder.len() > rows {
            return Err("record holds more than one JSON value".into());
        }
    }
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err("a record holds more than one JSON value".into());
    }
    if decoder.has_partial_record() {
        return Err("truncated JSON".into());
    }
    let batch = decoder.flush().map_err(|e| e.to_string())?;
    let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
    if batch.num_rows() != rows {
        return Err(format!(
            "expected {rows} JSON object(s), found {}",
            batch.num_rows()
        ));
    }
    Ok(batch)
}

/// Finds the first record that does not decode on its own, for the error message.
fn first_bad_record(
    plan: &DecodePlan,
    recs: &PendingRecords,
    tp: &TopicPartition,
    whole: String,
) -> EngineError {
    for i in 0..recs.len() {
        let r = recs.record(i);
        let res = if r.iter().all(u8::is_ascii_whitespace) {
            Err("the record has no value".to_string())
        } else {
            decode_bytes(&plan.payload, r, 1).map(|_| ())
        };
        if let Err(message) = res {
            return EngineError::Decode {
                tp: tp.clone(),
                offset: recs.offsets[i],
                message,
            };
        }
    }
    EngineError::Decode {
        tp: tp.clone(),
        offset: recs.offsets.first().copied().unwrap_or(-1),
        message: whole,
    }
}

/// Decodes the gathered records of `tp` into one batch with the source's full schema.
pub fn decode(
    plan: &DecodePlan,
    tp: &TopicPartition,
    recs: &PendingRecords,
) -> Result<RecordBatch> {
    let n = recs.len();
    let payload = match decode_bytes(&plan.payload, &recs.buf, n) {
        Ok(b) if !recs.has_empty => b,
        Ok(_) => {
            return Err(first_bad_record(
                plan,
                recs,
                tp,
                "a record has no value".into(),
            ));
        }
        Err(whole) => return Err(first_bad_record(plan, recs, tp, whole)),
    };
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len());
    for c in &plan.columns {
        cols.push(match c {
            ColumnSource::Payload(i) => payload.column(*i).clone(),
            ColumnSource::Meta(key, ty) => meta_column(*key, ty, tp, recs)?,
        });
    }
    RecordBatch::try_new(plan.full.clone(), cols).map_err(|e| EngineError::Decode {
        tp: tp.clone(),
        offset: recs.offsets.first().copied().unwrap_or(-1),
        message: e.to_string(),
    })
}

fn meta_column(
    key: MetadataKey,
    ty: &DataType,
    tp: &TopicPartition,
    recs: &PendingRecords,
) -> Result<ArrayRef> {
    let n = recs.len();
    Ok(match key {
        MetadataKey::Topic => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            tp.topic.as_str(),
            n,
        ))),
        MetadataKey::Partition => match ty {
            DataType::Int64 => Arc::new(Int64Array::from_value(i64::from(tp.partition), n)),
            _ => Arc::new(Int32Array::from_value(tp.partition, n)),
        },
        MetadataKey::Offset => Arc::new(Int64Array::from(recs.offsets.clone())),
        MetadataKey::Timestamp => match ty {
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
                TimestampMicrosecondArray::from(
                    recs.timestamps
                        .iter()
                        .map(|t| t.map(|ms| ms.saturating_mul(1000)))
                        .collect::<Vec<_>>(),
                )
                .with_timezone_opt(tz.clone()),
            ),
            _ => Arc::new(Int64Array::from(recs.timestamps.clone())),
        },
        MetadataKey::Key => match ty {
            DataType::Utf8 => {
                let mut b = StringBuilder::new();
                for (i, k) in recs.keys.iter().enumerate() {
                    match k {
                        None => b.append_null(),
                        Some(k) => match std::str::from_utf8(k) {
                            Ok(s) => b.append_value(s),
                            Err(e) => {
                                return Err(EngineError::Decode {
                                    tp: tp.clone(),
                                    offset: recs.offsets[i],
                                    message: format!("the key is not valid UTF-8: {e}"),
                                });
                            }
                        },
                    }
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = BinaryBuilder::new();
                for k in &recs.keys {
                    b.append_option(k.as_deref());
                }
                Arc::new(b.finish())
            }
        },
    })
}

impl DecodePlan {
    /// Whether record keys must be kept.
    pub fn needs_keys(&self) -> bool {
        self.needs_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_sql::{EnvVariables, parse_job};

    fn plan() -> DecodePlan {
        let job = parse_job(
            "t.sql",
            "CREATE CATALOG c WITH ('type'='sql','uri'='sqlite://x.db','warehouse'='file:///tmp/w');
             CREATE SOURCE s (id BIGINT NOT NULL, name VARCHAR, p INT METADATA FROM 'partition', o BIGINT METADATA FROM 'offset')
               WITH ('connector'='kafka','topic'='t','format'='json','properties.bootstrap.servers'='x:1');
             CREATE TABLE c.n.t (id BIGINT);
             INSERT INTO c.n.t SELECT id FROM s;",
            &EnvVariables,
        )
        .expect("job parses");
        DecodePlan::new(&job.sources[0])
    }

    fn recs(values: &[&str]) -> PendingRecords {
        let mut r = PendingRecords::default();
        for (i, v) in values.iter().enumerate() {
            r.push(100 + i as i64, Some(5), None, Some(v.as_bytes()), false);
        }
        r
    }

    #[test]
    fn decodes_payload_and_metadata() -> Result<()> {
        let tp = TopicPartition::new("t", 3);
        let b = decode(
            &plan(),
            &tp,
            &recs(&[r#"{"id":1,"name":"a"}"#, r#"{"id":2}"#]),
        )?;
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema().field(2).name(), "p");
        let offsets = b
            .column(3)
            .as_any()
            .downcast_ref::<Int64Array>()
            .map(|a| a.values().to_vec());
        assert_eq!(offsets, Some(vec![100, 101]));
        Ok(())
    }

    #[test]
    fn bad_records_are_named_by_offset() {
        let tp = TopicPartition::new("t", 0);
        for (bad, what) in [
            (r#"{"id":"x"}"#, ""),
            (r#"{"name":"no id"}"#, ""),
            (r#"{"id":1"#, ""),
            (r#"{"id":1}{"id":2}"#, ""),
            ("", "no value"),
            ("not json", ""),
        ] {
            let e =
                decode(&plan(), &tp, &recs(&[r#"{"id":1}"#, bad, r#"{"id":3}"#])).expect_err(bad);
            let text = e.to_string();
            assert!(text.contains("t/0 offset 101"), "{bad}: {text}");
            assert!(text.contains(what), "{bad}: {text}");
        }
    }
}
