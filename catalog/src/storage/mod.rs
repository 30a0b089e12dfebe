//! Iceberg storage over `object_store`: metadata, manifests and data files all go through
//! one configured object store.
//!
//! iceberg-rust asks a [`StorageFactory`] for a [`Storage`] per table; ours maps Iceberg's
//! URIs (`file:///…`, `s3://bucket/…`, `gs://bucket/…`, Azure's) to object-store paths. The
//! store itself is built lazily from a
//! serialisable [`StoreConfig`], because iceberg-rust may serialise storages with the
//! table's `FileIO`.

pub mod azure;
pub mod gcs;
mod io;
mod options;
pub mod s3;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::io::{
    FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig,
    StorageFactory,
};
use iceberg::{Error, ErrorKind, Result};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use azure::AzureConfig;
use gcs::{GcsConfig, split_gcs};
use io::{ObjectRead, ObjectWrite};
use s3::{S3Config, split_s3};

/// Which object store to build, in a form that survives serialisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreConfig {
    /// The local filesystem; paths are absolute `file://` URIs.
    Local,
    /// One S3 (or S3-compatible) bucket; paths are `s3://bucket/key` URIs.
    S3(S3Config),
    /// One Azure container; paths are `abfss://container@account…/key` (or the
    /// warehouse's other Azure form).
    Azure(AzureConfig),
    /// One Google Cloud Storage bucket; paths are `gs://bucket/key` URIs.
    Gcs(GcsConfig),
    /// Whichever store the first location a storage sees belongs to: a REST catalog that
    /// names its warehouse by a logical name places the tables where it likes. The
    /// `storage.*` options of that store's kind apply, and credentials the catalog vends.
    ByLocation {
        /// The catalog's `storage.*` options, prefix removed.
        options: BTreeMap<String, String>,
        /// Storage settings the catalog handed out with the table.
        vended: HashMap<String, String>,
    },
}

impl StoreConfig {
    /// Builds the client; fails on settings the store refuses (a malformed endpoint).
    pub fn build(&self) -> Result<Arc<dyn ObjectStore>> {
        match self {
            Self::Local => Ok(Arc::new(LocalFileSystem::new())),
            Self::S3(c) => c.build().map_err(|e| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!("cannot set up the S3 client for bucket {}", c.bucket),
                )
                .with_source(e)
            }),
            Self::Azure(c) => c.build().map_err(|e| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!("cannot set up the Azure client for {}", c.root),
                )
                .with_source(e)
            }),
            Self::Gcs(c) => c.build().map_err(|e| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!("cannot set up the GCS client for bucket {}", c.bucket),
                )
                .with_source(e)
            }),
            Self::ByLocation { .. } => Err(Error::new(
                ErrorKind::Unexpected,
                "the store is decided by the first location it is asked for",
            )),
        }
    }

    /// The store of `location` if it is on a cloud store (`s3://`, `gs://`, Azure's
    /// schemes), with the `storage.*` options of that kind, and the location without a
    /// trailing slash. None for other locations.
    pub fn for_cloud_location(
        location: &str,
        options: &BTreeMap<String, String>,
    ) -> Option<std::result::Result<(String, StoreConfig), String>> {
        if let Some((bucket, prefix)) = split_s3(location) {
            return Some(
                S3Config::new(bucket, options)
                    .map(|c| (bucket_location("s3", bucket, prefix), StoreConfig::S3(c))),
            );
        }
        if let Some((bucket, prefix)) = split_gcs(location) {
            return Some(
                GcsConfig::new(bucket, options)
                    .map(|c| (bucket_location("gs", bucket, prefix), StoreConfig::Gcs(c))),
            );
        }
        if AZURE_SCHEMES.iter().any(|s| location.starts_with(s)) {
            return Some(AzureConfig::new(location, options).map(|c| {
                (
                    location.trim_end_matches('/').to_string(),
                    StoreConfig::Azure(c),
                )
            }));
        }
        None
    }

    /// The store a table at `location` lives in, for [`StoreConfig::ByLocation`]: only
    /// the options of that store's kind apply, and vended S3 credentials win.
    fn of_table(
        location: &str,
        options: &BTreeMap<String, String>,
        vended: &HashMap<String, String>,
    ) -> Result<StoreConfig> {
        let kind = if split_s3(location).is_some() {
            "s3."
        } else if split_gcs(location).is_some() {
            "gcs."
        } else {
            "adls."
        };
        let own: BTreeMap<String, String> = options
            .iter()
            .filter(|(k, _)| k.starts_with(kind))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let config = match Self::for_cloud_location(location, &own) {
            Some(found) => {
                found
                    .map_err(|message| Error::new(ErrorKind::DataInvalid, message))?
                    .1
            }
            None if location.starts_with("file:/") => StoreConfig::Local,
            None => {
                return Err(Error::new(
                    ErrorKind::DataInvalid,
                    format!(
                        "'{location}' is on no store Floe knows (file://, s3://, gs://, abfss://, az://)"
                    ),
                ));
            }
        };
        Ok(match config {
            StoreConfig::S3(c) => StoreConfig::S3(c.with_vended(vended)),
            other => other,
        })
    }
}

