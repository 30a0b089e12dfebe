//! A source table whose rows are whatever micro-batch the engine put in its slot.
//!
//! Each INSERT is planned once; the physical plan's leaf is a [`SlotExec`] that reads the
//! slot anew every time the plan is executed. That is how one plan serves every batch
//! without re-parsing or re-planning.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result as DfResult, project_schema};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

/// The batches a source currently offers to the plans that read it.
#[derive(Debug, Clone, Default)]
pub struct BatchSlot(Arc<Mutex<Vec<RecordBatch>>>);

impl BatchSlot {
    /// Replaces the slot's content.
    pub fn set(&self, batches: Vec<RecordBatch>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = batches;
    }

    /// The slot's content (cheap: batches share their buffers).
    pub fn get(&self) -> Vec<RecordBatch> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The table provider DataFusion sees for a source.
#[derive(Debug)]
pub struct SlotTable {
    schema: SchemaRef,
    slot: BatchSlot,
}

impl SlotTable {
    /// A table of `schema` reading from `slot`.
    pub fn new(schema: SchemaRef, slot: BatchSlot) -> Self {
        Self { schema, slot }
    }
}

#[async_trait]
impl TableProvider for SlotTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projected = project_schema(&self.schema, projection)?;
        Ok(Arc::new(SlotExec::new(
            projected,
            projection.cloned(),
            self.slot.clone(),
        )))
    }
}

/// Leaf execution node that streams the slot's current batches.
#[derive(Debug)]
pub struct SlotExec {
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    slot: BatchSlot,
    properties: Arc<PlanProperties>,
}

impl SlotExec {
    fn new(schema: SchemaRef, projection: Option<Vec<usize>>, slot: BatchSlot) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            schema,
            projection,
            slot,
            properties,
        }
    }
}

impl DisplayAs for SlotExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceBatchExec: projection={:?}", self.projection)
    }
}

impl ExecutionPlan for SlotExec {
    fn name(&self) -> &str {
        "SourceBatchExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let batches = self.slot.get();
        let batches = match &self.projection {
            Some(p) => batches
                .iter()
                .map(|b| b.project(p))
                .collect::<Result<Vec<_>, _>>()?,
            None => batches,
        };
        Ok(Box::pin(MemoryStream::try_new(
            batches,
            self.schema.clone(),
            None,
        )?))
    }
}
