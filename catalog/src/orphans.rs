//! Orphan data files: written under a table's `data/` directory but referenced by no
//! snapshot, because the writer crashed or was fenced before its commit.
//!
//! They are invisible to readers (only snapshots make files part of a table) and safe to
//! remove once no writer can still commit them: only files older than a grace period
//! are removed, since a live writer's files are orphans until its commit lands. A writer
//! keeps a rolled file uncommitted for up to one commit interval, so the grace is always
//! extended by the longest `commit.interval` any job records in its checkpoint property
//! on the table (see [`crate::checkpoint`]): `--older-than 0s` can never remove a file a
//! running job is about to commit.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use iceberg::spec::SnapshotRef;
use iceberg::table::Table;
use object_store::ObjectStoreExt;

use crate::checkpoint::checkpoint_records;
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

/// The table's orphan data files, oldest first.
pub async fn find_orphans(
    table: &Table,
    store: &StoreConfig,
    cache: &ManifestCache,
) -> Result<Vec<OrphanFile>> {
    let referenced = referenced(table, cache).await?.files;
    unreferenced_under(table, store, "data", |l| {
        l.ends_with(".parquet") && !referenced.contains(l)
    })
    .await
}

/// Metadata files no current state reaches, oldest first: metadata JSON files that left
/// the metadata log, manifests and manifest lists of commits that never landed.
pub async fn find_metadata_orphans(
    table: &Table,
    store: &StoreConfig,
    cache: &ManifestCache,
) -> Result<Vec<OrphanFile>> {
    let reached = referenced(table, cache).await?;
    let md = table.metadata();
    let known: HashSet<String> = md
        .metadata_log()
        .iter()
        .map(|l| l.metadata_file.clone())
        .chain(table.metadata_location().map(str::to_string))
        .chain(reached.lists)
        .chain(reached.manifests)
        .collect();
    let ours = |l: &str| l.ends_with(".avro") || l.ends_with(".metadata.json");
    unreferenced_under(table, store, "metadata", |l| ours(l) && !known.contains(l)).await
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
    let found = unreferenced_under(table, store, "metadata", |l| {
        metadata_version(l).is_some_and(|v| v < floor)
    })
    .await?;
    remove_older(table, store, found, Duration::ZERO).await
}

/// The version in a `{version}-{uuid}.metadata.json` file name.
fn metadata_version(location: &str) -> Option<u64> {
    let name = location.rsplit('/').next()?;
    let stem = name.strip_suffix(".metadata.json")?;
    stem.split_once('-')?.0.parse().ok()
}

/// Files under the table's `dir` that `orphan` picks, oldest first.
async fn unreferenced_under(
    table: &Table,
    store: &StoreConfig,
    dir: &str,
    orphan: impl Fn(&str) -> bool,
) -> Result<Vec<OrphanFile>> {
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
        .filter_map(|meta| {
            let location = storage.location(&meta.location);
            if !orphan(&location) {
                return None;
            }
            let modified = std::time::SystemTime::from(meta.last_modified);
            Some(OrphanFile {
                location,
                size: meta.size,
                age: now.duration_since(modified).unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by_key(|f| std::cmp::Reverse(f.age));
    Ok(out)
}

/// How long orphans are kept, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grace {
    /// Orphans younger than this are kept.
    pub keep_younger_than: Duration,
    /// The job that commits the table least often, and its commit interval.
    pub slowest_writer: Option<(String, Duration)>,
}

/// The grace that protects every writer of `table`: `requested` plus the longest commit
/// interval any job has recorded on it.
pub fn safe_grace(table: &Table, requested: Duration) -> Result<Grace> {
    let name = table.identifier().to_string();
    let slowest_writer = checkpoint_records(&name, table.metadata())?
        .into_iter()
        .map(|(job, r)| (job, Duration::from_millis(r.commit_interval_ms)))
        .max_by_key(|(_, interval)| *interval);
    Ok(Grace {
        keep_younger_than: requested
            .saturating_add(slowest_writer.as_ref().map_or(Duration::ZERO, |(_, d)| *d)),
        slowest_writer,
    })
}

/// Removes the orphans older than the safe grace for `requested` (pass a freshly loaded
/// `table`); returns the removed ones and the grace applied.
pub async fn remove_orphans(
    table: &Table,
    store: &StoreConfig,
    requested: Duration,
    cache: &ManifestCache,
) -> Result<(Vec<OrphanFile>, Grace)> {
    let grace = safe_grace(table, requested)?;
    let found = find_orphans(table, store, cache).await?;
    let removed = remove_older(table, store, found, grace.keep_younger_than).await?;
    Ok((removed, grace))
}

/// Removes the metadata orphans older than the safe grace for `requested`.
pub async fn remove_metadata_orphans(
    table: &Table,
    store: &StoreConfig,
    requested: Duration,
    cache: &ManifestCache,
) -> Result<Vec<OrphanFile>> {
    let grace = safe_grace(table, requested)?;
    let found = find_metadata_orphans(table, store, cache).await?;
    remove_older(table, store, found, grace.keep_younger_than).await
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
