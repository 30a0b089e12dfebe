//! The embedded generator's orders (the Avro quickstart's feed) and Nexmark bids (the
//! benchmark's) in Avro, framed in the Confluent wire format with the id a registry gave
//! their schema.
//!
//! Avro's binary encoding of this one record type is short enough to write by hand, and
//! keeps the generator as fast as its JSON twin: longs are zigzag varints, strings and
//! bytes a length then the bytes, a decimal its unscaled value as big-endian two's
//! complement bytes, a union the branch index then the value.

use floe_sql::job::{SourceDef, SourceFormat};

use crate::error::{Result, ToolError};
use crate::feed_options::{Feed, FeedOptions};
use crate::orders::order;

/// The orders' writer schema.
pub const ORDER_SCHEMA: &str = r#"{"type": "record", "name": "Order", "namespace": "floe.embedded",
 "fields": [
  {"name": "order_id", "type": "long"},
  {"name": "customer_id", "type": ["null", "long"], "default": null},
  {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
  {"name": "currency", "type": "string"},
  {"name": "order_ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}
 ]}"#;

/// The Nexmark bids' writer schema.
pub const BID_SCHEMA: &str = r#"{"type": "record", "name": "Bid", "namespace": "nexmark",
 "fields": [
  {"name": "auction", "type": "long"},
  {"name": "bidder", "type": "long"},
  {"name": "price", "type": "long"},
  {"name": "channel", "type": "string"},
  {"name": "url", "type": "string"},
  {"name": "dateTime", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "extra", "type": "string"}
 ]}"#;

/// Writes bid `id`, framed with `schema_id`, into `out`.
pub fn bid_avro(seed: u64, id: u64, schema_id: u32, out: &mut Vec<u8>) {
    let b = super::nexmark::bid(seed, id);
    out.clear();
    out.push(0);
    out.extend_from_slice(&schema_id.to_be_bytes());
    put_long(out, b.auction as i64);
    put_long(out, b.bidder as i64);
    put_long(out, b.price as i64);
    put_bytes(out, b.channel.as_bytes());
    put_bytes(out, b.url.as_bytes());
    put_long(out, b.date_time_ms);
    put_bytes(out, b"");
}

/// Writes order `index` of `partition`, framed with `schema_id`, into `out`; returns its
/// order id.
pub fn order_avro(
    seed: u64,
    partitions: u32,
    partition: u32,
    index: u64,
    schema_id: u32,
    out: &mut Vec<u8>,
) -> u64 {
    let o = order(seed, partitions, partition, index);
    out.clear();
    out.push(0);
    out.extend_from_slice(&schema_id.to_be_bytes());
    put_long(out, o.id as i64);
    put_long(out, 1); // union branch 1: long
    put_long(out, o.customer as i64);
    put_bytes(out, &unscaled(o.cents));
    put_bytes(out, o.currency.as_bytes());
    put_long(out, o.ts_ms);
    o.id
}

/// For an Avro source fed by the embedded generator: the id of the orders' schema,
/// registered in the embedded registry under the source's subject.
pub fn register_for(s: &SourceDef, feed: &FeedOptions) -> Result<Option<u32>> {
    let refuse = |why: &str| {
        Err(ToolError::Feed {
            source_name: s.name.clone(),
            message: format!("the embedded generator writes Avro {why}"),
        })
    };
    if s.kafka.format == SourceFormat::Avro {
        return refuse("framed for a registry only ('format' = 'avro-confluent')");
    }
    let Some(registry) = s.kafka.registry.as_ref() else {
        return Ok(None);
    };
    if s.kafka.format != SourceFormat::AvroConfluent {
        return refuse(
            "only ('format' = 'avro-confluent'), not Protobuf or JSON in the wire format",
        );
    }
    if feed.generator != Feed::Orders {
        return refuse("orders only ('embedded.generator' = 'orders')");
    }
    if feed.dirty_every.is_some() {
        return refuse("without bad records ('embedded.dirty-every' is for JSON feeds)");
    }
    if !registry.is_embedded() {
        return refuse("through the embedded registry only ('avro-confluent.url' = 'embedded')");
    }
    let subject = registry.subject.subject(&s.kafka.topic);
    let server = crate::registry::embedded()?;
    let id = server.register(&subject, ORDER_SCHEMA)?;
    Ok(Some(id))
}

fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// The shortest big-endian two's complement bytes of `v`.
fn unscaled(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let sign = if v < 0 { 0xff } else { 0 };
    let mut start = 0;
    // Drop a leading byte while the next one still carries the sign.
    while start < 7 && bytes[start] == sign && (bytes[start + 1] & 0x80) == (sign & 0x80) {
        start += 1;
    }
    bytes[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value;

    use super::*;

    #[test]
    fn orders_decode_with_an_independent_avro_reader() {
        let schema = apache_avro::Schema::parse_str(ORDER_SCHEMA).expect("schema");
        let mut out = vec![];
        for index in [0, 1, 49, 1000] {
            let id = order_avro(42, 4, 1, index, 7, &mut out);
            assert_eq!(out[..5], [0, 0, 0, 0, 7]);
            let o = order(42, 4, 1, index);
            let mut datum = &out[5..];
            let value = apache_avro::from_avro_datum(&schema, &mut datum, None).expect("decodes");
            assert!(datum.is_empty(), "the whole datum is read");
            let Value::Record(fields) = value else {
                panic!("not a record: {value:?}")
            };
            assert_eq!(fields[0].1, Value::Long(id as i64));
            assert_eq!(
                fields[1].1,
                Value::Union(1, Box::new(Value::Long(o.customer as i64)))
            );
            let Value::Decimal(d) = &fields[2].1 else {
                panic!("amount: {:?}", fields[2].1)
            };
            let bytes: Vec<u8> = d.try_into().expect("decimal bytes");
            assert_eq!(bytes, unscaled(o.cents));
            assert_eq!(fields[3].1, Value::String(o.currency.into()));
            assert_eq!(fields[4].1, Value::TimestampMillis(o.ts_ms));
        }
    }

    #[test]
    fn bids_decode_with_an_independent_avro_reader() {
        let schema = apache_avro::Schema::parse_str(BID_SCHEMA).expect("schema");
        let mut out = vec![];
        bid_avro(42, 12_345, 3, &mut out);
        let b = crate::nexmark::bid(42, 12_345);
        let mut datum = &out[5..];
        let value = apache_avro::from_avro_datum(&schema, &mut datum, None).expect("decodes");
        assert!(datum.is_empty(), "the whole datum is read");
        let expected = Value::Record(vec![
            ("auction".into(), Value::Long(b.auction as i64)),
            ("bidder".into(), Value::Long(b.bidder as i64)),
            ("price".into(), Value::Long(b.price as i64)),
            ("channel".into(), Value::String(b.channel.into())),
            ("url".into(), Value::String(b.url.clone())),
            ("dateTime".into(), Value::TimestampMillis(b.date_time_ms)),
            ("extra".into(), Value::String(String::new())),
        ]);
        assert_eq!(value, expected);
    }

    #[test]
    fn decimals_take_their_shortest_twos_complement() {
        assert_eq!(unscaled(0), [0]);
        assert_eq!(unscaled(127), [0x7f]);
        assert_eq!(unscaled(128), [0x00, 0x80]);
        assert_eq!(unscaled(-1), [0xff]);
        assert_eq!(unscaled(-129), [0xff, 0x7f]);
        assert_eq!(unscaled(12345), [0x30, 0x39]);
    }
}
