//! Compiles each INSERT of a job into a DataFusion physical plan, once.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::{Array, BooleanArray, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::compute::can_cast_types;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{
    Expr, ExprSchemable, Extension, LogicalPlan, LogicalPlanBuilder, Projection, cast, lit,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    ExecutionPlan, collect, displayable, execution_plan::reset_plan_states,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, ExprWithAlias as SqlExprWithAlias, Ident, Query, SelectItem, SetExpr,
    Statement,
};

use super::ROW_COLUMN;
use super::implicit::{converts_implicitly, sql_name};
use super::lookup::{
    FloeQueryPlanner, Lineage, LookupSlot, LookupTable, Lookups, full_name, lookup_join,
    prune_lookup_columns,
};
use super::slot::{BatchSlot, SlotTable};
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::job::{InsertDef, JobFile, SourceDef, TableDef, TableName};

/// A job whose INSERTs are planned and ready to run over micro-batches.
pub struct CompiledJob {
    /// The parsed job.
    pub job: JobFile,
    /// One slot per source, in the order of `job.sources`.
    pub slots: Vec<BatchSlot>,
    /// One compiled plan per INSERT, in file order.
    pub inserts: Vec<CompiledInsert>,
    /// One slot per lookup table, in the order of `job.lookups`: the engine loads each
    /// version of the table into it.
    pub lookups: Vec<Arc<LookupSlot>>,
    /// One slot per topic read as a lookup table, in the order of `job.lookup_topics`.
    pub topic_lookups: Vec<Arc<LookupSlot>>,
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
    /// The target's columns and types. The plan's output has these columns and then
    /// [`ROW_COLUMN`], the index of the source record each row came from.
    pub schema: SchemaRef,
    /// The table's CHECK constraints, ready to evaluate over the plan's output.
    pub checks: Vec<CompiledCheck>,
    /// The lookup tables the INSERT joins, with the versions its rows were joined with.
    pub lineage: Vec<Arc<Lineage>>,
}

/// A CHECK constraint planned over the INSERT's output.
#[derive(Debug, Clone)]
pub struct CompiledCheck {
    /// The constraint name.
    pub name: String,
    /// The condition as written.
    pub sql: String,
    /// The condition, evaluated over a whole output batch at once.
    pub expr: Arc<dyn PhysicalExpr>,
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

impl CompiledCheck {
    /// Which rows of an output batch break the constraint. As in SQL, a condition that
    /// is NULL does not break it.
    pub fn broken(&self, batch: &RecordBatch) -> Result<BooleanArray, DataFusionError> {
        let value = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let value = value
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| {
                DataFusionError::Internal(format!("CHECK {} is not boolean", self.name))
            })?;
        Ok(value.iter().map(|v| Some(v == Some(false))).collect())
    }
}

/// Appends [`ROW_COLUMN`] (0, 1, 2, …) to a batch with a source's schema, as the slot
/// expects it.
pub fn with_row_numbers(batch: &RecordBatch) -> Result<RecordBatch, DataFusionError> {
    let n = u32::try_from(batch.num_rows())
        .map_err(|_| DataFusionError::Execution("batch too large".into()))?;
    let mut cols = batch.columns().to_vec();
    cols.push(Arc::new(UInt32Array::from_iter_values(0..n)));
    Ok(RecordBatch::try_new(slot_schema(&batch.schema()), cols)?)
}

