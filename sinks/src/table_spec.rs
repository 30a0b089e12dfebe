//! The shape a job declares for a table, and creating or checking the table to match it.

use std::collections::HashMap;

use arrow_schema::SchemaRef;
use iceberg::arrow::arrow_schema_to_schema_auto_assign_ids;
use iceberg::spec::{NestedField, PrimitiveType, Schema, Transform, Type, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};

use crate::binding::ColumnBinding;
use crate::error::{Result, SinkError};

/// What a job declares about a table.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Namespace and name.
    pub ident: TableIdent,
    /// Columns: names, Arrow types and nullability.
    pub schema: SchemaRef,
    /// Partition fields: source column and transform.
    pub partition_by: Vec<(String, Transform)>,
    /// Table properties set at creation.
    pub properties: HashMap<String, String>,
    /// `'schema.evolution' = 'add-columns'`: the existing table may lack declared
    /// columns or hold narrower types ([`crate::evolve_table`] brings it up to date),
    /// and may keep optional columns the job no longer declares.
    pub add_columns: bool,
    /// The job whose column binding (see [`crate::binding`]) maps declared columns to
    /// the table's fields; None matches them by name.
    pub writer: Option<String>,
}

impl TableSpec {
    /// How the declared columns map to `table`'s fields.
    pub fn binding(&self, table: &Table) -> Result<ColumnBinding> {
        ColumnBinding::resolve(
            &self.ident.to_string(),
            table.metadata(),
            self.writer.as_deref(),
            self.schema.fields().iter().map(|f| f.name().as_str()),
        )
    }

    /// The declared columns as an Iceberg schema: top-level columns get ids 1…n, nested
    /// fields the ids after them, level by level (Iceberg's own assignment).
    pub(crate) fn iceberg_schema(&self) -> Result<Schema> {
        arrow_schema_to_schema_auto_assign_ids(&self.schema)
            .map_err(|e| SinkError::iceberg(&self.ident, "building the schema", e))
    }

    fn partition_spec(&self, schema: &Schema) -> Result<UnboundPartitionSpec> {
        let mut b = UnboundPartitionSpec::builder();
        for (col, transform) in &self.partition_by {
            let field = schema
                .field_by_name(col)
                .ok_or_else(|| SinkError::Incompatible {
                    table: self.ident.to_string(),
                    message: format!("partition column {col} is not a column"),
                })?;
            let name = partition_field_name(col, *transform);
            b = b
                .add_partition_field(field.id, name, *transform)
                .map_err(|e| SinkError::iceberg(&self.ident, "building the partition spec", e))?;
        }
        Ok(b.build())
    }
}

/// The conventional partition field name (`order_ts_day`, `id_bucket_16`).
fn partition_field_name(col: &str, t: Transform) -> String {
    match t {
        Transform::Identity => col.to_string(),
        Transform::Year => format!("{col}_year"),
        Transform::Month => format!("{col}_month"),
        Transform::Day => format!("{col}_day"),
        Transform::Hour => format!("{col}_hour"),
        Transform::Bucket(n) => format!("{col}_bucket_{n}"),
        Transform::Truncate(w) => format!("{col}_trunc_{w}"),
        other => format!("{col}_{other}"),
    }
}

/// Loads the table, creating it (and its namespace) if missing, and checks that an
/// existing table matches the declaration.
pub async fn ensure_table(catalog: &dyn Catalog, spec: &TableSpec) -> Result<Table> {
    let name = spec.ident.to_string();
    let ns: &NamespaceIdent = spec.ident.namespace();
    let exists = catalog
        .table_exists(&spec.ident)
        .await
        .map_err(|e| SinkError::iceberg(&name, "checking whether the table exists", e))?;
    if exists {
        let table = catalog
            .load_table(&spec.ident)
            .await
            .map_err(|e| SinkError::iceberg(&name, "loading the table", e))?;
        check_compatible(spec, &table)?;
        return Ok(table);
    }
    let ns_exists = catalog
        .namespace_exists(ns)
        .await
        .map_err(|e| SinkError::iceberg(&name, "checking the namespace", e))?;
    if !ns_exists {
        // Another writer may create it meanwhile: only a namespace still missing is an error.
        if let Err(e) = catalog.create_namespace(ns, HashMap::new()).await
            && !catalog.namespace_exists(ns).await.unwrap_or(false)
        {
            return Err(SinkError::iceberg(&name, "creating the namespace", e));
        }
    }
    let schema = spec.iceberg_schema()?;
    let partition_spec = spec.partition_spec(&schema)?;
    let creation = TableCreation::builder()
        .name(spec.ident.name().to_string())
        .schema(schema)
        .partition_spec(partition_spec)
        .properties(spec.properties.clone())
        .build();
    match catalog.create_table(ns, creation).await {
        Ok(t) => Ok(t),
        Err(e) => {
            // Lost a creation race: use the winner's table if it matches.
            match catalog.load_table(&spec.ident).await {
                Ok(t) => {
                    check_compatible(spec, &t)?;
                    Ok(t)
                }
                Err(_) => Err(SinkError::iceberg(&name, "creating the table", e)),
            }
        }
    }
}

