//! What `floe run` tells the platform it runs on: Prometheus metrics, liveness and
//! readiness, served on `--metrics-addr`.

pub mod health;
pub mod metrics;
pub mod registry;
pub mod server;

pub use health::health;
pub use metrics::metrics;
