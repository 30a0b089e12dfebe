//! Planning: each INSERT becomes one DataFusion physical plan that runs over every micro-batch.

mod compile;
mod evolve;
mod implicit;
pub mod lookup;
mod slot;

pub use compile::{
    CompiledCheck, CompiledInsert, CompiledJob, compile, session_config, slot_schema,
    with_row_numbers,
};

/// The hidden column that numbers a micro-batch's source records. Plans carry it through
/// to their output, so each output row can be traced to the record it came from.
pub const ROW_COLUMN: &str = "__floe_row";
pub use evolve::widens;
pub use slot::{BatchSlot, SlotTable};
