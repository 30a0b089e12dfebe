//! Iceberg writing for Floe: Parquet data files ([`TableWriter`]), tables created or
//! checked from a job's declaration ([`ensure_table`]), and commits that carry Kafka
//! offsets exactly once ([`commit()`]).
#![warn(missing_docs)]

mod announce;
pub mod binding;
pub mod commit;
pub mod commit_gate;
mod commit_loop;
mod dead_letter;
mod error;
mod evolve;
mod fenced_catalog;
mod maintain;
mod newest_table;
pub mod position_deletes;
mod retry_policy;
mod table_spec;
mod writer;

pub use announce::announce_interval;
pub use binding::ColumnBinding;
pub use commit::{CommitOutcome, CommitRequest, commit, refresh};
pub use commit_loop::Retry;
pub use dead_letter::{DeadLetter, DeadLetterBatch, dead_letter_schema, dead_letter_spec};
pub use error::{Result, SinkError};
pub use evolve::evolve_table;
pub use maintain::{
    CompactionConfig, CompactionReport, ExpiryConfig, ExpiryOutcome, MAINTENANCE_KEY,
    MaintenanceConfig, MaintenancePlan, MaintenanceReport, ReplaceOutcome, Step, StepCpu,
    StepFailure, maintain, plan as plan_maintenance,
    row_delta::{RowDelta, commit_row_delta},
};
pub use newest_table::NewestTable;
pub use retry_policy::{FaultHook, RetryPolicy};
pub use table_spec::{TableSpec, check_compatible, ensure_table};
pub use writer::{TableWriter, WriterConfig, write_schema};
