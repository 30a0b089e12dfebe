//! Floe's job-file language.
//!
//! A job file declares catalogs, Kafka sources and Iceberg tables, and connects them with
//! `INSERT INTO … SELECT` statements. This crate parses job files ([`parse_job`]) and plans
//! their INSERTs through DataFusion ([`compile`]). It performs no I/O beyond what the
//! caller hands it.
#![warn(missing_docs)]

mod column_type;
mod error;
pub mod job;
mod json_arrows;
mod key_options;
mod maintenance_options;
mod options;
mod parser;
pub mod plan;
pub mod redact;
mod registry_options;
mod source_options;
mod substitute;
mod system_time;
mod table_options;
mod types;
mod units;

pub use column_type::{LIST_ELEMENT, MAP_ENTRIES, list_of, map_of};
pub use error::{ErrorKind, Pos, Result, SqlError, nearest};
pub use options::{OptionReader, RawOption};
pub use parser::parse_job;
pub use plan::{BatchSlot, CompiledCheck, CompiledInsert, CompiledJob, ROW_COLUMN, compile};
pub use source_options::EMBEDDED_BOOTSTRAP;
pub use substitute::{EnvOrKeep, EnvVariables, Variables, substitute};
pub use types::{UTC, arrow_type};
pub use units::{parse_duration, parse_size};