impl CompiledInsert {
    /// The versions of each lookup table that the rows produced since the previous call
    /// were joined with, by table.
    pub fn take_lineage(&self) -> Vec<(String, BTreeSet<String>)> {
        self.lineage
            .iter()
            .map(|l| (l.table.clone(), l.take()))
            .filter(|(_, used)| !used.is_empty())
            .collect()
    }

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

/// A context with Floe's settings and the JSON functions (`json_get_str(payload, 'a',
/// 'b')`, `payload->'a'->>'b'` and the rest of datafusion-functions-json), so that JSON
/// held in a VARCHAR column can be taken apart in the job's SQL.
fn session_context() -> Result<SessionContext> {
    let state = SessionStateBuilder::new()
        .with_config(session_config())
        .with_default_features()
        .with_query_planner(Arc::new(FloeQueryPlanner))
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    datafusion_functions_json::register_all(&mut ctx).map_err(|e| df_error(Pos::new(1, 1), e))?;
    Ok(ctx)
}

/// Plans every INSERT of `job`.
pub async fn compile(job: JobFile) -> Result<CompiledJob> {
    let file = job.path.clone();
    compile_inner(job).await.map_err(|e| e.in_file(&file))
}

async fn compile_inner(job: JobFile) -> Result<CompiledJob> {
    let ctx = session_context()?;
    let mut slots = vec![];
    for s in &job.sources {
        check_columns_read(s)?;
        let slot = BatchSlot::default();
        ctx.register_table(
            s.name.as_str(),
            Arc::new(SlotTable::new(slot_schema(&s.schema()), slot.clone())),
        )
        .map_err(|e| df_error(s.pos, e))?;
        slots.push(slot);
    }
    let lookups = register_lookups(&ctx, &job)?;
    // The queries are planned first: with 'schema.evolution' = 'add-columns', what they
    // yield extends their tables' columns, and every INSERT into a table must see all of
    // its columns.
    let mut queries = vec![];
    for insert in &job.inserts {
        if job.table(&insert.target).is_none() {
            return Err(SqlError::new(
                ErrorKind::Name,
                insert.pos,
                format!("table {} is not declared", insert.target),
            ));
        }
        queries.push(plan_query(&ctx, &job, insert, &lookups).await?);
    }
    let mut job = job;
    for (insert, (plan, _, _)) in job.inserts.clone().iter().zip(&queries) {
        if let Some(table) = job.tables.iter_mut().find(|t| t.name == insert.target) {
            super::evolve::extend_table(table, insert, plan)?;
        }
    }
    let mut inserts = vec![];
    for (insert, (plan, source, lineage)) in job.inserts.iter().zip(queries) {
        let Some(table) = job.table(&insert.target) else {
            continue;
        };
        let mut compiled = compile_insert(&ctx, insert, table, plan, source).await?;
        compiled.lineage = lineage;
        inserts.push(compiled);
    }
    let topic_lookups = job
        .lookup_topics
        .iter()
        .filter_map(|s| lookups.get(&s.name).cloned())
        .collect();
    let lookups = job
        .lookups
        .iter()
        .filter_map(|l| lookups.get(&l.name.to_string()).cloned())
        .collect();
    Ok(CompiledJob {
        job,
        slots,
        inserts,
        lookups,
        topic_lookups,
        ctx,
    })
}

/// A source whose columns come from its writer schema must have them before planning.
fn check_columns_read(s: &SourceDef) -> Result<()> {
    if s.columns_from_schema && s.payload_schema().fields().is_empty() {
        return Err(SqlError::new(
            ErrorKind::Plan,
            s.pos,
            format!(
                "source {} takes its columns from its writer schema, which was not read \
                 before planning",
                s.name
            ),
        ));
    }
    Ok(())
}

/// Plans an INSERT's query (with [`ROW_COLUMN`] threaded through it), and finds the one
/// source it reads.
async fn plan_query(
    ctx: &SessionContext,
    job: &JobFile,
    insert: &InsertDef,
    lookups: &Lookups,
) -> Result<(LogicalPlan, usize, Vec<Arc<Lineage>>)> {
    let pos = insert.pos;
    let query =
        DfStatement::Statement(Box::new(Statement::Query(name_select_items(&insert.query))));
    let plan = ctx
        .state()
        .statement_to_plan(query)
        .await
        .map_err(|e| df_error(pos, e))?;

    let mut read = BTreeSet::new();
    plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && !lookups.contains_key(&full_name(&scan.table_name))
        {
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
        if read.len() > 1 && has_join(&plan) {
            return SqlError::new(
                ErrorKind::Plan,
                pos,
                format!(
                    "INSERT INTO {} joins the streams {}: a join between two streams is not \
                     supported, since its result would depend on where each stream's batches \
                     are cut; a stream can be joined with lookup tables (Iceberg tables named \
                     catalog.namespace.table, or sources with 'connector' = 'upsert-kafka')",
                    insert.target,
                    read.iter().cloned().collect::<Vec<_>>().join(" and ")
                ),
            );
        }
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
    let mut lineage = vec![];
    let plan = thread_row_column(plan, insert, lookups, &mut lineage)?;
    Ok((plan, source, lineage))
}

/// Whether the plan joins anything.
fn has_join(plan: &LogicalPlan) -> bool {
    plan.exists(|n| Ok(matches!(n, LogicalPlan::Join(_))))
        .unwrap_or(false)
}

/// Makes every lookup table of the job known to the planner, each with an empty slot:
/// Iceberg tables under their full names, topics read as tables under their sources'.
fn register_lookups(ctx: &SessionContext, job: &JobFile) -> Result<Lookups> {
    let mut out = Lookups::new();
    for s in &job.lookup_topics {
        check_columns_read(s)?;
        let slot = Arc::new(LookupSlot::new(
            s.name.clone(),
            s.schema(),
            job.lookup_options.max_memory,
        ));
        ctx.register_table(s.name.as_str(), Arc::new(LookupTable(slot.clone())))
            .map_err(|e| df_error(s.pos, e))?;
        out.insert(s.name.clone(), slot);
    }
    for l in &job.lookups {
        let at = |e: DataFusionError| df_error(l.pos, e);
        let Some(schema) = &l.schema else {
            return Err(SqlError::new(
                ErrorKind::Plan,
                l.pos,
                format!(
                    "lookup table {}: its columns were not read from its catalog before \
                     planning",
                    l.name
                ),
            ));
        };
        let slot = Arc::new(LookupSlot::new(
            l.name.to_string(),
            schema.clone(),
            job.lookup_options.max_memory,
        ));
        let catalog = match ctx.catalog(&l.name.catalog) {
            Some(c) => c,
            None => {
                let c: Arc<dyn CatalogProvider> = Arc::new(MemoryCatalogProvider::new());
                ctx.register_catalog(l.name.catalog.as_str(), c.clone());
                c
            }
        };
        let namespace = l.name.namespace.join(".");
        let schema = match catalog.schema(&namespace) {
            Some(s) => s,
            None => {
                let s: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
                catalog.register_schema(&namespace, s.clone()).map_err(at)?;
                s
            }
        };
        schema
            .register_table(l.name.name.clone(), Arc::new(LookupTable(slot.clone())))
            .map_err(at)?;
        out.insert(l.name.to_string(), slot);
    }
    Ok(out)
}

/// Turns a planned query into the INSERT's physical plan: its columns cast to the
/// table's, then the table's CHECK constraints.
async fn compile_insert(
    ctx: &SessionContext,
    insert: &InsertDef,
    table: &TableDef,
    plan: LogicalPlan,
    source: usize,
) -> Result<CompiledInsert> {
    let pos = insert.pos;
    let state = ctx.state();
    let mut projection = target_projection(&plan, insert, table)?;
    projection.push(row_column_of(&plan, pos)?);
    let logical = LogicalPlanBuilder::from(plan)
        .project(projection)
        .and_then(|b| b.build())
        .map_err(|e| df_error(pos, e))?;
    let logical = state
        .optimize(&logical)
        .and_then(prune_lookup_columns)
        .map_err(|e| df_error(pos, e))?;
    let physical = state
        .create_physical_plan(&logical)
        .await
        .map_err(|e| df_error(pos, e))?;
    let checks = compile_checks(ctx, &logical, table)?;
    Ok(CompiledInsert {
        target: insert.target.clone(),
        source,
        logical,
        schema: table.schema(),
        physical,
        checks,
        lineage: vec![],
    })
}

/// The schema a source's slot table has: the source's columns, then [`ROW_COLUMN`].
pub fn slot_schema(source: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<_> = source.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(ROW_COLUMN, DataType::UInt32, false)));
    Arc::new(Schema::new(fields))
}

