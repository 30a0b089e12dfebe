//! The checkpoint-and-commit cycle of a running job.

mod progress;
mod runner;
mod table_state;

pub use progress::Counters;
pub use runner::{RunOptions, run};
pub use table_state::TableState;
