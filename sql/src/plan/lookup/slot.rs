//! Where a lookup table's current version is kept, and swapped for a newer one.

use std::any::Any;
use std::sync::{Arc, Mutex, RwLock};

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::index::LookupIndex;

/// Why a version of a lookup table cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The version takes more memory than `'lookup.max-memory'` allows.
    #[error(
        "lookup table {table} ({version}) takes {bytes} bytes in memory with its index, more \
         than 'lookup.max-memory' allows ({cap} bytes); raise the setting, or join a smaller \
         table"
    )]
    TooLarge {
        /// The table.
        table: String,
        /// Which version.
        version: String,
        /// What it would take.
        bytes: u64,
        /// The cap.
        cap: u64,
    },
    /// The rows do not have the table's columns, or cannot be indexed.
    #[error("lookup table {table} ({version}): {source}")]
    Arrow {
        /// The table.
        table: String,
        /// Which version.
        version: String,
        /// What Arrow said.
        source: ArrowError,
    },
}

/// One version of a lookup table: its rows, and an index for every set of key columns
/// that a join of the job probes it by.
pub struct LookupVersion {
    /// Names the version in lineage: the Iceberg snapshot id, or `empty`.
    pub label: String,
    /// All rows, in one batch.
    pub batch: RecordBatch,
    indexes: Vec<LookupIndex>,
    /// Rows and indexes, in bytes.
    pub memory: u64,
}

impl LookupVersion {
    /// The index for key set `id` (see [`LookupSlot::key_set`]).
    pub fn index(&self, id: usize) -> Option<&LookupIndex> {
        self.indexes.get(id)
    }
}

/// A lookup table's columns and current version, shared by the joins that read it and
/// by whatever refreshes it.
pub struct LookupSlot {
    /// The table's name, `catalog.namespace.table`.
    pub name: String,
    /// The table's columns.
    pub schema: SchemaRef,
    max_memory: u64,
    key_sets: Mutex<Vec<Vec<usize>>>,
    current: RwLock<Option<Arc<LookupVersion>>>,
}

impl std::fmt::Debug for LookupSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookupSlot")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LookupSlot {
    /// An empty slot for table `name` of `schema`, whose versions may take `max_memory`.
    pub fn new(name: String, schema: SchemaRef, max_memory: u64) -> Self {
        Self {
            name,
            schema,
            max_memory,
            key_sets: Mutex::new(vec![]),
            current: RwLock::new(None),
        }
    }

    /// The id of the key-column set `keys`, registered if new: every version is
    /// indexed by every registered set. Joins register theirs when they are planned,
    /// before the first version is prepared.
    pub fn key_set(&self, keys: &[usize]) -> usize {
        let mut sets = self.key_sets.lock().unwrap_or_else(|p| p.into_inner());
        match sets.iter().position(|s| s == keys) {
            Some(i) => i,
            None => {
                sets.push(keys.to_vec());
                sets.len() - 1
            }
        }
    }

    /// Indexes `batch` (the table's rows at version `label`) by every key set. This is
    /// CPU work that grows with the table: run it off the async executor.
    pub fn prepare(&self, label: String, batch: RecordBatch) -> Result<LookupVersion, LookupError> {
        let arrow = |source| LookupError::Arrow {
            table: self.name.clone(),
            version: label.clone(),
            source,
        };
        let batch =
            RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec()).map_err(arrow)?;
        let sets = self
            .key_sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut memory = batch.get_array_memory_size() as u64;
        self.check_memory(&label, memory)?;
        let mut indexes = vec![];
        for keys in &sets {
            let index = LookupIndex::build(&batch, keys).map_err(arrow)?;
            memory += index.memory() as u64;
            indexes.push(index);
            // Stop before building the next index once over the cap.
            self.check_memory(&label, memory)?;
        }
        Ok(LookupVersion {
            label,
            batch,
            indexes,
            memory,
        })
    }

    fn check_memory(&self, label: &str, bytes: u64) -> Result<(), LookupError> {
        if bytes > self.max_memory {
            return Err(LookupError::TooLarge {
                table: self.name.clone(),
                version: label.to_string(),
                bytes,
                cap: self.max_memory,
            });
        }
        Ok(())
    }

    /// The most memory a version may take, in bytes (`'lookup.max-memory'`).
    pub fn max_memory(&self) -> u64 {
        self.max_memory
    }

    /// Makes `version` the one that batches from now on are joined with; a batch being
    /// joined keeps the version it started with.
    pub fn install(&self, version: LookupVersion) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(version));
    }

    /// The current version, if one has been installed.
    pub fn current(&self) -> Option<Arc<LookupVersion>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What DataFusion sees for a lookup table while planning. It is read only through lookup
/// joins, which take its rows from the slot; any other reading of it is refused.
#[derive(Debug)]
pub struct LookupTable(pub Arc<LookupSlot>);

#[async_trait]
impl TableProvider for LookupTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.0.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Plan(format!(
            "lookup table {} can only be joined to the stream (JOIN {} ON stream column = \
             its column …); it cannot be read on its own, in a subquery, or joined to \
             another lookup table",
            self.0.name, self.0.name
        )))
    }
}
