//! Position-delete files: Parquet files of (`file_path`, `pos`) rows, each naming a row
//! of a data file that readers must skip, with the field ids the Iceberg spec reserves
//! for them and sorted by path then position, as the spec requires. iceberg-rust
//! 0.10.1 reads them but has no writer for them (its position-delete writer came after
//! that release); drop this module for that writer once Floe moves to a release with it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use iceberg::spec::{DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, Struct};
use iceberg::table::Table;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Result, SinkError};

/// The field id of `file_path` in every position-delete file.
pub const FILE_PATH_FIELD_ID: i32 = 2_147_483_546;
/// The field id of `pos` in every position-delete file.
pub const POS_FIELD_ID: i32 = 2_147_483_545;

fn field(name: &str, data_type: DataType, id: i32) -> Field {
    Field::new(name, data_type, false).with_metadata(HashMap::from([(
        parquet::arrow::PARQUET_FIELD_ID_META_KEY.to_string(),
        id.to_string(),
    )]))
}

/// Writes a position-delete file of `rows` (data file path, row position) for data files
/// of partition `partition` of spec `spec_id` under the table's `data/` directory;
/// returns the file, uncommitted (see [`crate::row_delta`]).
pub async fn write_position_deletes(
    table: &Table,
    spec_id: i32,
    partition: Struct,
    mut rows: Vec<(String, i64)>,
    file_prefix: &str,
) -> Result<DataFile> {
    let name = table.identifier().to_string();
    let failed = |e: &dyn std::fmt::Display| SinkError::Maintenance {
        table: name.clone(),
        message: format!("writing a position-delete file: {e}"),
    };
    rows.sort();
    rows.dedup();
    let schema = Arc::new(Schema::new(vec![
        field("file_path", DataType::Utf8, FILE_PATH_FIELD_ID),
        field("pos", DataType::Int64, POS_FIELD_ID),
    ]));
    let paths = StringArray::from_iter_values(rows.iter().map(|(p, _)| p.as_str()));
    let positions = Int64Array::from_iter_values(rows.iter().map(|(_, pos)| *pos));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(paths), Arc::new(positions)])
        .map_err(|e| failed(&e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut bytes = vec![];
    let mut writer =
        ArrowWriter::try_new(&mut bytes, schema, Some(props)).map_err(|e| failed(&e))?;
    writer.write(&batch).map_err(|e| failed(&e))?;
    writer.close().map_err(|e| failed(&e))?;
    let location = format!(
        "{}/data/{file_prefix}-{}-deletes.parquet",
        table.metadata().location().trim_end_matches('/'),
        uuid::Uuid::new_v4().simple()
    );
    let size = bytes.len() as u64;
    table
        .file_io()
        .new_output(&location)
        .map_err(|e| failed(&e))?
        .write(bytes::Bytes::from(bytes))
        .await
        .map_err(|e| failed(&e))?;
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f.0.clone(), l.0.clone()),
        _ => return Err(failed(&"no rows to delete")),
    };
    DataFileBuilder::default()
        .content(DataContentType::PositionDeletes)
        .file_path(location)
        .file_format(DataFileFormat::Parquet)
        .partition(partition)
        .partition_spec_id(spec_id)
        .record_count(rows.len() as u64)
        .file_size_in_bytes(size)
        .referenced_data_file((first == last).then(|| first.clone()))
        .lower_bounds(HashMap::from([(FILE_PATH_FIELD_ID, Datum::string(&first))]))
        .upper_bounds(HashMap::from([(FILE_PATH_FIELD_ID, Datum::string(&last))]))
        .build()
        .map_err(|e| failed(&e))
}
