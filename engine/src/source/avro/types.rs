//! Declared column types against Avro: the Avro type of a column the writer lacks, and
//! which decoded Arrow types may be brought to a declared type.

use arrow_schema::{DataType, TimeUnit};
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

/// Whether values decoded as `from` may be brought to the declared `to` without losing
/// meaning (Avro's promotions, timestamp units, enums as strings, wider decimals).
pub fn fits(from: &DataType, to: &DataType) -> bool {
    use DataType as D;
    if from == to {
        return true;
    }
    match (from, to) {
        (D::Int32, D::Int64 | D::Float32 | D::Float64) => true,
        (D::Int64, D::Float32 | D::Float64) => true,
        (D::Float32, D::Float64) => true,
        (D::Utf8 | D::LargeUtf8 | D::Utf8View, D::Utf8 | D::LargeUtf8) => true,
        (D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_), D::Binary) => true,
        (D::Dictionary(_, v), D::Utf8) => matches!(**v, D::Utf8 | D::LargeUtf8 | D::Utf8View),
        // Avro's timestamps are UTC instants; a column without a zone holds them as UTC.
        (D::Timestamp(..), D::Timestamp(..)) => true,
        // A plain long in a timestamp column: epoch milliseconds, as for JSON numbers.
        (D::Int64, D::Timestamp(TimeUnit::Microsecond, _)) => true,
        (D::Date32, D::Date32) => true,
        (D::Time32(_) | D::Time64(_), D::Time64(_)) => true,
        (D::Decimal128(p1, s1), D::Decimal128(p2, s2)) => s1 == s2 && p1 <= p2,
        (D::List(a), D::List(b)) => fits(a.data_type(), b.data_type()),
        (D::Map(a, _), D::Map(b, _)) => fits(a.data_type(), b.data_type()),
        (D::Struct(a), D::Struct(b)) => b.iter().all(|fb| {
            a.iter()
                .find(|fa| fa.name() == fb.name())
                .is_none_or(|fa| fits(fa.data_type(), fb.data_type()))
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::Field;

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

    #[test]
    fn promotions_fit_and_narrowing_does_not() {
        assert!(fits(&DataType::Int32, &DataType::Int64));
        assert!(!fits(&DataType::Int64, &DataType::Int32));
        assert!(!fits(&DataType::Utf8, &DataType::Int64));
        assert!(fits(
            &DataType::Decimal128(10, 2),
            &DataType::Decimal128(12, 2)
        ));
        assert!(!fits(
            &DataType::Decimal128(10, 2),
            &DataType::Decimal128(10, 3)
        ));
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert!(fits(&dict, &DataType::Utf8));
    }
}