/// Errors unless `table` has exactly the declared columns (types and nullability that
/// accept the job's rows) and partition spec. Declared columns are found through the
/// job's column binding, so a column another writer renamed still matches; a type the
/// table promoted (int to long, say) accepts the declared one.
pub fn check_compatible(spec: &TableSpec, table: &Table) -> Result<()> {
    let name = spec.ident.to_string();
    let incompatible = |message: String| SinkError::Incompatible {
        table: name.clone(),
        message,
    };
    let declared = spec.iceberg_schema()?;
    let existing = table.metadata().current_schema();
    let binding = spec.binding(table)?;
    for f in declared.as_struct().fields() {
        let Some(e) = binding.field(existing, &f.name)? else {
            if spec.add_columns {
                continue;
            }
            return Err(incompatible(format!(
                "the job declares column {} but the existing table has no such column",
                f.name
            )));
        };
        if takes(e, f) || spec.add_columns && promotable(e, f) {
            continue;
        }
        if let Some(difference) = field_difference(&f.name, e, f) {
            return Err(incompatible(difference));
        }
    }
    for e in existing.as_struct().fields() {
        if binding.declared_name(e.id).is_some() || (spec.add_columns && !e.required) {
            continue;
        }
        return Err(incompatible(format!(
            "the existing table has {}column {} which the job does not declare",
            if e.required { "NOT NULL " } else { "" },
            e.name
        )));
    }
    check_partitioning(spec, table, &binding)
}

