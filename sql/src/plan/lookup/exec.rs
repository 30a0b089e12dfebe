//! The physical lookup join: each stream batch probes the index of the lookup table's
//! current version, and the matching rows are gathered column by column.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use async_trait::async_trait;
use datafusion::arrow::compute::take;
use datafusion::common::Result as DfResult;
use datafusion::error::DataFusionError;
use datafusion::execution::context::{QueryPlanner, SessionState};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;

use super::node::{Lineage, LookupJoin, describe};
use super::slot::{LookupSlot, LookupVersion};

/// Executes a [`LookupJoin`].
#[derive(Debug)]
pub struct LookupJoinExec {
    input: Arc<dyn ExecutionPlan>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_names: Vec<String>,
    slot: Arc<LookupSlot>,
    key_set: usize,
    lookup_columns: Vec<usize>,
    lookup_first: bool,
    keep_unmatched: bool,
    schema: SchemaRef,
    lineage: Arc<Lineage>,
    properties: Arc<PlanProperties>,
}

impl LookupJoinExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        join: &LookupJoin,
    ) -> Self {
        let schema: SchemaRef = Arc::new(join.schema.as_arrow().clone());
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            input.output_partitioning().clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            input,
            keys,
            key_names: join.key_names.clone(),
            slot: join.lookup.clone(),
            key_set: join.key_set,
            lookup_columns: join.lookup_columns.clone(),
            lookup_first: join.lookup_first,
            keep_unmatched: join.keep_unmatched,
            schema,
            lineage: join.lineage.clone(),
            properties,
        }
    }
}

impl DisplayAs for LookupJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        let gathered: Vec<&str> = self
            .lookup_columns
            .iter()
            .filter_map(|c| self.slot.schema.fields().get(*c).map(|f| f.name().as_str()))
            .collect();
        let text = describe(
            self.keep_unmatched,
            &self.slot.name,
            &keys,
            &self.key_names,
            &gathered,
        );
        write!(f, "LookupJoinExec: {text}")
    }
}

impl ExecutionPlan for LookupJoinExec {
    fn name(&self) -> &str {
        "LookupJoinExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let input = children
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("LookupJoinExec without input".into()))?;
        Ok(Arc::new(Self {
            input,
            keys: self.keys.clone(),
            key_names: self.key_names.clone(),
            slot: self.slot.clone(),
            key_set: self.key_set,
            lookup_columns: self.lookup_columns.clone(),
            lookup_first: self.lookup_first,
            keep_unmatched: self.keep_unmatched,
            schema: self.schema.clone(),
            lineage: self.lineage.clone(),
            properties: self.properties.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        // One version for the whole execution: a refresh lands between batches.
        // Not a record's fault: Internal, so that the job stops rather than dead-letters.
        let version = self.slot.current().ok_or_else(|| {
            DataFusionError::Internal(format!(
                "lookup table {} has not been loaded",
                self.slot.name
            ))
        })?;
        self.lineage.note(&version.label);
        let step = JoinStep {
            keys: self.keys.clone(),
            key_set: self.key_set,
            lookup_columns: self.lookup_columns.clone(),
            lookup_first: self.lookup_first,
            keep_unmatched: self.keep_unmatched,
            schema: self.schema.clone(),
            name: self.slot.name.clone(),
            version,
        };
        let input = self.input.execute(partition, context)?;
        let joined = input.map(move |b| b.and_then(|b| step.join(&b)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            joined,
        )))
    }
}

/// What joining one batch needs.
struct JoinStep {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    key_set: usize,
    lookup_columns: Vec<usize>,
    lookup_first: bool,
    keep_unmatched: bool,
    schema: SchemaRef,
    name: String,
    version: Arc<LookupVersion>,
}

impl JoinStep {
    fn join(&self, batch: &RecordBatch) -> DfResult<RecordBatch> {
        let n = batch.num_rows();
        let keys = self
            .keys
            .iter()
            .map(|k| k.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<DfResult<Vec<_>>>()?;
        let index = self.version.index(self.key_set).ok_or_else(|| {
            DataFusionError::Internal(format!(
                "lookup table {} ({}) has no index for this join",
                self.name, self.version.label
            ))
        })?;
        // The keys are cast already (a record's bad key failed there); what fails from here
        // on is not a record's fault.
        let internal = |e: arrow_schema::ArrowError| {
            DataFusionError::Internal(format!("lookup join with {}: {e}", self.name))
        };
        let matches = index.probe(&keys, self.keep_unmatched).map_err(internal)?;
        let stream: Vec<ArrayRef> = if matches.stream_in_order {
            batch.columns().to_vec()
        } else {
            batch
                .columns()
                .iter()
                .map(|c| take(c, &matches.stream, None))
                .collect::<Result<_, _>>()
                .map_err(internal)?
        };
        let lookup: Vec<ArrayRef> = self
            .lookup_columns
            .iter()
            .map(|c| take(self.version.batch.column(*c), &matches.lookup, None))
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        let columns = if self.lookup_first {
            lookup.into_iter().chain(stream).collect()
        } else {
            stream.into_iter().chain(lookup).collect()
        };
        RecordBatch::try_new(self.schema.clone(), columns).map_err(internal)
    }
}

/// Plans [`LookupJoin`] nodes as [`LookupJoinExec`]s.
struct LookupPlanner;

#[async_trait]
impl ExtensionPlanner for LookupPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session_state: &SessionState,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(join) = node.as_any().downcast_ref::<LookupJoin>() else {
            return Ok(None);
        };
        let (Some(logical), Some(physical)) = (logical_inputs.first(), physical_inputs.first())
        else {
            return Err(DataFusionError::Internal("LookupJoin without input".into()));
        };
        let keys = join
            .keys
            .iter()
            .map(|k| planner.create_physical_expr(k, logical.schema(), session_state))
            .collect::<DfResult<Vec<_>>>()?;
        Ok(Some(Arc::new(LookupJoinExec::new(
            physical.clone(),
            keys,
            join,
        ))))
    }
}

/// DataFusion's planner, with lookup joins.
#[derive(Debug)]
pub struct FloeQueryPlanner;

#[async_trait]
impl QueryPlanner for FloeQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &SessionState,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(LookupPlanner)])
            .create_physical_plan(logical_plan, session_state)
            .await
    }
}
