//! Readers and writers of single files for [`super::ObjectStorage`].

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use iceberg::io::{FileRead, FileWrite};
use iceberg::{Error, ErrorKind, Result};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

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

/// Writes one object; it becomes visible only when closed. Small files (most files of a
/// streaming job: manifests, and data files of short commit intervals) go up in one PUT;
/// once a file outgrows one part, it streams up as a multipart upload.
pub(crate) struct ObjectWrite {
    store: Arc<dyn ObjectStore>,
    path: Path,
    location: String,
    /// Bytes not yet handed to an upload.
    buffered: Vec<Bytes>,
    buffered_len: usize,
    upload: Option<WriteMultipart>,
    closed: bool,
}

impl ObjectWrite {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, path: Path, location: String) -> Self {
        Self {
            store,
            path,
            location,
            buffered: vec![],
            buffered_len: 0,
            upload: None,
            closed: false,
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("{} is already closed", self.location),
            ));
        }
        Ok(())
    }
}

/// Above this size a file is uploaded in parts (S3's smallest part is 5 MiB).
const SINGLE_PUT_LIMIT: usize = 8 << 20;
/// Parts uploaded at once per file: bounds memory and connections.
const MAX_PARTS_IN_FLIGHT: usize = 4;

#[async_trait]
impl FileWrite for ObjectWrite {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        self.check_open()?;
        if self.upload.is_none() {
            self.buffered_len += bs.len();
            self.buffered.push(bs);
            if self.buffered_len <= SINGLE_PUT_LIMIT {
                return Ok(());
            }
            let upload = self
                .store
                .put_multipart(&self.path)
                .await
                .map_err(|e| store_error(&self.location, "starting upload of", e))?;
            let mut upload = WriteMultipart::new(upload);
            for b in self.buffered.drain(..) {
                upload.put(b);
            }
            self.buffered_len = 0;
            self.upload = Some(upload);
            return Ok(());
        }
        if let Some(upload) = self.upload.as_mut() {
            upload
                .wait_for_capacity(MAX_PARTS_IN_FLIGHT)
                .await
                .map_err(|e| store_error(&self.location, "writing", e))?;
            upload.put(bs);
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        self.check_open()?;
        self.closed = true;
        match self.upload.take() {
            Some(upload) => {
                upload
                    .finish()
                    .await
                    .map_err(|e| store_error(&self.location, "finishing", e))?;
            }
            None => {
                let body = if self.buffered.len() == 1 {
                    self.buffered.remove(0)
                } else {
                    let mut all = Vec::with_capacity(self.buffered_len);
                    for b in self.buffered.drain(..) {
                        all.extend_from_slice(&b);
                    }
                    Bytes::from(all)
                };
                self.store
                    .put(&self.path, body.into())
                    .await
                    .map_err(|e| store_error(&self.location, "writing", e))?;
            }
        }
        Ok(())
    }
}
