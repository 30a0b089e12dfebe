//! Decoding Kafka record values into Arrow batches with a source's declared schema.
//!
//! Records of one partition are gathered into one buffer and decoded by arrow-json in a
//! single pass, straight into Arrow arrays: no per-record `serde_json::Value`. When a
//! pass fails, the records are split in halves and each half decoded again, so a batch
//! with k bad records costs about k·log(n) extra passes over small slices, never a
//! record-by-record decode of the whole batch. Good records always come through; bad
//! ones are returned with their kind and reason, for the tables' policies to handle.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow_json::ReaderBuilder;
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use arrow_select::concat::concat_batches;
use arrow_select::filter::filter_record_batch;
use floe_catalog::TopicPartition;
use floe_sql::job::{MetadataKey, ViolationKind};

use crate::error::{FormatError, Result};
use crate::evolution::Verdict;
use crate::framing::HEADER_LEN;
use crate::keys::{key_records, take_keyed};
use crate::plan::{ColumnSource, DecodePlan, Payload};
use crate::records::{BadRecord, Decoded, PendingRecords, as_rows};
use crate::value_failure::ValueFailure;

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
            return Err("the record holds more than one JSON value".into());
        }
    }
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err("the record holds more than one JSON value".into());
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

/// Decodes JSON records `from..to` into the declared payload columns; `framed`
/// records (prechecked) have their Confluent headers blanked out of a copy first.
fn decode_json(
    plan: &DecodePlan,
    recs: &PendingRecords,
    from: usize,
    to: usize,
    framed: bool,
) -> Result<RecordBatch, String> {
    let (span, rows) = (recs.span(from, to), to - from);
    let blanked;
    let bytes = if framed {
        let mut copy = span.to_vec();
        let base = recs.start(from);
        for i in from..to {
            let at = recs.start(i) - base;
            if let Some(header) = copy.get_mut(at..at + HEADER_LEN) {
                header.fill(b' ');
            }
        }
        blanked = copy;
        &blanked[..]
    } else {
        span
    };
    let batch = decode_bytes(&plan.values.wire, bytes, rows)?;
    plan.values.finish(&plan.payload, bytes, batch, |schema| {
        decode_bytes(schema, bytes, rows)
    })
}

/// Decodes records `from..to` in the source's format; a failure of one record says
/// what kind of bad record it is.
fn decode_payload(
    plan: &DecodePlan,
    recs: &PendingRecords,
    from: usize,
    to: usize,
) -> Result<RecordBatch, BadRecord> {
    let values = || (from..to).map(|i| recs.value(i).unwrap_or_default());
    let failed = |f: ValueFailure| BadRecord {
        index: from,
        kind: f.kind,
        message: f.message,
    };
    let framed = match &plan.format {
        Payload::Json => false,
        Payload::Schema(format) => match format.decode_binary(&mut values()) {
            Some(decoded) => return decoded.map_err(failed),
            None => true,
        },
    };
    decode_json(plan, recs, from, to, framed).map_err(|message| {
        let value = recs.value(from).unwrap_or_default();
        let skip = if framed { HEADER_LEN } else { 0 };
        classify(value.get(skip..).unwrap_or_default(), message)
    })
}

/// Names the kind of a record that failed to decode alone: not one well-formed JSON
/// object is `malformed`; a well-formed object whose fields do not fit is `type`.
fn classify(value: &[u8], message: String) -> BadRecord {
    if let Err(e) = std::str::from_utf8(value) {
        return BadRecord {
            index: 0,
            kind: ViolationKind::Malformed,
            message: format!("the value is not valid UTF-8: {e}"),
        };
    }
    let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok();
    let is_object = value
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let kind = if well_formed && is_object {
        ViolationKind::Type
    } else {
        ViolationKind::Malformed
    };
    let message = match (well_formed, is_object) {
        (true, false) => "the value is JSON but not an object".to_string(),
        _ => message.trim_start_matches("Json error: ").to_string(),
    };
    BadRecord {
        index: 0,
        kind,
        message,
    }
}

/// Decodes records `from..to`, splitting around failures; pushes the good parts (with
/// their first record index) and the bad records.
fn decode_range(
    plan: &DecodePlan,
    recs: &PendingRecords,
    from: usize,
    to: usize,
    good: &mut Vec<(usize, RecordBatch)>,
    bad: &mut Vec<BadRecord>,
) {
    if from >= to {
        return;
    }
    match decode_payload(plan, recs, from, to) {
        Ok(b) => good.push((from, b)),
        Err(failure) if to - from == 1 => bad.push(BadRecord {
            index: from,
            ..failure
        }),
        Err(_) => {
            let mid = from + (to - from) / 2;
            decode_range(plan, recs, from, mid, good, bad);
            decode_range(plan, recs, mid, to, good, bad);
        }
    }
}

