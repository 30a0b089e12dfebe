//! Which field of a table each column a job declares writes, by Iceberg field id.
//!
//! Iceberg identifies columns by field id, not by name: another engine may rename a
//! column (`ALTER TABLE … RENAME COLUMN`, PyIceberg's `update_schema`) and every reader
//! still finds its values. A writer that matched by name would, after such a rename,
//! write NULLs into the renamed field, or add a new column under the old name. So a
//! job's declared columns are bound to field ids once, and the binding is kept with the
//! table, beside the job's checkpoint:
//!
//! ```text
//!   first start:  declared column ──by name──▶ field id        (table property
//!                                                              floe.columns.<job>,
//!   every start:  declared column ──stored id──▶ current field   set with the job's
//!                 (new declared columns by name)                commits)
//!   every write:  batch column (declared name) ──▶ field id ──▶ the field's current name
//!
//!   field renamed by another writer ─▶ keep writing it (logged once)
//!   field dropped                   ─▶ stop: the job's values would be lost
//!   type changed (promotion)        ─▶ values cast up on write
//! ```

use std::collections::BTreeMap;

use iceberg::spec::{NestedFieldRef, Schema, TableMetadata};

use crate::error::{Result, SinkError};

/// Prefix of the table property that holds a job's column binding.
pub const BINDING_PROPERTY_PREFIX: &str = "floe.columns.";

/// The property key of `job`'s column binding.
pub fn binding_property(job: &str) -> String {
    format!("{BINDING_PROPERTY_PREFIX}{job}")
}

/// Declared column name → Iceberg field id, for one job and table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnBinding {
    table: String,
    ids: BTreeMap<String, i32>,
    /// `ids` as the property value, made once: every commit compares it with the table's.
    json: String,
}

impl ColumnBinding {
    /// The binding of `declared` columns on the table `metadata` describes: the ids
    /// `job` stored there, and by name for the declared columns it has not bound yet
    /// (none bound when the table lacks a column of that name).
    pub fn resolve<'a>(
        table: &str,
        metadata: &TableMetadata,
        job: Option<&str>,
        declared: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self> {
        let stored = match job.and_then(|j| metadata.properties().get(&binding_property(j))) {
            Some(json) => serde_json::from_str::<BTreeMap<String, i32>>(json).map_err(|e| {
                SinkError::Incompatible {
                    table: table.to_string(),
                    message: format!(
                        "table property {}: {e}",
                        binding_property(job.unwrap_or_default())
                    ),
                }
            })?,
            None => BTreeMap::new(),
        };
        let schema = metadata.current_schema();
        let mut ids = BTreeMap::new();
        for name in declared {
            let id = stored
                .get(name)
                .copied()
                .or_else(|| schema.field_by_name(name).map(|f| f.id));
            if let Some(id) = id {
                ids.insert(name.to_string(), id);
            }
        }
        let json = serde_json::to_string(&ids).unwrap_or_else(|_| "{}".into());
        Ok(Self {
            table: table.to_string(),
            ids,
            json,
        })
    }

    /// The property value that stores this binding.
    pub fn to_json(&self) -> &str {
        &self.json
    }

    /// Whether `metadata` already stores this binding for `job`.
    pub fn is_stored(&self, metadata: &TableMetadata, job: &str) -> bool {
        metadata
            .properties()
            .get(&binding_property(job))
            .is_some_and(|v| *v == self.json)
    }

    /// The field of `schema` that the declared column `name` writes: None when the
    /// column is not bound (the table lacks it); an error when its field was dropped.
    pub fn field<'s>(&self, schema: &'s Schema, name: &str) -> Result<Option<&'s NestedFieldRef>> {
        let Some(id) = self.ids.get(name) else {
            return Ok(None);
        };
        match schema.field_by_id(*id) {
            Some(f) => Ok(Some(f)),
            None => Err(SinkError::Incompatible {
                table: self.table.clone(),
                message: format!(
                    "column {name} (field id {id}) was dropped from the table by another writer; \
                     the job stops rather than lose its values (add the column back, or remove it \
                     from the job)"
                ),
            }),
        }
    }

    /// Errors when a bound field is no longer in `schema` (another writer dropped it).
    pub fn check_fields(&self, schema: &Schema) -> Result<()> {
        for name in self.ids.keys() {
            self.field(schema, name)?;
        }
        Ok(())
    }

    /// Whether the declared column `name` is bound to a field.
    pub fn binds(&self, name: &str) -> bool {
        self.ids.contains_key(name)
    }

    /// The declared column bound to field `id`.
    pub fn declared_name(&self, id: i32) -> Option<&str> {
        self.ids
            .iter()
            .find(|(_, i)| **i == id)
            .map(|(n, _)| n.as_str())
    }

    /// Declared columns whose field another writer renamed: (declared, current name).
    pub fn renamed(&self, schema: &Schema) -> Vec<(String, String)> {
        self.ids
            .iter()
            .filter_map(|(name, id)| {
                let f = schema.field_by_id(*id)?;
                (f.name != *name).then(|| (name.clone(), f.name.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iceberg::spec::{NestedField, PrimitiveType, Type};

    fn schema(fields: &[(i32, &str)]) -> Schema {
        Schema::builder()
            .with_fields(fields.iter().map(|(id, name)| {
                NestedField::optional(*id, *name, Type::Primitive(PrimitiveType::String)).into()
            }))
            .build()
            .expect("schema")
    }

    #[test]
    fn a_renamed_field_is_still_the_declared_columns_field_and_a_dropped_one_is_an_error() {
        let ids = BTreeMap::from([("currency".to_string(), 4), ("id".to_string(), 1)]);
        let binding = ColumnBinding {
            table: "t".into(),
            json: serde_json::to_string(&ids).expect("json"),
            ids,
        };
        let renamed = schema(&[(1, "id"), (4, "ccy")]);
        let f = binding
            .field(&renamed, "currency")
            .expect("bound")
            .expect("field");
        assert_eq!((f.id, f.name.as_str()), (4, "ccy"));
        assert_eq!(
            binding.renamed(&renamed),
            vec![("currency".into(), "ccy".into())]
        );
        assert_eq!(binding.declared_name(4), Some("currency"));

        let dropped = schema(&[(1, "id"), (5, "currency")]);
        let err = binding.field(&dropped, "currency").expect_err("dropped");
        assert!(err.to_string().contains("field id 4"), "{err}");
    }
}
