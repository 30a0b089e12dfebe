//! Compiles each INSERT of a job into a DataFusion physical plan, once.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use datafusion::arrow::compute::can_cast_types;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, lit};
use datafusion::physical_plan::{
    ExecutionPlan, collect, displayable, execution_plan::reset_plan_states,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, Ident, Query, SelectItem, SetExpr, Statement,
};

use super::slot::{BatchSlot, SlotTable};
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::job::{InsertDef, JobFile, TableDef, TableName};

/// A job whose INSERTs are planned and ready to run over micro-batches.
pub struct CompiledJob {
    /// The parsed job.
    pub job: JobFile,
    /// One slot per source, in the order of `job.sources`.
    pub slots: Vec<BatchSlot>,
    /// One compiled plan per INSERT, in file order.
    pub inserts: Vec<CompiledInsert>,
    ctx: SessionContext,
}

/// One planned `INSERT INTO … SELECT`.
#[derive(Debug)]
pub struct CompiledInsert {
    /// The target table.
    pub target: TableName,
    /// Index into `job.sources` of the source this INSERT reads.
    pub source: usize,
    /// The optimised logical plan (for `explain`).
    pub logical: LogicalPlan,
    /// The physical plan executed for every batch.
    pub physical: Arc<dyn ExecutionPlan>,
    /// The schema of the rows it produces: the target's columns and types.
    pub schema: SchemaRef,
}

impl std::fmt::Debug for CompiledJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledJob")
            .field("job", &self.job.name)
            .field("inserts", &self.inserts.len())
            .finish_non_exhaustive()
    }
}

impl CompiledJob {
    /// A task context to execute the plans with.
    pub fn task_ctx(&self) -> Arc<TaskContext> {
        self.ctx.task_ctx()
    }

    /// The session the plans were made in (for ad-hoc queries against the same functions).
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }
}

impl CompiledInsert {
    /// Runs the plan over whatever is in its source's slot.
    pub async fn execute(
        &self,
        ctx: Arc<TaskContext>,
    ) -> Result<Vec<RecordBatch>, DataFusionError> {
        let plan = reset_plan_states(self.physical.clone())?;
        collect(plan, ctx).await
    }

    /// The logical and physical plans, for `floe explain`.
    pub fn explain(&self) -> String {
        format!(
            "INSERT INTO {}\n\nLogical plan:\n{}\n\nPhysical plan:\n{}",
            self.target,
            self.logical.display_indent(),
            displayable(self.physical.as_ref()).indent(true)
        )
    }
}

/// The session settings Floe plans with: one partition per micro-batch (parallelism comes
/// from pipelining), and identifiers kept as written so JSON field names match exactly.
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(8192)
        .with_information_schema(false);
    config.options_mut().sql_parser.enable_ident_normalization = false;
    config
}

/// Plans every INSERT of `job`.
pub async fn compile(job: JobFile) -> Result<CompiledJob> {
    let file = job.path.clone();
    compile_inner(job).await.map_err(|e| e.in_file(&file))
}

async fn compile_inner(job: JobFile) -> Result<CompiledJob> {
    let ctx = SessionContext::new_with_config(session_config());
    let mut slots = vec![];
    for s in &job.sources {
        let slot = BatchSlot::default();
        ctx.register_table(
            s.name.as_str(),
            Arc::new(SlotTable::new(s.schema(), slot.clone())),
        )
        .map_err(|e| df_error(s.pos, e))?;
        slots.push(slot);
    }
    let mut inserts = vec![];
    for insert in &job.inserts {
        let table = job.table(&insert.target).ok_or_else(|| {
            SqlError::new(
                ErrorKind::Name,
                insert.pos,
                format!("table {} is not declared", insert.target),
            )
        })?;
        inserts.push(compile_insert(&ctx, &job, insert, table).await?);
    }
    Ok(CompiledJob {
        job,
        slots,
        inserts,
        ctx,
    })
}

