//! Avro record values in the Confluent wire format, decoded with arrow-avro straight
//! into the source's declared payload columns.
//!
//! ```text
//!  value ─▶ framing (magic 0, schema id) ──bad──▶ malformed record
//!        ─▶ writer schema by id (registry, cached) ──404──▶ malformed record
//!        ─▶ reader for that writer (cached): the declared columns cut out of the writer's
//!           record (`reader_schema`), each decoded type checked against the declared
//!           one (`conform::fits`) ──does not fit──▶ `type` record, naming field and id
//!        ─▶ consecutive records of one schema id decoded in one arrow-avro pass,
//!           then cast column by column to the declared types
//! ```
//!
//! A decoder that met a bad datum may hold half a row, so a failed pass is thrown away
//! and its records decoded again in halves (as for JSON): k bad records cost about
//! k·log n extra passes. A decoder that finished a pass cleanly is kept for the next
//! batch of its schema id.

mod columns;
mod reader_schema;

#[cfg(test)]
mod tests;
mod types;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
use arrow_schema::{Field, SchemaRef};

use super::conform::{conform, fits};
use super::framing::{self, schema_id};
use super::registry::{Lookup, RegisteredSchema, Registry, RegistryError, START_CHECK_WAIT};
use super::runs::decode_in_runs;
use super::value_failure::ValueFailure;
use crate::schema_format::SchemaFormat;

/// How one writer schema is read into the declared columns.
#[derive(Debug)]
struct Reader {
    writer: String,
    reader: String,
}

/// Where a source's writer schemas come from.
#[derive(Debug)]
pub enum WriterSchemas {
    /// By the id each value carries, from a Schema Registry (`avro-confluent`).
    Registry(Arc<Registry>),
    /// One schema for every value; values are bare datums (plain `avro`).
    Fixed(Arc<RegisteredSchema>),
}

/// The id plain Avro values are decoded under (they carry none).
const FIXED_ID: u32 = 0;

/// The Avro side of a source's decode plan.
#[derive(Debug)]
pub struct AvroPayload {
    schemas: WriterSchemas,
    /// The declared payload columns (all nullable; NOT NULL is checked after decoding).
    payload: SchemaRef,
    /// Largest number of records decoded at once (the size kept decoders are built for).
    batch_records: usize,
    /// Per writer schema id: how it is read, or why it cannot be.
    readers: Mutex<HashMap<u32, Result<Arc<Reader>, ValueFailure>>>,
    /// Decoders that finished their last pass cleanly, by schema id.
    idle: Mutex<HashMap<u32, Decoder>>,
}

impl AvroPayload {
    /// Decoding of `payload` columns with writer schemas from `schemas`.
    pub fn new(schemas: WriterSchemas, payload: SchemaRef, batch_records: usize) -> Self {
        Self {
            schemas,
            payload,
            batch_records: batch_records.max(1),
            readers: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
        }
    }

    fn latest(&self, subject: &str) -> Result<Option<Arc<RegisteredSchema>>, String> {
        Ok(match &self.schemas {
            WriterSchemas::Fixed(schema) => Some(schema.clone()),
            WriterSchemas::Registry(registry) => registry
                .latest(subject, START_CHECK_WAIT)
                .map_err(|e| e.to_string())?
                .map(Arc::new),
        })
    }

    /// Decodes `values` (all prechecked) into one batch of the declared payload columns.
    pub fn decode<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<RecordBatch, ValueFailure> {
        if let WriterSchemas::Fixed(_) = self.schemas {
            // arrow-avro decodes framed values only: bare datums get the header of id 0,
            // all in one buffer.
            let (mut buf, mut ends) = (Vec::new(), Vec::new());
            for v in values {
                buf.extend_from_slice(&[0u8; framing::HEADER_LEN]);
                buf.extend_from_slice(v);
                ends.push(buf.len());
            }
            let starts = std::iter::once(0).chain(ends.iter().copied());
            let framed = starts.zip(ends.iter()).map(|(s, e)| &buf[s..*e]);
            return self.decode_framed(framed);
        }
        self.decode_framed(values)
    }

    fn decode_framed<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<RecordBatch, ValueFailure> {
        let key = |v: &'a [u8]| Ok((schema_id(v).map_err(ValueFailure::malformed)?, v));
        decode_in_runs(values, &self.payload, key, |id, run| {
            self.decode_run(id, run)
        })
    }

    /// The reader of schema `id`, built on first use.
    fn reader(&self, id: u32) -> Result<Result<Arc<Reader>, ValueFailure>, RegistryError> {
        if let Some(r) = self.readers.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(r);
        }
        let lookup = match &self.schemas {
            WriterSchemas::Fixed(schema) => Lookup::Found(schema.clone()),
            WriterSchemas::Registry(registry) => registry.schema(id)?,
        };
        let built = match lookup {
            // Not remembered: the registry may know the id when it is asked next.
            Lookup::Unknown => {
                return Ok(Err(ValueFailure::malformed(format!(
                    "schema id {id} is not in the schema registry"
                ))));
            }
            Lookup::Found(schema) => build_reader(&schema, &self.payload).map(Arc::new),
        };
        if let Ok(mut m) = self.readers.lock() {
            m.insert(id, built.clone());
        }
        Ok(built)
    }

    /// Decodes records that all carry schema `id`.
    fn decode_run(&self, id: u32, values: &[&[u8]]) -> Result<RecordBatch, ValueFailure> {
        let reader = self
            .readers
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
            .unwrap_or_else(|| {
                Err(ValueFailure::malformed(format!(
                    "schema id {id} was not looked up"
                )))
            })?;
        let kept = self.idle.lock().ok().and_then(|mut m| m.remove(&id));
        let mut decoder = match kept {
            Some(d) if values.len() <= d.batch_size() => d,
            _ => decoder(id, &reader, values.len().max(self.batch_records))
                .map_err(ValueFailure::malformed)?,
        };
        for v in values {
            let room = decoder.capacity();
            let used = decoder
                .decode(v)
                .map_err(|e| ValueFailure::malformed(e.to_string()))?;
            if used != v.len() || decoder.capacity() + 1 != room {
                return Err(ValueFailure::malformed(format!(
                    "the Avro datum of schema id {id} ends after {} of its {} bytes",
                    used.saturating_sub(framing::HEADER_LEN),
                    v.len() - framing::HEADER_LEN
                )));
            }
        }
        let batch = decoder
            .flush()
            .map_err(|e| ValueFailure::malformed(e.to_string()))?;
        if let Ok(mut m) = self.idle.lock() {
            m.insert(id, decoder);
        }
        match batch {
            Some(b) => conform(&b, &self.payload),
            None => Ok(RecordBatch::new_empty(self.payload.clone())),
        }
    }
}

