//! A Kafka-protocol broker inside the process: librdkafka's mock cluster.
//!
//! It speaks the real protocol on a loopback port, so Floe's consumer talks to it exactly
//! as to any broker. Its log lives in memory and ends with the process.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer};

use crate::error::{Result, ToolError};

/// The id of the one broker of the cluster.
const BROKER_ID: i32 = 1;

/// Log bytes the broker keeps per partition before it drops the oldest record batches
/// (librdkafka's `rdkafka_mock.c`: 5 MB, or 100 000 batches, whichever comes first).
pub const RETENTION_BYTES_PER_PARTITION: u64 = 5 << 20;

/// Bytes a record costs in the log besides its key and value (batch and record headers,
/// rounded up).
const RECORD_OVERHEAD_BYTES: u64 = 24;

/// How many records of `record_bytes` (key and value) one partition keeps.
pub fn retained_records(record_bytes: u64) -> u64 {
    RETENTION_BYTES_PER_PARTITION / (record_bytes + RECORD_OVERHEAD_BYTES).max(1)
}

/// A running embedded broker.
pub struct EmbeddedBroker {
    /// The client that owns the cluster (created with `test.mock.num.brokers`); the
    /// cluster lives as long as it does.
    owner: BaseProducer,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap", &self.bootstrap_servers())
            .finish()
    }
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster on a free loopback port. A new consumer group waits
    /// `group_join_delay` for more members before its first assignment.
    #[allow(unsafe_code)]
    pub fn start(group_join_delay: Duration) -> Result<Self> {
        let fail = |e: String| ToolError::Broker(format!("cannot start the embedded broker: {e}"));
        let owner: BaseProducer<DefaultProducerContext> = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .create()
            .map_err(|e| fail(e.to_string()))?;
        let delay_ms = i32::try_from(group_join_delay.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: the handle is alive (owned by `owner`), and a client created with
        // `test.mock.num.brokers` always has a mock cluster; the call only stores the value.
        unsafe {
            let cluster = rdkafka_sys::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
            if cluster.is_null() {
                return Err(fail("librdkafka made no mock cluster".into()));
            }
            rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, delay_ms);
        }
        Ok(Self { owner })
    }

    fn cluster(&self) -> Result<MockCluster<'_, DefaultProducerContext>> {
        self.owner
            .client()
            .mock_cluster()
            .ok_or_else(|| ToolError::Broker("the embedded broker is gone".into()))
    }

    /// `host:port` to connect to.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster()
            .map(|c| c.bootstrap_servers())
            .unwrap_or_default()
    }

    /// Takes the broker down (`up` false): connections drop and new ones are refused, as
    /// when a broker process stops; the log is kept for when it comes back up.
    pub fn set_up(&self, up: bool) -> Result<()> {
        let cluster = self.cluster()?;
        let result = if up {
            cluster.broker_up(BROKER_ID)
        } else {
            cluster.broker_down(BROKER_ID)
        };
        result.map_err(|e| {
            ToolError::Broker(format!("cannot take the embedded broker up or down: {e}"))
        })
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) -> Result<()> {
        let p = i32::try_from(partitions).unwrap_or(i32::MAX);
        self.cluster()?.create_topic(topic, p, 1).map_err(|e| {
            ToolError::Broker(format!(
                "cannot create topic {topic} on the embedded broker: {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rdkafka::consumer::{BaseConsumer, Consumer};

    use super::*;
    use crate::generator::{Feed, GenerateSpec, produce, typical_record_bytes};

    fn consumer(bootstrap: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "embedded-broker-test")
            .create()
            .expect("consumer")
    }

    /// The retention estimate is on the safe side: a partition filled to it still starts
    /// at offset 0, and twice as much pushes the start forward.
    #[test]
    fn retention_estimate_keeps_every_record_it_promises() {
        let broker = EmbeddedBroker::start(Duration::ZERO).expect("broker");
        broker.create_topic("bids", 1).expect("topic");
        let bootstrap = broker.bootstrap_servers();
        let n = retained_records(typical_record_bytes(Feed::Bids));
        assert!((20_000..40_000).contains(&n), "{n} bids per partition");
        let consumer = consumer(&bootstrap);
        let watermarks = || {
            consumer
                .fetch_watermarks("bids", 0, Duration::from_secs(10))
                .expect("watermarks")
        };
        let bids = |from, to| GenerateSpec::one_partition("bids", Feed::Bids, from, to);
        assert_eq!(produce(&bootstrap, &bids(0, n)).expect("produce"), n);
        assert_eq!(
            watermarks(),
            (0, n as i64),
            "records within the estimate were dropped"
        );
        produce(&bootstrap, &bids(n, 2 * n)).expect("produce");
        let (start, end) = watermarks();
        assert_eq!(end, 2 * n as i64);
        assert!(start > 0, "the broker kept all of {end} records");
    }

    /// True when a lone member of a new group gets its partitions within `wait`.
    fn assigned_within(group_join_delay: Duration, wait: Duration) -> bool {
        let broker = EmbeddedBroker::start(group_join_delay).expect("broker");
        broker.create_topic("t", 1).expect("topic");
        let consumer = consumer(&broker.bootstrap_servers());
        consumer.subscribe(&["t"]).expect("subscribe");
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let _ = consumer.poll(Duration::from_millis(100));
            if consumer.assignment().is_ok_and(|a| a.count() > 0) {
                return true;
            }
        }
        false
    }

    /// The delay is the broker's wait for more members before a new group's first
    /// assignment: none at zero (Kafka's default would be 3 s), the whole delay otherwise.
    #[test]
    fn a_new_group_is_assigned_after_the_join_delay() {
        assert!(assigned_within(Duration::ZERO, Duration::from_millis(2500)));
        assert!(!assigned_within(
            Duration::from_secs(60),
            Duration::from_secs(4)
        ));
    }
}
