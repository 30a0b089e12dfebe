//! The columns of a source that declares none, read from its Avro writer schema: one
//! per field of the top-level record, nested records as structs, arrays as lists, maps
//! as maps (in Iceberg's Arrow shapes, see [`floe_sql::list_of`]), enums as strings, a union with null as a nullable column. Other unions have
//! no column type and are refused, naming the field.

use arrow_schema::{DataType, Field, Fields, TimeUnit};
use serde_json::{Map, Value};

use super::reader_schema::{Named, own_namespace};

/// How deep named types may nest (a recursive record has no column type).
const MAX_DEPTH: usize = 32;

/// One column per field of the top-level record of `writer`, in the writer's order.
pub fn writer_fields(writer: &Value) -> Result<Vec<Field>, String> {
    let Some(top) = writer
        .as_object()
        .filter(|o| o.get("type").and_then(Value::as_str) == Some("record"))
    else {
        return Err("the writer schema is not an Avro record".into());
    };
    let namespace = own_namespace(top, "");
    let mut named = Named::default();
    named.collect(writer, &namespace);
    record_fields(top, &namespace, &named, 0)
}

fn record_fields(
    record: &Map<String, Value>,
    namespace: &str,
    named: &Named,
    depth: usize,
) -> Result<Vec<Field>, String> {
    let fields = record.get("fields").and_then(Value::as_array);
    let mut out = vec![];
    for f in fields.into_iter().flatten() {
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        let t = f.get("type").unwrap_or(&Value::Null);
        let (data_type, nullable) =
            column_type(t, namespace, named, depth).map_err(|e| format!("field '{name}': {e}"))?;
        out.push(Field::new(name, data_type, nullable));
    }
    Ok(out)
}

/// The column type of Avro type `t` and whether it may be null.
fn column_type(
    t: &Value,
    namespace: &str,
    named: &Named,
    depth: usize,
) -> Result<(DataType, bool), String> {
    if depth > MAX_DEPTH {
        return Err("its types nest too deep (a recursive record has no column type)".into());
    }
    match t {
        Value::String(name) => match primitive(name) {
            Some(dt) => Ok((dt, false)),
            None => {
                let (def, ns) = named
                    .definition(name, namespace)
                    .ok_or_else(|| format!("type '{name}' is not defined"))?;
                column_type(def, ns, named, depth + 1)
            }
        },
        Value::Array(branches) => {
            let non_null: Vec<&Value> = branches.iter().filter(|b| *b != "null").collect();
            match non_null.as_slice() {
                [only] => Ok((column_type(only, namespace, named, depth)?.0, true)),
                _ => Err(format!(
                    "it is the union {t}: only a union of one type with null has a column type; \
                     declare the source's columns to leave it out"
                )),
            }
        }
        Value::Object(o) => complex(o, namespace, named, depth).map(|dt| (dt, false)),
        other => Err(format!("'{other}' is not an Avro type")),
    }
}

fn primitive(name: &str) -> Option<DataType> {
    Some(match name {
        "boolean" => DataType::Boolean,
        "int" => DataType::Int32,
        "long" => DataType::Int64,
        "float" => DataType::Float32,
        "double" => DataType::Float64,
        "bytes" => DataType::Binary,
        "string" => DataType::Utf8,
        _ => return None,
    })
}

