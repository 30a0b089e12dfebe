//! Protobuf messages decoded straight into Arrow builders: each message's fields are
//! walked once, the last value of each declared single field kept as a slice or a
//! number and then appended to its column, each occurrence of a repeated or map field
//! appended to its list as it is met; a nested message is walked the same way into its
//! struct's columns. No per-record value tree, no allocation per field.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    NullBufferBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, ListArray, MapArray, RecordBatch, StructArray, new_null_array};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Schema};
use prost_reflect::Value;

use super::plan::{ColumnPlan, FieldKind, MessagePlan, Natural, Shape};
use crate::framing::varint;

/// One field's value as it stands in the message.
#[derive(Debug, Clone, Copy)]
pub enum Raw {
    Varint(u64),
    Fixed32(u32),
    Fixed64(u64),
    /// A length-delimited value: its start and end in the message.
    Len(usize, usize),
}

/// The fields of one encoded message, in order; groups (a proto2 relic) are skipped.
pub struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, at: 0 }
    }

    /// The next field number and value; None at the end.
    pub fn next_field(&mut self) -> Result<Option<(u32, Raw)>, String> {
        loop {
            if self.at >= self.buf.len() {
                return Ok(None);
            }
            let tag = varint(self.buf, &mut self.at).ok_or("a field tag is cut off")?;
            let number = u32::try_from(tag >> 3)
                .map_err(|_| format!("field number {} is too large", tag >> 3))?;
            if number == 0 {
                return Err("a field has number 0".into());
            }
            let raw = match tag & 7 {
                0 => Raw::Varint(varint(self.buf, &mut self.at).ok_or_else(|| cut(number))?),
                1 => Raw::Fixed64(u64::from_le_bytes(self.take::<8>(number)?)),
                5 => Raw::Fixed32(u32::from_le_bytes(self.take::<4>(number)?)),
                2 => {
                    let len = varint(self.buf, &mut self.at).ok_or_else(|| cut(number))?;
                    let start = self.at;
                    let end = usize::try_from(len)
                        .ok()
                        .and_then(|l| start.checked_add(l))
                        .filter(|e| *e <= self.buf.len())
                        .ok_or_else(|| cut(number))?;
                    self.at = end;
                    Raw::Len(start, end)
                }
                3 => {
                    self.skip_group(number)?;
                    continue;
                }
                w => {
                    return Err(format!(
                        "field {number} has wire type {w}, which no field has here"
                    ));
                }
            };
            return Ok(Some((number, raw)));
        }
    }

    fn take<const N: usize>(&mut self, number: u32) -> Result<[u8; N], String> {
        let bytes = self
            .buf
            .get(self.at..self.at + N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or_else(|| cut(number))?;
        self.at += N;
        Ok(bytes)
    }

    /// Skips a group's fields up to its end-group tag.
    fn skip_group(&mut self, number: u32) -> Result<(), String> {
        loop {
            if self.at >= self.buf.len() {
                return Err(format!("group {number} has no end"));
            }
            let save = self.at;
            let tag = varint(self.buf, &mut self.at).ok_or("a field tag is cut off")?;
            if tag & 7 == 4 {
                return if tag >> 3 == u64::from(number) {
                    Ok(())
                } else {
                    Err(format!(
                        "group {number} ends with the end of group {}",
                        tag >> 3
                    ))
                };
            }
            self.at = save;
            self.next_field()?;
        }
    }
}

fn cut(number: u32) -> String {
    format!("field {number} is cut off")
}

/// The wire type a field of `kind` is written with.
fn wire_type(kind: &FieldKind) -> u8 {
    match kind {
        FieldKind::Varint(_) | FieldKind::Zigzag(_) | FieldKind::Enum(_) => 0,
        FieldKind::Fixed64(_) => 1,
        FieldKind::Fixed32(_) => 5,
        FieldKind::String
        | FieldKind::Bytes
        | FieldKind::Timestamp
        | FieldKind::Wrapper(_)
        | FieldKind::Message(_) => 2,
    }
}