async fn compile_insert(
    ctx: &SessionContext,
    job: &JobFile,
    insert: &InsertDef,
    table: &TableDef,
) -> Result<CompiledInsert> {
    let pos = insert.pos;
    let state = ctx.state();
    let query =
        DfStatement::Statement(Box::new(Statement::Query(name_select_items(&insert.query))));
    let plan = state
        .statement_to_plan(query)
        .await
        .map_err(|e| df_error(pos, e))?;

    let mut read = BTreeSet::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            read.insert(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| df_error(pos, e))?;
    let source = match read.len() {
        1 => read
            .iter()
            .next()
            .and_then(|n| job.sources.iter().position(|s| &s.name == n)),
        _ => None,
    }
    .ok_or_else(|| {
        SqlError::new(
            ErrorKind::Plan,
            pos,
            format!(
                "INSERT INTO {} must read from exactly one source, but reads {}",
                insert.target,
                if read.is_empty() {
                    "none".to_string()
                } else {
                    read.iter().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        )
    })?;

    let projection = target_projection(&plan, insert, table)?;
    let logical = LogicalPlanBuilder::from(plan)
        .project(projection)
        .and_then(|b| b.build())
        .map_err(|e| df_error(pos, e))?;
    let logical = state.optimize(&logical).map_err(|e| df_error(pos, e))?;
    let physical = state
        .create_physical_plan(&logical)
        .await
        .map_err(|e| df_error(pos, e))?;
    Ok(CompiledInsert {
        target: insert.target.clone(),
        source,
        logical,
        schema: table.schema(),
        physical,
    })
}

/// Gives every unnamed expression of a plain SELECT a positional alias: an INSERT maps
/// columns by position, so `SELECT ts, CAST(ts AS DATE)` must not fail for two columns
/// DataFusion would both call `ts`.
fn name_select_items(query: &Query) -> Box<Query> {
    let mut q = query.clone();
    if let SetExpr::Select(select) = q.body.as_mut() {
        for (i, item) in select.projection.iter_mut().enumerate() {
            if let SelectItem::UnnamedExpr(expr) = item
                && !matches!(
                    expr,
                    SqlExpr::Identifier(_) | SqlExpr::CompoundIdentifier(_)
                )
            {
                *item = SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias: Ident::new(format!("_col{}", i + 1)),
                };
            }
        }
    }
    Box::new(q)
}

/// Casts the query's columns to the target's types and names, by position or by the
/// INSERT's column list; target columns the list leaves out are NULL.
fn target_projection(
    plan: &LogicalPlan,
    insert: &InsertDef,
    table: &TableDef,
) -> Result<Vec<Expr>> {
    let pos = insert.pos;
    let fields = plan.schema().fields();
    let mapping: Vec<Option<usize>> = if insert.columns.is_empty() {
        if fields.len() != table.columns.len() {
            return Err(SqlError::new(
                ErrorKind::Plan,
                pos,
                format!(
                    "INSERT INTO {}: the query produces {} columns but the table has {} ({})",
                    insert.target,
                    fields.len(),
                    table.columns.len(),
                    table
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        (0..fields.len()).map(Some).collect()
    } else {
        if insert.columns.len() != fields.len() {
            return Err(SqlError::new(
                ErrorKind::Plan,
                pos,
                format!(
                    "INSERT INTO {}: {} columns are listed but the query produces {}",
                    insert.target,
                    insert.columns.len(),
                    fields.len()
                ),
            ));
        }
        for c in &insert.columns {
            if !table.columns.iter().any(|t| t.name == c.value) {
                return Err(SqlError::new(
                    ErrorKind::Name,
                    Pos::from(c.span.start),
                    format!("{} has no column {}", insert.target, c.value),
                ));
            }
        }
        table
            .columns
            .iter()
            .map(|t| insert.columns.iter().position(|c| c.value == t.name))
            .collect()
    };
    let mut exprs = vec![];
    for (target, source) in table.columns.iter().zip(mapping) {
        let expr = match source {
            Some(i) => {
                let (qualifier, field) = plan.schema().qualified_field(i);
                if !can_cast_types(field.data_type(), &target.data_type) {
                    return Err(SqlError::new(
                        ErrorKind::Plan,
                        pos,
                        format!(
                            "INSERT INTO {}: column {} is {} but the query's column {} is {}, which cannot be cast to it",
                            insert.target,
                            target.name,
                            target.data_type,
                            field.name(),
                            field.data_type()
                        ),
                    ));
                }
                let c = Expr::Column(datafusion::common::Column::new(
                    qualifier.cloned(),
                    field.name(),
                ));
                if field.data_type() == &target.data_type {
                    c
                } else {
                    cast(c, target.data_type.clone())
                }
            }
            None if !target.nullable => {
                return Err(SqlError::new(
                    ErrorKind::Plan,
                    pos,
                    format!(
                        "INSERT INTO {}: NOT NULL column {} is not in the column list",
                        insert.target, target.name
                    ),
                ));
            }
            None => cast(
                lit(datafusion::common::ScalarValue::Null),
                target.data_type.clone(),
            ),
        };
        exprs.push(expr.alias(&target.name));
    }
    Ok(exprs)
}

fn df_error(pos: Pos, e: DataFusionError) -> SqlError {
    let text = e.strip_backtrace();
    let text = text
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ")
        .to_string();
    SqlError::new(ErrorKind::Plan, pos, text)
}
