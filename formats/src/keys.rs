//! Columns read from record keys (`'key.format'`, `'key.fields'`): after a batch's
//! values are decoded, the keys of its good rows are decoded as the values of records
//! of their own, by the decode plan of the source that [`SourceDef::key_source`] makes,
//! so keys get everything values get (registry formats, bad records isolated by
//! halving, NOT NULL checks). A record whose key is missing or bad is a bad record.
//!
//! [`key_records`] gathers the keys as records; the decoder decodes them with the key
//! plan; [`take_keyed`] keeps the rows whose key decoded and returns the key columns.
//!
//! [`SourceDef::key_source`]: floe_sql::job::SourceDef::key_source

use arrow_array::{RecordBatch, UInt32Array};
use floe_catalog::TopicPartition;
use floe_sql::job::ViolationKind;

use crate::error::{FormatError, Result};
use crate::records::{BadRecord, Decoded, PendingRecords, as_rows};

/// The keys of the decoded rows (record indexes `rows`), as the values of records of
/// their own, and for each key its row among `rows`. A record without a key is a bad
/// record, pushed to `bad`.
pub(crate) fn key_records(
    recs: &PendingRecords,
    rows: &UInt32Array,
    bad: &mut Vec<BadRecord>,
) -> (PendingRecords, Vec<u32>) {
    let mut keys = PendingRecords::default();
    let mut at: Vec<u32> = Vec::with_capacity(rows.len());
    for (j, record) in rows.values().iter().enumerate() {
        let i = *record as usize;
        match recs.key(i) {
            Some(k) => {
                keys.push(recs.offsets[i], recs.timestamp(i), None, Some(k));
                at.push(j as u32);
            }
            None => bad.push(BadRecord {
                index: i,
                kind: ViolationKind::Malformed,
                message: "the record has no key, and 'key.fields' reads columns from it".into(),
            }),
        }
    }
    (keys, at)
}

