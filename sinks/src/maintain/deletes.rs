//! Which live delete files of the current snapshot apply to which data files, by the
//! spec's scan-planning rules; what compaction may rewrite, and what it must carry.
//!
//! ```text
//!  position delete D applies to data file F when
//!    seq(F) <= seq(D), same partition spec and partition value,
//!    and D's referenced_data_file is F (when D names one)
//!  equality delete E applies to F when
//!    seq(F) <  seq(E), same spec and partition, or E's spec is unpartitioned
//! ```
//!
//! Compaction reads a data file with the position deletes that apply to it, so the new
//! file holds only live rows, and drops a position-delete file once every data file it
//! names has been rewritten. A data file with equality deletes against it is left alone:
//! applying them means one predicate per delete row in iceberg-rust 0.10.1, which also
//! drops rows whose equality column is NULL (apache/iceberg-rust #2780).

use std::collections::HashSet;

use iceberg::spec::{DataContentType, DataFile, ManifestEntryRef};
use iceberg::table::Table;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::live_files::ManifestContents;

/// A live file of the current snapshot with what scan planning needs of it.
#[derive(Debug, Clone)]
pub(crate) struct LiveFile {
    pub(crate) file: DataFile,
    pub(crate) spec_id: i32,
    /// Its data sequence number.
    pub(crate) seq: i64,
}

impl LiveFile {
    pub(crate) fn of(entry: &ManifestEntryRef, spec_id: i32) -> Self {
        Self {
            file: entry.data_file().clone(),
            spec_id,
            seq: entry.sequence_number().unwrap_or(0),
        }
    }

    fn same_partition(&self, other: &LiveFile) -> bool {
        self.spec_id == other.spec_id && self.file.partition() == other.file.partition()
    }
}

/// The live delete files of one snapshot.
#[derive(Debug, Default)]
pub(crate) struct LiveDeletes {
    position: Vec<LiveFile>,
    equality: Vec<LiveFile>,
    /// Spec ids that are unpartitioned (their equality deletes apply table-wide).
    unpartitioned_specs: HashSet<i32>,
}

impl LiveDeletes {
    /// The live delete files of `manifests`.
    pub(crate) fn of(table: &Table, manifests: &[ManifestContents]) -> Self {
        let mut out = LiveDeletes {
            unpartitioned_specs: table
                .metadata()
                .partition_specs_iter()
                .filter(|s| s.is_unpartitioned())
                .map(|s| s.spec_id())
                .collect(),
            ..Self::default()
        };
        for m in manifests.iter().filter(|m| !m.is_data()) {
            for e in m.entries.iter().filter(|e| e.is_alive()) {
                let f = LiveFile::of(e, m.file.partition_spec_id);
                match e.content_type() {
                    DataContentType::PositionDeletes => out.position.push(f),
                    DataContentType::EqualityDeletes => out.equality.push(f),
                    DataContentType::Data => {}
                }
            }
        }
        out
    }

    /// Whether there are any.
    pub(crate) fn is_empty(&self) -> bool {
        self.position.is_empty() && self.equality.is_empty()
    }

    /// The position-delete files that apply to `data`.
    pub(crate) fn position_for(&self, data: &LiveFile) -> Vec<DataFile> {
        self.position
            .iter()
            .filter(|d| d.seq >= data.seq && d.same_partition(data))
            .filter(|d| {
                d.file
                    .referenced_data_file()
                    .is_none_or(|p| p == data.file.file_path())
            })
            .map(|d| d.file.clone())
            .collect()
    }

    /// The equality-delete files that apply to `data`.
    pub(crate) fn equality_for(&self, data: &LiveFile) -> Vec<DataFile> {
        self.equality
            .iter()
            .filter(|e| {
                e.seq > data.seq
                    && (e.same_partition(data) || self.unpartitioned_specs.contains(&e.spec_id))
            })
            .map(|e| e.file.clone())
            .collect()
    }

    /// Whether an equality-delete file applies to `data`.
    pub(crate) fn has_equality_for(&self, data: &LiveFile) -> bool {
        !self.equality_for(data).is_empty()
    }

    /// Paths of every live delete file.
    pub(crate) fn paths(&self) -> HashSet<&str> {
        self.position
            .iter()
            .chain(&self.equality)
            .map(|d| d.file.file_path())
            .collect()
    }
}

/// The data files a position-delete file names (its `file_path` column), read from the
/// file unless it names a single `referenced_data_file`.
pub(crate) async fn named_data_files(
    table: &Table,
    delete: &DataFile,
) -> iceberg::Result<HashSet<String>> {
    if let Some(path) = delete.referenced_data_file() {
        return Ok([path].into());
    }
    let bytes = table
        .file_io()
        .new_input(delete.file_path())?
        .read()
        .await?;
    let unreadable = |e: &dyn std::fmt::Display| {
        iceberg::Error::new(
            iceberg::ErrorKind::DataInvalid,
            format!("reading position deletes {}: {e}", delete.file_path()),
        )
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| unreadable(&e))?;
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["file_path"]);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| unreadable(&e))?;
    let mut out = HashSet::new();
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(&e))?;
        let Some(paths) = batch
            .column_by_name("file_path")
            .and_then(|c| c.as_any().downcast_ref::<arrow_array::StringArray>())
        else {
            return Err(unreadable(&"no file_path column of strings"));
        };
        out.extend(paths.iter().flatten().map(str::to_string));
    }
    Ok(out)
}
