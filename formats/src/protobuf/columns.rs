//! The columns of a source that declares none, read from its Protobuf message: one
//! per field, in field order, each nullable (a later version may drop any field).
//! Scalars, enums (as strings), `google.protobuf.Timestamp` and the wrapper types have
//! column types; other messages become ROWs of their fields, repeated fields ARRAYs and
//! map fields MAPs. `uint64` (no signed column holds all its values) and messages that
//! contain themselves are refused, naming the field, so the job declares the columns
//! it reads instead.

use arrow_schema::{DataType, Field};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::plan::{field_kind, natural_type, proto_type};

/// One column per field of `message`.
pub fn message_fields(message: &MessageDescriptor) -> Result<Vec<Field>, String> {
    fields_of(message, "", &mut vec![])
}

/// The fields of `message` at `path` (empty at the top, else ending in a dot);
/// `within` holds the messages being read around it, to refuse recursion.
fn fields_of(
    message: &MessageDescriptor,
    path: &str,
    within: &mut Vec<String>,
) -> Result<Vec<Field>, String> {
    within.push(message.full_name().to_string());
    let mut out = vec![];
    for field in message.fields() {
        let here = format!("{path}{}", field.name());
        let data_type = column_type(&field, &here, within)?;
        out.push(Field::new(field.name(), data_type, true));
    }
    within.pop();
    Ok(out)
}

/// Why `field` (at `path`) has no column: it is `what`.
fn refuse(field: &FieldDescriptor, path: &str, what: &str) -> String {
    format!(
        "field '{path}' of message {} is {what}, which has no column type here; declare \
         the source's columns to leave it out",
        field.parent_message().full_name()
    )
}

/// The column type of `field` at `path`, or why it has none.
fn column_type(
    field: &FieldDescriptor,
    path: &str,
    within: &mut Vec<String>,
) -> Result<DataType, String> {
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        let key = value_type(&entry.map_entry_key_field(), path, within)?;
        let value = value_type(&entry.map_entry_value_field(), path, within)?;
        return Ok(floe_sql::map_of(key, value, true));
    }
    let value = value_type(field, path, within)?;
    Ok(if field.is_list() {
        floe_sql::list_of(value, true)
    } else {
        value
    })
}

/// The column type of one value of `field`.
fn value_type(
    field: &FieldDescriptor,
    path: &str,
    within: &mut Vec<String>,
) -> Result<DataType, String> {
    let Some(kind) = field_kind(&field.kind()) else {
        let Kind::Message(m) = field.kind() else {
            return Err(refuse(field, path, &proto_type(field)));
        };
        if within.iter().any(|w| w == m.full_name()) {
            let what = format!("{}, which contains itself", m.full_name());
            return Err(refuse(field, path, &what));
        }
        return Ok(DataType::Struct(
            fields_of(&m, &format!("{path}."), within)?.into(),
        ));
    };
    Ok(match natural_type(&kind) {
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => return Err(refuse(field, path, &proto_type(field))),
        DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(unit, Some(floe_sql::UTC.into())),
        other => other,
    })
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
    fn messages_repeated_fields_and_maps_become_rows_arrays_and_maps() {
        let m = message(
            r#"syntax = "proto3";
               message Order { Customer customer = 1; repeated Line lines = 2;
                 map<string, uint32> attrs = 3; repeated int64 codes = 4; }
               message Customer { string name = 1; }
               message Line { string sku = 1; int32 qty = 2; }"#,
        );
        let fields = message_fields(&m).expect("fields");
        let types: Vec<&DataType> = fields.iter().map(|f| f.data_type()).collect();
        let line = DataType::Struct(
            vec![
                Field::new("sku", DataType::Utf8, true),
                Field::new("qty", DataType::Int32, true),
            ]
            .into(),
        );
        assert_eq!(
            types,
            [
                &DataType::Struct(vec![Field::new("name", DataType::Utf8, true)].into()),
                &floe_sql::list_of(line, true),
                &floe_sql::map_of(DataType::Utf8, DataType::Int64, true),
                &floe_sql::list_of(DataType::Int64, true),
            ]
        );
    }

    #[test]
    fn a_message_that_contains_itself_is_refused_naming_the_field() {
        let m = message(r#"syntax = "proto3"; message Node { string name = 1; Node parent = 2; }"#);
        let e = message_fields(&m).expect_err("refused");
        assert!(
            e.contains("field 'parent' of message Node is Node, which contains itself"),
            "{e}"
        );
    }

    #[test]
    fn a_nested_uint64_is_refused_naming_its_path() {
        let m = message(
            r#"syntax = "proto3"; message Order { Line line = 1; }
               message Line { uint64 count = 1; }"#,
        );
        let e = message_fields(&m).expect_err("refused");
        assert!(
            e.contains("field 'line.count' of message Line is uint64"),
            "{e}"
        );
    }
}
