//! Protobuf sources decoded end to end through the source's decode plan, against the
//! embedded registry over HTTP; messages are encoded by prost-reflect's dynamic
//! messages, not by the decoder under test.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{
    Array, Float64Array, Int64Array, ListArray, MapArray, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use floe_catalog::TopicPartition;
use floe_sql::job::ViolationKind;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};

use crate::test_registry::{
    self, TestRegistry, bad_kinds, bad_message, column, framed, plan_with, records,
};
use crate::{DecodePlan, decode};

const ORDERS: &str = r#"
syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";

message Order {
  int64 id = 1;
  double amount = 2;
  optional string note = 3;
  google.protobuf.Timestamp placed = 4;
  Status status = 5;
  enum Status { NEW = 0; PAID = 1; }
}

message Refund {
  string id = 1;
}
"#;

/// `id` as a string in the first message: does not fit a BIGINT column.
const BAD_ID: &str = r#"
syntax = "proto3";
package shop;
message Order { string id = 1; }
"#;

fn registry(latest: &[u32]) -> TestRegistry {
    test_registry::registry(&[("PROTOBUF", ORDERS), ("PROTOBUF", BAD_ID)], latest)
}

fn plan(url: &str) -> (DecodePlan, floe_sql::job::SourceDef) {
    plan_with(&format!(
        "'format' = 'protobuf-confluent', 'protobuf-confluent.url' = '{url}'"
    ))
}

fn message(name: &str) -> MessageDescriptor {
    let pool = protox::Compiler::with_file_resolver({
        let mut chain = protox::file::ChainFileResolver::new();
        chain.add(protox::file::GoogleFileResolver::new());
        chain.add(Source(ORDERS));
        chain
    })
    .open_file("orders.proto")
    .expect("compiles")
    .descriptor_pool();
    pool.get_message_by_name(name).expect("message")
}

struct Source(&'static str);

impl protox::file::FileResolver for Source {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        protox::file::File::from_source(name, self.0)
    }
}

/// Order `id` (schema id 1, message path [0]), with a note when given.
fn order(id: i64, note: Option<&str>) -> Vec<u8> {
    let desc = message("shop.Order");
    let mut m = DynamicMessage::new(desc.clone());
    m.set_field_by_name("id", Value::I64(id));
    if id % 2 == 0 {
        m.set_field_by_name("amount", Value::F64(id as f64 * 1.5));
    }
    if let Some(n) = note {
        m.set_field_by_name("note", Value::String(n.into()));
    }
    let ts = desc
        .get_field_by_name("placed")
        .and_then(|f| f.kind().as_message().cloned())
        .expect("timestamp");
    let mut placed = DynamicMessage::new(ts);
    placed.set_field_by_name("seconds", Value::I64(1_700_000_000 + id));
    placed.set_field_by_name("nanos", Value::I32(5_000));
    m.set_field_by_name("placed", Value::Message(placed));
    // The first message's index path: the single byte 0.
    let mut body = vec![0u8];
    body.extend(m.encode_to_vec());
    framed(1, &body)
}

#[test]
fn messages_decode_into_the_declared_columns_with_proto3_defaults() {
    let r = registry(&[1]);
    let (plan, source) = plan(r.server.url());
    plan.check_schemas(&source).expect("ORDERS fits");
    let values = [order(1, None), order(2, Some("gift")), order(3, Some(""))];
    let tp = TopicPartition::new("orders", 0);
    let d = decode(&plan, &tp, &records(&values)).expect("decode");
    assert!(d.bad.is_empty(), "{:?}", d.bad);
    let b = &d.batch;
    assert_eq!(column::<Int64Array>(b, "id").values(), &[1, 2, 3]);
    // `amount` has no presence: absent is proto3's 0.
    let amount = column::<Float64Array>(b, "amount");
    assert_eq!((amount.value(0), amount.value(1)), (0.0, 3.0));
    assert!(!amount.is_null(0));
    // `note` is `optional`: absent is null, an empty string is an empty string.
    let notes = column::<StringArray>(b, "note");
    assert!(notes.is_null(0));
    assert_eq!((notes.value(1), notes.value(2)), ("gift", ""));
    let placed = column::<TimestampMicrosecondArray>(b, "placed");
    assert_eq!(placed.value(2), (1_700_000_000 + 3) * 1_000_000 + 5);
}

