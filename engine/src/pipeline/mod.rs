//! The checkpoint-and-commit cycle of a running job.

mod dead_letter_lanes;
mod progress;
pub mod rules;
mod runner;
mod table_state;
mod waiting;

pub use dead_letter_lanes::{lane_job, lane_start};
pub use floe_catalog::counts::RecordCounts;
pub use progress::Counters;
pub use runner::{Ended, RunOptions, run};
pub use table_state::TableState;
