//! Errors of the developer tooling: what failed, said as the command line prints it.

/// A failure of the embedded broker, the embedded registry or a generator.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The embedded broker could not start, create a topic, or go down or up.
    #[error("{0}")]
    Broker(String),
    /// The embedded Schema Registry could not start, load its state or register.
    #[error("embedded schema registry: {0}")]
    Registry(String),
    /// Generated records could not be produced or were not delivered.
    #[error("{0}")]
    Produce(String),
    /// An embedded source asks its generator for something it cannot do.
    #[error("kafka source {source_name}: {message}")]
    Feed {
        /// The job's source name.
        source_name: String,
        /// What does not fit.
        message: String,
    },
}

/// Result type of the developer tooling.
pub type Result<T, E = ToolError> = std::result::Result<T, E>;
