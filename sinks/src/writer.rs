//! Writes batches into uncommitted Parquet data files of one table.
//!
//! Layers, each iceberg-rust's own: Parquet file writer → rolling writer (target file
//! size) → data-file writer → partition fan-out. Files stay invisible until the
//! [`crate::commit`] step adds them to a snapshot.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_cast::cast;
use arrow_schema::SchemaRef;
use iceberg::arrow::{RecordBatchPartitionSplitter, schema_to_arrow_schema};
use iceberg::spec::{DataFile, DataFileFormat};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::partitioning::unpartitioned_writer::UnpartitionedWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::binding::ColumnBinding;
use crate::error::{Result, SinkError};

type FileWriterBuilder =
    DataFileWriterBuilder<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

enum Inner {
    Partitioned(
        Box<(
            RecordBatchPartitionSplitter,
            FanoutWriter<FileWriterBuilder>,
        )>,
    ),
    Unpartitioned(Box<UnpartitionedWriter<FileWriterBuilder>>),
}

/// Settings of a [`TableWriter`].
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Roll files at about this many bytes.
    pub target_file_size: u64,
    /// Data file names start with this (the job and a per-checkpoint id), so that
    /// files can be traced to the writer that made them.
    pub file_prefix: String,
}

/// Buffers one checkpoint's worth of rows for one table into data files.
pub struct TableWriter {
    table_name: String,
    schema: SchemaRef,
    /// For each field of `schema`, the batch column that holds its values (None: the
    /// rows have none, NULL).
    sources: Vec<Option<String>>,
    inner: Inner,
    rows: u64,
    bytes: u64,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("table", &self.table_name)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// The Arrow schema (with Iceberg field ids) that data files of `table` are written with.
pub fn write_schema(table: &Table) -> Result<SchemaRef> {
    let s = schema_to_arrow_schema(table.metadata().current_schema())
        .map_err(|e| SinkError::iceberg(table.identifier(), "deriving the Arrow schema", e))?;
    Ok(Arc::new(s))
}

impl TableWriter {
    /// A writer for `table` as it is now, taking each field's values from the batch
    /// column of the same name (rows already in the table's current schema).
    pub fn new(table: &Table, config: &WriterConfig) -> Result<Self> {
        let sources = table
            .metadata()
            .current_schema()
            .as_struct()
            .fields()
            .iter()
            .map(|f| Some(f.name.clone()))
            .collect();
        Self::with_sources(table, config, sources)
    }

    /// A writer for `table` as it is now, taking each field's values from the batch
    /// column of the declared name `binding` binds to the field's id: a field another
    /// writer renamed gets the declared column's values; one it dropped is an error. A
    /// field bound to no declared column takes the batch column of its own name, unless
    /// that name is a declared column's (which writes its own field).
    pub fn bound(table: &Table, config: &WriterConfig, binding: &ColumnBinding) -> Result<Self> {
        let schema = table.metadata().current_schema();
        binding.check_fields(schema)?;
        let sources = schema
            .as_struct()
            .fields()
            .iter()
            .map(|f| match binding.declared_name(f.id) {
                Some(declared) => Some(declared.to_string()),
                None if binding.binds(&f.name) => None,
                None => Some(f.name.clone()),
            })
            .collect();
        Self::with_sources(table, config, sources)
    }

    fn with_sources(
        table: &Table,
        config: &WriterConfig,
        sources: Vec<Option<String>>,
    ) -> Result<Self> {
        let name = table.identifier().to_string();
        let err = |ctx: &str, e| SinkError::iceberg(&name, ctx.to_string(), e);
        let schema = write_schema(table)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let parquet = ParquetWriterBuilder::new(props, table.metadata().current_schema().clone());
        let location = DefaultLocationGenerator::new(table.metadata())
            .map_err(|e| err("choosing data file locations", e))?;
        let names = DefaultFileNameGenerator::new(
            config.file_prefix.clone(),
            None,
            DataFileFormat::Parquet,
        );
        let rolling = RollingFileWriterBuilder::new(
            parquet,
            usize::try_from(config.target_file_size).unwrap_or(usize::MAX),
            table.file_io().clone(),
            location,
            names,
        );
        let builder = DataFileWriterBuilder::new(rolling);
        let spec = table.metadata().default_partition_spec();
        let inner = if spec.is_unpartitioned() {
            Inner::Unpartitioned(Box::new(UnpartitionedWriter::new(builder)))
        } else {
            let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(
                table.metadata().current_schema().clone(),
                spec.clone(),
            )
            .map_err(|e| err("preparing the partition splitter", e))?;
            Inner::Partitioned(Box::new((splitter, FanoutWriter::new(builder))))
        };
        Ok(Self {
            table_name: name,
            schema,
            sources,
            inner,
            rows: 0,
            bytes: 0,
        })
    }

    /// Rows written since this writer was made.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Arrow bytes written since this writer was made (a proxy for file bytes).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Lines the batch's columns up with the table's write schema (each field from its
    /// source column), casting where the Arrow types differ, and rejects NULLs in
    /// required columns. An optional column the rows lack (one the table gained after
    /// they were written, or that their INSERT does not yield) is NULL.
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (f, source) in self.schema.fields().iter().zip(&self.sources) {
            let col = match source.as_deref().and_then(|s| batch.column_by_name(s)) {
                Some(col) => col,
                None if f.is_nullable() => {
                    cols.push(new_null_array(f.data_type(), batch.num_rows()));
                    continue;
                }
                None => {
                    return Err(SinkError::BadRows {
                        table: self.table_name.clone(),
                        message: format!(
                            "rows have no column {}",
                            source.as_deref().unwrap_or(f.name())
                        ),
                    });
                }
            };
            if !f.is_nullable() && col.null_count() > 0 {
                return Err(SinkError::BadRows {
                    table: self.table_name.clone(),
                    message: format!(
                        "NOT NULL column {} received {} NULL value(s)",
                        f.name(),
                        col.null_count()
                    ),
                });
            }
            let col = if col.data_type() == f.data_type() {
                col.clone()
            } else {
                cast(col, f.data_type()).map_err(|e| SinkError::BadRows {
                    table: self.table_name.clone(),
                    message: format!("column {}: {e}", f.name()),
                })?
            };
            cols.push(col);
        }
        RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| SinkError::BadRows {
            table: self.table_name.clone(),
            message: e.to_string(),
        })
    }

    /// Writes `batch`, splitting it by partition.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = self.conform(batch)?;
        self.rows += batch.num_rows() as u64;
        self.bytes += batch.get_array_memory_size() as u64;
        let name = &self.table_name;
        match &mut self.inner {
            Inner::Unpartitioned(w) => w
                .write(batch)
                .await
                .map_err(|e| SinkError::iceberg(name, "writing a data file", e)),
            Inner::Partitioned(parts_writer) => {
                let (splitter, w) = parts_writer.as_mut();
                let parts = splitter
                    .split(&batch)
                    .map_err(|e| SinkError::iceberg(name, "computing partition values", e))?;
                for (key, part) in parts {
                    w.write(key, part)
                        .await
                        .map_err(|e| SinkError::iceberg(name, "writing a data file", e))?;
                }
                Ok(())
            }
        }
    }

    /// Finishes every open file and returns the data files to commit.
    pub async fn close(self) -> Result<Vec<DataFile>> {
        let name = self.table_name;
        match self.inner {
            Inner::Unpartitioned(w) => w.close().await,
            Inner::Partitioned(parts_writer) => parts_writer.1.close().await,
        }
        .map_err(|e| SinkError::iceberg(&name, "closing data files", e))
    }
}
