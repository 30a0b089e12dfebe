//! JSON values in the Confluent wire format (`'format' = 'json-confluent'`): the
//! header (magic byte 0, the schema id) before JSON text, the JSON Schema in a Schema
//! Registry.
//!
//! The JSON text is decoded by the same arrow-json path as plain JSON (see
//! `super::decode`); this module answers what is particular to the framing: whether a
//! value is framed, whether its schema id is a JSON Schema the registry has, and whether
//! that schema's properties fit the declared columns (checked once per id, and against
//! the subject's latest schema before a record is read). A declared column the schema
//! does not have reads as null, as in Avro; a property nobody declared is skipped.

mod columns;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_schema::{DataType, Field, SchemaRef};
use serde_json::Value;

use super::framing::schema_id;
use super::registry::{Lookup, RegisteredSchema, Registry, RegistryError, START_CHECK_WAIT};
use super::value_failure::ValueFailure;
use crate::schema_format::SchemaFormat;

/// How deep `$ref`s and `oneOf`s are followed before a property counts as "any value".
const MAX_DEPTH: usize = 8;

/// The JSON Schemas of a `json-confluent` source, checked per id.
#[derive(Debug)]
pub struct JsonSchemas {
    registry: Arc<Registry>,
    /// The declared payload columns.
    payload: SchemaRef,
    /// Per schema id: whether it fits, or why not.
    checked: Mutex<HashMap<u32, Option<ValueFailure>>>,
}

impl JsonSchemas {
    /// Checking of `payload` columns against the schemas in `registry`.
    pub fn new(registry: Arc<Registry>, payload: SchemaRef) -> Self {
        Self {
            registry,
            payload,
            checked: Mutex::new(HashMap::new()),
        }
    }

    /// The latest schema of `subject`, waiting a while for an unavailable registry.
    fn latest(&self, subject: &str) -> Result<Option<RegisteredSchema>, String> {
        self.registry
            .latest(subject, START_CHECK_WAIT)
            .map_err(|e| e.to_string())
    }

    /// The columns a source that declares none takes from writer schema `schema`.
    pub fn fields_of(schema: &RegisteredSchema) -> Result<Vec<Field>, String> {
        let what = format!("schema id {}, version {}", schema.id, schema.version);
        if schema.kind != "JSON" {
            return Err(format!(
                "{what} is a {} schema, not a JSON Schema",
                schema.kind
            ));
        }
        let root: Value = serde_json::from_str(&schema.text)
            .map_err(|e| format!("{what} is not valid JSON: {e}"))?;
        columns::property_fields(&root).map_err(|e| format!("{e} ({what})"))
    }
}

/// Whether the properties of JSON Schema `schema` fit the declared `payload` columns.
fn fit(schema: &RegisteredSchema, payload: &SchemaRef) -> Result<(), ValueFailure> {
    let id = schema.id;
    if schema.kind != "JSON" {
        return Err(ValueFailure::malformed(format!(
            "schema id {id} is a {} schema, not a JSON Schema",
            schema.kind
        )));
    }
    let root: Value = serde_json::from_str(&schema.text)
        .map_err(|e| ValueFailure::malformed(format!("schema id {id} is not valid JSON: {e}")))?;
    let top = resolve(&root, &root, 0);
    let properties = top.get("properties").and_then(Value::as_object);
    if properties.is_none() && types_of(top, &root, 0).is_some_and(|t| !t.contains(&"object")) {
        return Err(ValueFailure::type_error(format!(
            "schema id {id} (version {}) does not describe a JSON object",
            schema.version
        )));
    }
    for column in payload.fields() {
        let Some(property) = properties.and_then(|p| p.get(column.name())) else {
            continue;
        };
        let Some(types) = types_of(property, &root, 0) else {
            continue;
        };
        if let Some(bad) = types.iter().find(|t| !fits(t, column.data_type())) {
            return Err(ValueFailure::type_error(format!(
                "field '{}' is {bad} in the JSON Schema (id {id}, version {}), but the source declares {} {}",
                column.name(),
                schema.version,
                column.name(),
                column.data_type()
            )));
        }
    }
    Ok(())
}

/// `schema` with a local `$ref` (`#/definitions/…`, `#/$defs/…`) followed.
pub(super) fn resolve<'a>(schema: &'a Value, root: &'a Value, depth: usize) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) if depth < MAX_DEPTH => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
            Some(target) => resolve(target, root, depth + 1),
            None => schema,
        },
        _ => schema,
    }
}

