//! What JSON values mean in columns where arrow-json's reading is not what users expect.
//!
//! - **Numbers in `TIMESTAMP` columns** are epoch time in the unit the source's
//!   `'json.timestamp-number'` option names: `epoch-millis` by default (what Kafka, Debezium
//!   and most producers write), `epoch-seconds`, `epoch-micros`, or `error` (a `type` bad
//!   record). arrow-json alone would take a number in the column's own unit
//!   (microseconds), so epoch milliseconds would become dates in January 1970.
//!   Numbers are rare where strings are the norm, so a batch is checked cheaply for a
//!   number after such a field name first; only then is it decoded a second time with
//!   millisecond columns, and a row whose two readings are the same raw value is a number
//!   (a string's microsecond reading is about a thousand times its millisecond one; the
//!   two agree only at the epoch itself, where every unit means the same instant).
//! - **Extra fraction digits of a `DECIMAL`** round half away from zero, as SQL engines
//!   do (`12.345` into `DECIMAL(10, 2)` is `12.35`), instead of being cut off: the column
//!   is read with one more digit of scale and rounded on that digit. A value that rounds
//!   past the precision is a `type` bad record. `DECIMAL(38, s)` has no digit to spare
//!   and keeps arrow-json's truncation.
//! - **A `TIMESTAMP` (without time zone) string with an offset** (`…T10:00:00+02:00`)
//!   is the instant it names, stored as its UTC wall-clock time (`08:00:00`), as
//!   arrow-json reads it; a string without an offset is taken as written.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, TimestampMicrosecondType, TimestampMillisecondType};
use arrow_array::{Array, ArrayRef, Decimal128Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use floe_sql::job::TimestampNumbers;
use memchr::memmem::Finder;

/// How a source's payload is read and then brought to its declared types.
#[derive(Debug, Clone)]
pub struct JsonValues {
    /// The schema arrow-json decodes with: decimals with one more digit of scale.
    pub wire: SchemaRef,
    /// The wire schema with timestamp columns in milliseconds (the second reading).
    millis: SchemaRef,
    /// Timestamp columns: index and a searcher for the quoted field name, built once.
    timestamps: Vec<(usize, Finder<'static>)>,
    /// Decimal columns: index, declared precision and scale.
    decimals: Vec<(usize, u8, i8)>,
    numbers: TimestampNumbers,
}

impl JsonValues {
    /// The reading of `payload` (the declared payload columns).
    pub fn new(payload: &Schema, numbers: TimestampNumbers) -> Self {
        let mut timestamps = vec![];
        let mut decimals = vec![];
        let mut wire = vec![];
        let mut millis = vec![];
        for (i, f) in payload.fields().iter().enumerate() {
            let (w, m) = match f.data_type() {
                DataType::Timestamp(_, tz) => {
                    let quoted = format!("\"{}\"", f.name());
                    timestamps.push((i, Finder::new(quoted.as_bytes()).into_owned()));
                    let ms = DataType::Timestamp(TimeUnit::Millisecond, tz.clone());
                    (f.data_type().clone(), ms)
                }
                DataType::Decimal128(p, s) if *p < 38 => {
                    decimals.push((i, *p, *s));
                    let t = DataType::Decimal128(p + 1, s + 1);
                    (t.clone(), t)
                }
                other => (other.clone(), other.clone()),
            };
            wire.push(Field::new(f.name(), w, true));
            millis.push(Field::new(f.name(), m, true));
        }
        Self {
            wire: Arc::new(Schema::new(wire)),
            millis: Arc::new(Schema::new(millis)),
            timestamps,
            decimals,
            numbers,
        }
    }

    /// Brings `batch` (decoded from `bytes` with [`Self::wire`]) to the declared
    /// `payload` schema; `decode` decodes `bytes` again with another schema.
    pub fn finish(
        &self,
        payload: &SchemaRef,
        bytes: &[u8],
        batch: RecordBatch,
        decode: impl Fn(&SchemaRef) -> Result<RecordBatch, String>,
    ) -> Result<RecordBatch, String> {
        if self.timestamps.is_empty() && self.decimals.is_empty() {
            return Ok(batch);
        }
        let mut columns = batch.columns().to_vec();
        if self
            .timestamps
            .iter()
            .any(|(_, name)| number_after(bytes, name))
        {
            let millis = decode(&self.millis)?;
            for (i, _) in &self.timestamps {
                let name = payload.field(*i).name();
                columns[*i] = self.timestamp_numbers(name, &columns[*i], millis.column(*i))?;
            }
        }
        for (i, p, s) in &self.decimals {
            let name = payload.field(*i).name();
            columns[*i] = round_decimal(name, &columns[*i], *p, *s)?;
        }
        RecordBatch::try_new(payload.clone(), columns).map_err(|e| e.to_string())
    }

    /// The timestamp column read as microseconds, with every number (found by comparing
    /// it with the millisecond reading) taken in the configured unit.
    fn timestamp_numbers(
        &self,
        name: &str,
        micros: &ArrayRef,
        millis: &ArrayRef,
    ) -> Result<ArrayRef, String> {
        let us = micros.as_primitive::<TimestampMicrosecondType>();
        let ms = millis.as_primitive::<TimestampMillisecondType>();
        let scale = match self.numbers {
            TimestampNumbers::EpochSeconds => 1_000_000,
            TimestampNumbers::EpochMillis => 1_000,
            TimestampNumbers::EpochMicros | TimestampNumbers::Error => 1,
        };
        let mut out = Vec::with_capacity(us.len());
        for r in 0..us.len() {
            if us.is_null(r) {
                out.push(None);
                continue;
            }
            let (u, m) = (us.value(r), ms.value(r));
            if u != m || u == 0 {
                out.push(Some(u));
                continue;
            }
            if matches!(self.numbers, TimestampNumbers::Error) {
                return Err(format!(
                    "field '{name}' is the number {u}; the source's 'json.timestamp-number' is \
                     'error', so TIMESTAMP fields must be strings"
                ));
            }
            let v = u.checked_mul(scale).ok_or_else(|| {
                format!("field '{name}': the number {u} is out of the TIMESTAMP range")
            })?;
            out.push(Some(v));
        }
        let tz = match micros.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        Ok(Arc::new(
            TimestampMicrosecondArray::from(out).with_timezone_opt(tz),
        ))
    }
}

/// True when a JSON number follows the field name that `quoted` finds (`"name"`)
/// somewhere in `bytes`: `"name"`, blanks, `:`, blanks, then a digit or a minus sign.
fn number_after(bytes: &[u8], quoted: &Finder<'_>) -> bool {
    let len = quoted.needle().len();
    quoted.find_iter(bytes).any(|at| {
        let mut rest = bytes[at + len..]
            .iter()
            .skip_while(|b| b.is_ascii_whitespace());
        rest.next() == Some(&b':')
            && rest
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| b.is_ascii_digit() || *b == b'-')
    })
}

/// A decimal column read with one more digit of scale, rounded half away from zero to
/// `scale`; a value that no longer fits `precision` is an error naming the field.
fn round_decimal(
    name: &str,
    wide: &ArrayRef,
    precision: u8,
    scale: i8,
) -> Result<ArrayRef, String> {
    let wide = wide.as_primitive::<Decimal128Type>();
    let limit = 10i128.pow(u32::from(precision));
    let mut out = Vec::with_capacity(wide.len());
    for r in 0..wide.len() {
        if wide.is_null(r) {
            out.push(None);
            continue;
        }
        let x = wide.value(r);
        let (q, rem) = (x / 10, x % 10);
        let v = if rem >= 5 {
            q + 1
        } else if rem <= -5 {
            q - 1
        } else {
            q
        };
        if v.abs() >= limit {
            return Err(format!(
                "field '{name}' does not fit DECIMAL({precision}, {scale}) once rounded"
            ));
        }
        out.push(Some(v));
    }
    let array = Decimal128Array::from(out)
        .with_precision_and_scale(precision, scale)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_numbers_after_a_field_name() {
        let name = &Finder::new(b"\"ts\"");
        assert!(number_after(br#"{"id":1,"ts":1700000000000}"#, name));
        assert!(number_after(br#"{"ts" :  -5}"#, name));
        assert!(!number_after(br#"{"ts":"2026-11-23T10:00:00Z"}"#, name));
        assert!(!number_after(br#"{"tsx":5,"ts":null}"#, name));
    }

    #[test]
    fn rounds_half_away_from_zero_and_checks_the_precision() {
        let wide: ArrayRef = Arc::new(
            Decimal128Array::from(vec![
                Some(12345),
                Some(-12345),
                Some(12344),
                None,
                Some(99995),
            ])
            .with_precision_and_scale(5, 3)
            .expect("decimal"),
        );
        let err = round_decimal("amount", &wide, 4, 2).expect_err("99.995 overflows (4, 2)");
        assert!(err.contains("amount"), "{err}");
        let ok = round_decimal("amount", &wide.slice(0, 4), 4, 2).expect("rounds");
        let ok = ok.as_primitive::<Decimal128Type>();
        assert_eq!(
            ok.iter().collect::<Vec<_>>(),
            vec![Some(1235), Some(-1235), Some(1234), None]
        );
    }
}
