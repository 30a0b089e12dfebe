//! The columns of a source that declares none, read from its JSON Schema: one per
//! property of the top-level object, in name order (a JSON object's members have no
//! order); NOT NULL for a required property that cannot be null. `integer` is BIGINT,
//! `number` DOUBLE, `string` VARCHAR (TIMESTAMP WITH TIME ZONE with `"format":
//! "date-time"`, DATE with `"date"`), `boolean` BOOLEAN; an object with `properties` is a
//! ROW of them, an object with only `additionalProperties` a `MAP<VARCHAR, …>`, an array
//! with `items` an ARRAY. A property of several types, or an object or array that does
//! not say what it holds, is refused, naming the property, so the job declares the
//! columns it reads instead.

use arrow_schema::{DataType, Field, TimeUnit};
use serde_json::{Map, Value};

use super::{resolve, types_of};

/// How deep properties may nest (a recursive `$ref` has no column type).
const MAX_DEPTH: usize = 16;

/// One column per property of JSON Schema `root`.
pub fn property_fields(root: &Value) -> Result<Vec<Field>, String> {
    let top = resolve(root, root, 0);
    let Some(properties) = top.get("properties").and_then(Value::as_object) else {
        return Err("the JSON Schema describes no object properties".into());
    };
    object_fields(top, properties, root, "", 0)
}

fn object_fields(
    object: &Value,
    properties: &Map<String, Value>,
    root: &Value,
    path: &str,
    depth: usize,
) -> Result<Vec<Field>, String> {
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = vec![];
    for (name, property) in properties {
        let path = format!("{path}{name}");
        let (data_type, may_be_null) = property_type(property, root, &path, depth)?;
        let nullable = may_be_null || !required.contains(&name.as_str());
        out.push(Field::new(name, data_type, nullable));
    }
    Ok(out)
}

/// The column type of the property at `path` and whether its schema allows null.
fn property_type(
    property: &Value,
    root: &Value,
    path: &str,
    depth: usize,
) -> Result<(DataType, bool), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "property '{path}' nests more than {MAX_DEPTH} deep (a recursive schema has no column type)"
        ));
    }
    let property = resolve(property, root, 0);
    let types = types_of(property, root, 0).unwrap_or_default();
    let may_be_null = types.contains(&"null");
    let kinds: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    let [kind] = kinds.as_slice() else {
        return Err(format!(
            "property '{path}' may hold {}: only a property of one type (or that type \
             or null) has a column type; declare the source's columns to leave it out",
            if kinds.is_empty() {
                "any value".to_string()
            } else {
                kinds.join(" or ")
            }
        ));
    };
    let refuse = |what: &str| {
        Err(format!(
            "property '{path}' is {what}, which has no column type here; declare the \
             source's columns to leave it out"
        ))
    };
    let format = property.get("format").and_then(Value::as_str);
    let data_type = match (*kind, format) {
        ("integer", _) => DataType::Int64,
        ("number", _) => DataType::Float64,
        ("boolean", _) => DataType::Boolean,
        ("string", Some("date-time")) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(floe_sql::UTC.into()))
        }
        ("string", Some("date")) => DataType::Date32,
        ("string", _) => DataType::Utf8,
        ("object", _) => {
            let nested = format!("{path}.");
            match (
                property.get("properties").and_then(Value::as_object),
                property
                    .get("additionalProperties")
                    .filter(|a| a.is_object()),
            ) {
                (Some(properties), _) => DataType::Struct(
                    object_fields(property, properties, root, &nested, depth + 1)?.into(),
                ),
                (None, Some(values)) => {
                    let (value, nullable) = property_type(values, root, &nested, depth + 1)?;
                    floe_sql::map_of(DataType::Utf8, value, nullable)
                }
                (None, None) => return refuse("an object without properties"),
            }
        }
        ("array", _) => match property.get("items").filter(|i| i.is_object()) {
            Some(items) => {
                let (element, nullable) =
                    property_type(items, root, &format!("{path}[]"), depth + 1)?;
                floe_sql::list_of(element, nullable)
            }
            None => return refuse("an array without items"),
        },
        (other, _) => return refuse(other),
    };
    Ok((data_type, may_be_null))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn properties_become_columns_and_required_ones_are_not_null() {
        let schema = json!({"type": "object", "required": ["id"], "properties": {
            "id": {"type": "integer"},
            "amount": {"type": "number"},
            "note": {"type": ["null", "string"]},
            "placed": {"type": "string", "format": "date-time"},
            "paid": {"$ref": "#/definitions/flag"}
        }, "definitions": {"flag": {"type": "boolean"}}});
        let fields = property_fields(&schema).expect("fields");
        let got: Vec<(&str, &DataType, bool)> = fields
            .iter()
            .map(|f| (f.name().as_str(), f.data_type(), f.is_nullable()))
            .collect();
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some(floe_sql::UTC.into()));
        assert_eq!(
            got,
            [
                ("amount", &DataType::Float64, true),
                ("id", &DataType::Int64, false),
                ("note", &DataType::Utf8, true),
                ("paid", &DataType::Boolean, true),
                ("placed", &ts, true)
            ]
        );
    }

    #[test]
    fn an_object_without_properties_is_refused_naming_it() {
        let schema = json!({"properties": {"customer": {"type": "object"}}});
        let e = property_fields(&schema).expect_err("refused");
        assert!(
            e.contains("property 'customer' is an object without properties"),
            "{e}"
        );
    }

    #[test]
    fn objects_arrays_and_maps_become_nested_columns() {
        let schema = json!({"properties": {
            "customer": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "tier": {"type": ["integer", "null"]}}},
            "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
            "attrs": {"type": "object", "additionalProperties": {"type": "string"}}
        }, "$defs": {"line": {"type": "object", "properties": {"sku": {"type": "string"}}}}});
        let fields = property_fields(&schema).expect("fields");
        let by_name = |n: &str| {
            fields
                .iter()
                .find(|f| f.name() == n)
                .expect(n)
                .data_type()
                .clone()
        };
        let customer = DataType::Struct(
            vec![
                Field::new("name", DataType::Utf8, false),
                Field::new("tier", DataType::Int64, true),
            ]
            .into(),
        );
        assert_eq!(by_name("customer"), customer);
        let line = DataType::Struct(vec![Field::new("sku", DataType::Utf8, true)].into());
        assert_eq!(by_name("lines"), floe_sql::list_of(line, false));
        assert_eq!(
            by_name("attrs"),
            floe_sql::map_of(DataType::Utf8, DataType::Utf8, false)
        );
        let e = property_fields(&json!({"properties": {"tags": {"type": "array"}}}))
            .expect_err("refused");
        assert!(
            e.contains("property 'tags' is an array without items"),
            "{e}"
        );
    }
}