/// The JSON types a property may hold (its `type`, or those of its `oneOf`/`anyOf`
/// branches); None when the schema does not say (any value).
pub(super) fn types_of<'a>(
    schema: &'a Value,
    root: &'a Value,
    depth: usize,
) -> Option<Vec<&'a str>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let schema = resolve(schema, root, depth);
    match schema.get("type") {
        Some(Value::String(t)) => return Some(vec![t.as_str()]),
        Some(Value::Array(ts)) => return Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => {}
    }
    let branches = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)?;
    let mut out = vec![];
    for b in branches {
        out.extend(types_of(b, root, depth + 1)?);
    }
    Some(out)
}

/// Whether JSON values of type `json` decode into a declared `to` column (as arrow-json
/// reads them, with numbers in timestamp columns as epoch time).
fn fits(json: &str, to: &DataType) -> bool {
    use DataType as D;
    let integer = matches!(
        to,
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64
    );
    let float = matches!(to, D::Float32 | D::Float64 | D::Decimal128(..));
    match json {
        "null" => true,
        "boolean" => matches!(to, D::Boolean),
        "integer" => integer || float || matches!(to, D::Timestamp(..)),
        "number" => float,
        "object" => matches!(to, D::Struct(_) | D::Map(..)),
        "array" => matches!(to, D::List(_)),
        "string" => matches!(
            to,
            D::Utf8
                | D::LargeUtf8
                | D::Timestamp(..)
                | D::Date32
                | D::Time64(_)
                | D::Decimal128(..)
        ),
        _ => false,
    }
}