/// Records that are bad before any decoding: no value, too large, a key that is not
/// UTF-8, an Avro value whose framing or schema is wrong. An error is a schema registry
/// that refuses to answer.
fn precheck(
    plan: &DecodePlan,
    tp: &TopicPartition,
    recs: &PendingRecords,
    i: usize,
) -> Result<Option<BadRecord>> {
    let bad = |kind, message: String| {
        Ok(Some(BadRecord {
            index: i,
            kind,
            message,
        }))
    };
    let Some(value) = recs.value(i) else {
        return bad(ViolationKind::Malformed, "the record has no value".into());
    };
    if let Some(max) = plan.max_record_bytes
        && value.len() as u64 > max
    {
        return bad(
            ViolationKind::TooLarge,
            format!(
                "the value has {} bytes, more than 'source.max-record-bytes' ({max})",
                value.len()
            ),
        );
    }
    if let Some(watch) = &plan.watch {
        let verdict = plan
            .verdict(watch, value)
            .map_err(|e| FormatError::Decode {
                tp: tp.clone(),
                offset: recs.offsets[i],
                message: e.to_string(),
            })?;
        match verdict {
            Verdict::Fits => {}
            Verdict::Refused(reason) => return bad(ViolationKind::Type, reason),
            Verdict::Adds(change) => return Err(FormatError::SchemaChanged(Box::new(change))),
        }
    }
    let failure = match &plan.format {
        Payload::Json => None,
        Payload::Schema(format) => format.precheck(value).transpose(),
    };
    match failure {
        Some(Ok(f)) => return bad(f.kind, f.message),
        Some(Err(e)) => {
            return Err(FormatError::Decode {
                tp: tp.clone(),
                offset: recs.offsets[i],
                message: e.to_string(),
            });
        }
        None => {}
    }
    let text = match &plan.format {
        Payload::Json => Some(value),
        Payload::Schema(format) if format.json_body() => {
            Some(value.get(HEADER_LEN..).unwrap_or_default())
        }
        Payload::Schema(_) => None,
    };
    if text.is_some_and(|t| t.iter().all(u8::is_ascii_whitespace)) {
        return bad(ViolationKind::Malformed, "the record value is empty".into());
    }
    if plan.utf8_keys
        && let Some(Err(e)) = recs.key(i).map(std::str::from_utf8)
    {
        return bad(
            ViolationKind::Malformed,
            format!("the key is not valid UTF-8: {e}"),
        );
    }
    Ok(None)
}