fn raw_wire_type(raw: Raw) -> u8 {
    match raw {
        Raw::Varint(_) => 0,
        Raw::Fixed64(_) => 1,
        Raw::Len(..) => 2,
        Raw::Fixed32(_) => 5,
    }
}

/// The builders of one message's columns: the record's, or a nested message's.
pub struct Columns<'p> {
    plan: &'p MessagePlan,
    builders: Vec<Option<ColumnBuilder<'p>>>,
    /// Column index by field number (numbers under 1 024 directly, others searched).
    small: Vec<u16>,
    large: Vec<(u32, usize)>,
    /// Per single-valued column, the last value of its field in the current message.
    slots: Vec<Option<Raw>>,
    rows: usize,
}

impl<'p> Columns<'p> {
    /// Builders for `plan`'s columns, sized for `rows`.
    pub fn new(plan: &'p MessagePlan, rows: usize) -> Self {
        let mut small = vec![0u16; 1024];
        let mut large = vec![];
        for (i, p) in plan.columns.iter().enumerate() {
            if let Some(p) = p {
                match small.get_mut(p.number as usize) {
                    Some(s) => *s = u16::try_from(i + 1).unwrap_or(0),
                    None => large.push((p.number, i)),
                }
            }
        }
        let builders = plan
            .columns
            .iter()
            .zip(plan.natural.iter())
            .map(|(p, f)| {
                p.as_ref()
                    .map(|p| ColumnBuilder::new(p, f.data_type(), rows))
            })
            .collect();
        Self {
            plan,
            builders,
            small,
            large,
            slots: vec![None; plan.columns.len()],
            rows: 0,
        }
    }

    fn column_of(&self, number: u32) -> Option<usize> {
        match self.small.get(number as usize) {
            Some(0) => None,
            Some(i) => Some(*i as usize - 1),
            None => self
                .large
                .iter()
                .find(|(n, _)| *n == number)
                .map(|(_, i)| *i),
        }
    }

