//! `floe send`: produce given values as records (for trying out bad input).

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::error::{EngineError, Result};
use crate::source::client_log::QuietContext;

/// Sends each of `values` as one record to `topic` (and `partition`, if given).
pub fn send(
    bootstrap: &str,
    topic: &str,
    partition: Option<i32>,
    key: Option<&str>,
    values: &[String],
) -> Result<()> {
    let producer: BaseProducer<QuietContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create_with_context(QuietContext::default())
        .map_err(|e| EngineError::Other(format!("cannot create the producer: {e}")))?;
    for v in values {
        let mut r = BaseRecord::<str, str>::to(topic).payload(v.as_str());
        if let Some(p) = partition {
            r = r.partition(p);
        }
        if let Some(k) = key {
            r = r.key(k);
        }
        producer
            .send(r)
            .map_err(|(e, _)| EngineError::Other(format!("sending to {topic}: {e}")))?;
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(|e| EngineError::Other(format!("flushing to {topic}: {e}")))?;
    match producer
        .context()
        .failed
        .load(std::sync::atomic::Ordering::Relaxed)
    {
        0 => Ok(()),
        n => Err(EngineError::Other(format!(
            "{n} record(s) to {topic} were not delivered"
        ))),
    }
}
