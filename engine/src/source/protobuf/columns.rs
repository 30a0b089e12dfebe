//! The columns of a source that declares none, read from its Protobuf message: one
//! per field, in field order, each nullable (a later version may drop any field).
//! Scalars, enums (as strings), `google.protobuf.Timestamp` and the wrapper types have
//! column types; repeated fields, maps, other messages and `uint64` (no signed column
//! holds all its values) are refused, naming the field, so the job declares the
//! columns it reads instead.

use arrow_schema::{DataType, Field};
use prost_reflect::MessageDescriptor;

use super::schema::{field_kind, natural_type, proto_type};

/// One column per field of `message`.
pub fn message_fields(message: &MessageDescriptor) -> Result<Vec<Field>, String> {
    let mut out = vec![];
    for field in message.fields() {
        let refuse = |what: &str| {
            format!(
                "field '{}' of message {} is {what}, which has no column type here; declare \
                 the source's columns to leave it out",
                field.name(),
                message.full_name()
            )
        };
        if field.is_list() || field.is_map() {
            return Err(refuse(if field.is_map() { "a map" } else { "repeated" }));
        }
        let kind = field_kind(&field.kind()).ok_or_else(|| refuse(&proto_type(&field)))?;
        let data_type = match natural_type(&kind) {
            DataType::UInt32 => DataType::Int64,
            DataType::UInt64 => return Err(refuse(&proto_type(&field))),
            DataType::Timestamp(unit, Some(_)) => {
                DataType::Timestamp(unit, Some(floe_sql::UTC.into()))
            }
            other => other,
        };
        out.push(Field::new(field.name(), data_type, true));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow_schema::TimeUnit;

    use super::super::schema::compile;
    use super::*;

    fn message(text: &str) -> MessageDescriptor {
        let compiled = compile(text, &HashMap::new()).expect("compile");
        compiled.message_named(None).expect("message")
    }

    #[test]
    fn scalar_fields_become_nullable_columns() {
        let m = message(
            r#"syntax = "proto3"; package shop; import "google/protobuf/timestamp.proto";
               message Order { int64 id = 1; uint32 qty = 2; Status status = 3;
                 google.protobuf.Timestamp placed = 4; optional string note = 5;
                 enum Status { NEW = 0; PAID = 1; } }"#,
        );
        let fields = message_fields(&m).expect("fields");
        let got: Vec<(&str, &DataType)> = fields
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some(floe_sql::UTC.into()));
        assert_eq!(
            got,
            [
                ("id", &DataType::Int64),
                ("qty", &DataType::Int64),
                ("status", &DataType::Utf8),
                ("placed", &ts),
                ("note", &DataType::Utf8)
            ]
        );
        assert!(fields.iter().all(|f| f.is_nullable()));
    }

    #[test]
    fn a_repeated_field_is_refused_naming_it() {
        let m = message(r#"syntax = "proto3"; message Order { repeated string tags = 1; }"#);
        let e = message_fields(&m).expect_err("refused");
        assert!(
            e.contains("field 'tags' of message Order is repeated"),
            "{e}"
        );
    }
}
