//! Schema evolution of an existing table (`'schema.evolution' = 'add-columns'`): the
//! table gains the declared columns it lacks, as optional columns, and promotes the
//! types the declaration widens (int to long, float to double, decimal precision).
//!
//! ```text
//!  table's current schema + declaration
//!        ─▶ new schema: every current field kept with its id (promoted where declared
//!           wider), declared columns the table lacks appended with fresh ids after
//!           the table's last column id (nested fields too)
//!        ─▶ TableChange { requirements: uuid, current schema id, last column id;
//!                         updates: add-schema, set-current-schema(-1) }
//!           through the catalog's own compare-and-swap (`floe_catalog::table_change`)
//!        ─▶ conflict (another writer committed): reload, compute again (maybe nothing
//!           is left to do: another replica evolved the table the same way)
//! ```
//!
//! Columns are matched through the job's column binding (by field id once bound, see
//! `crate::binding`), and only ever added or promoted: a column the
//! declaration no longer has stays in the table (its new rows are NULL), so files
//! written before and after the change read alike. The change commits before the first
//! data file that needs it is committed; a data file written against the older schema
//! simply has no values for the new columns, which readers take as NULL.

use std::sync::Arc;

use floe_catalog::OpenCatalog;
use floe_catalog::table_change::TableChange;
use iceberg::spec::{ListType, MapType, NestedField, NestedFieldRef, Schema, StructType, Type};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};
use tracing::info;

use crate::commit_loop::{self, Attempt, Tried};
use crate::error::{Result, SinkError};
use crate::retry_policy::RetryPolicy;
use crate::table_spec::{TableSpec, check_compatible, promotes};

/// Brings `table` to `spec`'s columns (see the module doc), returning the table as
/// committed and what changed (empty when nothing had to).
pub async fn evolve_table(
    catalog: &OpenCatalog,
    spec: &TableSpec,
    table: Table,
    policy: &RetryPolicy,
) -> Result<(Table, Vec<String>)> {
    let mut evolve = Evolve { catalog, spec };
    let (table, changes, _) =
        commit_loop::run(catalog.catalog.as_ref(), table, policy, &mut evolve).await?;
    Ok((table, changes))
}

/// A schema change, as the commit loop drives it: each attempt computes what is left
/// to do on the table as it is (nothing, when another replica evolved it the same way
/// or a lost response had landed).
struct Evolve<'a> {
    catalog: &'a OpenCatalog,
    spec: &'a TableSpec,
}

impl Attempt for Evolve<'_> {
    type Output = Vec<String>;

    fn what(&self) -> &'static str {
        "evolving the schema"
    }

    async fn attempt(&mut self, base: &Table) -> Result<Tried<Self::Output>> {
        check_compatible(self.spec, base)?;
        let Some((schema, changes)) = evolved_schema(self.spec, base)? else {
            return Ok(Tried::Landed(base.clone(), vec![]));
        };
        let change = schema_change(base, schema);
        Ok(match self.catalog.commit_change(base, change).await {
            Ok(t) => {
                info!(table = %self.spec.ident, schema_id = t.metadata().current_schema_id(), changes = %changes.join(", "), "the table's schema evolved");
                Tried::Landed(t, changes)
            }
            Err(e) => Tried::Failed(e),
        })
    }
}

/// The change that makes `schema` current, if `base` is still the table's state.
fn schema_change(base: &Table, schema: Schema) -> TableChange {
    let m = base.metadata();
    TableChange {
        requirements: vec![
            TableRequirement::UuidMatch { uuid: m.uuid() },
            TableRequirement::CurrentSchemaIdMatch {
                current_schema_id: m.current_schema_id(),
            },
            TableRequirement::LastAssignedFieldIdMatch {
                last_assigned_field_id: m.last_column_id(),
            },
        ],
        updates: vec![
            TableUpdate::AddSchema { schema },
            TableUpdate::SetCurrentSchema { schema_id: -1 },
        ],
    }
}

/// `table`'s current schema brought to `spec`'s columns, and what changed; None when
/// the table already has them.
pub(crate) fn evolved_schema(
    spec: &TableSpec,
    table: &Table,
) -> Result<Option<(Schema, Vec<String>)>> {
    let m = table.metadata();
    let current = m.current_schema();
    let declared = spec.iceberg_schema()?;
    let binding = spec.binding(table)?;
    let mut changes = vec![];
    let mut fields: Vec<NestedFieldRef> = vec![];
    for f in current.as_struct().fields() {
        let declared_field = binding
            .declared_name(f.id)
            .and_then(|n| declared.as_struct().field_by_name(n));
        let wider = declared_field.and_then(|d| match (&*f.field_type, &*d.field_type) {
            (Type::Primitive(a), Type::Primitive(b)) if promotes(a, b) => Some((a, b)),
            _ => None,
        });
        match wider {
            Some((from, to)) => {
                changes.push(format!("{} {from} to {to}", f.name));
                let mut promoted = (**f).clone();
                promoted.field_type = Box::new(Type::Primitive(to.clone()));
                fields.push(Arc::new(promoted));
            }
            None => fields.push(f.clone()),
        }
    }
    let mut last_id = m.last_column_id();
    for d in declared.as_struct().fields() {
        if binding.field(current, &d.name)?.is_none() {
            changes.push(format!("{} {} added", d.name, d.field_type));
            let mut added = (*fresh_ids(d, &mut last_id)).clone();
            added.required = false;
            fields.push(Arc::new(added));
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    let schema_id = m.schemas_iter().map(|s| s.schema_id()).max().unwrap_or(0) + 1;
    let schema = Schema::builder()
        .with_schema_id(schema_id)
        .with_fields(fields)
        .with_identifier_field_ids(current.identifier_field_ids())
        .build()
        .map_err(|e| SinkError::iceberg(&spec.ident, "building the evolved schema", e))?;
    Ok(Some((schema, changes)))
}

/// `field` with ids after `last_id` for itself and every field nested in it.
fn fresh_ids(field: &NestedField, last_id: &mut i32) -> NestedFieldRef {
    *last_id += 1;
    let id = *last_id;
    let field_type = match &*field.field_type {
        Type::Primitive(p) => Type::Primitive(p.clone()),
        Type::Struct(s) => Type::Struct(StructType::new(
            s.fields().iter().map(|f| fresh_ids(f, last_id)).collect(),
        )),
        Type::List(l) => Type::List(ListType {
            element_field: fresh_ids(&l.element_field, last_id),
        }),
        Type::Map(m) => Type::Map(MapType {
            key_field: fresh_ids(&m.key_field, last_id),
            value_field: fresh_ids(&m.value_field, last_id),
        }),
    };
    Arc::new(NestedField {
        id,
        field_type: Box::new(field_type),
        ..field.clone()
    })
}