/// Carries [`ROW_COLUMN`] through every projection of the query, so that each output row
/// names the source record it came from (for dead letters and for isolating a failing
/// row). The same walk rejects operators whose result depends on how records happen to
/// be cut into micro-batches.
fn thread_row_column(
    plan: LogicalPlan,
    insert: &InsertDef,
    lookups: &Lookups,
    lineage: &mut Vec<Arc<Lineage>>,
) -> Result<LogicalPlan> {
    let pos = insert.pos;
    plan.transform_up(|node| {
        if let LogicalPlan::Join(j) = &node
            && let Some(join) = lookup_join(j, lookups)?
        {
            lineage.push(join.lineage.clone());
            return Ok(Transformed::yes(LogicalPlan::Extension(Extension {
                node: Arc::new(join),
            })));
        }
        let refused = match &node {
            LogicalPlan::Aggregate(_) => Some("aggregates and GROUP BY"),
            LogicalPlan::Distinct(_) => Some("DISTINCT"),
            LogicalPlan::Window(_) => Some("window functions"),
            LogicalPlan::Limit(_) => Some("LIMIT"),
            LogicalPlan::Join(_) => Some("joins"),
            LogicalPlan::Union(_) => Some("UNION"),
            LogicalPlan::RecursiveQuery(_) => Some("recursive queries"),
            _ => None,
        };
        if let Some(what) = refused {
            return Err(DataFusionError::Plan(format!(
                "INSERT INTO {}: the SELECT runs over each micro-batch, so it must work row by row; \
                 {what} would give results that depend on where batches happen to be cut",
                insert.target
            )));
        }
        match node {
            LogicalPlan::Projection(p) => {
                let mut exprs: Vec<Expr> = p
                    .expr
                    .into_iter()
                    .filter(|e| !matches!(e, Expr::Column(c) if c.name == ROW_COLUMN))
                    .collect();
                let (q, f) = p
                    .input
                    .schema()
                    .qualified_field_with_unqualified_name(ROW_COLUMN)?;
                exprs.push(Expr::Column(datafusion::common::Column::new(
                    q.cloned(),
                    f.name(),
                )));
                Ok(Transformed::yes(LogicalPlan::Projection(
                    Projection::try_new(exprs, p.input)?,
                )))
            }
            other => Ok(Transformed::yes(other.recompute_schema()?)),
        }
    })
    .map(|t| t.data)
    .map_err(|e| df_error(pos, e))
}

