//! Parsed manifest lists and manifests, kept between maintenance passes.
//!
//! Both are immutable once written (every writer names them with a fresh UUID), so a
//! long-lived reader may keep them by path. Parsing is the dominant cost of a pass over a
//! table that commits every few hundred milliseconds: each manifest embeds its Avro
//! schema, which is parsed again for every file. A pass reads the manifest lists of every
//! retained snapshot and the manifests they share; with the cache it parses only what
//! was committed since the previous pass.
//!
//! Entries a pass did not use are dropped at the end of that pass
//! ([`ManifestCache::end_pass`]), so the cache holds about one pass's working set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use iceberg::spec::{Manifest, ManifestFile, ManifestList, SnapshotRef};
use iceberg::table::Table;

/// Shared handle to the cache; clones share it.
#[derive(Debug, Clone, Default)]
pub struct ManifestCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    pass: u64,
    lists: HashMap<String, (u64, Arc<ManifestList>)>,
    manifests: HashMap<String, (u64, Arc<Manifest>)>,
}

impl ManifestCache {
    /// The manifest list of `snapshot`, read once.
    pub async fn list(
        &self,
        table: &Table,
        snapshot: &SnapshotRef,
    ) -> iceberg::Result<Arc<ManifestList>> {
        let path = snapshot.manifest_list();
        if let Some(hit) = self.get(path, |i| &mut i.lists) {
            return Ok(hit);
        }
        let list = Arc::new(table.manifest_list_reader(snapshot).load().await?);
        self.put(path, list.clone(), |i| &mut i.lists);
        Ok(list)
    }

    /// The manifest `file` points to, read once.
    pub async fn manifest(
        &self,
        table: &Table,
        file: &ManifestFile,
    ) -> iceberg::Result<Arc<Manifest>> {
        let path = &file.manifest_path;
        if let Some(hit) = self.get(path, |i| &mut i.manifests) {
            return Ok(hit);
        }
        let manifest = Arc::new(file.load_manifest(table.file_io()).await?);
        self.put(path, manifest.clone(), |i| &mut i.manifests);
        Ok(manifest)
    }

    /// Drops what the pass now ending did not read.
    pub fn end_pass(&self) {
        let mut inner = self.lock();
        let pass = inner.pass;
        inner.lists.retain(|_, (used, _)| *used == pass);
        inner.manifests.retain(|_, (used, _)| *used == pass);
        inner.pass += 1;
    }

    /// Manifest lists and manifests held now.
    pub fn len(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.lists.len(), inner.manifests.len())
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The maps stay consistent whatever panicked while holding the lock.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get<T>(
        &self,
        path: &str,
        map: impl Fn(&mut Inner) -> &mut HashMap<String, (u64, Arc<T>)>,
    ) -> Option<Arc<T>> {
        let mut inner = self.lock();
        let pass = inner.pass;
        let (used, value) = map(&mut inner).get_mut(path)?;
        *used = pass;
        Some(value.clone())
    }

    fn put<T>(
        &self,
        path: &str,
        value: Arc<T>,
        map: impl Fn(&mut Inner) -> &mut HashMap<String, (u64, Arc<T>)>,
    ) {
        let mut inner = self.lock();
        let pass = inner.pass;
        map(&mut inner).insert(path.to_string(), (pass, value));
    }
}
