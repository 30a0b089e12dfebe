//! End-to-end tests: the `floe` binary against a Kafka-protocol broker running as a
//! process of its own on loopback, with a SQLite catalog and a warehouse in a temp dir.

mod crash;
mod fixture;
mod pipeline;
mod pyiceberg;
mod quality;