/// The schemes of Azure locations.
const AZURE_SCHEMES: [&str; 6] = [
    "abfss://", "abfs://", "wasbs://", "wasb://", "az://", "azure://",
];

/// `bucket/key` (what follows `scheme://`) split into bucket and key; None without a
/// bucket.
fn split_bucket(rest: &str) -> Option<(&str, &str)> {
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, key))
}

/// `scheme://bucket/prefix`, without a trailing slash.
fn bucket_location(scheme: &str, bucket: &str, prefix: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{scheme}://{bucket}")
    } else {
        format!("{scheme}://{bucket}/{prefix}")
    }
}

/// An Iceberg [`Storage`] backed by an `object_store` store.
#[derive(Debug, Serialize, Deserialize)]
pub struct ObjectStorage {
    config: StoreConfig,
    /// For [`StoreConfig::ByLocation`]: the store the first location belonged to.
    #[serde(skip)]
    resolved: OnceLock<StoreConfig>,
    #[serde(skip)]
    store: OnceLock<Arc<dyn ObjectStore>>,
}

impl Clone for ObjectStorage {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            resolved: self.resolved.clone(),
            store: self.store.clone(),
        }
    }
}

impl ObjectStorage {
    /// A storage for `config`.
    pub fn new(config: StoreConfig) -> Self {
        Self {
            config,
            resolved: OnceLock::new(),
            store: OnceLock::new(),
        }
    }

    /// The concrete store configuration; for [`StoreConfig::ByLocation`], decided by
    /// `location` the first time one is given.
    fn concrete(&self, location: Option<&str>) -> Result<&StoreConfig> {
        let StoreConfig::ByLocation { options, vended } = &self.config else {
            return Ok(&self.config);
        };
        if let Some(c) = self.resolved.get() {
            return Ok(c);
        }
        let Some(location) = location else {
            return Err(Error::new(
                ErrorKind::Unexpected,
                "the store is not known before a location is asked for",
            ));
        };
        let found = StoreConfig::of_table(location, options, vended)?;
        Ok(self.resolved.get_or_init(|| found))
    }

    /// The underlying object store (also used for listing and removing orphan files).
    pub fn store(&self) -> Result<Arc<dyn ObjectStore>> {
        if let Some(s) = self.store.get() {
            return Ok(s.clone());
        }
        let built = self.concrete(None)?.build()?;
        Ok(self.store.get_or_init(|| built).clone())
    }

    /// The Iceberg location of a path in the store: the inverse of [`Self::path`]. Paths
    /// come from this storage's store, so a store decided by location is decided by then.
    pub fn location(&self, path: &Path) -> String {
        match self.concrete(None).unwrap_or(&self.config) {
            StoreConfig::Local | StoreConfig::ByLocation { .. } => format!("file:///{path}"),
            StoreConfig::S3(c) => format!("s3://{}/{path}", c.bucket),
            StoreConfig::Azure(c) => format!("{}/{path}", c.root),
            StoreConfig::Gcs(c) => format!("gs://{}/{path}", c.bucket),
        }
    }

