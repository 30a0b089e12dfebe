//! Avro sources decoded end to end through the source's decode plan, against the
//! embedded registry over HTTP; records are encoded by `apache-avro`, not by the decoder
//! under test.

use apache_avro::types::Value as Avro;
use arrow_array::{Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use floe_catalog::TopicPartition;
use floe_sql::job::ViolationKind;

use crate::test_registry::{
    self, TestRegistry, bad_kinds, bad_message, column, plan_with, records,
};
use crate::{DecodePlan, decode};

const V1: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"},
    {"name": "amount", "type": "double"},
    {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}}
]}"#;

/// V1 and a field `note` that older records lack.
const V2: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"},
    {"name": "amount", "type": "double"},
    {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "note", "type": ["null", "string"], "default": null}
]}"#;

/// `id` as a string: does not fit a BIGINT column.
const BAD_ID: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "string"}
]}"#;

/// A registry holding V1 (id 1), V2 (id 2) and BAD_ID (id 3), with `latest` (of those)
/// as the versions of `orders-value`.
fn registry(latest: &[&str]) -> TestRegistry {
    let all = [V1, V2, BAD_ID];
    let versions: Vec<u32> = latest
        .iter()
        .filter_map(|l| all.iter().position(|s| s == l))
        .map(|i| i as u32 + 1)
        .collect();
    test_registry::registry(&all.map(|s| ("AVRO", s)), &versions)
}

fn plan(url: &str) -> (DecodePlan, floe_sql::job::SourceDef) {
    plan_with(&format!(
        "'format' = 'avro-confluent', 'avro-confluent.url' = '{url}'"
    ))
}

fn framed(id: u32, schema: &str, value: Avro) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).expect("schema");
    let datum = apache_avro::to_avro_datum(&schema, value).expect("datum");
    test_registry::framed(id, &datum)
}

fn v1(id: i64) -> Vec<u8> {
    framed(
        1,
        V1,
        Avro::Record(vec![
            ("id".into(), Avro::Long(id)),
            ("amount".into(), Avro::Double(id as f64 * 1.5)),
            (
                "placed".into(),
                Avro::TimestampMillis(1_700_000_000_000 + id),
            ),
        ]),
    )
}

fn v2(id: i64, note: &str) -> Vec<u8> {
    framed(
        2,
        V2,
        Avro::Record(vec![
            ("id".into(), Avro::Long(id)),
            ("amount".into(), Avro::Double(id as f64 * 1.5)),
            (
                "placed".into(),
                Avro::TimestampMillis(1_700_000_000_000 + id),
            ),
            (
                "note".into(),
                Avro::Union(1, Box::new(Avro::String(note.into()))),
            ),
        ]),
    )
}

#[test]
fn records_of_several_schema_versions_decode_into_the_declared_columns() {
    let r = registry(&[V1, V2]);
    let (plan, _) = plan(r.server.url());
    let values = [v1(1), v2(2, "gift"), v2(3, "rush"), v1(4)];
    let tp = TopicPartition::new("orders", 0);
    let d = decode(&plan, &tp, &records(&values)).expect("decode");
    assert!(d.bad.is_empty(), "{:?}", d.bad);
    let b = &d.batch;
    assert_eq!(column::<Int64Array>(b, "id").values(), &[1, 2, 3, 4]);
    assert_eq!(column::<Float64Array>(b, "amount").value(3), 6.0);
    let notes = column::<StringArray>(b, "note");
    assert!(notes.is_null(0) && notes.is_null(3));
    assert_eq!((notes.value(1), notes.value(2)), ("gift", "rush"));
    let placed = column::<TimestampMicrosecondArray>(b, "placed");
    assert_eq!(placed.value(0), (1_700_000_000_000 + 1) * 1000);
}