/// A type written as an object: a logical type, a record, an enum, an array, a map.
fn complex(
    o: &Map<String, Value>,
    namespace: &str,
    named: &Named,
    depth: usize,
) -> Result<DataType, String> {
    if let Some(dt) = logical(o)? {
        return Ok(dt);
    }
    let kind = o.get("type").unwrap_or(&Value::Null);
    // The element type of an array (`items`) or a map (`values`), and whether it may be null.
    let part = |key: &str| {
        let inner = o.get(key).unwrap_or(&Value::Null);
        column_type(inner, namespace, named, depth + 1)
    };
    Ok(match kind.as_str() {
        Some("record" | "error") => {
            let ns = own_namespace(o, namespace);
            DataType::Struct(Fields::from(record_fields(o, &ns, named, depth + 1)?))
        }
        Some("enum") => DataType::Utf8,
        Some("fixed") => DataType::Binary,
        Some("array") => {
            let (element, nullable) = part("items")?;
            floe_sql::list_of(element, nullable)
        }
        Some("map") => {
            let (value, nullable) = part("values")?;
            floe_sql::map_of(DataType::Utf8, value, nullable)
        }
        // `{"type": "long"}` and the like: the primitive, or a named type.
        _ => return column_type(kind, namespace, named, depth + 1).map(|(dt, _)| dt),
    })
}

/// The column type of a logical type the column types have; None for other types
/// (an unknown logical type reads as its underlying type, as the Avro spec says).
fn logical(o: &Map<String, Value>) -> Result<Option<DataType>, String> {
    let utc = || Some(floe_sql::UTC.into());
    Ok(Some(match o.get("logicalType").and_then(Value::as_str) {
        Some("date") => DataType::Date32,
        Some("time-millis" | "time-micros") => DataType::Time64(TimeUnit::Microsecond),
        Some("timestamp-millis" | "timestamp-micros" | "timestamp-nanos") => {
            DataType::Timestamp(TimeUnit::Microsecond, utc())
        }
        Some("local-timestamp-millis" | "local-timestamp-micros" | "local-timestamp-nanos") => {
            DataType::Timestamp(TimeUnit::Microsecond, None)
        }
        Some("decimal") => {
            let number = |k: &str| o.get(k).and_then(Value::as_u64).unwrap_or(0);
            let (p, s) = (number("precision"), number("scale"));
            if p == 0 || p > 38 || s > p {
                return Err(format!(
                    "decimal({p}, {s}) has no column type (precision 1 to 38, scale at most the precision)"
                ));
            }
            DataType::Decimal128(p as u8, s as i8)
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_become_columns_with_nested_types() {
        let writer = json!({"type": "record", "name": "Order", "namespace": "shop", "fields": [
            {"name": "id", "type": "long"},
            {"name": "note", "type": ["null", "string"]},
            {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["A"]}},
            {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
            {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
                {"name": "name", "type": "string"}]}},
            {"name": "previous", "type": ["null", "Customer"]},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "attrs", "type": {"type": "map", "values": ["null", "long"]}}
        ]});
        let fields = writer_fields(&writer).expect("fields");
        let got: Vec<(&str, String, bool)> = fields
            .iter()
            .map(|f| {
                (
                    f.name().as_str(),
                    f.data_type().to_string(),
                    f.is_nullable(),
                )
            })
            .collect();
        let customer = DataType::Struct(Fields::from(vec![Field::new(
            "name",
            DataType::Utf8,
            false,
        )]));
        assert_eq!(got[0], ("id", "Int64".to_string(), false));
        assert_eq!(got[1], ("note", "Utf8".to_string(), true));
        assert_eq!(got[2], ("status", "Utf8".to_string(), false));
        assert_eq!(
            fields[3].data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some(floe_sql::UTC.into()))
        );
        assert_eq!(fields[4].data_type(), &DataType::Decimal128(9, 2));
        assert_eq!(fields[5].data_type(), &customer);
        assert_eq!(
            (fields[6].data_type(), fields[6].is_nullable()),
            (&customer, true)
        );
        assert!(
            matches!(fields[7].data_type(), DataType::List(i) if i.data_type() == &DataType::Utf8)
        );
        assert!(matches!(fields[8].data_type(), DataType::Map(..)));
    }

    #[test]
    fn a_union_of_two_types_is_refused_naming_the_field() {
        let writer = json!({"type": "record", "name": "R", "fields": [
            {"name": "v", "type": ["null", "string", "long"]}]});
        let e = writer_fields(&writer).expect_err("refused");
        assert!(e.starts_with("field 'v': it is the union"), "{e}");
    }
}
