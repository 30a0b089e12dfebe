//! The `floe` subcommands.

pub mod broker;
pub mod describe;
pub mod explain;
pub mod maintain;
pub mod orphans;
pub mod produce;
pub mod query;
pub mod registry;
pub mod run;
pub mod send;
