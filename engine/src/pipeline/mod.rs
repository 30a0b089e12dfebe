//! The checkpoint-and-commit cycle of a running job.

mod counts;
mod dead_letter_lanes;
mod progress;
pub mod rules;
mod runner;
mod table_state;
mod waiting;

pub use counts::RecordCounts;
pub use dead_letter_lanes::{lane_job, lane_start};
pub use progress::Counters;
pub use runner::{RunOptions, run};
pub use table_state::TableState;
