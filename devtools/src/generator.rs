//! A deterministic generator of order events, produced through rdkafka.
//!
//! Record `i` of partition `p` is a pure function of `(seed, p, i)`, so a generator can
//! rebuild a partition's log exactly (the embedded broker does so on restart) and a test
//! knows every id it produced. Order ids are `i * partitions + p + 1`: unique.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::delivery::DeliveryCount;
use crate::error::{Result, ToolError};
use crate::orders::order_json;

pub use crate::feed_options::Feed;

/// The Avro schema of `feed`, when it has an Avro form.
pub fn schema_of(feed: Feed) -> Option<&'static str> {
    match feed {
        Feed::Orders => Some(crate::avro_feed::ORDER_SCHEMA),
        Feed::Bids => Some(crate::avro_feed::BID_SCHEMA),
        Feed::Auctions | Feed::Persons => None,
    }
}

/// What to produce.
#[derive(Debug, Clone)]
pub struct GenerateSpec {
    /// Target topic.
    pub topic: String,
    /// Partitions to spread records over (the topic must have at least as many).
    pub partitions: u32,
    /// Per partition, the indices `[start, end)` to produce.
    pub ranges: Vec<(u64, u64)>,
    /// Records per second for indices at or above `paced_from` of their partition
    /// (None: as fast as possible); lower indices rebuild a log and are not paced.
    pub rate: Option<u64>,
    /// Per partition, the first index the rate applies to.
    pub paced_from: Vec<u64>,
    /// Seed.
    pub seed: u64,
    /// Extra producer settings (compression, batching).
    pub properties: Vec<(String, String)>,
    /// Every this many records of a partition, one is bad (see [`DIRT`]; orders only).
    pub dirty_every: Option<u64>,
    /// Which events.
    pub feed: Feed,
    /// Set to write orders or bids in Avro framed with this registry schema id (see
    /// `avro_feed`); JSON otherwise.
    pub avro_schema_id: Option<u32>,
}

/// Writes record `index` of `partition` of `spec` into `out`; returns its id (the key).
fn write_record(
    spec: &GenerateSpec,
    partition: u32,
    index: u64,
    out: &mut Vec<u8>,
    text: &mut String,
) -> u64 {
    let id = index * u64::from(spec.partitions) + u64::from(partition);
    match (spec.feed, spec.avro_schema_id) {
        (Feed::Orders, Some(schema)) => {
            let (seed, parts) = (spec.seed, spec.partitions);
            return super::avro_feed::order_avro(seed, parts, partition, index, schema, out);
        }
        (Feed::Bids, Some(schema)) => {
            super::avro_feed::bid_avro(spec.seed, id, schema, out);
            return id;
        }
        _ => {}
    }
    let write = match spec.feed {
        Feed::Orders => {
            return record_bytes(
                spec.seed,
                spec.partitions,
                partition,
                index,
                spec.dirty_every,
                out,
            );
        }
        Feed::Bids => super::nexmark::bid_json,
        Feed::Auctions => super::nexmark::auction_json,
        Feed::Persons => super::nexmark::person_json,
    };
    write(spec.seed, id, text);
    out.clear();
    out.extend_from_slice(text.as_bytes());
    id
}

impl GenerateSpec {
    /// Records `from..to` of `feed` (seed 1, clean, unpaced) into partition 0 of `topic`.
    pub fn one_partition(topic: &str, feed: Feed, from: u64, to: u64) -> Self {
        Self {
            topic: topic.to_string(),
            partitions: 1,
            ranges: vec![(from, to)],
            rate: None,
            paced_from: vec![0],
            seed: 1,
            properties: vec![],
            dirty_every: None,
            feed,
            avro_schema_id: None,
        }
    }
}

/// The key and value bytes of a typical record of `feed` (its first record), for sizing
/// logs.
pub fn typical_record_bytes(feed: Feed) -> u64 {
    let spec = GenerateSpec::one_partition("", feed, 0, 1);
    let (mut out, mut text) = (Vec::new(), String::new());
    let id = write_record(&spec, 0, 0, &mut out, &mut text);
    (out.len() + id.to_string().len()) as u64
}

/// The bad records a dirty feed mixes in, in the order they take turns.
pub const DIRT: [&str; 11] = [
    "not-json",
    "truncated",
    "invalid-utf8",
    "string-in-bigint",
    "bad-timestamp",
    "decimal-overflow",
    "missing-order-ts",
    "missing-order-id",
    "too-large",
    "unknown-currency",
    "customer-overflow",
];

/// Which entry of [`DIRT`] record `index` of a partition is, in a feed with one bad
/// record every `dirty_every`.
pub fn dirt_of(index: u64, dirty_every: Option<u64>) -> Option<&'static str> {
    let every = dirty_every.filter(|e| *e > 0)?;
    (index % every == every - 1).then(|| DIRT[((index / every) % DIRT.len() as u64) as usize])
}

