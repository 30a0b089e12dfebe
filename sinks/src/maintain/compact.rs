//! Compaction: the small data files of each partition bin-packed into files of the
//! target size.
//!
//! Planning looks only at live data files of the table's default partition spec that are
//! smaller than three quarters of the target, and sorts them into size tiers (each tier
//! `min_input_files` times smaller than the one above, at least 4 times, the top one
//! ending at the target).
//! A tier of a partition is compacted once it holds `min_input_files` files, so a file's
//! rows are rewritten about once per tier on their way to the target size (a handful of
//! times), instead of every pass rewriting an ever larger file with a few new small ones;
//! a partition keeps fewer than `min_input_files` small files per tier. Rewriting reads
//! the files' rows and writes them again
//! through the same writer stack the job uses, so the new files have the table's
//! schema, partitioning and column statistics. Nothing is visible until the replace
//! commit (`super::replace`) lands; new files of an abandoned pass are orphans.

use std::collections::HashMap;
use std::sync::Arc;

use futures::TryStreamExt;
use iceberg::scan::{FileScanTask, FileScanTaskDeleteFile};
use iceberg::spec::{DEFAULT_SCHEMA_NAME_MAPPING, DataContentType, DataFile, NameMapping, Struct};
use iceberg::table::Table;

use super::deletes::{LiveDeletes, LiveFile};
use super::live_files::ManifestContents;
use crate::commit_gate::yield_to_commits;
use crate::error::{Result, SinkError};
use crate::writer::{TableWriter, WriterConfig};

/// Which files compaction takes.
#[derive(Debug, Clone)]
pub struct CompactionConfig {
    /// Files are rewritten into files of about this size.
    pub target_file_size: u64,
    /// A partition is compacted once it holds this many small files.
    pub min_input_files: usize,
    /// At most this many bytes are rewritten in one pass.
    pub max_bytes_per_pass: u64,
}

/// A data file to rewrite, with the position deletes that apply to it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) file: LiveFile,
    pub(crate) deletes: Vec<DataFile>,
}

/// Small files of one partition (or one file with deletes against it), rewritten together.
#[derive(Debug, Clone)]
pub(crate) struct Bin {
    pub(crate) files: Vec<Candidate>,
}

impl Bin {
    pub(crate) fn bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|c| c.file.file.file_size_in_bytes())
            .sum()
    }

    fn has_deletes(&self) -> bool {
        self.files.iter().any(|c| !c.deletes.is_empty())
    }
}

/// The bins worth rewriting now, largest partitions' first, within the pass's budget.
/// Files of older partition specs stay as they are; files with equality deletes against
/// them too (see `super::deletes`); a file with position deletes is rewritten whatever
/// its size, so that reads stop applying them.
pub(crate) fn plan(
    table: &Table,
    manifests: &[ManifestContents],
    config: &CompactionConfig,
) -> Vec<Bin> {
    let spec_id = table.metadata().default_partition_spec_id();
    let deletes = LiveDeletes::of(table, manifests);
    let small = config.target_file_size.saturating_mul(3) / 4;
    let k = tier_ratio(config.min_input_files);
    let mut by_partition: HashMap<(Struct, u32), Vec<Candidate>> = HashMap::new();
    let mut deleted_large = vec![];
    let current = manifests
        .iter()
        .filter(|m| m.is_data() && m.file.partition_spec_id == spec_id);
    for m in current {
        for e in m.live() {
            let file = LiveFile::of(e, spec_id);
            if deletes.has_equality_for(&file) {
                continue;
            }
            let c = Candidate {
                deletes: deletes.position_for(&file),
                file,
            };
            let size = c.file.file.file_size_in_bytes();
            if size < small {
                let tier = tier(size, config.target_file_size, k);
                by_partition
                    .entry((c.file.file.partition().clone(), tier))
                    .or_default()
                    .push(c);
            } else if !c.deletes.is_empty() {
                deleted_large.push(Bin { files: vec![c] });
            }
        }
    }
    let mut partitions: Vec<Vec<Candidate>> = by_partition
        .into_values()
        .filter(|files| {
            files.len() >= config.min_input_files.max(2)
                || files.iter().any(|c| !c.deletes.is_empty())
        })
        .collect();
    partitions.sort_by_key(|files| std::cmp::Reverse(files.len()));
    let packed = partitions
        .into_iter()
        .flat_map(|files| pack(files, config.target_file_size));
    within_budget(
        deleted_large.into_iter().chain(packed),
        config.max_bytes_per_pass,
    )
}

/// The bins in order until the next would pass `budget` bytes.
fn within_budget(bins: impl Iterator<Item = Bin>, mut budget: u64) -> Vec<Bin> {
    let mut out = vec![];
    for bin in bins {
        if bin.bytes() > budget {
            break;
        }
        budget -= bin.bytes();
        out.push(bin);
    }
    out
}

/// How much smaller each size tier is than the one above: `min_input_files`, but at
/// least 4, so that files of about the same size (a job's commits) share a tier.
fn tier_ratio(min_input_files: usize) -> u64 {
    (min_input_files as u64).max(4)
}

/// The size tier of a file of `size` bytes: 0 for `[target / k, target)`, 1 for the
/// tier `k` times smaller, and so on (at most 16 tiers).
fn tier(size: u64, target: u64, k: u64) -> u32 {
    let mut bound = target / k;
    let mut t = 0;
    while size < bound && t < 16 {
        bound /= k;
        t += 1;
    }
    t
}

