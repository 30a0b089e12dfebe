//! Which values an INSERT converts to a column's type without a `CAST`.
//!
//! As in Flink SQL, conversion is implicit only within a family of types: numbers into
//! numbers, text into text, timestamps into timestamps (and a date into a timestamp).
//! Anything across families (`VARCHAR` into `DATE`, a number into `VARCHAR`, a timestamp
//! into `DATE`) must be written as a `CAST`, so that a parse that can fail per row, or a
//! loss of information, is a visible decision in the job file and not a surprise in the
//! dead-letter table.

use arrow_schema::DataType;

#[derive(Debug, PartialEq, Eq)]
enum Family {
    Null,
    Boolean,
    Number,
    Text,
    Binary,
    Date,
    Time,
    Timestamp,
    Other,
}

fn family(t: &DataType) -> Family {
    use DataType as D;
    match t {
        D::Null => Family::Null,
        D::Boolean => Family::Boolean,
        t if t.is_numeric() => Family::Number,
        D::Utf8 | D::LargeUtf8 | D::Utf8View => Family::Text,
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => Family::Binary,
        D::Date32 | D::Date64 => Family::Date,
        D::Time32(_) | D::Time64(_) => Family::Time,
        D::Timestamp(..) => Family::Timestamp,
        _ => Family::Other,
    }
}

/// True when a value of type `from` goes into a column of type `to` without a CAST.
/// Nested values convert part by part: a ROW's fields by name.
pub fn converts_implicitly(from: &DataType, to: &DataType) -> bool {
    use DataType as D;
    match (from, to) {
        (D::List(a) | D::LargeList(a), D::List(b)) => {
            return converts_implicitly(a.data_type(), b.data_type());
        }
        (D::Map(a, _), D::Map(b, _)) => return converts_implicitly(a.data_type(), b.data_type()),
        (D::Struct(a), D::Struct(b)) => {
            return a.len() == b.len()
                && b.iter().all(|fb| {
                    a.iter()
                        .find(|fa| fa.name() == fb.name())
                        .is_some_and(|fa| converts_implicitly(fa.data_type(), fb.data_type()))
                });
        }
        _ => {}
    }
    let (f, t) = (family(from), family(to));
    from == to
        || f == Family::Null
        || (f == t && f != Family::Other)
        || (f == Family::Date && t == Family::Timestamp)
}

/// The SQL name of an Arrow type, for messages.
pub fn sql_name(t: &DataType) -> String {
    use DataType as D;
    match t {
        D::Boolean => "BOOLEAN".into(),
        D::Int8 => "TINYINT".into(),
        D::Int16 => "SMALLINT".into(),
        D::Int32 => "INT".into(),
        D::Int64 => "BIGINT".into(),
        D::Float32 => "FLOAT".into(),
        D::Float64 => "DOUBLE".into(),
        D::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        D::Utf8 | D::LargeUtf8 | D::Utf8View => "VARCHAR".into(),
        D::Binary | D::LargeBinary | D::BinaryView => "BYTES".into(),
        D::Date32 | D::Date64 => "DATE".into(),
        D::Time32(_) | D::Time64(_) => "TIME".into(),
        D::Timestamp(_, None) => "TIMESTAMP".into(),
        D::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE".into(),
        D::List(e) | D::LargeList(e) => format!("ARRAY<{}>", sql_name(e.data_type())),
        D::Map(entries, _) => match entries.data_type() {
            D::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                sql_name(kv[0].data_type()),
                sql_name(kv[1].data_type())
            ),
            other => other.to_string(),
        },
        D::Struct(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", f.name(), sql_name(f.data_type())))
                .collect();
            format!("ROW<{}>", fields.join(", "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::TimeUnit;

    #[test]
    fn only_within_a_family() {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        assert!(converts_implicitly(&DataType::Int32, &DataType::Int64));
        assert!(converts_implicitly(
            &DataType::Float64,
            &DataType::Decimal128(12, 2)
        ));
        assert!(converts_implicitly(&DataType::Date32, &ts));
        assert!(converts_implicitly(&DataType::Null, &DataType::Date32));
        assert!(!converts_implicitly(&DataType::Utf8, &DataType::Date32));
        assert!(!converts_implicitly(&DataType::Int64, &DataType::Utf8));
        assert!(!converts_implicitly(&ts, &DataType::Date32));
        let row =
            |ty: DataType| DataType::Struct(vec![arrow_schema::Field::new("qty", ty, true)].into());
        let lines = |ty: DataType| crate::list_of(row(ty), true);
        assert!(converts_implicitly(
            &lines(DataType::Int32),
            &lines(DataType::Int64)
        ));
        assert!(!converts_implicitly(
            &lines(DataType::Utf8),
            &lines(DataType::Int64)
        ));
        assert_eq!(sql_name(&lines(DataType::Int32)), "ARRAY<ROW<qty INT>>");
    }
}