#[test]
fn bad_framing_unknown_ids_broken_messages_and_misfits_are_bad_records() {
    let r = registry(&[1]);
    let (plan, _) = plan(r.server.url());
    let mut cut = order(4, Some("a longer note that gets cut"));
    cut.truncate(cut.len() - 30);
    let mut refund = DynamicMessage::new(message("shop.Refund"));
    refund.set_field_by_name("id", Value::String("r-1".into()));
    // Message path [1]: count 1 (zigzag 2), index 1 (zigzag 2).
    let mut refund_body = vec![2u8, 2];
    refund_body.extend(refund.encode_to_vec());
    let values = [
        order(1, None),
        b"{\"id\": 2}".to_vec(),
        framed(999, &[0, 8, 1]),
        cut,
        framed(1, &refund_body),
        framed(1, &[4, 2, 0, 8, 1]),
        order(7, None),
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
            (4, Type),
            (5, Malformed)
        ]
    );
    let text = |i: usize| bad_message(&d, i);
    assert!(
        text(2).contains("schema id 999 is not in the schema registry"),
        "{}",
        text(2)
    );
    assert!(text(3).contains("cut off"), "{}", text(3));
    assert!(
        text(4).contains("field 'id' is string") && text(4).contains("shop.Refund"),
        "{}",
        text(4)
    );
    assert!(
        text(5).contains("no message at index path [1, 0]"),
        "{}",
        text(5)
    );
}

#[test]
fn declared_columns_are_checked_against_the_latest_schema() {
    let broken = registry(&[1, 2]);
    let (plan, source) = plan(broken.server.url());
    let e = plan
        .check_schemas(&source)
        .expect_err("BAD_ID does not fit");
    let text = e.to_string();
    assert!(
        text.contains("subject 'orders-value'")
            && text.contains("field 'id' is string")
            && text.contains("version 2")
            && text.contains("declares id Int64"),
        "{text}"
    );
}

const NESTED: &str = r#"
syntax = "proto3";
package shop;

message Order {
  int64 id = 1;
  Customer customer = 2;
  repeated Line lines = 3;
  map<string, string> attrs = 4;
  repeated int32 codes = 5;
  repeated string tags = 6;
}
message Customer { string name = 1; int32 tier = 2; }
message Line { string sku = 1; int32 qty = 2; }
"#;

/// The nested columns, declared in another order than the messages' fields and wider.
const NESTED_COLUMNS: &str = "id BIGINT NOT NULL, customer ROW<tier BIGINT, name VARCHAR>, \
     lines ARRAY<ROW<sku VARCHAR, qty BIGINT>>, attrs MAP<VARCHAR, VARCHAR>, \
     codes ARRAY<BIGINT>, tags VARCHAR[]";

fn nested_plan(url: &str, columns: &str) -> (DecodePlan, floe_sql::job::SourceDef) {
    test_registry::plan_declaring(
        columns,
        &format!("'format' = 'protobuf-confluent', 'protobuf-confluent.url' = '{url}'"),
    )
}

/// A full nested order: a customer, two lines, two attributes, packed codes, tags.
fn nested_order(id: i64) -> Vec<u8> {
    let pool = protox::Compiler::with_file_resolver(Source(NESTED))
        .open_file("nested.proto")
        .expect("compiles")
        .descriptor_pool();
    let nested_message = |name: &str| pool.get_message_by_name(name).expect("message");
    let sub = |name: &str, fields: &[(&str, Value)]| {
        let mut m = DynamicMessage::new(nested_message(name));
        for (f, v) in fields {
            m.set_field_by_name(f, v.clone());
        }
        Value::Message(m)
    };
    let mut order = DynamicMessage::new(nested_message("shop.Order"));
    order.set_field_by_name("id", Value::I64(id));
    let customer = [
        ("name", Value::String("Ada".into())),
        ("tier", Value::I32(2)),
    ];
    order.set_field_by_name("customer", sub("shop.Customer", &customer));
    let line = |sku: &str, qty| {
        sub(
            "shop.Line",
            &[("sku", Value::String(sku.into())), ("qty", Value::I32(qty))],
        )
    };
    order.set_field_by_name("lines", Value::List(vec![line("a-1", 3), line("b-2", 1)]));
    let attrs = [("channel", "web"), ("coupon", "X")]
        .into_iter()
        .map(|(k, v)| {
            (
                prost_reflect::MapKey::String(k.into()),
                Value::String(v.into()),
            )
        })
        .collect();
    order.set_field_by_name("attrs", Value::Map(attrs));
    order.set_field_by_name("codes", Value::List(vec![Value::I32(1), Value::I32(-2)]));
    order.set_field_by_name("tags", Value::List(vec![Value::String("gift".into())]));
    let mut body = vec![0u8];
    body.extend(order.encode_to_vec());
    framed(1, &body)
}