/// Decodes the gathered records of `tp`: the good ones into one batch with the slot
/// schema, the bad ones into [`BadRecord`]s.
pub fn decode(plan: &DecodePlan, tp: &TopicPartition, recs: &PendingRecords) -> Result<Decoded> {
    let n = recs.len();
    let mut bad = vec![];
    let mut good = vec![];
    // Runs of records between pre-checked bad ones, each decoded in as few passes as it can.
    let mut run_start = 0;
    for i in 0..n {
        if let Some(b) = precheck(plan, tp, recs, i)? {
            decode_range(plan, recs, run_start, i, &mut good, &mut bad);
            bad.push(b);
            run_start = i + 1;
        }
    }
    decode_range(plan, recs, run_start, n, &mut good, &mut bad);

    let internal = |e: arrow_schema::ArrowError| FormatError::Decode {
        tp: tp.clone(),
        offset: recs.offsets.first().copied().unwrap_or(-1),
        message: e.to_string(),
    };
    // Row numbers of the decoded rows, in record order.
    let mut rows: Vec<u32> = Vec::with_capacity(n);
    for (first, b) in &good {
        rows.extend((*first..*first + b.num_rows()).map(|r| r as u32));
    }
    let payload = match good.len() {
        1 => good
            .pop()
            .map(|(_, b)| b)
            .unwrap_or_else(|| RecordBatch::new_empty(plan.payload.clone())),
        _ => concat_batches(&plan.payload, good.iter().map(|(_, b)| b)).map_err(internal)?,
    };
    let rows = UInt32Array::from(rows);

    // NOT NULL payload columns, checked over the whole batch.
    let (payload, rows) = match missing_required(plan, &payload) {
        None => (payload, rows),
        Some(missing) => {
            for (r, is_missing) in missing.iter().enumerate() {
                if is_missing == Some(true) {
                    let column = plan
                        .required
                        .iter()
                        .find(|(c, _)| payload.column(*c).is_null(r))
                        .map_or("?", |(_, name)| name.as_str());
                    bad.push(BadRecord {
                        index: rows.value(r) as usize,
                        kind: ViolationKind::NotNull,
                        message: format!("field '{column}' is missing or null, but the source declares it NOT NULL"),
                    });
                }
            }
            let keep = arrow_arith::boolean::not(&missing).map_err(internal)?;
            let payload = filter_record_batch(&payload, &keep).map_err(internal)?;
            let rows = arrow_select::filter::filter(&rows, &keep).map_err(internal)?;
            (payload, as_rows(rows.as_ref()))
        }
    };
    let (payload, rows, keys) = match &plan.key {
        Some(k) => {
            let (key_recs, at) = key_records(recs, &rows, &mut bad);
            let decoded = decode(&k.plan, tp, &key_recs)?;
            let (payload, rows, keys) =
                take_keyed(tp, recs, (payload, rows), (decoded, at), &mut bad)?;
            (payload, rows, Some(keys))
        }
        None => (payload, rows, None),
    };
    bad.sort_by_key(|b| b.index);

    let mut cols: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len() + 1);
    for c in &plan.columns {
        cols.push(match (c, &keys) {
            (ColumnSource::Payload(i), _) => payload.column(*i).clone(),
            (ColumnSource::Meta(key, ty), _) => meta_column(*key, ty, tp, recs, &rows),
            (ColumnSource::Key(i), Some(keys)) => keys.column(*i).clone(),
            (ColumnSource::Key(_), None) => {
                return Err(FormatError::Decode {
                    tp: tp.clone(),
                    offset: recs.offsets.first().copied().unwrap_or(-1),
                    message: "a key column without a key plan".into(),
                });
            }
        });
    }
    cols.push(Arc::new(rows));
    let batch = RecordBatch::try_new(plan.full.clone(), cols).map_err(internal)?;
    Ok(Decoded { batch, bad })
}

/// Rows where a NOT NULL payload column is null, or None when there are none.
fn missing_required(plan: &DecodePlan, payload: &RecordBatch) -> Option<BooleanArray> {
    let mut mask: Option<BooleanArray> = None;
    for (c, _) in &plan.required {
        let col = payload.column(*c);
        if col.null_count() == 0 {
            continue;
        }
        let nulls = arrow_arith::boolean::is_null(col).ok()?;
        mask = Some(match mask {
            None => nulls,
            Some(m) => arrow_arith::boolean::or(&m, &nulls).ok()?,
        });
    }
    mask
}

