//! The generators' producer context: counts the records the broker did not accept, and
//! says so once, rather than once per record, while a broker is away.

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::ClientContext;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use tracing::warn;

/// Counts failed deliveries; the first failure is logged, the rest are in the count.
#[derive(Debug, Default)]
pub struct DeliveryCount {
    failed: AtomicU64,
}

impl DeliveryCount {
    /// Records whose delivery failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

impl ClientContext for DeliveryCount {}

impl ProducerContext for DeliveryCount {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result
            && self.failed.fetch_add(1, Ordering::Relaxed) == 0
        {
            warn!("a generated record was not delivered: {e} (later failures are counted)");
        }
    }
}
