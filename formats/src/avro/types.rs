//! The Avro type of a declared column that the writer schema lacks.

use arrow_schema::DataType;
use serde_json::{Value, json};

/// The Avro type of a declared column (for a field the writer schema does not have,
/// read as its null default). `name` names the records a struct needs.
pub fn avro_type(ty: &DataType, name: &str) -> Result<Value, String> {
    Ok(match ty {
        DataType::Boolean => json!("boolean"),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => json!("int"),
        DataType::Int64 => json!("long"),
        DataType::Float32 => json!("float"),
        DataType::Float64 => json!("double"),
        DataType::Utf8 | DataType::LargeUtf8 => json!("string"),
        DataType::Binary | DataType::LargeBinary => json!("bytes"),
        DataType::Date32 => json!({"type": "int", "logicalType": "date"}),
        DataType::Time64(_) => json!({"type": "long", "logicalType": "time-micros"}),
        DataType::Timestamp(_, Some(_)) => {
            json!({"type": "long", "logicalType": "timestamp-micros"})
        }
        DataType::Timestamp(_, None) => {
            json!({"type": "long", "logicalType": "local-timestamp-micros"})
        }
        DataType::Decimal128(p, s) => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s})
        }
        DataType::List(item) => json!({
            "type": "array",
            "items": optional(avro_type(item.data_type(), &format!("{name}_item"))?, item.is_nullable()),
        }),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => json!({
                "type": "map",
                "values": optional(avro_type(kv[1].data_type(), &format!("{name}_value"))?, kv[1].is_nullable()),
            }),
            other => return Err(format!("a map of {other} has no Avro type")),
        },
        DataType::Struct(fields) => {
            let mut out = vec![];
            for f in fields {
                let t = avro_type(f.data_type(), &format!("{name}_{}", f.name()))?;
                out.push(json!({"name": f.name(), "type": optional(t, true), "default": null}));
            }
            json!({"type": "record", "name": name, "fields": out})
        }
        other => return Err(format!("type {other} has no Avro equivalent")),
    })
}

fn optional(t: Value, nullable: bool) -> Value {
    if nullable { json!(["null", t]) } else { t }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::Field;

    use arrow_schema::TimeUnit;

    use super::*;

    #[test]
    fn declared_types_have_avro_types() {
        assert_eq!(avro_type(&DataType::Int64, "x"), Ok(json!("long")));
        let ts = avro_type(
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            "x",
        );
        assert_eq!(
            ts,
            Ok(json!({"type": "long", "logicalType": "timestamp-micros"}))
        );
        let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        assert_eq!(
            avro_type(&list, "tags"),
            Ok(json!({"type": "array", "items": ["null", "string"]}))
        );
    }
}
