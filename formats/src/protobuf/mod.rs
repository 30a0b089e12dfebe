//! Protobuf record values in the Confluent wire format (`'format' =
//! 'protobuf-confluent'`), decoded into the source's declared payload columns.
//!
//! ```text
//!  value ─▶ framing (magic 0, schema id, message-index path) ──bad──▶ malformed record
//!        ─▶ schema by id (registry, cached; imports fetched as its references),
//!           compiled by protox ──404, not Protobuf, does not compile──▶ malformed record
//!        ─▶ plan for (id, path): each declared column's field, its type checked against
//!           the declared one ──does not fit──▶ `type` record, naming field and id
//!        ─▶ consecutive records of one (id, path) walked into Arrow builders (`wire`),
//!           then cast column by column to the declared types
//! ```
//!
//! Nested messages are read into ROW columns field by field name, repeated fields into
//! ARRAY columns (packed or not), map fields into MAP columns (`plan`). A field absent
//! from a message reads as its default (proto3's zero values) unless it has presence
//! (`optional`, a message, a oneof member), which reads as null; an absent repeated or
//! map field is empty. A declared column the message does not have is null; a field
//! nobody declared is skipped.

mod columns;
mod plan;
mod schema;

#[cfg(test)]
mod tests;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::{Field, SchemaRef};
use prost_reflect::MessageDescriptor;

use super::conform::conform;
use super::framing::{message_path, schema_id};
use super::registry::{Lookup, RegisteredSchema, Registry, RegistryError, START_CHECK_WAIT};
use super::runs::decode_in_runs;
use super::value_failure::ValueFailure;
use crate::schema_format::SchemaFormat;
use plan::{MessagePlan, plan};
use schema::CompiledSchema;

/// How deep imports of imports are followed.
const MAX_IMPORT_DEPTH: usize = 16;

/// How one message of one schema is read.
#[derive(Debug)]
struct Reader {
    plan: MessagePlan,
}

type ReaderKey = (u32, Vec<u32>);

/// The Protobuf side of a source's decode plan.
#[derive(Debug)]
pub struct ProtobufPayload {
    registry: Arc<Registry>,
    /// The declared payload columns (all nullable: NOT NULL is checked after decoding).
    payload: SchemaRef,
    /// The message the source reads when checked at start (`'…record-name'`); the
    /// schema's first message when None.
    record_name: Option<String>,
    compiled: Mutex<HashMap<u32, Result<Arc<CompiledSchema>, ValueFailure>>>,
    readers: Mutex<HashMap<ReaderKey, Result<Arc<Reader>, ValueFailure>>>,
}

impl ProtobufPayload {
    /// Decoding of `payload` columns with schemas from `registry`.
    pub fn new(registry: Arc<Registry>, payload: SchemaRef, record_name: Option<String>) -> Self {
        Self {
            registry,
            payload,
            record_name,
            compiled: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
        }
    }

    /// The message the source reads in `schema`.
    fn message_of(&self, schema: &RegisteredSchema) -> Result<MessageDescriptor, String> {
        let compiled = self
            .compile(schema)
            .map_err(|e| e.to_string())?
            .map_err(|f| f.message)?;
        compiled.message_named(self.record_name.as_deref())
    }

    /// The message the source reads in the latest schema of `subject`.
    fn latest_message(
        &self,
        subject: &str,
    ) -> Result<Option<(MessageDescriptor, RegisteredSchema)>, String> {
        let latest = self
            .registry
            .latest(subject, START_CHECK_WAIT)
            .map_err(|e| e.to_string())?;
        let Some(latest) = latest else {
            return Ok(None);
        };
        Ok(Some((self.message_of(&latest)?, latest)))
    }

    /// Decodes `values` (all prechecked) into one batch of the declared payload columns.
    pub fn decode<'a>(
        &self,
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<RecordBatch, ValueFailure> {
        let key = |v: &'a [u8]| key_of(v).map(|(k, start)| (k, &v[start..]));
        decode_in_runs(values, &self.payload, key, |k, run| self.decode_run(k, run))
    }

    /// Decodes messages that were all written as message `key`.
    fn decode_run(&self, key: ReaderKey, messages: &[&[u8]]) -> Result<RecordBatch, ValueFailure> {
        let reader = self
            .readers
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
            .unwrap_or_else(|| {
                Err(ValueFailure::malformed(format!(
                    "schema id {} was not looked up",
                    key.0
                )))
            })?;
        let mut columns = wire::Columns::new(&reader.plan, messages.len());
        for m in messages {
            columns.push(m).map_err(|e| {
                ValueFailure::malformed(format!(
                    "the Protobuf message ({}, schema id {}) is malformed: {e}",
                    reader.plan.message, key.0
                ))
            })?;
        }
        let natural = columns.finish().map_err(ValueFailure::malformed)?;
        conform(&natural, &self.payload)
    }