/// Keeps the `payload` rows whose key decoded (`decoded`, the keys gathered by
/// [`key_records`] with their rows `at`): returns those rows, their record indexes and
/// the key columns (in `'key.fields'` order). A key that did not decode makes its record
/// a bad record, pushed to `bad`, as a bad value would.
pub(crate) fn take_keyed(
    tp: &TopicPartition,
    recs: &PendingRecords,
    (payload, rows): (RecordBatch, UInt32Array),
    (decoded, at): (Decoded, Vec<u32>),
    bad: &mut Vec<BadRecord>,
) -> Result<(RecordBatch, UInt32Array, RecordBatch)> {
    let internal = |e: arrow_schema::ArrowError| FormatError::Decode {
        tp: tp.clone(),
        offset: recs.offsets.first().copied().unwrap_or(-1),
        message: e.to_string(),
    };
    for b in decoded.bad {
        bad.push(BadRecord {
            index: rows.value(at[b.index] as usize) as usize,
            kind: b.kind,
            message: format!("the key: {}", b.message),
        });
    }
    let key_columns = decoded.batch.num_columns().saturating_sub(1);
    let decoded_rows = as_rows(decoded.batch.column(key_columns).as_ref());
    let keep = UInt32Array::from_iter_values(decoded_rows.values().iter().map(|j| at[*j as usize]));
    let payload = arrow_select::take::take_record_batch(&payload, &keep).map_err(internal)?;
    let rows = as_rows(
        arrow_select::take::take(&rows, &keep, None)
            .map_err(internal)?
            .as_ref(),
    );
    let keys = decoded
        .batch
        .project(&(0..key_columns).collect::<Vec<_>>())
        .map_err(internal)?;
    Ok((payload, rows, keys))
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, Int64Array, StringArray};
    use floe_sql::{EnvVariables, parse_job};

    use super::*;
    use crate::decode::decode;
    use crate::plan::{DecodePlan, key_columns_from_schema};

    /// Source `s (k_id BIGINT NOT NULL, name VARCHAR)`, `k_id` from JSON keys.
    fn plan() -> DecodePlan {
        let job = parse_job(
            "t.sql",
            "CREATE CATALOG c WITH ('type'='sql','uri'='sqlite://x.db','warehouse'='file:///tmp/w');
             CREATE SOURCE s (k_id BIGINT NOT NULL, name VARCHAR, o BIGINT METADATA FROM 'offset')
               WITH ('connector'='kafka','topic'='t','format'='json','properties.bootstrap.servers'='x:1',
                     'key.format'='json','key.fields'='k_id','key.fields-prefix'='k_');
             CREATE TABLE c.n.t (id BIGINT);
             INSERT INTO c.n.t SELECT k_id AS id FROM s;",
            &EnvVariables,
        )
        .expect("job parses");
        DecodePlan::new(&job.sources[0]).expect("plan")
    }

    #[test]
    fn key_columns_come_from_keys_and_bad_keys_are_bad_records() {
        let records: [(Option<&str>, &str); 6] = [
            (Some(r#"{"id": 1}"#), r#"{"name": "a", "k_id": 99}"#),
            (None, r#"{"name": "b"}"#),
            (Some("not json"), r#"{"name": "c"}"#),
            (Some(r#"{"id": 4}"#), "not json either"),
            (Some(r#"{"other": 5}"#), r#"{"name": "e"}"#),
            (Some(r#"{"id": 6}"#), r#"{"name": "f"}"#),
        ];
        let mut recs = PendingRecords::default();
        for (i, (key, value)) in records.iter().enumerate() {
            let key = key.map(str::as_bytes);
            recs.push(10 + i as i64, Some(5), key, Some(value.as_bytes()));
        }
        let tp = TopicPartition::new("t", 0);
        let d = decode(&plan(), &tp, &recs).expect("decode");
        let column = |name: &str| d.batch.column_by_name(name).expect("column").clone();
        let ids = column("k_id");
        let ids = ids.as_any().downcast_ref::<Int64Array>().expect("ids");
        assert_eq!(ids.values(), &[1, 6], "from the key, not the value's k_id");
        let names = column("name");
        let names = names.as_any().downcast_ref::<StringArray>().expect("names");
        assert_eq!((names.value(0), names.value(1)), ("a", "f"));
        let offsets = column("o");
        let offsets = offsets.as_any().downcast_ref::<Int64Array>().expect("o");
        assert_eq!(offsets.values(), &[10, 15]);
        let bad: Vec<(usize, ViolationKind)> = d.bad.iter().map(|b| (b.index, b.kind)).collect();
        use ViolationKind::{Malformed, NotNull};
        assert_eq!(
            bad,
            [(1, Malformed), (2, Malformed), (3, Malformed), (4, NotNull)]
        );
        assert!(
            d.bad[0].message.contains("has no key"),
            "{}",
            d.bad[0].message
        );
        assert!(
            d.bad[1].message.starts_with("the key: "),
            "{}",
            d.bad[1].message
        );
        assert!(!d.bad[2].message.contains("key"), "{}", d.bad[2].message);
        assert!(
            d.bad[3].message.contains("the key: field 'id' is missing"),
            "{}",
            d.bad[3].message
        );
    }

    const VALUE: &str = r#"{"type": "record", "name": "Order", "fields": [
        {"name": "id", "type": "long"}, {"name": "amount", "type": "double"}]}"#;
    const KEY: &str = r#"{"type": "record", "name": "OrderKey", "fields": [
        {"name": "id", "type": "long"},
        {"name": "region", "type": ["null", "string"], "default": null}]}"#;

    fn avro(schema: &str, id: u32, value: apache_avro::types::Value) -> Vec<u8> {
        let schema = apache_avro::Schema::parse_str(schema).expect("schema");
        let datum = apache_avro::to_avro_datum(&schema, value).expect("datum");
        crate::test_registry::framed(id, &datum)
    }

    #[test]
    fn a_source_without_columns_takes_its_key_columns_from_the_keys_schema() {
        use crate::test_registry::{registry_with, source_without_columns};
        use apache_avro::types::Value as Avro;
        let r = registry_with(
            &[("AVRO", VALUE), ("AVRO", KEY)],
            &[("orders-value", &[1]), ("orders-key", &[2])],
        );
        let options = |fields: &str, prefix: &str| {
            format!(
                "'format' = 'avro-confluent', 'avro-confluent.url' = '{}', \
                 'key.format' = 'avro-confluent', 'key.fields' = '{fields}', \
                 'key.fields-prefix' = '{prefix}'",
                r.server.url()
            )
        };
        let mut source = source_without_columns(&options("k_region;k_id", "k_"));
        let (value, version) = DecodePlan::new(&source)
            .and_then(|p| p.schema_columns(&source))
            .expect("value columns");
        let keys = key_columns_from_schema(&source, &value).expect("key columns");
        let names: Vec<&str> = keys.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["k_region", "k_id"]);
        assert!(keys[0].nullable && !keys[1].nullable);
        source.take_payload_columns(keys.into_iter().chain(value).collect(), version);

        let key = |id: i64| {
            let region = Avro::Union(1, Box::new(Avro::String(format!("r{id}"))));
            avro(
                KEY,
                2,
                Avro::Record(vec![
                    ("id".into(), Avro::Long(id)),
                    ("region".into(), region),
                ]),
            )
        };
        let value = |id: i64| {
            let fields = vec![
                ("id".into(), Avro::Long(id * 10)),
                ("amount".into(), Avro::Double(1.5)),
            ];
            avro(VALUE, 1, Avro::Record(fields))
        };
        let mut recs = PendingRecords::default();
        for id in [1, 2] {
            recs.push(id, Some(0), Some(&key(id)), Some(&value(id)));
        }
        let plan = DecodePlan::new(&source).expect("plan");
        let d = decode(&plan, &TopicPartition::new("orders", 0), &recs).expect("decode");
        assert!(d.bad.is_empty(), "{:?}", d.bad);
        let int = |name: &str| {
            let c = d.batch.column_by_name(name).expect("column");
            c.as_any()
                .downcast_ref::<Int64Array>()
                .expect("BIGINT")
                .values()
                .to_vec()
        };
        assert_eq!((int("k_id"), int("id")), (vec![1, 2], vec![10, 20]));
        let regions = d.batch.column_by_name("k_region").expect("k_region");
        let regions = regions
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("VARCHAR");
        assert_eq!(regions.value(1), "r2");

        // A field the key lacks, and a key column that is a value field too.
        let source = source_without_columns(&options("k_nope", "k_"));
        let err = key_columns_from_schema(&source, &[]).expect_err("no such field");
        assert!(
            err.to_string()
                .contains("has no field 'nope' (its fields: id, region)"),
            "{err}"
        );
        let source = source_without_columns(&options("id", ""));
        let value = DecodePlan::new(&source)
            .and_then(|p| p.schema_columns(&source))
            .expect("value columns")
            .0;
        let err = key_columns_from_schema(&source, &value).expect_err("clash");
        assert!(err.to_string().contains("set 'key.fields-prefix'"), "{err}");
    }
}