    /// Maps an Iceberg location to a path in the store.
    pub fn path(&self, location: &str) -> Result<Path> {
        match self.concrete(Some(location))? {
            StoreConfig::ByLocation { .. } => Err(Error::new(
                ErrorKind::Unexpected,
                "a store decided by location resolves to a concrete one",
            )),
            StoreConfig::Gcs(c) => {
                let key = c.key_of(location).ok_or_else(|| {
                    Error::new(
                        ErrorKind::DataInvalid,
                        format!(
                            "'{location}' is outside the warehouse's bucket gs://{}",
                            c.bucket
                        ),
                    )
                })?;
                parse_key(location, key)
            }
            StoreConfig::Azure(c) => {
                let key = c.key_of(location).ok_or_else(|| {
                    Error::new(
                        ErrorKind::DataInvalid,
                        format!(
                            "'{location}' is outside the warehouse's container {}",
                            c.root
                        ),
                    )
                })?;
                parse_key(location, key)
            }
            StoreConfig::S3(c) => {
                let Some((bucket, key)) = split_s3(location) else {
                    return Err(Error::new(
                        ErrorKind::DataInvalid,
                        format!("'{location}' is not an s3:// location"),
                    ));
                };
                if bucket != c.bucket {
                    return Err(Error::new(
                        ErrorKind::DataInvalid,
                        format!(
                            "'{location}' is outside the warehouse's bucket '{}'",
                            c.bucket
                        ),
                    ));
                }
                parse_key(location, key)
            }
            StoreConfig::Local => {
                let p = location
                    .strip_prefix("file://")
                    .or_else(|| location.strip_prefix("file:"))
                    .unwrap_or(location);
                if !p.starts_with('/') {
                    return Err(Error::new(
                        ErrorKind::DataInvalid,
                        format!("'{location}' is not an absolute file location"),
                    ));
                }
                parse_key(location, p.trim_start_matches('/'))
            }
        }
    }
}

/// The store path of `key`, the part of `location` inside the store.
fn parse_key(location: &str, key: &str) -> Result<Path> {
    Path::parse(key).map_err(|e| {
        Error::new(
            ErrorKind::DataInvalid,
            format!("bad location '{location}': {e}"),
        )
    })
}

/// Turns an object-store error into an Iceberg error naming the location.
pub(crate) fn store_error(location: &str, what: &str, e: object_store::Error) -> Error {
    let (kind, retryable) = match &e {
        object_store::Error::NotFound { .. } => (ErrorKind::DataInvalid, false),
        object_store::Error::Generic { .. } => (ErrorKind::Unexpected, true),
        _ => (ErrorKind::Unexpected, false),
    };
    Error::new(kind, format!("{what} {location} failed"))
        .with_source(e)
        .with_retryable(retryable)
}