    /// The reader of message `key`, built on first use.
    fn reader(&self, key: ReaderKey) -> Result<Result<Arc<Reader>, ValueFailure>, RegistryError> {
        if let Some(r) = self.readers.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(r);
        }
        // A schema that failed (unknown for now, or not compiling) is remembered, when at
        // all, by `compiled`.
        let compiled = match self.compiled(key.0)? {
            Ok(c) => c,
            Err(failure) => return Ok(Err(failure)),
        };
        let built = compiled
            .message_at(&key.1)
            .map_err(|e| ValueFailure::malformed(format!("schema id {}: {e}", key.0)))
            .and_then(|message| {
                plan(&message, &self.payload, &format!("id {}", key.0))
                    .map_err(ValueFailure::type_error)
            })
            .map(|plan| Arc::new(Reader { plan }));
        if let Ok(mut m) = self.readers.lock() {
            m.insert(key, built.clone());
        }
        Ok(built)
    }

    /// Schema `id`, compiled on first use.
    fn compiled(
        &self,
        id: u32,
    ) -> Result<Result<Arc<CompiledSchema>, ValueFailure>, RegistryError> {
        if let Some(c) = self.compiled.lock().ok().and_then(|m| m.get(&id).cloned()) {
            return Ok(c);
        }
        let built = match self.registry.schema(id)? {
            // Not remembered: the registry may know the id when it is asked next.
            Lookup::Unknown => {
                return Ok(Err(ValueFailure::malformed(format!(
                    "schema id {id} is not in the schema registry"
                ))));
            }
            Lookup::Found(s) => self.compile(&s)?,
        };
        if let Ok(mut m) = self.compiled.lock() {
            m.insert(id, built.clone());
        }
        Ok(built)
    }

    /// Compiles `s` with its imports, fetched from the registry.
    fn compile(
        &self,
        s: &RegisteredSchema,
    ) -> Result<Result<Arc<CompiledSchema>, ValueFailure>, RegistryError> {
        let id = s.id;
        let bad = |e: String| ValueFailure::malformed(format!("schema id {id}: {e}"));
        if s.kind != "PROTOBUF" {
            return Ok(Err(bad(format!("it is a {} schema, not Protobuf", s.kind))));
        }
        let mut imports = HashMap::new();
        if let Err(e) = self.fetch_imports(s, &mut imports, &mut HashSet::new(), 0)? {
            return Ok(Err(bad(e)));
        }
        Ok(schema::compile(&s.text, &imports)
            .map(Arc::new)
            .map_err(bad))
    }

    /// The schemas `s` imports, and theirs, by import name.
    fn fetch_imports(
        &self,
        s: &RegisteredSchema,
        out: &mut HashMap<String, String>,
        seen: &mut HashSet<(String, u32)>,
        depth: usize,
    ) -> Result<Result<(), String>, RegistryError> {
        for r in &s.references {
            if !seen.insert((r.subject.clone(), r.version)) {
                continue;
            }
            if depth >= MAX_IMPORT_DEPTH {
                return Ok(Err(format!(
                    "its imports nest deeper than {MAX_IMPORT_DEPTH}"
                )));
            }
            let Some(imported) = self.registry.version(&r.subject, r.version)? else {
                return Ok(Err(format!(
                    "it imports '{}', but the registry has no version {} of subject '{}'",
                    r.name, r.version, r.subject
                )));
            };
            if let Err(e) = self.fetch_imports(&imported, out, seen, depth + 1)? {
                return Ok(Err(e));
            }
            out.insert(r.name.clone(), imported.text);
        }
        Ok(Ok(()))
    }
}

/// The (schema id, message path) of a framed value and where its message starts.
fn key_of(value: &[u8]) -> Result<(ReaderKey, usize), ValueFailure> {
    let id = schema_id(value).map_err(ValueFailure::malformed)?;
    let (path, start) = message_path(value).map_err(ValueFailure::malformed)?;
    Ok(((id, path), start))
}

impl SchemaFormat for ProtobufPayload {
    /// Why `value` cannot be decoded, found without decoding it: its framing, a schema
    /// id the registry does not have, a message whose fields do not fit the declared
    /// columns. An error is a registry that refuses to answer (the job stops).
    fn precheck(&self, value: &[u8]) -> Result<Option<ValueFailure>, RegistryError> {
        let key = match key_of(value) {
            Ok((key, _)) => key,
            Err(f) => return Ok(Some(f)),
        };
        Ok(self.reader(key)?.err())
    }

    /// Checks the declared columns against the latest schema of `subject` (its message
    /// named by the record name, or its first): Ok(None) when the subject has no schema
    /// yet, Ok(Some(version)) when it fits, Err naming field, types and version if not.
    fn check_latest(&self, subject: &str) -> Result<Option<u32>, String> {
        let Some((message, latest)) = self.latest_message(subject)? else {
            return Ok(None);
        };
        let what = format!("id {}, version {}", latest.id, latest.version);
        plan(&message, &self.payload, &what)?;
        Ok(Some(latest.version))
    }

    /// The columns of the latest schema of `subject` (its message named by the record
    /// name, or its first) and its version, for a source that declares none; None
    /// when the subject has no schema yet.
    fn latest_fields(&self, subject: &str) -> Result<Option<(Vec<Field>, u32)>, String> {
        let latest = self
            .registry
            .latest(subject, START_CHECK_WAIT)
            .map_err(|e| e.to_string())?;
        let Some(latest) = latest else {
            return Ok(None);
        };
        Ok(Some((self.fields_of(&latest)?, latest.version)))
    }

    /// The columns a source that declares none takes from writer schema `schema` (its
    /// message named by the record name, or its first).
    fn fields_of(&self, schema: &RegisteredSchema) -> Result<Vec<Field>, String> {
        let message = self.message_of(schema)?;
        columns::message_fields(&message)
            .map_err(|e| format!("{e} (schema id {}, version {})", schema.id, schema.version))
    }

    fn decode_binary(
        &self,
        values: &mut dyn Iterator<Item = &[u8]>,
    ) -> Option<Result<arrow_array::RecordBatch, ValueFailure>> {
        Some(Self::decode(self, values))
    }
}
