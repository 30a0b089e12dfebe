//! Readers and writers of single files for [`super::ObjectStorage`].

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use iceberg::io::{FileRead, FileWrite};
use iceberg::{Error, ErrorKind, Result};
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, WriteMultipart};

use super::store_error;

/// Reads byte ranges of one object.
#[derive(Debug)]
pub(crate) struct ObjectRead {
    store: Arc<dyn ObjectStore>,
    path: Path,
    location: String,
}

impl ObjectRead {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, path: Path, location: String) -> Self {
        Self {
            store,
            path,
            location,
        }
    }
}

#[async_trait]
impl FileRead for ObjectRead {
    async fn read(&self, r: Range<u64>) -> Result<Bytes> {
        self.store
            .get_range(&self.path, r)
            .await
            .map_err(|e| store_error(&self.location, "reading", e))
    }
}

/// Streams one object up in parts; it becomes visible only when closed.
pub(crate) struct ObjectWrite {
    upload: Option<WriteMultipart>,
    location: String,
}

impl ObjectWrite {
    pub(crate) fn new(upload: Box<dyn MultipartUpload>, location: String) -> Self {
        Self {
            upload: Some(WriteMultipart::new(upload)),
            location,
        }
    }
}

/// Parts uploaded at once per file: bounds memory and connections.
const MAX_PARTS_IN_FLIGHT: usize = 4;

#[async_trait]
impl FileWrite for ObjectWrite {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        let upload = self.upload.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("{} is already closed", self.location),
            )
        })?;
        upload
            .wait_for_capacity(MAX_PARTS_IN_FLIGHT)
            .await
            .map_err(|e| store_error(&self.location, "writing", e))?;
        upload.put(bs);
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        let upload = self.upload.take().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("{} is already closed", self.location),
            )
        })?;
        upload
            .finish()
            .await
            .map_err(|e| store_error(&self.location, "finishing", e))?;
        Ok(())
    }
}