/// The table's partitioning must be the declared one (columns by their declared names).
fn check_partitioning(spec: &TableSpec, table: &Table, binding: &ColumnBinding) -> Result<()> {
    let existing = table.metadata().current_schema();
    let spec_fields: Vec<(String, Transform)> = table
        .metadata()
        .default_partition_spec()
        .fields()
        .iter()
        .map(|pf| {
            let col = binding
                .declared_name(pf.source_id)
                .map(str::to_string)
                .or_else(|| existing.field_by_id(pf.source_id).map(|f| f.name.clone()))
                .unwrap_or_default();
            (col, pf.transform)
        })
        .collect();
    if spec_fields != spec.partition_by {
        let show = |v: &[(String, Transform)]| {
            v.iter()
                .map(|(c, t)| format!("{t}({c})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(SinkError::Incompatible {
            table: spec.ident.to_string(),
            message: format!(
                "the existing table is partitioned by ({}) but the job declares ({})",
                show(&spec_fields),
                show(&spec.partition_by)
            ),
        });
    }
    Ok(())
}

/// Whether the existing column `e` takes the declared `d`'s values as they are or cast
/// up: the same type, or one the table promoted it to (by another writer, say).
fn takes(e: &NestedField, d: &NestedField) -> bool {
    let (Type::Primitive(a), Type::Primitive(b)) = (&*e.field_type, &*d.field_type) else {
        return false;
    };
    promotes(b, a) && (d.required || !e.required)
}

/// Whether the existing table's column `e` and the declared `d` differ only in a type
/// that one of them promotes to the other (either way: a declared type wider than the
/// table's is promoted by [`crate::evolve_table`], a narrower one is cast up on write).
fn promotable(e: &NestedField, d: &NestedField) -> bool {
    let (Type::Primitive(a), Type::Primitive(b)) = (&*e.field_type, &*d.field_type) else {
        return false;
    };
    (a == b || promotes(a, b) || promotes(b, a)) && (d.required || !e.required)
}

/// True when Iceberg lets a column of type `from` be promoted to `to`.
pub(crate) fn promotes(from: &PrimitiveType, to: &PrimitiveType) -> bool {
    use PrimitiveType as P;
    match (from, to) {
        (P::Int, P::Long) | (P::Float, P::Double) => true,
        (
            P::Decimal {
                precision: p1,
                scale: s1,
            },
            P::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s1 == s2 && p2 > p1,
        _ => false,
    }
}

/// How the existing table's field `e` differs from the declared `d` at `path`, if it
/// differs in a way that matters: types (nested ones part by part, ignoring field ids,
/// which each table assigns itself) and a required field that the job would leave null.
fn field_difference(path: &str, e: &NestedField, d: &NestedField) -> Option<String> {
    if e.required && !d.required {
        return Some(format!(
            "column {path} is NOT NULL in the existing table; declare it NOT NULL in the job too"
        ));
    }
    let differs = || {
        Some(format!(
            "column {path} is {} in the existing table but {} in the job",
            e.field_type, d.field_type
        ))
    };
    match (&*e.field_type, &*d.field_type) {
        (Type::Primitive(a), Type::Primitive(b)) => (a != b).then(differs).flatten(),
        (Type::List(a), Type::List(b)) => {
            field_difference(&format!("{path}[]"), &a.element_field, &b.element_field)
        }
        (Type::Map(a), Type::Map(b)) => {
            field_difference(&format!("{path}.key"), &a.key_field, &b.key_field).or_else(|| {
                field_difference(&format!("{path}.value"), &a.value_field, &b.value_field)
            })
        }
        (Type::Struct(a), Type::Struct(b)) => {
            if a.fields().len() != b.fields().len() {
                return differs();
            }
            b.fields()
                .iter()
                .find_map(|bf| match a.field_by_name(&bf.name) {
                    Some(af) => field_difference(&format!("{path}.{}", bf.name), af, bf),
                    None => differs(),
                })
        }
        _ => differs(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{DataType, Field, Schema as ArrowSchema};

    use super::*;

    fn spec(columns: Vec<Field>) -> TableSpec {
        TableSpec {
            ident: TableIdent::from_strs(["ns", "t"]).expect("ident"),
            schema: Arc::new(ArrowSchema::new(columns)),
            partition_by: vec![],
            properties: HashMap::new(),
            add_columns: false,
            writer: None,
        }
    }

    fn lines(qty: DataType, sku_nullable: bool) -> Field {
        let line = DataType::Struct(
            vec![
                Field::new("sku", DataType::Utf8, sku_nullable),
                Field::new("qty", qty, true),
            ]
            .into(),
        );
        let element = Field::new("element", line, true);
        Field::new("lines", DataType::List(Arc::new(element)), true)
    }

    #[test]
    fn nested_columns_get_ids_after_the_top_level_ones() {
        let schema = spec(vec![
            Field::new("id", DataType::Int64, false),
            lines(DataType::Int32, false),
            Field::new_map(
                "attrs",
                "key_value",
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
                false,
                true,
            ),
        ])
        .iceberg_schema()
        .expect("schema");
        let ids: Vec<i32> = schema.as_struct().fields().iter().map(|f| f.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        let sku = schema.field_by_name("lines.element.sku").expect("sku");
        assert!(sku.required);
        assert!(sku.id > 3);
    }

    #[test]
    fn nested_differences_name_the_field() {
        let table = spec(vec![lines(DataType::Int32, false)])
            .iceberg_schema()
            .expect("table");
        let same = spec(vec![lines(DataType::Int32, false)])
            .iceberg_schema()
            .expect("same");
        let wider = spec(vec![lines(DataType::Int64, false)])
            .iceberg_schema()
            .expect("wider");
        let nullable = spec(vec![lines(DataType::Int32, true)])
            .iceberg_schema()
            .expect("nullable");
        let field = |s: &Schema| s.as_struct().fields()[0].clone();
        assert_eq!(
            field_difference("lines", &field(&table), &field(&same)),
            None
        );
        let msg = field_difference("lines", &field(&table), &field(&wider)).expect("differs");
        assert!(msg.contains("lines[].qty is int"), "{msg}");
        let msg = field_difference("lines", &field(&table), &field(&nullable)).expect("differs");
        assert!(msg.contains("lines[].sku is NOT NULL"), "{msg}");
    }
}
