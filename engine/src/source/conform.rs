//! Bringing decoded columns to the declared types: which decoded Arrow types may be
//! brought to a declared one (the registry formats' promotions), and the cast itself.

use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_cast::{CastOptions, cast_with_options};
use arrow_schema::{DataType, SchemaRef, TimeUnit};

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
        (D::Struct(a), D::Struct(b)) => b.iter().all(|fb| {
            a.iter()
                .find(|fa| fa.name() == fb.name())
                .is_none_or(|fa| fits(fa.data_type(), fb.data_type()))
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
        let to = field.data_type();
        let cast = match (col.data_type(), to) {
            (a, b) if a == b => Ok(col.clone()),
            // Epoch milliseconds, as a JSON number in a timestamp column.
            (DataType::Int64, DataType::Timestamp(TimeUnit::Microsecond, _)) => {
                let thousand = Int64Array::new_scalar(1000);
                arrow_arith::numeric::mul(col, &thousand)
                    .and_then(|micros| cast_with_options(&micros, to, &strict))
            }
            _ => cast_with_options(col, to, &strict),
        };
        columns.push(
            cast.map_err(|e| ValueFailure::type_error(format!("column '{}': {e}", field.name())))?,
        );
    }
    RecordBatch::try_new(payload.clone(), columns)
        .map_err(|e| ValueFailure::type_error(e.to_string()))
}

#[cfg(test)]
mod tests {
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
}
