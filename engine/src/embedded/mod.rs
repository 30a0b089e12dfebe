//! The broker and Schema Registry embedded in `floe` and the data generator that fills
//! them, so that a job runs end to end with no external services.

pub mod avro_feed;
pub mod broker;
pub mod generator;
pub mod nexmark;