#[test]
fn bad_framing_unknown_ids_and_broken_data_are_bad_records_and_the_rest_decodes() {
    let r = registry(&[V1]);
    let (plan, _) = plan(r.server.url());
    let mut truncated = v2(5, "cut");
    truncated.truncate(truncated.len() - 3);
    let mut trailing = v1(6);
    trailing.extend_from_slice(b"xyz");
    let values = [
        v1(1),
        b"{\"id\": 2}".to_vec(),
        vec![0, 0, 0],
        framed(
            999,
            V1,
            Avro::Record(vec![
                ("id".into(), Avro::Long(3)),
                ("amount".into(), Avro::Double(0.0)),
                ("placed".into(), Avro::TimestampMillis(0)),
            ]),
        ),
        truncated,
        trailing,
        v1(7),
        framed(
            3,
            BAD_ID,
            Avro::Record(vec![("id".into(), Avro::String("x".into()))]),
        ),
    ];
    let tp = TopicPartition::new("orders", 0);
    let d = decode(&plan, &tp, &records(&values)).expect("decode");
    assert_eq!(column::<Int64Array>(&d.batch, "id").values(), &[1, 7]);
    let bad = bad_kinds(&d);
    use ViolationKind::{Malformed, Type};
    assert_eq!(
        bad,
        [
            (1, Malformed),
            (2, Malformed),
            (3, Malformed),
            (4, Malformed),
            (5, Malformed),
            (7, Type)
        ]
    );
    let message = |i: usize| bad_message(&d, i);
    assert!(message(1).contains("magic byte 0"), "{}", message(1));
    assert!(
        message(3).contains("schema id 999 is not in the schema registry"),
        "{}",
        message(3)
    );
    assert!(
        message(7).contains("field 'id'") && message(7).contains("id 3"),
        "{}",
        message(7)
    );
}

#[test]
fn declared_columns_are_checked_against_the_latest_schema() {
    let fits = registry(&[V1, V2]);
    let (plan_ok, source) = plan(fits.server.url());
    plan_ok.check_schemas(&source).expect("V2 fits");

    let broken = registry(&[V1, BAD_ID]);
    let (plan_bad, source) = plan(broken.server.url());
    let e = plan_bad
        .check_schemas(&source)
        .expect_err("BAD_ID does not fit");
    let text = e.to_string();
    assert!(
        text.contains("subject 'orders-value'")
            && text.contains("field 'id'")
            && text.contains("version 2"),
        "{text}"
    );
    assert!(text.contains("declares id Int64"), "{text}");
}

#[test]
fn plain_avro_decodes_bare_datums_with_the_schema_in_the_job() {
    let schema = V2.replace('\n', " ").replace('\'', "''");
    let (plan, source) = plan_with(&format!("'format' = 'avro', 'avro.schema' = '{schema}'"));
    plan.check_schemas(&source)
        .expect("V2 fits the declared columns");
    let bare = |v: Vec<u8>| v[5..].to_vec();
    let mut cut = bare(v2(3, "x"));
    cut.truncate(cut.len() - 2);
    let values = [bare(v2(1, "a")), cut, bare(v2(2, "b"))];
    let tp = TopicPartition::new("orders", 0);
    let d = decode(&plan, &tp, &records(&values)).expect("decode");
    assert_eq!(column::<Int64Array>(&d.batch, "id").values(), &[1, 2]);
    assert_eq!(column::<StringArray>(&d.batch, "note").value(1), "b");
    let bad = bad_kinds(&d);
    assert_eq!(bad, [(1, ViolationKind::Malformed)]);
}

/// An order with a nested record, an array and a map.
const NESTED: &str = r#"{"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
        {"name": "name", "type": "string"},
        {"name": "since", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": ["null", "long"]}}
]}"#;

