//! Planning: each INSERT becomes one DataFusion physical plan that runs over every micro-batch.

mod compile;
mod slot;

pub use compile::{CompiledInsert, CompiledJob, compile, session_config};
pub use slot::{BatchSlot, SlotTable};