impl SchemaFormat for JsonSchemas {
    /// Why `value` cannot be decoded, found without decoding it: its framing, a schema
    /// id the registry does not have or that is no JSON Schema, a schema whose
    /// properties do not fit the declared columns. An error is a registry that refuses
    /// to answer (the job stops).
    fn precheck(&self, value: &[u8]) -> Result<Option<ValueFailure>, RegistryError> {
        let id = match schema_id(value) {
            Ok(id) => id,
            Err(message) => return Ok(Some(ValueFailure::malformed(message))),
        };
        if let Some(found) = self.checked.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(found);
        }
        let failure = match self.registry.schema(id)? {
            // Not remembered: the registry may know the id when it is asked next.
            Lookup::Unknown => {
                return Ok(Some(ValueFailure::malformed(format!(
                    "schema id {id} is not in the schema registry"
                ))));
            }
            Lookup::Found(schema) => fit(&schema, &self.payload).err(),
        };
        if let Ok(mut m) = self.checked.lock() {
            m.insert(id, failure.clone());
        }
        Ok(failure)
    }

    /// Checks the declared columns against the latest schema of `subject`: Ok(None)
    /// when the subject has no schema yet, Ok(Some(version)) when it fits, Err naming
    /// the field, both types and the version when it does not.
    fn check_latest(&self, subject: &str) -> Result<Option<u32>, String> {
        match self.latest(subject)? {
            None => Ok(None),
            Some(schema) => fit(&schema, &self.payload)
                .map(|()| Some(schema.version))
                .map_err(|f| f.message),
        }
    }

    /// The columns of the latest schema of `subject` and its version, for a source
    /// that declares none; None when the subject has no schema yet.
    fn latest_fields(&self, subject: &str) -> Result<Option<(Vec<Field>, u32)>, String> {
        let Some(schema) = self.latest(subject)? else {
            return Ok(None);
        };
        Ok(Some((Self::fields_of(&schema)?, schema.version)))
    }

    fn fields_of(&self, schema: &RegisteredSchema) -> Result<Vec<Field>, String> {
        Self::fields_of(schema)
    }

    fn json_body(&self) -> bool {
        true
    }

    fn decode_binary(
        &self,
        _: &mut dyn Iterator<Item = &[u8]>,
    ) -> Option<Result<arrow_array::RecordBatch, ValueFailure>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{Field, Schema, TimeUnit};

    use super::*;

    fn schema(text: &str) -> RegisteredSchema {
        RegisteredSchema {
            id: 7,
            text: text.into(),
            kind: "JSON".into(),
            version: 2,
            references: vec![],
        }
    }

    fn payload() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("note", DataType::Utf8, true),
            Field::new(
                "placed",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
        ]))
    }

    #[test]
    fn properties_that_fit_pass_and_missing_ones_read_as_null() {
        let s = schema(
            r##"{"type": "object", "properties": {
                "id": {"type": "integer"}, "amount": {"type": "number"},
                "note": {"oneOf": [{"type": "null"}, {"$ref": "#/definitions/Text"}]},
                "other": {"type": "array"}},
              "definitions": {"Text": {"type": "string"}}}"##,
        );
        assert_eq!(fit(&s, &payload()), Ok(()));
    }

    #[test]
    fn a_property_that_does_not_fit_is_named_with_both_types_and_the_version() {
        let s =
            schema(r#"{"type": "object", "properties": {"amount": {"type": ["string", "null"]}}}"#);
        let e = fit(&s, &payload()).expect_err("string into DOUBLE");
        assert_eq!(e.kind, floe_sql::job::ViolationKind::Type);
        assert!(
            e.message.contains(
                "field 'amount' is string in the JSON Schema (id 7, version 2), but the source declares amount Float64"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn schemas_that_are_not_json_objects_are_refused() {
        let mut avro = schema("{}");
        avro.kind = "AVRO".into();
        let e = fit(&avro, &payload()).expect_err("not JSON Schema");
        assert!(e.message.contains("is a AVRO schema"), "{}", e.message);
        let array = schema(r#"{"type": "array"}"#);
        let e = fit(&array, &payload()).expect_err("array");
        assert!(
            e.message.contains("does not describe a JSON object"),
            "{}",
            e.message
        );
    }

    const ORDER: &str = r#"{"type": "object", "properties": {
        "id": {"type": "integer"}, "amount": {"type": "number"},
        "note": {"type": ["string", "null"]}}, "required": ["id"]}"#;
    const STRING_ID: &str = r#"{"type": "object", "properties": {"id": {"type": "string"}}}"#;

    #[test]
    fn framed_json_decodes_and_bad_records_are_named() {
        use arrow_array::{Array, Int64Array, StringArray};
        use floe_catalog::TopicPartition;
        use floe_sql::job::ViolationKind::{Malformed, Type};

        use crate::decode::decode;
        use crate::test_registry::{
            bad_kinds, bad_message, column, framed, plan_with, records, registry,
        };

        let r = registry(&[("JSON", ORDER), ("JSON", STRING_ID)], &[1]);
        let (plan, source) = plan_with(&format!(
            "'format' = 'json-confluent', 'json-confluent.url' = '{}'",
            r.server.url()
        ));
        plan.check_schemas(&source).expect("ORDER fits");
        let values = [
            framed(1, br#"{"id": 1, "amount": 2.5, "note": "a"}"#),
            br#"{"id": 2}"#.to_vec(),
            framed(1, br#"{"id": "three"}"#),
            framed(9, br#"{"id": 4}"#),
            framed(2, br#"{"id": "5"}"#),
            framed(1, b"{\"id\": 6,"),
            framed(1, br#"{"id": 7}"#),
        ];
        let tp = TopicPartition::new("orders", 0);
        let d = decode(&plan, &tp, &records(&values)).expect("decode");
        assert_eq!(column::<Int64Array>(&d.batch, "id").values(), &[1, 7]);
        let notes = column::<StringArray>(&d.batch, "note");
        assert_eq!(notes.value(0), "a");
        assert!(notes.is_null(1));
        let bad = bad_kinds(&d);
        assert_eq!(
            bad,
            [
                (1, Malformed),
                (2, Type),
                (3, Malformed),
                (4, Type),
                (5, Malformed)
            ]
        );
        let text = |i: usize| bad_message(&d, i);
        assert!(
            text(3).contains("schema id 9 is not in the schema registry"),
            "{}",
            text(3)
        );
        assert!(text(4).contains("field 'id' is string"), "{}", text(4));
    }

    #[test]
    fn the_latest_schema_is_checked_before_a_record_is_read() {
        use crate::test_registry::{plan_with, registry};

        let r = registry(&[("JSON", ORDER), ("JSON", STRING_ID)], &[1, 2]);
        let (plan, source) = plan_with(&format!(
            "'format' = 'json-confluent', 'json-confluent.url' = '{}'",
            r.server.url()
        ));
        let e = plan
            .check_schemas(&source)
            .expect_err("STRING_ID does not fit");
        let text = e.to_string();
        assert!(
            text.contains("subject 'orders-value'")
                && text.contains("field 'id' is string")
                && text.contains("version 2"),
            "{text}"
        );
    }
}
