//! A Kafka-protocol broker inside the process: librdkafka's mock cluster.
//!
//! It speaks the real protocol on a loopback port, so Floe's consumer talks to it exactly
//! as to any broker. Its log lives in memory and ends with the process.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::error::{EngineError, Result};

/// The id of the one broker of the cluster.
const BROKER_ID: i32 = 1;

/// A running embedded broker.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap", &self.bootstrap_servers())
            .finish()
    }
}

impl EmbeddedBroker {
    /// Starts a one-broker cluster on a free loopback port.
    pub fn start() -> Result<Self> {
        let cluster = MockCluster::new(1)
            .map_err(|e| EngineError::Other(format!("cannot start the embedded broker: {e}")))?;
        Ok(Self { cluster })
    }

    /// `host:port` to connect to.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// Takes the broker down (`up` false): connections drop and new ones are refused, as
    /// when a broker process stops; the log is kept for when it comes back up.
    pub fn set_up(&self, up: bool) -> Result<()> {
        let result = if up {
            self.cluster.broker_up(BROKER_ID)
        } else {
            self.cluster.broker_down(BROKER_ID)
        };
        result.map_err(|e| {
            EngineError::Other(format!("cannot take the embedded broker up or down: {e}"))
        })
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: u32) -> Result<()> {
        let p = i32::try_from(partitions).unwrap_or(i32::MAX);
        self.cluster.create_topic(topic, p, 1).map_err(|e| {
            EngineError::Other(format!(
                "cannot create topic {topic} on the embedded broker: {e}"
            ))
        })
    }
}
