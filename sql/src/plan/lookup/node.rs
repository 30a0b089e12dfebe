//! The logical lookup join: a JOIN between the stream and a lookup table, recognised in
//! the planned query and replaced by a node whose only input is the stream.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use arrow_schema::FieldRef;
use datafusion::arrow::compute::can_cast_types;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DFSchemaRef, Result as DfResult, TableReference};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Extension, Join, JoinType, LogicalPlan, Operator,
    UserDefinedLogicalNodeCore, binary_expr, cast,
};

use super::slot::LookupSlot;

/// The lookup tables a job's INSERTs may join, by `catalog.namespace.table`.
pub type Lookups = HashMap<String, Arc<LookupSlot>>;

/// Which versions of a lookup table one INSERT's rows were joined with since the last
/// time the engine asked: the lineage its next snapshot records.
#[derive(Debug)]
pub struct Lineage {
    /// The lookup table, `catalog.namespace.table`.
    pub table: String,
    used: Mutex<BTreeSet<String>>,
}

impl Lineage {
    fn new(table: String) -> Self {
        Self {
            table,
            used: Mutex::new(BTreeSet::new()),
        }
    }

    /// Notes that rows are being joined with version `label`.
    pub fn note(&self, label: &str) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        if !used.contains(label) {
            used.insert(label.to_string());
        }
    }

    /// The versions noted since the previous call.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.used.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The stream joined with a lookup table's current version, on equality keys.
#[derive(Debug, Clone)]
pub struct LookupJoin {
    /// The stream side.
    pub input: LogicalPlan,
    /// The lookup table.
    pub lookup: Arc<LookupSlot>,
    /// The lookup table's key columns, as registered with its slot.
    pub key_set: usize,
    /// The stream's key expressions, cast to the types of the lookup key columns.
    pub keys: Vec<Expr>,
    /// The lookup key columns the keys meet, as the query names them (for `explain`).
    pub key_names: Vec<String>,
    /// The lookup table's columns in the output, as the query qualifies them.
    pub lookup_fields: Vec<(Option<TableReference>, FieldRef)>,
    /// Where each of those is among the table's columns.
    pub lookup_columns: Vec<usize>,
    /// True when the lookup table's columns come first (it was the JOIN's left side).
    pub lookup_first: bool,
    /// True for a LEFT join: a stream row without a match is kept, with NULLs.
    pub keep_unmatched: bool,
    /// The output: the stream's and the lookup table's columns.
    pub schema: DFSchemaRef,
    /// What the INSERT's rows were joined with.
    pub lineage: Arc<Lineage>,
}

impl LookupJoin {
    fn sort_key(&self) -> (&str, usize, bool, bool) {
        (
            &self.lookup.name,
            self.key_set,
            self.lookup_first,
            self.keep_unmatched,
        )
    }
}

impl PartialEq for LookupJoin {
    fn eq(&self, other: &Self) -> bool {
        self.sort_key() == other.sort_key()
            && self.keys == other.keys
            && self.lookup_columns == other.lookup_columns
            && self.input == other.input
            && self.schema == other.schema
    }
}

impl Eq for LookupJoin {}

impl Hash for LookupJoin {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sort_key().hash(state);
        self.keys.hash(state);
        self.lookup_columns.hash(state);
        self.input.hash(state);
    }
}

impl PartialOrd for LookupJoin {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self == other {
            return Some(Ordering::Equal);
        }
        match self.sort_key().cmp(&other.sort_key()) {
            Ordering::Equal => None,
            o => Some(o),
        }
    }
}

impl UserDefinedLogicalNodeCore for LookupJoin {
    fn name(&self) -> &str {
        "LookupJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        self.keys.clone()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(|k| k.to_string()).collect();
        let gathered: Vec<&str> = self
            .lookup_fields
            .iter()
            .map(|(_, f)| f.name().as_str())
            .collect();
        let text = describe(
            self.keep_unmatched,
            &self.lookup.name,
            &keys,
            &self.key_names,
            &gathered,
        );
        write!(f, "LookupJoin: {text}")
    }

    fn with_exprs_and_inputs(&self, exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> DfResult<Self> {
        let input = inputs
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("LookupJoin without input".into()))?;
        let schema = joined_schema(input.schema(), &self.lookup_fields, self.lookup_first)?;
        Ok(Self {
            input,
            keys: exprs,
            schema,
            ..self.clone()
        })
    }
}

