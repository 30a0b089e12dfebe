//! What a table's current snapshot is made of: its manifests and their entries.

use floe_catalog::ManifestCache;
use iceberg::spec::{
    DataContentType, ManifestContentType, ManifestEntryRef, ManifestFile, SchemaRef,
};
use iceberg::table::Table;

/// One manifest of the current snapshot, read.
#[derive(Debug, Clone)]
pub(crate) struct ManifestContents {
    /// Its entry in the manifest list.
    pub(crate) file: ManifestFile,
    /// Its entries, live and deleted.
    pub(crate) entries: Vec<ManifestEntryRef>,
    /// The schema it was written with: its entries' partition values have the types
    /// this schema gives the partition fields (older than the table's after a promotion).
    pub(crate) schema: SchemaRef,
}

impl ManifestContents {
    /// Whether it lists data files (not delete files).
    pub(crate) fn is_data(&self) -> bool {
        self.file.content == ManifestContentType::Data
    }

    /// Its live data-file entries.
    pub(crate) fn live(&self) -> impl Iterator<Item = &ManifestEntryRef> {
        self.entries
            .iter()
            .filter(|e| e.is_alive() && e.content_type() == DataContentType::Data)
    }
}

/// Every manifest of `table`'s current snapshot, read through `cache` (none for an
/// empty table).
pub(crate) async fn current_manifests(
    table: &Table,
    cache: &ManifestCache,
) -> iceberg::Result<Vec<ManifestContents>> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(vec![]);
    };
    let list = cache.list(table, snapshot).await?;
    let mut out = Vec::with_capacity(list.entries().len());
    for file in list.entries() {
        let manifest = cache.manifest(table, file).await?;
        out.push(ManifestContents {
            file: file.clone(),
            entries: manifest.entries().to_vec(),
            schema: manifest.metadata().schema().clone(),
        });
    }
    Ok(out)
}

/// [`current_manifests`], with the table named in the error.
pub(crate) async fn manifests_of(
    table: &Table,
    cache: &ManifestCache,
) -> crate::error::Result<Vec<ManifestContents>> {
    current_manifests(table, cache).await.map_err(|e| {
        crate::error::SinkError::iceberg(table.identifier(), "reading the manifests", e)
    })
}