/// Writes record `index` of `partition` into `out`: the order's JSON, or the bad record
/// [`dirt_of`] names. Returns the order id (also the record key).
pub fn record_bytes(
    seed: u64,
    partitions: u32,
    partition: u32,
    index: u64,
    dirty_every: Option<u64>,
    out: &mut Vec<u8>,
) -> u64 {
    let mut json = String::with_capacity(160);
    let id = order_json(seed, partitions, partition, index, &mut json);
    out.clear();
    let ts = "2026-11-01T00:00:00.000Z";
    let text = match dirt_of(index, dirty_every) {
        None => json,
        Some("not-json") => format!("order {id} is not JSON"),
        Some("truncated") => json[..json.len() / 2].to_string(),
        Some("invalid-utf8") => {
            out.extend_from_slice(format!(r#"{{"order_id":{id},"currency":""#).as_bytes());
            out.extend_from_slice(&[0xff, 0xfe, b'"', b'}']);
            return id;
        }
        Some("string-in-bigint") => {
            format!(r#"{{"order_id":{id},"customer_id":"c-{id}","order_ts":"{ts}"}}"#)
        }
        Some("bad-timestamp") => format!(r#"{{"order_id":{id},"order_ts":"yesterday"}}"#),
        Some("decimal-overflow") => {
            format!(r#"{{"order_id":{id},"amount":123456789012345.5,"order_ts":"{ts}"}}"#)
        }
        Some("missing-order-ts") => format!(r#"{{"order_id":{id},"amount":5.00}}"#),
        Some("missing-order-id") => format!(r#"{{"customer_id":{id},"order_ts":"{ts}"}}"#),
        Some("too-large") => format!(
            r#"{{"order_id":{id},"amount":1.00,"order_ts":"{ts}","note":"{}"}}"#,
            "x".repeat(4096)
        ),
        Some("unknown-currency") => {
            format!(r#"{{"order_id":{id},"amount":1.00,"currency":"XXX","order_ts":"{ts}"}}"#)
        }
        Some(_) => format!(
            r#"{{"order_id":{id},"customer_id":99999999,"amount":1.00,"currency":"EUR","order_ts":"{ts}"}}"#
        ),
    };
    out.extend_from_slice(text.as_bytes());
    id
}

/// Produces the records of `spec` to `bootstrap`, waiting until all are acknowledged.
/// Returns the number produced.
pub fn produce(bootstrap: &str, spec: &GenerateSpec) -> Result<u64> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .set("enable.idempotence", "false")
        .set("acks", "all");
    for (k, v) in &spec.properties {
        cfg.set(k, v);
    }
    let producer: BaseProducer<DeliveryCount> =
        cfg.create_with_context(DeliveryCount::default())
            .map_err(|e| ToolError::Produce(format!("cannot create the producer: {e}")))?;
    let mut pace_start = Instant::now();
    let mut json = Vec::with_capacity(256);
    let mut text = String::with_capacity(256);
    let mut key = String::with_capacity(24);
    let mut sent = 0u64;
    let mut paced = 0u64;
    let longest = spec
        .ranges
        .iter()
        .map(|(s, e)| e.saturating_sub(*s))
        .max()
        .unwrap_or(0);
    for step in 0..longest {
        for p in 0..spec.partitions {
            let Some((start, end)) = spec.ranges.get(p as usize).copied() else {
                continue;
            };
            let index = start + step;
            if index >= end {
                continue;
            }
            let id = write_record(spec, p, index, &mut json, &mut text);
            key.clear();
            let _ = write!(key, "{id}");
            let mut record = BaseRecord::to(&spec.topic)
                .partition(p as i32)
                .key(key.as_bytes())
                .payload(json.as_slice());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(5));
                    }
                    Err((e, _)) => {
                        return Err(ToolError::Produce(format!(
                            "producing to {}: {e}",
                            spec.topic
                        )));
                    }
                }
            }
            sent += 1;
            let is_paced = index >= spec.paced_from.get(p as usize).copied().unwrap_or(0);
            if let Some(rate) = spec.rate.filter(|r| *r > 0 && is_paced) {
                if paced == 0 {
                    pace_start = Instant::now();
                }
                paced += 1;
                let due = Duration::from_secs_f64(paced as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(pace_start.elapsed()) {
                    producer.poll(Duration::ZERO);
                    std::thread::sleep(wait);
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|e| ToolError::Produce(format!("flushing records to {}: {e}", spec.topic)))?;
    let failed = producer.context().failed();
    if failed > 0 {
        return Err(ToolError::Produce(format!(
            "{failed} of {sent} records to {} were not delivered",
            spec.topic
        )));
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_deterministic_json_with_unique_ids() {
        let mut a = String::new();
        let mut b = String::new();
        let id = order_json(7, 4, 2, 10, &mut a);
        assert_eq!(id, 43);
        order_json(7, 4, 2, 10, &mut b);
        assert_eq!(a, b);
        let v: serde_json::Value = serde_json::from_str(&a).expect("valid JSON");
        assert_eq!(v["order_id"], 43);
        let mut ids = std::collections::HashSet::new();
        for p in 0..4 {
            for i in 0..100 {
                assert!(ids.insert(order_json(1, 4, p, i, &mut a)));
            }
        }
    }
}
