//! Bringing decoded columns to the declared types: which decoded Arrow types may be
//! brought to a declared one (the registry formats' promotions), and the cast itself.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, Int64Array, ListArray, MapArray, RecordBatch, StructArray, new_null_array,
};
use arrow_cast::{CastOptions, cast_with_options};
use arrow_schema::{ArrowError, DataType, Fields, SchemaRef, TimeUnit};

use super::value_failure::ValueFailure;

/// Whether values decoded as `from` may be brought to the declared `to` without losing
/// meaning (Avro's promotions, Protobuf's unsigned integers, timestamp units, enums as strings, wider decimals).
pub fn fits(from: &DataType, to: &DataType) -> bool {
    use DataType as D;
    if from == to {
        return true;
    }
    match (from, to) {
        (D::Int32, D::Int64 | D::Float32 | D::Float64) => true,
        (D::Int64, D::Float32 | D::Float64) => true,
        (D::Float32, D::Float64) => true,
        // Protobuf's unsigned integers, into a signed column that holds all of them.
        (D::UInt32, D::Int64 | D::UInt64 | D::Float64) => true,
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
        // By name; a field the writer lacks is null, so it must be nullable.
        (D::Struct(a), D::Struct(b)) => b.iter().all(|fb| {
            field_named(a, fb.name())
                .map_or(fb.is_nullable(), |i| fits(a[i].data_type(), fb.data_type()))
        }),
        _ => false,
    }
}

/// `batch` (decoded columns, in declared order) cast to the declared types.
pub fn conform(batch: &RecordBatch, payload: &SchemaRef) -> Result<RecordBatch, ValueFailure> {
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(payload.fields().len());
    for (col, field) in batch.columns().iter().zip(payload.fields()) {
        columns
            .push(conform_array(col, field.data_type(), &strict).map_err(|e| {
                ValueFailure::type_error(format!("column '{}': {e}", field.name()))
            })?);
    }
    RecordBatch::try_new(payload.clone(), columns)
        .map_err(|e| ValueFailure::type_error(e.to_string()))
}

/// `col` brought to `to`: nested values part by part, a ROW's fields by name (a field
/// the writer lacks is null), so that a writer's field order and extra fields do not
/// matter; scalars by a strict cast.
fn conform_array(
    col: &ArrayRef,
    to: &DataType,
    strict: &CastOptions,
) -> Result<ArrayRef, ArrowError> {
    Ok(match (col.data_type(), to) {
        (a, b) if a == b => col.clone(),
        // Epoch milliseconds, as a JSON number in a timestamp column.
        (DataType::Int64, DataType::Timestamp(TimeUnit::Microsecond, _)) => {
            let thousand = Int64Array::new_scalar(1000);
            let micros = arrow_arith::numeric::mul(col, &thousand)?;
            cast_with_options(&micros, to, strict)?
        }
        (DataType::Struct(_), DataType::Struct(fields)) => {
            Arc::new(conform_struct(col.as_struct(), fields, strict)?)
        }
        (DataType::List(_), DataType::List(element)) => {
            let list = col.as_list::<i32>();
            let values = conform_array(list.values(), element.data_type(), strict)?;
            let nulls = list.nulls().cloned();
            Arc::new(ListArray::try_new(
                element.clone(),
                list.offsets().clone(),
                values,
                nulls,
            )?)
        }
        (DataType::Map(..), DataType::Map(entries, sorted)) => {
            let DataType::Struct(key_value) = entries.data_type() else {
                return cast_with_options(col, to, strict);
            };
            let map = col.as_map();
            let kv = conform_struct(map.entries(), key_value, strict)?;
            let nulls = map.nulls().cloned();
            Arc::new(MapArray::try_new(
                entries.clone(),
                map.offsets().clone(),
                kv,
                nulls,
                *sorted,
            )?)
        }
        _ => cast_with_options(col, to, strict)?,
    })
}

fn conform_struct(
    s: &StructArray,
    to: &Fields,
    strict: &CastOptions,
) -> Result<StructArray, ArrowError> {
    let mut columns = Vec::with_capacity(to.len());
    for f in to {
        let column = match field_named(s.fields(), f.name()) {
            Some(i) => conform_array(s.column(i), f.data_type(), strict)?,
            None if !f.is_nullable() && s.null_count() < s.len() => {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "field {} is NOT NULL but the record has no such field",
                    f.name()
                )));
            }
            None => new_null_array(f.data_type(), s.len()),
        };
        columns.push(column);
    }
    StructArray::try_new(to.clone(), columns, s.nulls().cloned())
}

/// The field of `fields` named `name`, exactly or else ignoring ASCII case.
fn field_named(fields: &Fields, name: &str) -> Option<usize> {
    fields.iter().position(|f| f.name() == name).or_else(|| {
        fields
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use arrow_schema::Field;

    use super::*;

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

    fn row(fields: Vec<Field>) -> DataType {
        DataType::Struct(fields.into())
    }

    #[test]
    fn a_row_fits_by_name_and_a_missing_field_must_be_nullable() {
        let writer = row(vec![
            Field::new("QTY", DataType::Int32, true),
            Field::new("sku", DataType::Utf8, true),
        ]);
        let declared = |note_nullable| {
            row(vec![
                Field::new("sku", DataType::Utf8, true),
                Field::new("qty", DataType::Int64, true),
                Field::new("note", DataType::Utf8, note_nullable),
            ])
        };
        assert!(fits(&writer, &declared(true)));
        assert!(!fits(&writer, &declared(false)));
    }

    #[test]
    fn records_are_conformed_by_name_inside_lists() {
        let writer_line = Fields::from(vec![
            Field::new("qty", DataType::Int32, true),
            Field::new("sku", DataType::Utf8, true),
        ]);
        let lines = StructArray::try_new(
            writer_line.clone(),
            vec![
                Arc::new(arrow_array::Int32Array::from(vec![2, 5])) as ArrayRef,
                Arc::new(arrow_array::StringArray::from(vec!["a-1", "b-2"])),
            ],
            None,
        )
        .expect("lines");
        let item = Arc::new(Field::new("item", DataType::Struct(writer_line), true));
        let offsets = arrow_buffer::OffsetBuffer::new(vec![0, 2, 2].into());
        let list: ArrayRef =
            Arc::new(ListArray::try_new(item, offsets, Arc::new(lines), None).expect("list"));
        let declared_line = vec![
            Field::new("sku", DataType::Utf8, false),
            Field::new("qty", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
        ];
        let to = floe_sql::list_of(row(declared_line), true);
        let strict = CastOptions::default();
        let out = conform_array(&list, &to, &strict).expect("conformed");
        assert_eq!(out.data_type(), &to);
        let values = out.as_list::<i32>().values().as_struct().clone();
        let sku = values.column(0).as_string::<i32>();
        assert_eq!((sku.value(0), sku.value(1)), ("a-1", "b-2"));
        let qty = values
            .column(1)
            .as_primitive::<arrow_array::types::Int64Type>();
        assert_eq!((qty.value(0), qty.value(1)), (2, 5));
        assert_eq!(values.column(2).null_count(), 2);
        assert_eq!(out.as_list::<i32>().value_length(1), 0);
    }
}