impl LookupJoin {
    /// The join without the lookup table's columns that `used` does not name: joining
    /// then gathers only what the INSERT reads.
    pub fn keeping(&self, used: &HashSet<(Option<TableReference>, String)>) -> DfResult<Self> {
        let reads = |q: &Option<TableReference>, name: &str| {
            used.contains(&(q.clone(), name.to_string()))
                || used.contains(&(None, name.to_string()))
        };
        let (fields, columns): (Vec<_>, Vec<_>) = self
            .lookup_fields
            .iter()
            .zip(&self.lookup_columns)
            .filter(|((q, f), _)| reads(q, f.name()))
            .map(|(f, c)| (f.clone(), *c))
            .unzip();
        let schema = joined_schema(self.input.schema(), &fields, self.lookup_first)?;
        Ok(Self {
            lookup_fields: fields,
            lookup_columns: columns,
            schema,
            ..self.clone()
        })
    }
}

/// Drops from every lookup join of `plan` the lookup table's columns that no expression
/// of the plan reads.
pub fn prune_lookup_columns(plan: LogicalPlan) -> DfResult<LogicalPlan> {
    let mut used = HashSet::new();
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|x| {
                match x {
                    Expr::Column(c) | Expr::OuterReferenceColumn(_, c) => {
                        used.insert((c.relation.clone(), c.name.clone()));
                    }
                    _ => {}
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    plan.transform_up(|node| match node {
        LogicalPlan::Extension(ext) => match ext.node.as_any().downcast_ref::<LookupJoin>() {
            Some(join) => Ok(Transformed::yes(LogicalPlan::Extension(Extension {
                node: Arc::new(join.keeping(&used)?),
            }))),
            None => Ok(Transformed::no(LogicalPlan::Extension(ext))),
        },
        other => Ok(Transformed::yes(other.recompute_schema()?)),
    })
    .map(|t| t.data)
}

/// How `explain` shows a lookup join: its kind, table, key pairs and gathered columns.
pub(super) fn describe(
    keep_unmatched: bool,
    table: &str,
    keys: &[String],
    key_names: &[String],
    gathered: &[&str],
) -> String {
    let pairs: Vec<String> = keys
        .iter()
        .zip(key_names)
        .map(|(k, n)| format!("{k} = {n}"))
        .collect();
    format!(
        "{} {table} on [{}], gathering [{}]",
        if keep_unmatched { "LEFT" } else { "INNER" },
        pairs.join(", "),
        gathered.join(", ")
    )
}

/// The output schema: the stream's columns and the lookup table's, in the JOIN's order.
fn joined_schema(
    stream: &DFSchema,
    lookup: &[(Option<TableReference>, FieldRef)],
    lookup_first: bool,
) -> DfResult<DFSchemaRef> {
    let stream: Vec<_> = stream
        .iter()
        .map(|(q, f)| (q.cloned(), f.clone()))
        .collect();
    let fields = if lookup_first {
        lookup.iter().cloned().chain(stream).collect()
    } else {
        stream.into_iter().chain(lookup.iter().cloned()).collect()
    };
    Ok(Arc::new(DFSchema::new_with_metadata(
        fields,
        Default::default(),
    )?))
}

/// The lookup table a side of a join reads, if it is one (under any alias).
fn lookup_of<'a>(plan: &LogicalPlan, lookups: &'a Lookups) -> Option<&'a Arc<LookupSlot>> {
    match plan {
        LogicalPlan::SubqueryAlias(a) => lookup_of(&a.input, lookups),
        LogicalPlan::TableScan(scan) => lookups.get(&full_name(&scan.table_name)),
        _ => None,
    }
}

/// `catalog.namespace.table` of a resolved table reference.
pub fn full_name(t: &TableReference) -> String {
    match t {
        TableReference::Full {
            catalog,
            schema,
            table,
        } => format!("{catalog}.{schema}.{table}"),
        other => other.to_string(),
    }
}

