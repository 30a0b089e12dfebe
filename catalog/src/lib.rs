//! Iceberg catalogs and storage for Floe, and the offset bookkeeping that snapshot
//! summaries carry (see [`offsets`] for the exactly-once protocol).
#![warn(missing_docs)]

pub mod checkpoint;
mod connect;
pub mod counts;
mod error;
pub mod manifest_cache;
pub mod offsets;
pub mod orphans;
pub mod replayed;
pub mod storage;
pub mod table_change;

pub use connect::{CatalogConfig, CatalogKind, OpenCatalog, open_catalog};
pub use error::{CatalogError, Result, is_transient};
pub use manifest_cache::ManifestCache;
pub use offsets::{JobCheckpoint, OffsetMap, TopicPartition};
