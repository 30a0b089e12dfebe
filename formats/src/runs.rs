//! Decoding records in runs: consecutive values written with the same writer schema
//! (or Protobuf message) are decoded together, one decoder pass per run, and the runs'
//! batches concatenated in record order.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrow_select::concat::concat_batches;

use super::value_failure::ValueFailure;

/// Splits `values` into runs of equal `key` (which also gives the part of the value
/// to decode), decodes each run with `decode` and returns one batch of `schema`.
pub fn decode_in_runs<'a, K: PartialEq>(
    values: impl IntoIterator<Item = &'a [u8]>,
    schema: &SchemaRef,
    key: impl Fn(&'a [u8]) -> Result<(K, &'a [u8]), ValueFailure>,
    mut decode: impl FnMut(K, &[&'a [u8]]) -> Result<RecordBatch, ValueFailure>,
) -> Result<RecordBatch, ValueFailure> {
    let mut batches = vec![];
    let mut run: Vec<&'a [u8]> = vec![];
    let mut run_key: Option<K> = None;
    for v in values {
        let (k, body) = key(v)?;
        if run_key.as_ref().is_some_and(|r| *r != k)
            && let Some(done) = run_key.take()
        {
            batches.push(decode(done, &run)?);
            run.clear();
        }
        run_key = Some(k);
        run.push(body);
    }
    if let Some(k) = run_key {
        batches.push(decode(k, &run)?);
    }
    match batches.len() {
        0 => Ok(RecordBatch::new_empty(schema.clone())),
        1 => Ok(batches.remove(0)),
        _ => concat_batches(schema, &batches).map_err(|e| ValueFailure::malformed(e.to_string())),
    }
}
