//! A registry's Protobuf schema compiled into descriptors, and the plan that reads one
//! of its messages into the declared columns.
//!
//! The registry holds `.proto` text (Confluent's registry answers with it), or, as some
//! clients register it, a base64-encoded `FileDescriptorProto`; both are read. Imports
//! are the schema's references, fetched from the registry by the caller; the
//! well-known `google/protobuf/*.proto` files are built in.

use std::collections::HashMap;

use arrow_schema::{DataType, Schema, TimeUnit};
use base64::Engine;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, Value};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::source::conform::fits;

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
    Enum(HashMap<i32, String>),
    /// `google.protobuf.Timestamp`: seconds and nanos, read as microseconds (UTC).
    Timestamp,
    /// A `google.protobuf.*Value` wrapper: its field 1, null when the wrapper is absent.
    Wrapper(Box<FieldKind>),
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

/// How one declared column is read.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// The field's number in the message.
    pub number: u32,
    /// The field's name, for messages.
    pub name: String,
    pub kind: FieldKind,
    /// What an absent field reads as: None for a field with presence (null), else the
    /// field's default (proto3's zero values, proto2's declared default).
    pub default: Option<Value>,
}

/// How a message is read: per declared column, the field it comes from (None: the
/// message has no such field, so the column is null).
#[derive(Debug, Clone)]
pub struct MessagePlan {
    pub columns: Vec<Option<ColumnPlan>>,
    /// The message's full name, for messages.
    pub message: String,
}

/// A compiled schema: its descriptors and the name of its own file.
#[derive(Debug, Clone)]
pub struct CompiledSchema {
    pool: DescriptorPool,
    file: String,
}

/// Compiles schema `text` with its imports (`.proto` text or base64 descriptors, by
/// import name).
pub fn compile(text: &str, imports: &HashMap<String, String>) -> Result<CompiledSchema, String> {
    let mut files = HashMap::new();
    for (name, t) in imports {
        files.insert(name.clone(), open(name, t)?);
    }
    let main = open("schema.proto", text)?;
    let main_name = if main.name().is_empty() {
        "schema.proto".to_string()
    } else {
        main.name().to_string()
    };
    files.insert(main_name.clone(), main);
    let mut resolver = ChainFileResolver::new();
    resolver.add(Files(files));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler
        .open_file(&main_name)
        .map_err(|e| format!("the Protobuf schema does not compile: {e}"))?;
    Ok(CompiledSchema {
        pool: compiler.descriptor_pool(),
        file: main_name,
    })
}

/// One `.proto` file as the registry holds it.
fn open(name: &str, text: &str) -> Result<File, String> {
    let t = text.trim();
    let looks_base64 = !t.is_empty() && !t.contains(|c: char| c.is_whitespace() || c == ';');
    if looks_base64 && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(t) {
        return File::decode_file_descriptor_proto(bytes.as_slice())
            .map_err(|e| format!("'{name}' is base64 but not a FileDescriptorProto: {e}"));
    }
    File::from_source(name, text).map_err(|e| format!("'{name}' does not parse: {e}"))
}

/// The files of one schema, by import name.
struct Files(HashMap<String, File>);

impl FileResolver for Files {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| protox::Error::file_not_found(name))
    }
}

impl CompiledSchema {
    /// The message at message-index `path` (the wire format's: top-level index, then
    /// nested indexes).
    pub fn message_at(&self, path: &[u32]) -> Result<MessageDescriptor, String> {
        let file = self
            .pool
            .get_file_by_name(&self.file)
            .ok_or_else(|| format!("the schema's file '{}' is missing", self.file))?;
        let missing = || format!("the schema has no message at index path {path:?}");
        let (first, rest) = path.split_first().ok_or_else(missing)?;
        let mut message = file.messages().nth(*first as usize).ok_or_else(missing)?;
        for i in rest {
            let child = message.child_messages().nth(*i as usize);
            message = child.ok_or_else(missing)?;
        }
        Ok(message)
    }

    /// The message named `name` (fully qualified), or the file's first one.
    pub fn message_named(&self, name: Option<&str>) -> Result<MessageDescriptor, String> {
        match name {
            Some(n) => self
                .pool
                .get_message_by_name(n.trim_start_matches('.'))
                .ok_or_else(|| format!("the schema has no message '{n}'")),
            None => self.message_at(&[0]),
        }
    }
}

/// The plan that reads `message` into the declared `payload` columns, or the first
/// column whose field does not fit (naming field, both types, `what` the schema is).
pub fn plan(
    message: &MessageDescriptor,
    payload: &Schema,
    what: &str,
) -> Result<MessagePlan, String> {
    let mut columns = vec![];
    for column in payload.fields() {
        let field = message.get_field_by_name(column.name()).or_else(|| {
            let mut same = message
                .fields()
                .filter(|f| f.name().eq_ignore_ascii_case(column.name()));
            same.next().filter(|_| same.next().is_none())
        });
        let Some(field) = field else {
            columns.push(None);
            continue;
        };
        let refuse = |proto: &str| {
            format!(
                "field '{}' is {proto} in the Protobuf schema ({what}, message {}), but the source declares {} {}",
                field.name(),
                message.full_name(),
                column.name(),
                column.data_type()
            )
        };
        if field.is_list() || field.is_map() {
            let shape = if field.is_map() { "a map" } else { "repeated" };
            return Err(refuse(shape));
        }
        let kind = field_kind(&field.kind()).ok_or_else(|| refuse(&proto_type(&field)))?;
        if !fits(&natural_type(&kind), column.data_type()) {
            return Err(refuse(&proto_type(&field)));
        }
        columns.push(Some(ColumnPlan {
            number: field.number(),
            name: field.name().to_string(),
            default: (!field.supports_presence()).then(|| field.default_value()),
            kind,
        }));
    }
    Ok(MessagePlan {
        columns,
        message: message.full_name().to_string(),
    })
}

/// How a field of `kind` is read; None for a message type other than the timestamp
/// and the wrappers (job files declare flat columns).
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

/// The Arrow type a field of `kind` decodes into.
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
    }
}

/// The field's type as a `.proto` file spells it, for messages.
pub(super) fn proto_type(field: &FieldDescriptor) -> String {
    match field.kind() {
        Kind::Message(m) => m.full_name().to_string(),
        Kind::Enum(e) => e.full_name().to_string(),
        other => format!("{other:?}").to_lowercase(),
    }
}