/// Packs `files` (one partition) into bins of about `target` bytes; a bin of one file
/// would gain nothing and is left out, unless deletes apply to the file.
fn pack(mut files: Vec<Candidate>, target: u64) -> Vec<Bin> {
    files.sort_by_key(|c| c.file.file.file_size_in_bytes());
    let mut bins = vec![];
    let mut current = Bin { files: vec![] };
    for c in files {
        let size = c.file.file.file_size_in_bytes();
        if !current.files.is_empty() && current.bytes() + size > target {
            bins.push(std::mem::replace(&mut current, Bin { files: vec![] }));
        }
        current.files.push(c);
    }
    bins.push(current);
    bins.retain(|b| b.files.len() > 1 || b.has_deletes());
    bins
}

/// Rows decoded and written at a time by a rewrite: small enough (a millisecond or two
/// of work) that a commit starting meanwhile waits little for the CPU.
const REWRITE_BATCH_ROWS: usize = 2048;

/// Writes the live rows of every bin's files into new data files (uncommitted), pausing
/// between record batches while the job commits (`commit_gate`).
///
/// Files are read through iceberg-rust's reader, as any engine reads them: columns are
/// found by field id (or through the table's name mapping, for files written without
/// ids), so a column another tool renamed keeps its values, a dropped one is left out,
/// and a promoted type is widened; position deletes are applied. The rows come out in the
/// table's current schema and are written under it.
pub(crate) async fn rewrite(
    table: &Table,
    bins: &[Bin],
    config: &WriterConfig,
) -> Result<Vec<DataFile>> {
    let name = table.identifier().to_string();
    let mut writer = TableWriter::new(table, config)?;
    let read_err = |path: &str, e: &dyn std::fmt::Display| SinkError::Maintenance {
        table: name.clone(),
        message: format!("reading {path} for compaction: {e}"),
    };
    let mapping = name_mapping(table).map_err(|e| read_err("the name mapping", &e))?;
    for c in bins.iter().flat_map(|b| &b.files) {
        yield_to_commits().await;
        let path = c.file.file.file_path();
        let task = scan_task(table, c, mapping.clone());
        let mut batches = table
            .reader_builder()
            .with_batch_size(REWRITE_BATCH_ROWS)
            .with_data_file_concurrency_limit(1)
            .build()
            .read(Box::pin(futures::stream::iter([Ok(task)])))
            .map_err(|e| read_err(path, &e))?
            .stream();
        while let Some(batch) = batches.try_next().await.map_err(|e| read_err(path, &e))? {
            yield_to_commits().await;
            writer.write(&batch).await?;
        }
    }
    writer.close().await
}

/// The table's `schema.name-mapping.default`, which resolves columns of files written
/// without field ids.
fn name_mapping(table: &Table) -> std::result::Result<Option<Arc<NameMapping>>, String> {
    table
        .metadata()
        .properties()
        .get(DEFAULT_SCHEMA_NAME_MAPPING)
        .map(|raw| serde_json::from_str::<NameMapping>(raw).map(Arc::new))
        .transpose()
        .map_err(|e| format!("{DEFAULT_SCHEMA_NAME_MAPPING}: {e}"))
}

/// A scan of one whole data file in the table's current schema, with its position deletes.
fn scan_task(table: &Table, c: &Candidate, mapping: Option<Arc<NameMapping>>) -> FileScanTask {
    let schema = table.metadata().current_schema().clone();
    let field_ids = schema.as_struct().fields().iter().map(|f| f.id).collect();
    let f = &c.file.file;
    let deletes = c
        .deletes
        .iter()
        .map(|d| {
            FileScanTaskDeleteFile::builder()
                .with_file_path(d.file_path().to_string())
                .with_file_size_in_bytes(d.file_size_in_bytes())
                .with_file_type(DataContentType::PositionDeletes)
                .with_partition_spec_id(c.file.spec_id)
                .build()
        })
        .collect();
    FileScanTask::builder()
        .with_file_size_in_bytes(f.file_size_in_bytes())
        .with_start(0)
        .with_length(f.file_size_in_bytes())
        .with_record_count(Some(f.record_count()))
        .with_data_file_path(f.file_path().to_string())
        .with_data_file_format(f.file_format())
        .with_schema(schema)
        .with_project_field_ids(field_ids)
        .with_deletes(deletes)
        .with_partition(Some(f.partition().clone()))
        .with_name_mapping(mapping)
        .with_case_sensitive(true)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use iceberg::spec::{DataContentType, DataFileBuilder, DataFileFormat};

    fn file(size: u64) -> Candidate {
        let file = DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(format!("mem://f-{size}.parquet"))
            .file_format(DataFileFormat::Parquet)
            .partition(Struct::empty())
            .record_count(1)
            .file_size_in_bytes(size)
            .build()
            .expect("data file");
        Candidate {
            file: LiveFile {
                file,
                spec_id: 0,
                seq: 1,
            },
            deletes: vec![],
        }
    }

    #[test]
    fn tiers_are_min_input_files_apart() {
        assert_eq!(tier(900, 1000, 10), 0);
        assert_eq!(tier(100, 1000, 10), 0);
        assert_eq!(tier(99, 1000, 10), 1);
        assert_eq!(tier(10, 1000, 10), 1);
        assert_eq!(tier(9, 1000, 10), 2);
        assert_eq!(tier(0, 1000, 10), 3);
    }

    #[test]
    fn files_are_packed_up_to_the_target_and_lone_files_are_left() {
        let bins = pack(vec![file(40), file(10), file(30), file(20), file(90)], 60);
        let sizes: Vec<Vec<u64>> = bins
            .iter()
            .map(|b| {
                b.files
                    .iter()
                    .map(|c| c.file.file.file_size_in_bytes())
                    .collect()
            })
            .collect();
        // 10+20+30 = 60 fits; 40 alone would be followed by 90 past the target.
        assert_eq!(sizes, vec![vec![10, 20, 30]]);
    }
}
