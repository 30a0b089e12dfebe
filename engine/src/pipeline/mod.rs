//! The checkpoint-and-commit cycle of a running job.

mod counts;
mod progress;
pub mod rules;
mod runner;
mod table_state;
mod waiting;

pub use counts::RecordCounts;
pub use progress::Counters;
pub use runner::{RunOptions, run};
pub use table_state::TableState;