fn meta_column(
    key: MetadataKey,
    ty: &DataType,
    tp: &TopicPartition,
    recs: &PendingRecords,
    rows: &UInt32Array,
) -> ArrayRef {
    let n = rows.len();
    let idx = || rows.values().iter().map(|r| *r as usize);
    match key {
        MetadataKey::Topic => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            tp.topic.as_str(),
            n,
        ))),
        MetadataKey::Partition => match ty {
            DataType::Int64 => Arc::new(Int64Array::from_value(i64::from(tp.partition), n)),
            _ => Arc::new(Int32Array::from_value(tp.partition, n)),
        },
        MetadataKey::Offset => {
            Arc::new(Int64Array::from_iter_values(idx().map(|i| recs.offsets[i])))
        }
        MetadataKey::Timestamp => match ty {
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
                TimestampMicrosecondArray::from_iter(
                    idx().map(|i| recs.timestamp(i).map(|ms| ms.saturating_mul(1000))),
                )
                .with_timezone_opt(tz.clone()),
            ),
            _ => Arc::new(Int64Array::from_iter(idx().map(|i| recs.timestamp(i)))),
        },
        MetadataKey::Key => match ty {
            DataType::Utf8 => {
                let mut b = StringBuilder::new();
                for i in idx() {
                    // Keys that are not UTF-8 were set aside by `precheck`.
                    b.append_option(recs.key(i).and_then(|k| std::str::from_utf8(k).ok()));
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = BinaryBuilder::new();
                for i in idx() {
                    b.append_option(recs.key(i));
                }
                Arc::new(b.finish())
            }
        },
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
             CREATE SOURCE s (id BIGINT NOT NULL, name VARCHAR, amount DECIMAL(6, 2), p INT METADATA FROM 'partition', o BIGINT METADATA FROM 'offset')
               WITH ('connector'='kafka','topic'='t','format'='json','properties.bootstrap.servers'='x:1',
                     'source.max-record-bytes'='64');
             CREATE TABLE c.n.t (id BIGINT);
             INSERT INTO c.n.t SELECT id FROM s;",
            &EnvVariables,
        )
        .expect("job parses");
        DecodePlan::new(&job.sources[0]).expect("plan")
    }

    fn recs(values: &[&str]) -> PendingRecords {
        let mut r = PendingRecords::default();
        for (i, v) in values.iter().enumerate() {
            r.push(100 + i as i64, Some(5), None, Some(v.as_bytes()));
        }
        r
    }

    fn column<T: Clone + 'static>(b: &RecordBatch, name: &str) -> Option<T> {
        b.column_by_name(name)?
            .as_any()
            .downcast_ref::<T>()
            .cloned()
    }

    #[test]
    fn decodes_payload_and_metadata() -> Result<()> {
        let tp = TopicPartition::new("t", 3);
        let d = decode(
            &plan(),
            &tp,
            &recs(&[r#"{"id":1,"name":"a"}"#, r#"{"id":2}"#]),
        )?;
        assert!(d.bad.is_empty());
        assert_eq!(d.batch.num_rows(), 2);
        let offsets = column::<Int64Array>(&d.batch, "o").map(|a| a.values().to_vec());
        assert_eq!(offsets, Some(vec![100, 101]));
        Ok(())
    }

    #[test]
    fn bad_records_are_isolated_with_their_kind() -> Result<()> {
        let tp = TopicPartition::new("t", 0);
        let cases: [(&[u8], ViolationKind); 10] = [
            (b"{\"id\":1,\"name\":\"\xff\"}", ViolationKind::Malformed),
            (br#"{"id":"x"}"#, ViolationKind::Type),
            (br#"{"id":1,"amount":123456789}"#, ViolationKind::Type),
            (br#"{"name":"no id"}"#, ViolationKind::NotNull),
            (br#"{"id":null}"#, ViolationKind::NotNull),
            (br#"{"id":1"#, ViolationKind::Malformed),
            (br#"{"id":1}{"id":2}"#, ViolationKind::Malformed),
            (b"  ", ViolationKind::Malformed),
            (b"[1, 2]", ViolationKind::Malformed),
            (
                br#"{"id":1,"name":"far too long for the limit of sixty-four bytes, by quite a margin"}"#,
                ViolationKind::TooLarge,
            ),
        ];
        for (bad, kind) in cases {
            let mut r = recs(&[r#"{"id":1}"#]);
            r.push(101, None, None, Some(bad));
            r.push(102, None, None, Some(br#"{"id":3}"#));
            r.push(103, None, None, Some(br#"{"id":4}"#));
            let d = decode(&plan(), &tp, &r)?;
            let bad = String::from_utf8_lossy(bad);
            assert_eq!(d.bad.len(), 1, "{bad}: {:?}", d.bad);
            assert_eq!(
                (d.bad[0].index, d.bad[0].kind),
                (1, kind),
                "{bad}: {:?}",
                d.bad
            );
            // The good records still come through, with their record numbers.
            let rows =
                column::<UInt32Array>(&d.batch, floe_sql::ROW_COLUMN).map(|a| a.values().to_vec());
            assert_eq!(rows, Some(vec![0, 2, 3]), "{bad}");
            let offsets = column::<Int64Array>(&d.batch, "o").map(|a| a.values().to_vec());
            assert_eq!(offsets, Some(vec![100, 102, 103]), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn a_record_without_value_is_malformed_and_kept_raw() -> Result<()> {
        let tp = TopicPartition::new("t", 0);
        let mut r = recs(&[r#"{"id":1}"#]);
        r.push(101, None, Some(b"k"), None);
        let d = decode(&plan(), &tp, &r)?;
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].kind, ViolationKind::Malformed);
        assert_eq!(r.value(1), None);
        assert_eq!(r.key(1), Some(&b"k"[..]));
        assert_eq!(r.value(0), Some(&br#"{"id":1}"#[..]));
        Ok(())
    }

    #[test]
    fn random_bytes_never_panic_and_every_record_is_accounted_for() -> Result<()> {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(3);
        let tp = TopicPartition::new("t", 0);
        let plan = plan();
        for round in 0..200 {
            let mut r = PendingRecords::default();
            let n = rng.random_range(1..40);
            for i in 0..n {
                let len = rng.random_range(0..120);
                let mut v: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                if i % 3 == 0 {
                    v = format!(r#"{{"id":{i}}}"#).into_bytes();
                }
                r.push(i, None, None, Some(&v));
            }
            let d = decode(&plan, &tp, &r)?;
            assert_eq!(
                d.batch.num_rows() + d.bad.len(),
                n as usize,
                "round {round}"
            );
        }
        Ok(())
    }

    fn values_plan(options: &str) -> DecodePlan {
        let job = parse_job(
            "t.sql",
            &format!(
                "CREATE CATALOG c WITH ('type'='sql','uri'='sqlite://x.db','warehouse'='file:///tmp/w');
                 CREATE SOURCE s (id BIGINT NOT NULL, ts TIMESTAMP, amount DECIMAL(6, 2))
                   WITH ('connector'='kafka','topic'='t','format'='json','properties.bootstrap.servers'='x:1'{options});
                 CREATE TABLE c.n.t (id BIGINT);
                 INSERT INTO c.n.t SELECT id FROM s;"
            ),
            &EnvVariables,
        )
        .expect("job parses");
        DecodePlan::new(&job.sources[0]).expect("plan")
    }

    fn micros(d: &Decoded) -> Vec<Option<i64>> {
        column::<TimestampMicrosecondArray>(&d.batch, "ts")
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }

    #[test]
    fn numbers_in_timestamp_columns_are_epoch_millis_and_strings_keep_their_precision() -> Result<()>
    {
        let tp = TopicPartition::new("t", 0);
        let r = recs(&[
            r#"{"id":1,"ts":1700000000123}"#,
            r#"{"id":2,"ts":"2026-11-23T10:00:00.000001"}"#,
            r#"{"id":3,"ts":"2026-11-23T10:00:00+02:00"}"#,
            r#"{"id":4,"ts":null}"#,
        ]);
        let d = decode(&values_plan(""), &tp, &r)?;
        assert!(d.bad.is_empty(), "{:?}", d.bad);
        let at = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
                .ok()
        };
        assert_eq!(
            micros(&d),
            vec![
                Some(1_700_000_000_123_000),
                at("2026-11-23T10:00:00.000001"),
                at("2026-11-23T08:00:00.0"),
                None
            ]
        );
        let seconds = decode(
            &values_plan(", 'json.timestamp-number'='epoch-seconds'"),
            &tp,
            &recs(&[r#"{"id":1,"ts":1700000000}"#]),
        )?;
        assert_eq!(micros(&seconds), vec![Some(1_700_000_000_000_000)]);
        // Batches without numbers take the single-pass path and stay exact.
        let strings = decode(
            &values_plan(""),
            &tp,
            &recs(&[r#"{"id":2,"ts":"2026-11-23T10:00:00.000001"}"#]),
        )?;
        assert_eq!(micros(&strings), vec![at("2026-11-23T10:00:00.000001")]);
        Ok(())
    }

    #[test]
    fn a_number_in_a_timestamp_column_can_be_refused() -> Result<()> {
        let tp = TopicPartition::new("t", 0);
        let r = recs(&[
            r#"{"id":1,"ts":"2026-11-23T10:00:00Z"}"#,
            r#"{"id":2,"ts":1700000000123}"#,
            r#"{"id":3}"#,
        ]);
        let d = decode(&values_plan(", 'json.timestamp-number'='error'"), &tp, &r)?;
        assert_eq!(d.bad.len(), 1, "{:?}", d.bad);
        assert_eq!((d.bad[0].index, d.bad[0].kind), (1, ViolationKind::Type));
        assert!(d.bad[0].message.contains("'ts'"), "{}", d.bad[0].message);
        assert_eq!(d.batch.num_rows(), 2);
        Ok(())
    }

    #[test]
    fn extra_decimal_digits_round_half_away_from_zero() -> Result<()> {
        let tp = TopicPartition::new("t", 0);
        let r = recs(&[
            r#"{"id":1,"amount":1.235}"#,
            r#"{"id":2,"amount":"-1.235"}"#,
            r#"{"id":3,"amount":1.2349}"#,
            r#"{"id":4,"amount":9999.995}"#,
            r#"{"id":5,"amount":12}"#,
        ]);
        let d = decode(&values_plan(""), &tp, &r)?;
        assert_eq!(d.bad.len(), 1, "{:?}", d.bad);
        assert_eq!((d.bad[0].index, d.bad[0].kind), (3, ViolationKind::Type));
        let amounts = column::<arrow_array::Decimal128Array>(&d.batch, "amount")
            .map(|a| a.iter().collect::<Vec<_>>());
        assert_eq!(
            amounts,
            Some(vec![Some(124), Some(-124), Some(123), Some(1200)])
        );
        Ok(())
    }
}
