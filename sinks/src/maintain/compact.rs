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

use iceberg::spec::{DataFile, Struct};
use iceberg::table::Table;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

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

/// Small files of one partition, rewritten together.
#[derive(Debug, Clone)]
pub(crate) struct Bin {
    pub(crate) files: Vec<DataFile>,
}

impl Bin {
    pub(crate) fn bytes(&self) -> u64 {
        self.files.iter().map(DataFile::file_size_in_bytes).sum()
    }
}

/// The bins worth rewriting now, largest partitions' first, within the pass's budget.
pub(crate) fn plan(
    table: &Table,
    manifests: &[ManifestContents],
    config: &CompactionConfig,
) -> Vec<Bin> {
    let spec_id = table.metadata().default_partition_spec_id();
    let small = config.target_file_size.saturating_mul(3) / 4;
    let k = tier_ratio(config.min_input_files);
    let mut by_partition: HashMap<(Struct, u32), Vec<DataFile>> = HashMap::new();
    let current = manifests
        .iter()
        .filter(|m| m.is_data() && m.file.partition_spec_id == spec_id);
    for m in current {
        for e in m.live() {
            let f = e.data_file();
            if f.file_size_in_bytes() < small {
                let tier = tier(f.file_size_in_bytes(), config.target_file_size, k);
                by_partition
                    .entry((f.partition().clone(), tier))
                    .or_default()
                    .push(f.clone());
            }
        }
    }
    let mut partitions: Vec<Vec<DataFile>> = by_partition
        .into_values()
        .filter(|files| files.len() >= config.min_input_files.max(2))
        .collect();
    partitions.sort_by_key(|files| std::cmp::Reverse(files.len()));
    let mut budget = config.max_bytes_per_pass;
    let mut bins = vec![];
    for files in partitions {
        for bin in pack(files, config.target_file_size) {
            if bin.bytes() > budget {
                return bins;
            }
            budget -= bin.bytes();
            bins.push(bin);
        }
    }
    bins
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
/// would gain nothing and is left out.
fn pack(mut files: Vec<DataFile>, target: u64) -> Vec<Bin> {
    files.sort_by_key(DataFile::file_size_in_bytes);
    let mut bins = vec![];
    let mut current = Bin { files: vec![] };
    for f in files {
        if !current.files.is_empty() && current.bytes() + f.file_size_in_bytes() > target {
            bins.push(std::mem::replace(&mut current, Bin { files: vec![] }));
        }
        current.files.push(f);
    }
    bins.push(current);
    bins.retain(|b| b.files.len() > 1);
    bins
}

/// Rows decoded and written at a time by a rewrite: small enough (a millisecond or two
/// of work) that a commit starting meanwhile waits little for the CPU.
const REWRITE_BATCH_ROWS: usize = 2048;

/// Writes the rows of every bin's files into new data files (uncommitted), pausing
/// between record batches while the job commits (`commit_gate`).
pub(crate) async fn rewrite(
    table: &Table,
    bins: &[Bin],
    config: &WriterConfig,
) -> Result<Vec<DataFile>> {
    let name = table.identifier().to_string();
    let mut writer = TableWriter::new(table, config)?;
    for file in bins.iter().flat_map(|b| &b.files) {
        yield_to_commits().await;
        let path = file.file_path();
        let read_err = |e: &dyn std::fmt::Display| SinkError::Maintenance {
            table: name.clone(),
            message: format!("reading {path} for compaction: {e}"),
        };
        let bytes = table
            .file_io()
            .new_input(path)
            .map_err(|e| read_err(&e))?
            .read()
            .await
            .map_err(|e| read_err(&e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.with_batch_size(REWRITE_BATCH_ROWS).build())
            .map_err(|e| read_err(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| read_err(&e))?;
            yield_to_commits().await;
            writer.write(&batch).await?;
        }
    }
    writer.close().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use iceberg::spec::{DataContentType, DataFileBuilder, DataFileFormat};

    fn file(size: u64) -> DataFile {
        DataFileBuilder::default()
            .content(DataContentType::Data)
            .file_path(format!("mem://f-{size}.parquet"))
            .file_format(DataFileFormat::Parquet)
            .partition(Struct::empty())
            .record_count(1)
            .file_size_in_bytes(size)
            .build()
            .expect("data file")
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
            .map(|b| b.files.iter().map(DataFile::file_size_in_bytes).collect())
            .collect();
        // 10+20+30 = 60 fits; 40 alone would be followed by 90 past the target.
        assert_eq!(sizes, vec![vec![10, 20, 30]]);
    }
}
