//! The broker embedded in `floe` and the data generator that fills it, so that a job
//! runs end to end with no external services.

pub mod broker;
pub mod generator;
pub mod nexmark;
