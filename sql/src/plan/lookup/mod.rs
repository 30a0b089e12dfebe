//! Lookup joins: the stream joined, batch by batch, with an Iceberg table held in memory.
//!
//! A job names a lookup table `catalog.namespace.table` in a JOIN of an INSERT's SELECT
//! (`JOIN lake.ref.customers FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.customer_id =
//! c.id`, or the same without the `FOR SYSTEM_TIME` clause). Planning turns such a JOIN
//! into a [`LookupJoin`] node whose only input is the stream; it runs as a
//! `LookupJoinExec` that probes a hash index of the table's current version. The engine
//! loads each version into the table's [`LookupSlot`] (rows and index are built once per
//! version, off the executor) and swaps it in between batches; each INSERT's
//! [`Lineage`] tells which versions its rows were joined with.

mod exec;
mod index;
mod node;
mod slot;

pub use exec::FloeQueryPlanner;
pub use index::{LookupIndex, Matches};
pub use node::{Lineage, LookupJoin, Lookups, full_name, lookup_join, prune_lookup_columns};
pub use slot::{LookupError, LookupSlot, LookupTable, LookupVersion};
