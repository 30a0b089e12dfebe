//! Orphan data files: written under a table's `data/` directory but referenced by no
//! snapshot, because the writer crashed or was fenced before its commit.
//!
//! They are invisible to readers (only snapshots make files part of a table) and safe to
//! remove once no writer can still commit them. Two rules make removal safe beside
//! running writers, Floe's own or anyone's:
//!
//! ```text
//!   1. list storage (data/ and metadata/)        ── what exists now
//!   2. load the table from the catalog, fresh     ── everything committed before 2
//!   3. orphan = listed, not reached by (2), older than the grace
//! ```
//!
//! A file committed between 1 and 2 is reached by the fresh table; a file written after 1
//! is not listed. Comparing with an older table state (one a pass kept from its own last
//! commit) would count the files other commits added meanwhile as unreferenced.
//!
//! The grace covers the longest time a live writer may hold a written file before its
//! commit lands: the requested age, plus the longest `commit.interval` any job records on
//! the table (in its checkpoint, or announced before its first commit; see
//! [`crate::checkpoint`]), plus [`COMMIT_RETRY_DEADLINE`], how long a commit keeps retrying.
//! So `--older-than 0s` can never remove a file a running job is about to commit.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use iceberg::Catalog;
use iceberg::spec::SnapshotRef;
use iceberg::table::Table;
use object_store::ObjectStoreExt;

use crate::checkpoint::writer_intervals;
use crate::error::{CatalogError, Result};
use crate::manifest_cache::ManifestCache;
use crate::storage::{ObjectStorage, StoreConfig};

/// A data file no snapshot references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanFile {
    /// Its location.
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    /// How long ago it was last written.
    pub age: Duration,
}

fn error(table: &Table, what: &str, e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Maintenance {
        table: table.identifier().to_string(),
        message: format!("{what}: {e}"),
    }
}

/// What the table's snapshots (all branches and tags) reach.
#[derive(Debug, Default)]
pub struct Referenced {
    /// Manifest lists.
    pub lists: HashSet<String>,
    /// Manifests.
    pub manifests: HashSet<String>,
    /// Data and delete files, in any entry (live or deleted).
    pub files: HashSet<String>,
}

/// Everything any snapshot of the table reaches, reading each manifest once (snapshots
/// share most of their manifests).
pub async fn referenced(table: &Table, cache: &ManifestCache) -> Result<Referenced> {
    reached(table, table.metadata().snapshots(), true, cache).await
}

/// What `snapshots` of `table` reach, reading each manifest list and manifest at most
/// once (through `cache`); data files count only where live unless `deleted_too` (a
/// DELETED entry keeps no file, but it may be the last mention of one).
pub async fn reached<'a>(
    table: &Table,
    snapshots: impl Iterator<Item = &'a SnapshotRef>,
    deleted_too: bool,
    cache: &ManifestCache,
) -> Result<Referenced> {
    let mut out = Referenced::default();
    for s in snapshots {
        out.lists.insert(s.manifest_list().to_string());
        let list = cache
            .list(table, s)
            .await
            .map_err(|e| error(table, "reading a manifest list", e))?;
        for m in list.entries() {
            // Snapshots share most manifests: look before copying the path.
            if out.manifests.contains(&m.manifest_path) {
                continue;
            }
            out.manifests.insert(m.manifest_path.clone());
            let manifest = cache
                .manifest(table, m)
                .await
                .map_err(|e| error(table, "reading a manifest", e))?;
            let entries = manifest.entries().iter();
            out.files.extend(
                entries
                    .filter(|e| deleted_too || e.is_alive())
                    .map(|e| e.file_path().to_string()),
            );
        }
    }
    Ok(out)
}

/// What an orphan scan found: the table as loaded after storage was listed, and the
/// listed files it does not reach.
#[derive(Debug)]
pub struct OrphanScan {
    /// The table, loaded after the listing.
    pub table: Table,
    /// Data files no snapshot reaches, oldest first.
    pub data: Vec<OrphanFile>,
    /// Manifests, manifest lists and `metadata.json` files no current state reaches
    /// (commits that never landed, versions that left the metadata log), oldest first.
    pub metadata: Vec<OrphanFile>,
}

/// Lists `table`'s storage, then loads the table fresh from `catalog`, then compares
/// (see the module doc); `table` only names the table and its location.
pub async fn scan_orphans(
    catalog: &dyn Catalog,
    table: &Table,
    store: &StoreConfig,
    cache: &ManifestCache,
) -> Result<OrphanScan> {
    let data = list_under(table, store, "data").await?;
    let metadata = list_under(table, store, "metadata").await?;
    let fresh = catalog
        .load_table(table.identifier())
        .await
        .map_err(|e| CatalogError::iceberg(format!("loading {}", table.identifier()), e))?;
    let reached = referenced(&fresh, cache).await?;
    let md = fresh.metadata();
    let known: HashSet<&str> = md
        .metadata_log()
        .iter()
        .map(|l| l.metadata_file.as_str())
        .chain(fresh.metadata_location())
        .chain(reached.lists.iter().map(String::as_str))
        .chain(reached.manifests.iter().map(String::as_str))
        .collect();
    let ours = |l: &str| l.ends_with(".avro") || l.ends_with(".metadata.json");
    let data = data
        .into_iter()
        .filter(|f| f.location.ends_with(".parquet") && !reached.files.contains(&f.location))
        .collect();
    let metadata = metadata
        .into_iter()
        .filter(|f| ours(&f.location) && !known.contains(f.location.as_str()))
        .collect();
    Ok(OrphanScan {
        table: fresh,
        data,
        metadata,
    })
}

