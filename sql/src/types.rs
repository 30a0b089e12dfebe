//! SQL column types of job files and the Arrow types they decode into.
//!
//! Only types that Iceberg can store are accepted, so a source column can always be
//! written to a table column of the same declared type.

use arrow_schema::{DataType, TimeUnit};
use datafusion::sql::sqlparser::ast::{DataType as SqlType, ExactNumberInfo, TimezoneInfo};

/// The time zone Floe attaches to `TIMESTAMP WITH TIME ZONE` columns (Iceberg `timestamptz`).
pub const UTC: &str = "+00:00";

/// Maps a declared SQL type to its Arrow type, or explains why it cannot be used.
pub fn arrow_type(ty: &SqlType) -> Result<DataType, String> {
    use SqlType as T;
    Ok(match ty {
        T::Boolean | T::Bool => DataType::Boolean,
        T::TinyInt(_) | T::SmallInt(_) | T::Int(_) | T::Integer(_) | T::Int4(_) | T::Int2(_) => {
            DataType::Int32
        }
        T::BigInt(_) | T::Int8(_) | T::Int64 => DataType::Int64,
        T::Real | T::Float4 | T::Float32 => DataType::Float32,
        T::Float(info) => match info {
            datafusion::sql::sqlparser::ast::ExactNumberInfo::Precision(p) if *p > 24 => {
                DataType::Float64
            }
            _ => DataType::Float32,
        },
        T::Double(_) | T::DoublePrecision | T::Float8 | T::Float64 => DataType::Float64,
        T::Decimal(info) | T::Numeric(info) | T::Dec(info) => {
            let (p, s) = match info {
                ExactNumberInfo::None => (38, 10),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
            };
            if p == 0 || p > 38 {
                return Err(format!("DECIMAL precision {p} is outside 1..=38"));
            }
            let s = i8::try_from(s)
                .ok()
                .filter(|s| (*s as u64) <= p)
                .ok_or_else(|| {
                    format!("DECIMAL scale {s} must be between 0 and the precision {p}")
                })?;
            DataType::Decimal128(p as u8, s)
        }
        T::Varchar(_)
        | T::CharVarying(_)
        | T::Char(_)
        | T::Character(_)
        | T::CharacterVarying(_)
        | T::Nvarchar(_)
        | T::Text
        | T::String(_) => DataType::Utf8,
        T::Bytea | T::Varbinary(_) | T::Binary(_) | T::Blob(_) | T::Bytes(_) => DataType::Binary,
        T::Date => DataType::Date32,
        T::Time(_, _) => DataType::Time64(TimeUnit::Microsecond),
        T::Timestamp(_, tz) => match tz {
            TimezoneInfo::None | TimezoneInfo::WithoutTimeZone => {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
            }
        },
        T::Datetime(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
        T::Custom(name, _) => {
            let n = name.to_string().to_ascii_uppercase();
            match n.as_str() {
                "TIMESTAMP_LTZ" | "TIMESTAMPTZ" => {
                    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
                }
                "TIMESTAMP_NTZ" => DataType::Timestamp(TimeUnit::Microsecond, None),
                "LONG" => DataType::Int64,
                "VARBINARY" | "BYTES" => DataType::Binary,
                _ => return Err(format!("type {n} is not supported")),
            }
        }
        other => {
            return Err(format!(
                "type {other} is not supported (use BOOLEAN, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p, s), VARCHAR, BYTES, DATE, TIME, TIMESTAMP, TIMESTAMP WITH TIME ZONE, ARRAY<T>, MAP<K, V> or ROW<name T, …>)"
            ));
        }
    })
}
