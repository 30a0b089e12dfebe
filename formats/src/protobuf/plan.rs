//! The plan that reads one message of a compiled schema into the declared columns: per
//! column, the field it comes from and how that field's wire value becomes the column's
//! value, down through nested messages, repeated fields and maps.
//!
//! A declared `ROW` reads a message field by field name, an `ARRAY` a repeated field
//! (packed or not), a `MAP` a map field. The plan decodes into the message's own
//! ("natural") types; `conform` then brings them to the declared ones, so a field fits
//! when its natural type [`fits`] the declared type.

use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor, Value};

use crate::conform::fits;

/// How the wire value of one field becomes a column value.
#[derive(Debug, Clone)]
pub enum FieldKind {
    /// A varint read as the natural type: `int32`, `int64`, `uint32`, `uint64`, `bool`.
    Varint(Natural),
    /// A zigzag varint: `sint32`, `sint64`.
    Zigzag(Natural),
    /// 4 little-endian bytes: `fixed32`, `sfixed32`, `float`.
    Fixed32(Natural),
    /// 8 little-endian bytes: `fixed64`, `sfixed64`, `double`.
    Fixed64(Natural),
    /// Length-delimited UTF-8.
    String,
    /// Length-delimited bytes.
    Bytes,
    /// An enum number, read as its value's name (an unknown number as its digits).
    Enum(std::collections::HashMap<i32, String>),
    /// `google.protobuf.Timestamp`: seconds and nanos, read as microseconds (UTC).
    Timestamp,
    /// A `google.protobuf.*Value` wrapper: its field 1, null when the wrapper is absent.
    Wrapper(Box<FieldKind>),
    /// Another message, read into a struct of the fields its plan names.
    Message(Box<MessagePlan>),
}

/// The Arrow type a scalar is decoded into before the cast to the declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Natural {
    I32,
    I64,
    U32,
    U64,
    F32,
    F64,
    Bool,
}

/// How a field's occurrences in one message make one column value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One value; a field that occurs twice keeps its last occurrence.
    Single,
    /// A repeated field: every occurrence in order, packed or not; absent is empty.
    List,
    /// A map field: its entries, each a message of `key = 1` and `value = 2` (the
    /// column's kind is the entry message's plan); absent is empty.
    Map,
}

/// How one declared column is read.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// The field's number in the message.
    pub number: u32,
    /// The field's name, for messages.
    pub name: String,
    pub kind: FieldKind,
    pub shape: Shape,
    /// What an absent field reads as: None for a field with presence (null), else the
    /// field's default (proto3's zero values, proto2's declared default).
    pub default: Option<Value>,
}

impl ColumnPlan {
    /// The Arrow type this field decodes into.
    pub fn natural_type(&self) -> DataType {
        match (self.shape, &self.kind) {
            (Shape::Map, FieldKind::Message(entry)) => floe_sql::map_of(
                entry.natural[0].data_type().clone(),
                entry.natural[1].data_type().clone(),
                true,
            ),
            (Shape::List, kind) => floe_sql::list_of(natural_type(kind), true),
            (_, kind) => natural_type(kind),
        }
    }
}

/// How a message is read: per declared column, the field it comes from (None: the
/// message has no such field, so the column is null).
#[derive(Debug, Clone)]
pub struct MessagePlan {
    pub columns: Vec<Option<ColumnPlan>>,
    /// The message's full name, for messages.
    pub message: String,
    /// The decoded type of each column: its field's natural type, or the declared type
    /// when the message lacks the field (the column is then all null).
    pub natural: Fields,
}

/// The plan that reads `message` into the declared `payload` columns, or the first
/// field that does not fit (naming field, both types, `what` the schema is).
pub fn plan(
    message: &MessageDescriptor,
    payload: &Schema,
    what: &str,
) -> Result<MessagePlan, String> {
    plan_message(message, payload.fields(), "", what)
}