/// The reader of `schema` for the declared columns, checked by building a decoder once.
fn build_reader(schema: &RegisteredSchema, payload: &SchemaRef) -> Result<Reader, ValueFailure> {
    let id = schema.id;
    if schema.kind != "AVRO" {
        return Err(ValueFailure::malformed(format!(
            "schema id {id} is a {} schema, not Avro",
            schema.kind
        )));
    }
    let writer: serde_json::Value = serde_json::from_str(&schema.text).map_err(|e| {
        ValueFailure::malformed(format!("schema id {id} is not valid Avro JSON: {e}"))
    })?;
    let (reader, sources) = reader_schema::reader_schema(&writer, payload)
        .map_err(|e| ValueFailure::type_error(format!("schema id {id}: {e}")))?;
    let r = Reader {
        writer: schema.text.clone(),
        reader,
    };
    let probe = decoder(id, &r, 1).map_err(|e| {
        ValueFailure::type_error(format!(
            "schema id {id} cannot be read into the declared columns: {e}"
        ))
    })?;
    let decoded = probe.schema();
    for ((declared, got), source) in payload.fields().iter().zip(decoded.fields()).zip(&sources) {
        if source.is_some() && !fits(got.data_type(), declared.data_type()) {
            return Err(ValueFailure::type_error(format!(
                "field '{}' is {} in the writer schema (id {id}, version {}), but the source declares {} {}",
                source.as_deref().unwrap_or_default(),
                got.data_type(),
                schema.version,
                declared.name(),
                declared.data_type()
            )));
        }
    }
    Ok(r)
}

fn decoder(id: u32, r: &Reader, batch_size: usize) -> Result<Decoder, String> {
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
    store
        .set(Fingerprint::Id(id), AvroSchema::new(r.writer.clone()))
        .map_err(|e| e.to_string())?;
    ReaderBuilder::new()
        .with_batch_size(batch_size)
        .with_writer_schema_store(store)
        .with_reader_schema(AvroSchema::new(r.reader.clone()))
        .build_decoder()
        .map_err(|e| e.to_string())
}

impl SchemaFormat for AvroPayload {
    /// Why `value` cannot be decoded, found without decoding it: its framing, a schema
    /// id the registry does not have, a writer schema that does not fit the declared
    /// columns. An error is a registry that refuses to answer (the job stops).
    fn precheck(&self, value: &[u8]) -> Result<Option<ValueFailure>, RegistryError> {
        if let WriterSchemas::Fixed(_) = self.schemas {
            return Ok(self.reader(FIXED_ID)?.err());
        }
        let id = match schema_id(value) {
            Ok(id) => id,
            Err(message) => return Ok(Some(ValueFailure::malformed(message))),
        };
        Ok(self.reader(id)?.err())
    }

    /// Checks the declared columns against the latest schema of `subject` (a plain Avro
    /// source: its one schema): Ok(None) when the subject has no schema yet,
    /// Ok(Some(version)) when it fits, Err with the field, both types and the version
    /// when it does not.
    fn check_latest(&self, subject: &str) -> Result<Option<u32>, String> {
        let Some(schema) = self.latest(subject)? else {
            return Ok(None);
        };
        build_reader(&schema, &self.payload).map_err(|f| f.message)?;
        Ok(Some(schema.version))
    }

    /// The columns of the latest schema of `subject` (a plain Avro source: of its one
    /// schema) and its version, for a source that declares none; None when the
    /// subject has no schema yet.
    fn latest_fields(&self, subject: &str) -> Result<Option<(Vec<Field>, u32)>, String> {
        let Some(schema) = self.latest(subject)? else {
            return Ok(None);
        };
        Ok(Some((self.fields_of(&schema)?, schema.version)))
    }

    /// The columns a source that declares none takes from writer schema `schema`.
    fn fields_of(&self, schema: &RegisteredSchema) -> Result<Vec<Field>, String> {
        let writer: serde_json::Value = serde_json::from_str(&schema.text)
            .map_err(|e| format!("schema id {} is not valid JSON: {e}", schema.id))?;
        columns::writer_fields(&writer)
            .map_err(|e| format!("{e} (schema id {}, version {})", schema.id, schema.version))
    }

    fn decode_binary(
        &self,
        values: &mut dyn Iterator<Item = &[u8]>,
    ) -> Option<Result<arrow_array::RecordBatch, ValueFailure>> {
        Some(Self::decode(self, values))
    }
}
