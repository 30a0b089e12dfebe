//! The columns of a source that declares none, read from its JSON Schema: one per
//! property of the top-level object, in name order (a JSON object's members have no
//! order); NOT NULL for a required
//! property that cannot be null. `integer` is BIGINT, `number` DOUBLE, `string` VARCHAR
//! (TIMESTAMP WITH TIME ZONE with `"format": "date-time"`, DATE with `"date"`), `boolean`
//! BOOLEAN. A property of several types, an object or an array is refused, naming the
//! property, so the job declares the columns it reads instead.

use arrow_schema::{DataType, Field, TimeUnit};
use serde_json::Value;

use super::{resolve, types_of};

/// One column per property of JSON Schema `root`.
pub fn property_fields(root: &Value) -> Result<Vec<Field>, String> {
    let top = resolve(root, root, 0);
    let Some(properties) = top.get("properties").and_then(Value::as_object) else {
        return Err("the JSON Schema describes no object properties".into());
    };
    let required: Vec<&str> = top
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = vec![];
    for (name, property) in properties {
        let property = resolve(property, root, 0);
        let types = types_of(property, root, 0).unwrap_or_default();
        let may_be_null = types.contains(&"null");
        let kinds: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        let [kind] = kinds.as_slice() else {
            return Err(format!(
                "property '{name}' may hold {}: only a property of one type (or that type \
                 or null) has a column type; declare the source's columns to leave it out",
                if kinds.is_empty() {
                    "any value".to_string()
                } else {
                    kinds.join(" or ")
                }
            ));
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
            (other, _) => {
                return Err(format!(
                    "property '{name}' is {other}, which has no column type here; declare the \
                     source's columns to leave it out"
                ));
            }
        };
        let nullable = may_be_null || !required.contains(&name.as_str());
        out.push(Field::new(name, data_type, nullable));
    }
    Ok(out)
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
    fn an_object_property_is_refused_naming_it() {
        let schema = json!({"properties": {"customer": {"type": "object"}}});
        let e = property_fields(&schema).expect_err("refused");
        assert!(e.contains("property 'customer' is object"), "{e}");
    }
}