#[test]
fn nested_messages_repeated_fields_and_maps_decode_into_declared_nested_columns() {
    let r = test_registry::registry(&[("PROTOBUF", NESTED)], &[1]);
    let (plan, source) = nested_plan(r.server.url(), NESTED_COLUMNS);
    plan.check_schemas(&source).expect("NESTED fits");
    // Order 2 has only its id; order 3 writes `codes` unpacked: 7, then 9.
    let bare = framed(1, &[0, 8, 2]);
    let unpacked = framed(1, &[0, 8, 3, 40, 7, 40, 9]);
    let values = [nested_order(1), bare, unpacked];
    let tp = TopicPartition::new("orders", 0);
    let d = decode(&plan, &tp, &records(&values)).expect("decode");
    assert!(d.bad.is_empty(), "{:?}", d.bad);
    let b = &d.batch;

    let customer = column::<StructArray>(b, "customer");
    let tier = customer
        .column_by_name("tier")
        .expect("tier")
        .as_primitive::<Int64Type>();
    let name = customer
        .column_by_name("name")
        .expect("name")
        .as_string::<i32>();
    assert_eq!((tier.value(0), name.value(0)), (2, "Ada"));
    assert!(customer.is_null(1), "an absent message is a null row");

    let lines = column::<ListArray>(b, "lines");
    let first = lines.value(0);
    let first = first.as_struct();
    let skus = first.column_by_name("sku").expect("sku").as_string::<i32>();
    let qtys = first
        .column_by_name("qty")
        .expect("qty")
        .as_primitive::<Int64Type>();
    assert_eq!((skus.value(0), skus.value(1)), ("a-1", "b-2"));
    assert_eq!(qtys.values(), &[3, 1]);
    assert_eq!((lines.value_length(1), lines.is_null(1)), (0, false));

    let attrs = column::<MapArray>(b, "attrs");
    let entries = attrs.value(0);
    let keys = entries.column(0).as_string::<i32>();
    let mut got: Vec<&str> = (0..keys.len()).map(|i| keys.value(i)).collect();
    got.sort_unstable();
    assert_eq!(got, ["channel", "coupon"]);
    assert_eq!(attrs.value_length(1), 0);

    let codes = column::<ListArray>(b, "codes");
    let list = |i: usize| codes.value(i).as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(list(0), [1, -2]);
    assert!(list(1).is_empty());
    assert_eq!(list(2), [7, 9]);
    let tags = column::<ListArray>(b, "tags");
    assert_eq!(tags.value(0).as_string::<i32>().value(0), "gift");
}

#[test]
fn a_nested_field_that_does_not_fit_is_named_by_its_path() {
    let r = test_registry::registry(&[("PROTOBUF", NESTED)], &[1]);
    let (plan, source) = nested_plan(r.server.url(), "id BIGINT, customer ROW<name BIGINT>");
    let text = plan.check_schemas(&source).expect_err("misfit").to_string();
    assert!(
        text.contains("field 'customer.name' is string") && text.contains("shop.Customer"),
        "{text}"
    );
    let (plan, source) = nested_plan(r.server.url(), "id BIGINT, tags VARCHAR");
    let text = plan.check_schemas(&source).expect_err("misfit").to_string();
    assert!(text.contains("field 'tags' is repeated string"), "{text}");
    let columns = "id BIGINT, customer ROW<email VARCHAR NOT NULL>";
    let (plan, source) = nested_plan(r.server.url(), columns);
    let text = plan
        .check_schemas(&source)
        .expect_err("missing")
        .to_string();
    assert!(text.contains("has no field 'email'"), "{text}");
}
