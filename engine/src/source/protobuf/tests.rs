//! Protobuf sources decoded end to end through the source's decode plan, against the
//! embedded registry over HTTP; messages are encoded by prost-reflect's dynamic
//! messages, not by the decoder under test.

use arrow_array::{Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use floe_catalog::TopicPartition;
use floe_sql::job::ViolationKind;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};

use crate::source::decode::{DecodePlan, decode};
use crate::source::test_registry::{
    self, TestRegistry, bad_kinds, bad_message, column, framed, plan_with, records,
};

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