/// The plan for `declared` fields read from `message`; `path` is where the message
/// sits in the record (empty at the top, else ending in a dot).
fn plan_message(
    message: &MessageDescriptor,
    declared: &Fields,
    path: &str,
    what: &str,
) -> Result<MessagePlan, String> {
    let mut columns = vec![];
    let mut natural = vec![];
    for column in declared {
        let Some(field) = field_named(message, column.name()) else {
            // A top-level NOT NULL column is checked after decoding, record by record;
            // a nested field the message lacks could never be filled.
            if !path.is_empty() && !column.is_nullable() {
                return Err(format!(
                    "message {} ({what}) has no field '{}', which the source declares NOT NULL at {path}{}",
                    message.full_name(),
                    column.name(),
                    column.name()
                ));
            }
            columns.push(None);
            natural.push(Field::new(column.name(), column.data_type().clone(), true));
            continue;
        };
        let here = format!("{path}{}", field.name());
        let planned = plan_column(&field, column.data_type(), &here, what)?.ok_or_else(|| {
            format!(
                "field '{here}' is {} in the Protobuf schema ({what}, message {}), but the source declares {path}{} {}",
                proto_type(&field),
                message.full_name(),
                column.name(),
                column.data_type()
            )
        })?;
        natural.push(Field::new(column.name(), planned.natural_type(), true));
        columns.push(Some(planned));
    }
    Ok(MessagePlan {
        columns,
        message: message.full_name().to_string(),
        natural: natural.into(),
    })
}

/// The declared field's counterpart in `message`: same name, or the only one equal
/// ignoring case.
fn field_named(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    message.get_field_by_name(name).or_else(|| {
        let mut same = message
            .fields()
            .filter(|f| f.name().eq_ignore_ascii_case(name));
        same.next().filter(|_| same.next().is_none())
    })
}

/// How `field` is read into a column declared as `want`; Ok(None) when its shape or
/// type does not fit there, Err for a nested field that does not (already worded).
fn plan_column(
    field: &FieldDescriptor,
    want: &DataType,
    path: &str,
    what: &str,
) -> Result<Option<ColumnPlan>, String> {
    let planned = if field.is_map() {
        let (DataType::Map(entries, _), Kind::Message(entry)) = (want, field.kind()) else {
            return Ok(None);
        };
        let DataType::Struct(key_value) = entries.data_type() else {
            return Ok(None);
        };
        plan_entry(&entry, key_value, path, what)?
            .map(|p| (Shape::Map, FieldKind::Message(Box::new(p))))
    } else if field.is_list() {
        let DataType::List(element) = want else {
            return Ok(None);
        };
        value_kind(&field.kind(), element.data_type(), path, what)?.map(|k| (Shape::List, k))
    } else {
        value_kind(&field.kind(), want, path, what)?.map(|k| (Shape::Single, k))
    };
    let Some((shape, kind)) = planned else {
        return Ok(None);
    };
    let plan = ColumnPlan {
        number: field.number(),
        name: field.name().to_string(),
        default: (shape == Shape::Single && !field.supports_presence())
            .then(|| field.default_value()),
        kind,
        shape,
    };
    Ok(fits(&plan.natural_type(), want).then_some(plan))
}

/// How one value of protobuf type `kind` is read into `want`: a scalar, a well-known
/// type, or a message into a declared struct.
fn value_kind(
    kind: &Kind,
    want: &DataType,
    path: &str,
    what: &str,
) -> Result<Option<FieldKind>, String> {
    if let Some(k) = field_kind(kind) {
        return Ok(Some(k));
    }
    match (kind, want) {
        (Kind::Message(m), DataType::Struct(fields)) => {
            let nested = plan_message(m, fields, &format!("{path}."), what)?;
            Ok(Some(FieldKind::Message(Box::new(nested))))
        }
        _ => Ok(None),
    }
}