    /// Reads one message and appends its row.
    pub fn push(&mut self, msg: &[u8]) -> Result<(), String> {
        self.slots.iter_mut().for_each(|s| *s = None);
        let mut fields = Fields::new(msg);
        while let Some((number, raw)) = fields.next_field()? {
            let Some(c) = self.column_of(number) else {
                continue;
            };
            match (&self.plan.columns[c], self.builders[c].as_mut()) {
                (Some(plan), Some(ColumnBuilder::Repeated(r))) => r
                    .add(&plan.kind, raw, msg)
                    .map_err(|e| format!("field '{}': {e}", plan.name))?,
                _ => self.slots[c] = Some(raw),
            }
        }
        for (c, plan) in self.plan.columns.iter().enumerate() {
            let (Some(plan), Some(builder)) = (plan, self.builders[c].as_mut()) else {
                continue;
            };
            match builder {
                ColumnBuilder::Repeated(r) => r.close()?,
                ColumnBuilder::Single(b) => match self.slots[c] {
                    Some(raw) => {
                        check_wire_type(&plan.kind, raw)
                            .map_err(|e| format!("field '{}' ({}) {e}", plan.name, plan.number))?;
                        b.append(&plan.kind, raw, msg)
                            .map_err(|e| format!("field '{}': {e}", plan.name))?;
                    }
                    None => b.append_absent(&plan.kind, plan.default.as_ref()),
                },
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Appends a row for an absent message: every column null (a repeated one empty).
    fn push_null(&mut self) -> Result<(), String> {
        for b in self.builders.iter_mut().flatten() {
            match b {
                ColumnBuilder::Single(b) => b.append_null(),
                ColumnBuilder::Repeated(r) => r.close()?,
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The record's columns, as one batch of the plan's natural types.
    pub fn finish(self) -> Result<RecordBatch, String> {
        let schema = Arc::new(Schema::new(self.plan.natural.clone()));
        let columns = self.finish_columns()?;
        RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())
    }

    /// The columns built (a column without a field: all null, of its declared type).
    fn finish_columns(self) -> Result<Vec<ArrayRef>, String> {
        let rows = self.rows;
        self.builders
            .into_iter()
            .zip(self.plan.natural.iter())
            .map(|(b, f)| match b {
                Some(b) => b.finish(f.data_type()),
                None => Ok(new_null_array(f.data_type(), rows)),
            })
            .collect()
    }
}

/// Whether `raw` has the wire type a single value of `kind` is written with.
fn check_wire_type(kind: &FieldKind, raw: Raw) -> Result<(), String> {
    if raw_wire_type(raw) == wire_type(kind) {
        return Ok(());
    }
    Err(format!(
        "has wire type {}, not {} as its type says",
        raw_wire_type(raw),
        wire_type(kind)
    ))
}

/// The builder of one planned column.
enum ColumnBuilder<'p> {
    /// A single-valued field.
    Single(ValueBuilder<'p>),
    /// A repeated or map field.
    Repeated(RepeatedBuilder<'p>),
}

impl<'p> ColumnBuilder<'p> {
    fn new(plan: &'p ColumnPlan, natural: &DataType, rows: usize) -> Self {
        let items = match (plan.shape, natural) {
            (Shape::Single, _) => {
                return Self::Single(ValueBuilder::new(&plan.kind, natural, rows));
            }
            (Shape::List, DataType::List(element)) => element.data_type(),
            (Shape::Map, DataType::Map(entries, _)) => entries.data_type(),
            // The plan gives repeated fields list and map types; not reached.
            _ => natural,
        };
        Self::Repeated(RepeatedBuilder {
            offsets: {
                let mut o = Vec::with_capacity(rows + 1);
                o.push(0);
                o
            },
            count: 0,
            items: ValueBuilder::new(&plan.kind, items, rows),
        })
    }

    fn finish(self, natural: &DataType) -> Result<ArrayRef, String> {
        match self {
            Self::Single(b) => b.finish(natural),
            Self::Repeated(r) => r.finish(natural),
        }
    }
}

/// One value per row: a scalar, or a nested message as a struct.
enum ValueBuilder<'p> {
    Scalar(Builder),
    Message(Box<MessageBuilder<'p>>),
}

/// A nested message's columns and which rows have the message.
struct MessageBuilder<'p> {
    columns: Columns<'p>,
    nulls: NullBufferBuilder,
}

impl<'p> ValueBuilder<'p> {
    fn new(kind: &'p FieldKind, natural: &DataType, rows: usize) -> Self {
        match kind {
            FieldKind::Message(plan) => Self::Message(Box::new(MessageBuilder {
                columns: Columns::new(plan, rows),
                nulls: NullBufferBuilder::new(rows),
            })),
            _ => Self::Scalar(Builder::new(natural, rows)),
        }
    }

    fn append(&mut self, kind: &FieldKind, raw: Raw, msg: &[u8]) -> Result<(), String> {
        match (self, raw) {
            (Self::Scalar(b), _) => b.append(kind, raw, msg),
            (Self::Message(m), Raw::Len(s, e)) => {
                m.columns.push(&msg[s..e])?;
                m.nulls.append_non_null();
                Ok(())
            }
            (Self::Message(_), _) => Err("a message field is not length-delimited".into()),
        }
    }

    fn append_absent(&mut self, kind: &FieldKind, default: Option<&Value>) {
        match self {
            Self::Scalar(b) => b.append_default(kind, default),
            Self::Message(_) => self.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Scalar(b) => b.append_null(),
            Self::Message(m) => {
                // Columns of a null row are nulls or empty lists, which cannot fail.
                let _ = m.columns.push_null();
                m.nulls.append_null();
            }
        }
    }

    fn finish(self, natural: &DataType) -> Result<ArrayRef, String> {
        match (self, natural) {
            (Self::Scalar(b), _) => Ok(b.finish()),
            (Self::Message(mut m), DataType::Struct(fields)) => {
                let nulls = m.nulls.finish();
                let columns = m.columns.finish_columns()?;
                let array = StructArray::try_new(fields.clone(), columns, nulls)
                    .map_err(|e| e.to_string())?;
                Ok(Arc::new(array))
            }
            (Self::Message(_), other) => Err(format!("a message cannot be read as {other}")),
        }
    }
}

/// The values of a repeated field (its items) and where each row's start.
struct RepeatedBuilder<'p> {
    offsets: Vec<i32>,
    /// Items appended so far.
    count: usize,
    items: ValueBuilder<'p>,
}

impl RepeatedBuilder<'_> {
    /// Adds one occurrence of the field: an item, or a packed run of numbers.
    fn add(&mut self, kind: &FieldKind, raw: Raw, msg: &[u8]) -> Result<(), String> {
        if let (Raw::Len(s, e), Some(width)) = (raw, packed_width(kind)) {
            return self.add_packed(kind, width, &msg[..e], s);
        }
        check_wire_type(kind, raw)?;
        self.items.append(kind, raw, msg)?;
        self.count += 1;
        Ok(())
    }

    /// Adds the numbers packed in `buf[at..]`: varints (`width` 0) or fixed-width.
    fn add_packed(
        &mut self,
        kind: &FieldKind,
        width: usize,
        buf: &[u8],
        mut at: usize,
    ) -> Result<(), String> {
        while at < buf.len() {
            let raw = match width {
                0 => Raw::Varint(varint(buf, &mut at).ok_or("a packed varint is cut off")?),
                4 | 8 => {
                    let bytes = buf.get(at..at + width).ok_or("a packed value is cut off")?;
                    at += width;
                    let mut le = [0u8; 8];
                    le[..width].copy_from_slice(bytes);
                    let v = u64::from_le_bytes(le);
                    if width == 4 {
                        Raw::Fixed32(v as u32)
                    } else {
                        Raw::Fixed64(v)
                    }
                }
                _ => return Err("a packed field of an unpackable type".into()),
            };
            self.items.append(kind, raw, buf)?;
            self.count += 1;
        }
        Ok(())
    }

    /// Ends the current row's list.
    fn close(&mut self) -> Result<(), String> {
        let end = i32::try_from(self.count)
            .map_err(|_| "more than 2^31 repeated values in one batch".to_string())?;
        self.offsets.push(end);
        Ok(())
    }

    fn finish(self, natural: &DataType) -> Result<ArrayRef, String> {
        let offsets = OffsetBuffer::new(self.offsets.into());
        let array: ArrayRef = match natural {
            DataType::List(element) => {
                let values = self.items.finish(element.data_type())?;
                Arc::new(
                    ListArray::try_new(element.clone(), offsets, values, None)
                        .map_err(|e| e.to_string())?,
                )
            }
            DataType::Map(entries, sorted) => {
                let values = self.items.finish(entries.data_type())?;
                let entries_array = values.as_struct().clone();
                Arc::new(
                    MapArray::try_new(entries.clone(), offsets, entries_array, None, *sorted)
                        .map_err(|e| e.to_string())?,
                )
            }
            other => return Err(format!("a repeated field cannot be read as {other}")),
        };
        Ok(array)
    }
}

/// The width of one packed value of `kind` (0: varints); None when it cannot be packed.
fn packed_width(kind: &FieldKind) -> Option<usize> {
    match kind {
        FieldKind::Varint(_) | FieldKind::Zigzag(_) | FieldKind::Enum(_) => Some(0),
        FieldKind::Fixed32(_) => Some(4),
        FieldKind::Fixed64(_) => Some(8),
        _ => None,
    }
}

/// A builder of one column's natural type.
enum Builder {
    I32(Int32Builder),
    I64(Int64Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Ts(TimestampMicrosecondBuilder),
}

/// A number read as the natural type (int32's varint is sign-extended to 64 bits).
#[derive(Clone, Copy)]
enum Number {
    I(i64),
    U(u64),
    F(f64),
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl Builder {
    fn new(ty: &DataType, rows: usize) -> Self {
        match ty {
            DataType::Int32 => Self::I32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => Self::I64(Int64Builder::with_capacity(rows)),
            DataType::UInt32 => Self::U32(UInt32Builder::with_capacity(rows)),
            DataType::UInt64 => Self::U64(UInt64Builder::with_capacity(rows)),
            DataType::Float32 => Self::F32(Float32Builder::with_capacity(rows)),
            DataType::Float64 => Self::F64(Float64Builder::with_capacity(rows)),
            DataType::Boolean => Self::Bool(BooleanBuilder::with_capacity(rows)),
            DataType::Binary => Self::Bin(BinaryBuilder::with_capacity(rows, rows * 16)),
            DataType::Timestamp(_, tz) => Self::Ts(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone_opt(tz.clone()),
            ),
            _ => Self::Str(StringBuilder::with_capacity(rows, rows * 16)),
        }
    }

    fn append(&mut self, kind: &FieldKind, raw: Raw, msg: &[u8]) -> Result<(), String> {
        let number = match (kind, raw) {
            (FieldKind::Varint(_), Raw::Varint(v)) => Number::U(v),
            (FieldKind::Zigzag(_), Raw::Varint(v)) => Number::I(zigzag(v)),
            (FieldKind::Fixed32(Natural::F32), Raw::Fixed32(v)) => {
                Number::F(f32::from_bits(v).into())
            }
            (FieldKind::Fixed32(Natural::I32), Raw::Fixed32(v)) => Number::I((v as i32).into()),
            (FieldKind::Fixed32(_), Raw::Fixed32(v)) => Number::U(v.into()),
            (FieldKind::Fixed64(Natural::F64), Raw::Fixed64(v)) => Number::F(f64::from_bits(v)),
            (FieldKind::Fixed64(Natural::I64), Raw::Fixed64(v)) => Number::I(v as i64),
            (FieldKind::Fixed64(_), Raw::Fixed64(v)) => Number::U(v),
            (FieldKind::String, Raw::Len(s, e)) => {
                let text =
                    std::str::from_utf8(&msg[s..e]).map_err(|e| format!("not valid UTF-8: {e}"))?;
                return self.append_str(text);
            }
            (FieldKind::Bytes, Raw::Len(s, e)) => {
                if let Self::Bin(b) = self {
                    b.append_value(&msg[s..e]);
                }
                return Ok(());
            }
            (FieldKind::Enum(names), Raw::Varint(v)) => {
                let n = v as i64 as i32;
                return match names.get(&n) {
                    Some(name) => self.append_str(name),
                    None => self.append_str(&n.to_string()),
                };
            }
            (FieldKind::Timestamp, Raw::Len(s, e)) => return self.append_timestamp(&msg[s..e]),
            (FieldKind::Wrapper(inner), Raw::Len(s, e)) => {
                let sub = &msg[s..e];
                let mut fields = Fields::new(sub);
                let mut value = None;
                while let Some((n, raw)) = fields.next_field()? {
                    if n == 1 {
                        value = Some(raw);
                    }
                }
                return match value {
                    Some(raw) if raw_wire_type(raw) == wire_type(inner) => {
                        self.append(inner, raw, sub)
                    }
                    Some(_) => Err("the wrapper's value has the wrong wire type".into()),
                    None => {
                        self.append_zero(inner);
                        Ok(())
                    }
                };
            }
            _ => return Err("the value does not match the field's type".into()),
        };
        self.append_number(number);
        Ok(())
    }

    fn append_number(&mut self, n: Number) {
        let (i, u, f) = match n {
            Number::I(i) => (i, i as u64, i as f64),
            Number::U(u) => (u as i64, u, u as f64),
            Number::F(f) => (f as i64, f as u64, f),
        };
        match self {
            Self::I32(b) => b.append_value(i as i32),
            Self::I64(b) => b.append_value(i),
            Self::U32(b) => b.append_value(u as u32),
            Self::U64(b) => b.append_value(u),
            Self::F32(b) => b.append_value(f as f32),
            Self::F64(b) => b.append_value(f),
            Self::Bool(b) => b.append_value(u != 0),
            Self::Ts(b) => b.append_value(i),
            Self::Str(b) => b.append_value(i.to_string()),
            Self::Bin(b) => b.append_null(),
        }
    }

    fn append_str(&mut self, s: &str) -> Result<(), String> {
        match self {
            Self::Str(b) => b.append_value(s),
            _ => return Err("a string where a number was expected".into()),
        }
        Ok(())
    }

    /// `google.protobuf.Timestamp { int64 seconds = 1; int32 nanos = 2; }`.
    fn append_timestamp(&mut self, sub: &[u8]) -> Result<(), String> {
        let (mut seconds, mut nanos) = (0i64, 0i64);
        let mut fields = Fields::new(sub);
        while let Some((n, raw)) = fields.next_field()? {
            match (n, raw) {
                (1, Raw::Varint(v)) => seconds = v as i64,
                (2, Raw::Varint(v)) => nanos = i64::from(v as i64 as i32),
                _ => {}
            }
        }
        let micros = seconds
            .checked_mul(1_000_000)
            .and_then(|m| m.checked_add(nanos / 1000))
            .ok_or_else(|| format!("timestamp {seconds} s is out of range"))?;
        self.append_number(Number::I(micros));
        Ok(())
    }

    /// An absent field: its default, or null when it has presence.
    fn append_default(&mut self, kind: &FieldKind, default: Option<&Value>) {
        let Some(v) = default else {
            self.append_null();
            return;
        };
        let n = match v {
            Value::Bool(b) => Number::U(u64::from(*b)),
            Value::I32(i) => Number::I((*i).into()),
            Value::I64(i) => Number::I(*i),
            Value::U32(u) => Number::U((*u).into()),
            Value::U64(u) => Number::U(*u),
            Value::F32(f) => Number::F((*f).into()),
            Value::F64(f) => Number::F(*f),
            Value::String(s) => {
                let _ = self.append_str(s);
                return;
            }
            Value::Bytes(bytes) => {
                match self {
                    Self::Bin(b) => b.append_value(bytes),
                    _ => self.append_null(),
                }
                return;
            }
            Value::EnumNumber(n) => {
                let name = match kind {
                    FieldKind::Enum(names) => names.get(n).cloned(),
                    _ => None,
                };
                let _ = self.append_str(&name.unwrap_or_else(|| n.to_string()));
                return;
            }
            _ => {
                self.append_null();
                return;
            }
        };
        self.append_number(n);
    }

    /// A wrapper present but empty: its value is the wrapped type's zero.
    fn append_zero(&mut self, inner: &FieldKind) {
        match inner {
            FieldKind::String => {
                let _ = self.append_str("");
            }
            FieldKind::Bytes => {
                if let Self::Bin(b) = self {
                    b.append_value(b"");
                }
            }
            _ => self.append_number(Number::U(0)),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::I32(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::U32(b) => b.append_null(),
            Self::U64(b) => b.append_null(),
            Self::F32(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Bool(b) => b.append_null(),
            Self::Str(b) => b.append_null(),
            Self::Bin(b) => b.append_null(),
            Self::Ts(b) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Self::I32(mut b) => Arc::new(b.finish()),
            Self::I64(mut b) => Arc::new(b.finish()),
            Self::U32(mut b) => Arc::new(b.finish()),
            Self::U64(mut b) => Arc::new(b.finish()),
            Self::F32(mut b) => Arc::new(b.finish()),
            Self::F64(mut b) => Arc::new(b.finish()),
            Self::Bool(mut b) => Arc::new(b.finish()),
            Self::Str(mut b) => Arc::new(b.finish()),
            Self::Bin(mut b) => Arc::new(b.finish()),
            Self::Ts(mut b) => Arc::new(b.finish()),
        }
    }
}
