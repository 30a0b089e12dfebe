//! Reading one snapshot of a lookup table into memory, indexed and ready to install.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Schema, SchemaRef};
use floe_catalog::{CatalogError, OpenCatalog};
use floe_sql::job::TableName;
use floe_sql::plan::lookup::{LookupError, LookupSlot, LookupVersion};
use futures::TryStreamExt;
use iceberg::table::Table;

use crate::error::{EngineError, Result};
use crate::observe::metrics;
use crate::setup::table_ident;

/// A version read and indexed, not yet used by joins.
pub struct LoadedVersion {
    /// The snapshot it holds (`None` for a table without one: no rows).
    pub snapshot: Option<i64>,
    version: LookupVersion,
}

impl LoadedVersion {
    /// Makes this the version batches are joined with from now on.
    pub fn install(self, slot: &LookupSlot) {
        install_version(slot, self.version);
    }
}

/// Makes `version` the one batches are joined with from now on, and says so in metrics.
pub fn install_version(slot: &LookupSlot, version: LookupVersion) {
    let m = metrics();
    m.lookup_rows
        .set(&[&slot.name], version.batch.num_rows() as f64);
    m.lookup_bytes.set(&[&slot.name], version.memory as f64);
    m.lookup_loads.add(&[&slot.name, "loaded"], 1.0);
    slot.install(version);
}

/// The lookup table `name`, as its catalog has it now.
pub async fn load_table(cat: &OpenCatalog, name: &TableName) -> Result<Table> {
    let ident = table_ident(name)?;
    cat.catalog.load_table(&ident).await.map_err(|e| {
        CatalogError::iceberg(
            format!(
                "lookup table {name}: cannot load it from catalog {}",
                cat.name
            ),
            e,
        )
        .into()
    })
}

/// Reads `table`'s current snapshot (the slot's columns) and indexes it for every join
/// of the slot; the indexing runs off the async executor.
pub async fn load_version(table: &Table, slot: Arc<LookupSlot>) -> Result<LoadedVersion> {
    let snapshot = table.metadata().current_snapshot_id();
    let label = snapshot.map_or_else(|| "empty".to_string(), |s| s.to_string());
    let batches = match snapshot {
        Some(_) => read(table, &slot, &label).await?,
        None => vec![],
    };
    let version = tokio::task::spawn_blocking(move || {
        let batch =
            arrow_select::concat::concat_batches(&slot.schema, &batches).map_err(|source| {
                LookupError::Arrow {
                    table: slot.name.clone(),
                    version: label.clone(),
                    source,
                }
            })?;
        slot.prepare(label, batch)
    })
    .await
    .map_err(|e| EngineError::Internal(format!("indexing a lookup table: {e}")))??;
    Ok(LoadedVersion { snapshot, version })
}

/// The rows of the snapshot, with the slot's columns; stops as soon as they outgrow the
/// memory the slot allows.
async fn read(table: &Table, slot: &LookupSlot, label: &str) -> Result<Vec<RecordBatch>> {
    let name = &slot.name;
    let failed = |e: iceberg::Error| {
        EngineError::from(CatalogError::iceberg(
            format!("lookup table {name}: reading snapshot {label}"),
            e,
        ))
    };
    let columns = slot.schema.fields().iter().map(|f| f.name().clone());
    let mut stream = table
        .scan()
        .select(columns)
        .build()
        .map_err(failed)?
        .to_arrow()
        .await
        .map_err(failed)?;
    let mut out = vec![];
    let mut bytes = 0u64;
    while let Some(batch) = stream.try_next().await.map_err(failed)? {
        bytes += batch.get_array_memory_size() as u64;
        if bytes > slot.max_memory() {
            return Err(LookupError::TooLarge {
                table: name.clone(),
                version: label.to_string(),
                bytes,
                cap: slot.max_memory(),
            }
            .into());
        }
        out.push(
            conform(&batch, &slot.schema).map_err(|source| LookupError::Arrow {
                table: name.clone(),
                version: label.to_string(),
                source,
            })?,
        );
    }
    Ok(out)
}

/// `batch` with exactly `schema`'s columns, by name, cast where the types differ.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut columns: Vec<ArrayRef> = vec![];
    for field in schema.fields() {
        let i = batch.schema().index_of(field.name())?;
        let column = batch.column(i);
        columns.push(if column.data_type() == field.data_type() {
            column.clone()
        } else {
            arrow_cast::cast(column, field.data_type())?
        });
    }
    RecordBatch::try_new(schema.clone(), columns)
}

/// `schema` without the Iceberg field ids its top-level fields carry.
pub fn without_field_ids(schema: &Schema) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_metadata(HashMap::new()))
            .collect::<Vec<_>>(),
    )
}