/// Removes the `metadata.json` files older than every version the metadata log still
/// names (the log keeps `write.metadata.previous-versions-max`, 100 by default). Nothing
/// reaches them and no writer can commit them again (a commit swaps from the current
/// version), so no grace applies: this is what Iceberg's
/// `write.metadata.delete-after-commit.enabled` does, which iceberg-rust's catalogs do
/// not. Without it, a table committed every 2 s would keep a day of multi-megabyte
/// JSON files until the orphan cleanup reached them. Names that carry no version
/// (`{version:05}-{uuid}.metadata.json`) are left to the orphan cleanup.
pub async fn remove_superseded_metadata(
    table: &Table,
    store: &StoreConfig,
) -> Result<Vec<OrphanFile>> {
    let md = table.metadata();
    let floor = md
        .metadata_log()
        .iter()
        .map(|l| l.metadata_file.as_str())
        .chain(table.metadata_location())
        .filter_map(metadata_version)
        .min();
    let Some(floor) = floor else {
        return Ok(vec![]);
    };
    let found = list_under(table, store, "metadata")
        .await?
        .into_iter()
        .filter(|f| metadata_version(&f.location).is_some_and(|v| v < floor))
        .collect();
    remove_older(table, store, found, Duration::ZERO).await
}

/// The version in a `{version}-{uuid}.metadata.json` file name.
fn metadata_version(location: &str) -> Option<u64> {
    let name = location.rsplit('/').next()?;
    let stem = name.strip_suffix(".metadata.json")?;
    stem.split_once('-')?.0.parse().ok()
}

/// Every file under the table's `dir`, oldest first.
async fn list_under(table: &Table, store: &StoreConfig, dir: &str) -> Result<Vec<OrphanFile>> {
    let storage = ObjectStorage::new(store.clone());
    let dir = format!(
        "{}/{dir}",
        table.metadata().location().trim_end_matches('/')
    );
    let prefix = storage
        .path(&dir)
        .map_err(|e| error(table, "resolving the table's directory", e))?;
    let now = std::time::SystemTime::now();
    let listed: Vec<_> = storage
        .store()
        .map_err(|e| error(table, "opening the store", e))?
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| error(table, &format!("listing {dir}"), e))?;
    let mut out: Vec<OrphanFile> = listed
        .into_iter()
        .map(|meta| {
            let modified = std::time::SystemTime::from(meta.last_modified);
            OrphanFile {
                location: storage.location(&meta.location),
                size: meta.size,
                age: now.duration_since(modified).unwrap_or_default(),
            }
        })
        .collect();
    out.sort_by_key(|f| std::cmp::Reverse(f.age));
    Ok(out)
}

/// How long a commit keeps retrying before it gives up: the commit loops' deadline. A
/// written file may wait this long beyond its writer's commit interval.
pub const COMMIT_RETRY_DEADLINE: Duration = Duration::from_secs(120);

/// How long orphans are kept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grace {
    /// Orphans younger than this are kept.
    pub keep_younger_than: Duration,
    /// The job that commits the table least often, and its commit interval.
    pub slowest_writer: Option<(String, Duration)>,
}

/// The grace that protects every writer of `table`: `requested`, plus the longest commit
/// interval any job has recorded or announced on it, plus [`COMMIT_RETRY_DEADLINE`].
pub fn safe_grace(table: &Table, requested: Duration) -> Result<Grace> {
    let name = table.identifier().to_string();
    let slowest_writer = writer_intervals(&name, table.metadata())?
        .into_iter()
        .max_by_key(|(_, interval)| *interval);
    let interval = slowest_writer.as_ref().map_or(Duration::ZERO, |(_, d)| *d);
    Ok(Grace {
        keep_younger_than: requested
            .saturating_add(interval)
            .saturating_add(COMMIT_RETRY_DEADLINE),
        slowest_writer,
    })
}

/// Removes what `scan` found that is older than the safe grace for `requested`; returns
/// the removed files (data, then metadata) and the grace applied.
pub async fn remove_orphans(
    scan: &OrphanScan,
    store: &StoreConfig,
    requested: Duration,
) -> Result<(Vec<OrphanFile>, Grace)> {
    let grace = safe_grace(&scan.table, requested)?;
    let found = scan.data.iter().chain(&scan.metadata).cloned().collect();
    let removed = remove_older(&scan.table, store, found, grace.keep_younger_than).await?;
    Ok((removed, grace))
}

async fn remove_older(
    table: &Table,
    store: &StoreConfig,
    found: Vec<OrphanFile>,
    keep_younger_than: Duration,
) -> Result<Vec<OrphanFile>> {
    let storage = ObjectStorage::new(store.clone());
    let mut removed = vec![];
    for f in found {
        if f.age < keep_younger_than {
            continue;
        }
        let path = storage
            .path(&f.location)
            .map_err(|e| error(table, "resolving an orphan", e))?;
        storage
            .store()
            .map_err(|e| error(table, "opening the store", e))?
            .delete(&path)
            .await
            .map_err(|e| error(table, &format!("removing {}", f.location), e))?;
        removed.push(f);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::metadata_version;

    #[test]
    fn metadata_versions_come_from_the_file_name() {
        let l = "s3://b/wh/t/metadata/00042-1b4e28ba-2fa1-11d2-883f-0016d3cca427.metadata.json";
        assert_eq!(metadata_version(l), Some(42));
        assert_eq!(
            metadata_version("file:///t/metadata/v3.metadata.json"),
            None
        );
        assert_eq!(metadata_version("file:///t/metadata/snap-1-0-x.avro"), None);
    }
}