#[async_trait]
#[typetag::serde]
impl Storage for ObjectStorage {
    async fn exists(&self, path: &str) -> Result<bool> {
        let p = self.path(path)?;
        match self.store()?.head(&p).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(path, "checking", e)),
        }
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        let p = self.path(path)?;
        let meta = self
            .store()?
            .head(&p)
            .await
            .map_err(|e| store_error(path, "reading metadata of", e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let p = self.path(path)?;
        let got = self
            .store()?
            .get(&p)
            .await
            .map_err(|e| store_error(path, "reading", e))?;
        got.bytes()
            .await
            .map_err(|e| store_error(path, "reading", e))
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        let p = self.path(path)?;
        Ok(Box::new(ObjectRead::new(
            self.store()?,
            p,
            path.to_string(),
        )))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        let p = self.path(path)?;
        self.store()?
            .put(&p, bs.into())
            .await
            .map_err(|e| store_error(path, "writing", e))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        let p = self.path(path)?;
        Ok(Box::new(ObjectWrite::new(
            self.store()?,
            p,
            path.to_string(),
        )))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let p = self.path(path)?;
        match self.store()?.delete(&p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(path, "deleting", e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> Result<()> {
        let prefix = self.path(path)?;
        let store = self.store()?;
        let mut listing = store.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| store_error(path, "listing", e))?;
            match store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error(meta.location.as_ref(), "deleting", e)),
            }
        }
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> Result<()> {
        while let Some(p) = paths.next().await {
            self.delete(&p).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

/// Builds [`ObjectStorage`]s for iceberg-rust's `FileIO`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectStorageFactory {
    config: StoreConfig,
}

impl ObjectStorageFactory {
    /// A factory for stores described by `config`.
    pub fn new(config: StoreConfig) -> Self {
        Self { config }
    }
}

#[typetag::serde]
impl StorageFactory for ObjectStorageFactory {
    fn build(&self, config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        let store = match &self.config {
            StoreConfig::S3(c) => StoreConfig::S3(c.with_vended(config.props())),
            StoreConfig::ByLocation { options, .. } => StoreConfig::ByLocation {
                options: options.clone(),
                vended: config.props().clone(),
            },
            other => other.clone(),
        };
        Ok(Arc::new(ObjectStorage::new(store)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_reads_and_deletes_through_the_store() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
        let storage = ObjectStorage::new(StoreConfig::Local);
        let loc = format!("file://{}/a/b/data.bin", dir.path().display());
        let mut w = storage.writer(&loc).await?;
        w.write(Bytes::from_static(b"hello ")).await?;
        w.write(Bytes::from_static(b"world")).await?;
        w.close().await?;
        assert!(storage.exists(&loc).await?);
        assert_eq!(storage.metadata(&loc).await?.size, 11);
        let r = storage.reader(&loc).await?;
        assert_eq!(r.read(6..11).await?, Bytes::from_static(b"world"));
        storage.delete(&loc).await?;
        assert!(!storage.exists(&loc).await?);
        Ok(())
    }

    #[test]
    fn a_store_decided_by_location_takes_that_kinds_options_and_vended_keys() -> Result<()> {
        let options: BTreeMap<String, String> =
            [("s3.region", "eu-west-1"), ("adls.account-key", "a2V5")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let vended: HashMap<String, String> =
            [("s3.access-key-id".to_string(), "vended".to_string())].into();
        let storage = ObjectStorage::new(StoreConfig::ByLocation { options, vended });
        assert!(storage.store().is_err(), "nothing to decide by yet");
        let path = storage.path("s3://lake/wh/t/data/x.parquet")?;
        assert_eq!(path.as_ref(), "wh/t/data/x.parquet");
        let Ok(StoreConfig::S3(c)) = storage.concrete(None) else {
            panic!("decided for S3");
        };
        assert_eq!(c.bucket, "lake");
        assert_eq!(
            c.options.get("s3.access-key-id").map(String::as_str),
            Some("vended")
        );
        assert!(!c.options.contains_key("adls.account-key"));
        assert!(
            storage.path("s3://other/x").is_err(),
            "one storage, one bucket"
        );
        assert!(
            ObjectStorage::new(StoreConfig::ByLocation {
                options: BTreeMap::new(),
                vended: HashMap::new()
            })
            .path("ftp://x/y")
            .is_err()
        );
        Ok(())
    }

    #[tokio::test]
    async fn large_files_stream_up_in_parts() -> Result<()> {
        let dir =
            tempfile::tempdir().map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
        let storage = ObjectStorage::new(StoreConfig::Local);
        let loc = format!("file://{}/big.bin", dir.path().display());
        let chunk = Bytes::from(vec![7u8; 3 << 20]);
        let mut w = storage.writer(&loc).await?;
        for _ in 0..5 {
            w.write(chunk.clone()).await?;
        }
        assert!(
            !storage.exists(&loc).await?,
            "invisible until closed, even once uploading"
        );
        w.close().await?;
        assert_eq!(storage.metadata(&loc).await?.size, 15 << 20);
        let r = storage.reader(&loc).await?;
        assert_eq!(
            r.read((15 << 20) - 2..15 << 20).await?,
            Bytes::from_static(&[7, 7])
        );
        Ok(())
    }

    #[test]
    fn relative_locations_are_rejected() {
        let storage = ObjectStorage::new(StoreConfig::Local);
        assert!(storage.path("file://relative/x").is_err());
        assert!(storage.path("file:///abs/x").is_ok());
    }
}