#[test]
fn a_source_without_columns_reads_nested_fields_as_the_schema_has_them() {
    use arrow_array::{ListArray, MapArray, StructArray};
    let schema = NESTED.replace('\n', " ");
    let format = format!("'format' = 'avro', 'avro.schema' = '{schema}'");
    let mut source = test_registry::source_without_columns(&format);
    let (columns, version) = DecodePlan::new(&source)
        .and_then(|p| p.schema_columns(&source))
        .expect("columns from the schema");
    source.take_payload_columns(columns, version);
    let plan = DecodePlan::new(&source).expect("plan");
    let customer = Avro::Record(vec![
        ("name".into(), Avro::String("ann".into())),
        ("since".into(), Avro::TimestampMillis(1_700_000_000_000)),
    ]);
    let tags = Avro::Array(vec![Avro::String("a".into()), Avro::String("b".into())]);
    let attrs = Avro::Map([("k".to_string(), Avro::Union(1, Box::new(Avro::Long(5))))].into());
    let order = Avro::Record(vec![
        ("id".into(), Avro::Long(1)),
        ("customer".into(), customer),
        ("tags".into(), tags),
        ("attrs".into(), attrs),
    ]);
    let datum = framed(0, NESTED, order)[5..].to_vec();
    let tp = TopicPartition::new("orders", 0);
    let d = decode(&plan, &tp, &records(&[datum])).expect("decode");
    assert!(d.bad.is_empty(), "{:?}", d.bad);
    let customer = column::<StructArray>(&d.batch, "customer");
    let name = customer.column_by_name("name").expect("name");
    let name = name.as_any().downcast_ref::<StringArray>().expect("string");
    assert_eq!(name.value(0), "ann");
    let since = customer.column_by_name("since").expect("since");
    let since = since
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .expect("micros");
    assert_eq!(since.value(0), 1_700_000_000_000_000);
    let tags = column::<ListArray>(&d.batch, "tags").value(0);
    let tags = tags
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("strings");
    assert_eq!(tags.iter().flatten().collect::<Vec<_>>(), ["a", "b"]);
    let attrs = column::<MapArray>(&d.batch, "attrs").value(0);
    let values = attrs
        .column(1)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("longs");
    assert_eq!(values.value(0), 5);
}

#[test]
fn a_watched_source_stops_at_a_schema_that_adds_columns_and_refuses_a_refused_one() {
    use crate::error::FormatError;
    use crate::evolution::SchemaMemory;
    let url = |r: &TestRegistry| {
        format!(
            "'format' = 'avro-confluent', 'avro-confluent.url' = '{}'",
            r.server.url()
        )
    };
    // Columns from V1, the latest when the job was planned; V2 registered since.
    let planned = registry(&[V1]);
    let mut source = test_registry::source_without_columns(&url(&planned));
    let (columns, version) = DecodePlan::new(&source)
        .and_then(|p| p.schema_columns(&source))
        .expect("columns from V1");
    let r = registry(&[V1, V2]);
    source = test_registry::source_without_columns(&url(&r));
    source.take_payload_columns(columns, version);
    let mut memory = SchemaMemory::default();
    let mut plan = DecodePlan::new(&source).expect("plan");
    plan.watch_schemas(memory.watch(0, &source));
    let tp = TopicPartition::new("orders", 0);
    let d = decode(&plan, &tp, &records(&[v1(1), v1(2)])).expect("v1 fits");
    assert_eq!(d.batch.num_rows(), 2);
    let err = decode(&plan, &tp, &records(&[v1(3), v2(4, "gift")])).expect_err("v2 adds");
    let FormatError::SchemaChanged(change) = err else {
        panic!("not a schema change: {err}");
    };
    assert_eq!((change.schema_id, change.version), (2, Some(2)));
    assert_eq!(change.columns, vec!["note (new)"]);
    assert!(
        change
            .to_string()
            .contains("adds columns to those of version 1"),
        "{change}"
    );

    // Settled: the next run decodes it into the columns it has.
    memory.settle(&change);
    let mut plan = DecodePlan::new(&source).expect("plan");
    plan.watch_schemas(memory.watch(0, &source));
    let d = decode(&plan, &tp, &records(&[v2(4, "gift")])).expect("settled");
    assert_eq!(d.batch.num_rows(), 1);
    // Refused: its records are `type` bad records with the reason.
    memory.refuse(&change, "the tables cannot take it".into());
    let mut plan = DecodePlan::new(&source).expect("plan");
    plan.watch_schemas(memory.watch(0, &source));
    let d = decode(&plan, &tp, &records(&[v1(5), v2(6, "gift")])).expect("refused");
    assert_eq!(d.batch.num_rows(), 1);
    assert_eq!(bad_kinds(&d), vec![(1, ViolationKind::Type)]);
    assert_eq!(bad_message(&d, 1), "the tables cannot take it");
}
