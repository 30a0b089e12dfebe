//! The shape a job declares for a table, and creating or checking the table to match it.

use std::collections::HashMap;

use arrow_schema::SchemaRef;
use iceberg::arrow::arrow_type_to_type;
use iceberg::spec::{NestedField, Schema, Transform, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};

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
}

impl TableSpec {
    fn iceberg_schema(&self) -> Result<Schema> {
        let mut fields = vec![];
        for (i, f) in self.schema.fields().iter().enumerate() {
            let ty = arrow_type_to_type(f.data_type())
                .map_err(|e| SinkError::iceberg(&self.ident, format!("column {}", f.name()), e))?;
            let id = i as i32 + 1;
            let field = if f.is_nullable() {
                NestedField::optional(id, f.name(), ty)
            } else {
                NestedField::required(id, f.name(), ty)
            };
            fields.push(field.into());
        }
        Schema::builder()
            .with_fields(fields)
            .build()
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
/// accept the job's rows) and partition spec.
pub fn check_compatible(spec: &TableSpec, table: &Table) -> Result<()> {
    let name = spec.ident.to_string();
    let incompatible = |message: String| SinkError::Incompatible {
        table: name.clone(),
        message,
    };
    let declared = spec.iceberg_schema()?;
    let existing = table.metadata().current_schema();
    for f in declared.as_struct().fields() {
        let Some(e) = existing.field_by_name(&f.name) else {
            return Err(incompatible(format!(
                "the job declares column {} but the existing table has no such column",
                f.name
            )));
        };
        if e.field_type != f.field_type {
            return Err(incompatible(format!(
                "column {} is {} in the existing table but {} in the job",
                f.name, e.field_type, f.field_type
            )));
        }
        if e.required && !f.required {
            return Err(incompatible(format!(
                "column {} is NOT NULL in the existing table; declare it NOT NULL in the job too",
                f.name
            )));
        }
    }
    for e in existing.as_struct().fields() {
        if declared.field_by_name(&e.name).is_none() {
            return Err(incompatible(format!(
                "the existing table has column {} which the job does not declare",
                e.name
            )));
        }
    }
    let spec_fields: Vec<(String, Transform)> = table
        .metadata()
        .default_partition_spec()
        .fields()
        .iter()
        .map(|pf| {
            let col = existing
                .field_by_id(pf.source_id)
                .map(|f| f.name.clone())
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
        return Err(incompatible(format!(
            "the existing table is partitioned by ({}) but the job declares ({})",
            show(&spec_fields),
            show(&spec.partition_by)
        )));
    }
    Ok(())
}