/// The plan of a map's entry message into the declared map's `key` and `value`. A key
/// is never null (absent: its zero value); an absent scalar value is its zero value,
/// an absent message value null.
fn plan_entry(
    entry: &MessageDescriptor,
    key_value: &Fields,
    path: &str,
    what: &str,
) -> Result<Option<MessagePlan>, String> {
    let (Some(want_key), Some(want_value)) = (key_value.first(), key_value.get(1)) else {
        return Ok(None);
    };
    let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
    let Some(key) = field_kind(&key_field.kind()) else {
        return Ok(None);
    };
    let value_path = format!("{path}.value");
    let Some(value) = value_kind(
        &value_field.kind(),
        want_value.data_type(),
        &value_path,
        what,
    )?
    else {
        return Ok(None);
    };
    let natural: Fields = vec![
        Field::new(want_key.name(), natural_type(&key), false),
        Field::new(want_value.name(), natural_type(&value), true),
    ]
    .into();
    let value_default =
        (!matches!(value, FieldKind::Message(_))).then(|| value_field.default_value());
    let column = |number: u32, name: &str, kind: FieldKind, default: Option<Value>| ColumnPlan {
        number,
        name: name.to_string(),
        kind,
        shape: Shape::Single,
        default,
    };
    Ok(Some(MessagePlan {
        columns: vec![
            Some(column(1, "key", key, Some(key_field.default_value()))),
            Some(column(2, "value", value, value_default)),
        ],
        message: entry.full_name().to_string(),
        natural,
    }))
}

/// How a field of `kind` is read when it is a scalar or a well-known type; None for
/// other messages (read only into a declared struct, see [`value_kind`]).
pub(super) fn field_kind(kind: &Kind) -> Option<FieldKind> {
    use FieldKind as F;
    use Natural as N;
    Some(match kind {
        Kind::Int32 => F::Varint(N::I32),
        Kind::Int64 => F::Varint(N::I64),
        Kind::Uint32 => F::Varint(N::U32),
        Kind::Uint64 => F::Varint(N::U64),
        Kind::Bool => F::Varint(N::Bool),
        Kind::Sint32 => F::Zigzag(N::I32),
        Kind::Sint64 => F::Zigzag(N::I64),
        Kind::Fixed32 => F::Fixed32(N::U32),
        Kind::Sfixed32 => F::Fixed32(N::I32),
        Kind::Float => F::Fixed32(N::F32),
        Kind::Fixed64 => F::Fixed64(N::U64),
        Kind::Sfixed64 => F::Fixed64(N::I64),
        Kind::Double => F::Fixed64(N::F64),
        Kind::String => F::String,
        Kind::Bytes => F::Bytes,
        Kind::Enum(e) => F::Enum(
            e.values()
                .map(|v| (v.number(), v.name().to_string()))
                .collect(),
        ),
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => F::Timestamp,
            "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue" => {
                let inner = m.get_field(1)?;
                F::Wrapper(Box::new(field_kind(&inner.kind())?))
            }
            _ => return None,
        },
    })
}

/// The Arrow type one value of `kind` decodes into.
pub fn natural_type(kind: &FieldKind) -> DataType {
    match kind {
        FieldKind::Varint(n)
        | FieldKind::Zigzag(n)
        | FieldKind::Fixed32(n)
        | FieldKind::Fixed64(n) => match n {
            Natural::I32 => DataType::Int32,
            Natural::I64 => DataType::Int64,
            Natural::U32 => DataType::UInt32,
            Natural::U64 => DataType::UInt64,
            Natural::F32 => DataType::Float32,
            Natural::F64 => DataType::Float64,
            Natural::Bool => DataType::Boolean,
        },
        FieldKind::String | FieldKind::Enum(_) => DataType::Utf8,
        FieldKind::Bytes => DataType::Binary,
        FieldKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldKind::Wrapper(inner) => natural_type(inner),
        FieldKind::Message(plan) => DataType::Struct(plan.natural.clone()),
    }
}

/// The field's type as a `.proto` file spells it, for messages.
pub(super) fn proto_type(field: &FieldDescriptor) -> String {
    let single = |kind: Kind| match kind {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        let (k, v) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        return format!("map<{}, {}>", single(k.kind()), single(v.kind()));
    }
    let base = single(field.kind());
    if field.is_list() {
        format!("repeated {base}")
    } else {
        base
    }
}