/// The lookup join that `join` is, if one of its sides is a lookup table; an error says
/// why a join with a lookup table cannot be one.
pub fn lookup_join(join: &Join, lookups: &Lookups) -> DfResult<Option<LookupJoin>> {
    let (left, right) = (
        lookup_of(&join.left, lookups),
        lookup_of(&join.right, lookups),
    );
    let (slot, lookup_first) = match (left, right) {
        (None, None) => return Ok(None),
        (Some(a), Some(b)) => {
            return Err(plan_err(format!(
                "{} and {} are both lookup tables; a lookup join joins the stream with one \
                 lookup table (join each to the stream)",
                a.name, b.name
            )));
        }
        (Some(s), None) => (s.clone(), true),
        (None, Some(s)) => (s.clone(), false),
    };
    let keep_unmatched = match (join.join_type, lookup_first) {
        (JoinType::Inner, _) => false,
        (JoinType::Left, false) | (JoinType::Right, true) => true,
        (t, _) => {
            return Err(plan_err(format!(
                "a {t} join with lookup table {}: lookup joins are INNER, or LEFT with the \
                 stream on the left; other kinds would yield the lookup table's own rows, \
                 which a stream has no moment for",
                slot.name
            )));
        }
    };
    let (stream, table) = if lookup_first {
        (&join.right, &join.left)
    } else {
        (&join.left, &join.right)
    };
    let (keys, columns) = key_pairs(join, stream, table, &slot.name)?;
    let key_names = columns
        .iter()
        .map(|c| {
            let (q, f) = table.schema().qualified_field(*c);
            q.map_or_else(|| f.name().clone(), |q| format!("{q}.{}", f.name()))
        })
        .collect();
    let n = table.schema().fields().len();
    let all: Vec<_> = join
        .schema
        .iter()
        .map(|(q, f)| (q.cloned(), f.clone()))
        .collect();
    let lookup_fields = if lookup_first {
        all[..n].to_vec()
    } else {
        all[all.len() - n..].to_vec()
    };
    let key_set = slot.key_set(&columns);
    let lineage = Arc::new(Lineage::new(slot.name.clone()));
    Ok(Some(LookupJoin {
        input: (**stream).clone(),
        key_set,
        keys,
        key_names,
        lookup_columns: (0..lookup_fields.len()).collect(),
        lookup_fields,
        lookup_first,
        keep_unmatched,
        schema: join.schema.clone(),
        lineage,
        lookup: slot,
    }))
}

/// The stream's key expressions (cast to the lookup columns' types) and the lookup
/// table's key columns, from the JOIN's ON (or USING) condition.
fn key_pairs(
    join: &Join,
    stream: &LogicalPlan,
    table: &LogicalPlan,
    name: &str,
) -> DfResult<(Vec<Expr>, Vec<usize>)> {
    let mut pairs = join.on.clone();
    if let Some(filter) = &join.filter {
        for c in split_conjunction(filter) {
            match c {
                Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::Eq,
                    right,
                }) => pairs.push(((**left).clone(), (**right).clone())),
                other => return Err(not_a_key(name, other)),
            }
        }
    }
    if pairs.is_empty() {
        return Err(plan_err(format!(
            "the join with lookup table {name} has no ON condition; a lookup join needs \
             equality keys: ON stream column = {name} column"
        )));
    }
    let mut keys = vec![];
    let mut columns = vec![];
    for (a, b) in pairs {
        let (s, t) = if reads_only(&b, table) && reads_only(&a, stream) {
            (a, b)
        } else if reads_only(&a, table) && reads_only(&b, stream) {
            (b, a)
        } else {
            return Err(not_a_key(name, &binary_expr(a, Operator::Eq, b)));
        };
        let Expr::Column(column) = &t else {
            return Err(not_a_key(
                name,
                &binary_expr(s.clone(), Operator::Eq, t.clone()),
            ));
        };
        let at = table.schema().index_of_column(column)?;
        let to = table.schema().field(at).data_type().clone();
        let from = s.get_type(stream.schema().as_ref())?;
        if !can_cast_types(&from, &to) {
            return Err(plan_err(format!(
                "the join with lookup table {name} compares {s} ({from}) with {t} ({to}), \
                 which cannot be compared"
            )));
        }
        keys.push(if from == to { s } else { cast(s, to) });
        columns.push(at);
    }
    Ok((keys, columns))
}

/// Whether every column `e` reads is one of `plan`'s (and it reads at least one).
fn reads_only(e: &Expr, plan: &LogicalPlan) -> bool {
    let refs = e.column_refs();
    !refs.is_empty() && refs.iter().all(|c| plan.schema().has_column(c))
}

fn not_a_key(name: &str, e: &Expr) -> DataFusionError {
    plan_err(format!(
        "the join with lookup table {name}: `{e}` is not an equality between the stream's \
         columns and a column of {name}; a lookup join's ON condition is such equalities \
         joined by AND (put other conditions in WHERE)"
    ))
}

fn plan_err(msg: String) -> DataFusionError {
    DataFusionError::Plan(msg)
}
