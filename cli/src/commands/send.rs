//! `floe send`: produce given values as records (for trying out bad input).

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use anyhow::Result;
use floe_engine::source::client_log::QuietContext;

/// How `floe send` turns its arguments into records.
#[derive(Debug, Default, Clone)]
pub struct SendOptions {
    /// Partition (None: the producer's choice).
    pub partition: Option<i32>,
    /// The key of every record.
    pub key: Option<String>,
    /// Each value is `key<separator>value`, split at the first separator.
    pub key_separator: Option<String>,
    /// A value equal to this is sent as no value at all (a tombstone).
    pub null_marker: Option<String>,
}

/// Sends each of `values` as one record to `topic`.
pub fn send(bootstrap: &str, topic: &str, opts: &SendOptions, values: &[String]) -> Result<()> {
    let producer: BaseProducer<QuietContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create_with_context(QuietContext::default())
        .map_err(|e| anyhow::Error::msg(format!("cannot create the producer: {e}")))?;
    for v in values {
        let (key, value) = split(opts, v)?;
        let mut r = BaseRecord::<str, str>::to(topic);
        if opts.null_marker.as_deref() != Some(value) {
            r = r.payload(value);
        }
        if let Some(p) = opts.partition {
            r = r.partition(p);
        }
        if let Some(k) = key {
            r = r.key(k);
        }
        producer
            .send(r)
            .map_err(|(e, _)| anyhow::Error::msg(format!("sending to {topic}: {e}")))?;
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| anyhow::Error::msg(format!("flushing to {topic}: {e}")))?;
    match producer
        .context()
        .failed
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        0 => Ok(()),
        n => Err(anyhow::Error::msg(format!(
            "{n} record(s) to {topic} were not delivered"
        ))),
    }
}

/// The key and value of argument `v`.
fn split<'a>(opts: &'a SendOptions, v: &'a str) -> Result<(Option<&'a str>, &'a str)> {
    match &opts.key_separator {
        None => Ok((opts.key.as_deref(), v)),
        Some(sep) => v
            .split_once(sep.as_str())
            .map(|(k, v)| (Some(k), v))
            .ok_or_else(|| {
                anyhow::Error::msg(format!(
                    "'{v}' has no key: with --key-separator '{sep}', each value is key{sep}value"
                ))
            }),
    }
}