/// The row column of `plan`'s output, to append after the target columns.
fn row_column_of(plan: &LogicalPlan, pos: Pos) -> Result<Expr> {
    let (q, f) = plan
        .schema()
        .qualified_field_with_unqualified_name(ROW_COLUMN)
        .map_err(|e| df_error(pos, e))?;
    Ok(Expr::Column(datafusion::common::Column::new(
        q.cloned(),
        f.name(),
    )))
}

/// Plans the table's CHECK constraints over the INSERT's output schema.
fn compile_checks(
    ctx: &SessionContext,
    output: &LogicalPlan,
    table: &TableDef,
) -> Result<Vec<CompiledCheck>> {
    let state = ctx.state();
    let schema = output.schema().as_ref().clone();
    let mut out = vec![];
    for check in &table.quality.checks {
        let at = |e: DataFusionError| {
            let mut err = df_error(check.pos, e);
            err.message = format!("CHECK {} of {}: {}", check.name, table.name, err.message);
            err
        };
        let logical = state
            .create_logical_expr_from_sql_expr(
                SqlExprWithAlias {
                    expr: check.expr.clone(),
                    alias: None,
                },
                &schema,
            )
            .map_err(at)?;
        let ty = logical.get_type(&schema).map_err(at)?;
        if ty != DataType::Boolean {
            return Err(SqlError::new(
                ErrorKind::Plan,
                check.pos,
                format!(
                    "CHECK {} of {}: the condition is {ty}, not BOOLEAN",
                    check.name, table.name
                ),
            ));
        }
        let expr = state.create_physical_expr(logical, &schema).map_err(at)?;
        out.push(CompiledCheck {
            name: check.name.clone(),
            sql: check.expr.to_string(),
            expr,
        });
    }
    Ok(out)
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
    // The row column comes last and is not the query's own.
    let all = plan.schema().fields();
    let fields = &all[..all.len().saturating_sub(1)];
    let mapping: Vec<Option<usize>> = if insert.columns.is_empty() && super::evolve::by_name(table)
    {
        table
            .columns
            .iter()
            .map(|t| fields.iter().position(|f| f.name() == &t.name))
            .collect()
    } else if insert.columns.is_empty() {
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
                            sql_name(&target.data_type),
                            field.name(),
                            sql_name(field.data_type())
                        ),
                    ));
                }
                if !converts_implicitly(field.data_type(), &target.data_type) {
                    let to = sql_name(&target.data_type);
                    return Err(SqlError::new(
                        ErrorKind::Plan,
                        pos,
                        format!(
                            "INSERT INTO {}: column {} is {to} but the query's column {} is {}; \
                             values change family of type only by an explicit CAST: write \
                             CAST({} AS {to})",
                            insert.target,
                            target.name,
                            field.name(),
                            sql_name(field.data_type()),
                            field.name(),
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
                        "INSERT INTO {}: NOT NULL column {} is not {}",
                        insert.target,
                        target.name,
                        if insert.columns.is_empty() {
                            "among the query's columns (with 'schema.evolution' = \
                             'add-columns', they map to the table's by name)"
                        } else {
                            "in the column list"
                        }
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
