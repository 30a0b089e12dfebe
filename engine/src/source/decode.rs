//! Decoding Kafka record values into Arrow batches with a source's declared schema.
//!
//! Records of one partition are gathered into one buffer and decoded by arrow-json in a
//! single pass, straight into Arrow arrays: no per-record `serde_json::Value`. When a
//! pass fails, the records are split in halves and each half decoded again, so a batch
//! with k bad records costs about k·log(n) extra passes over small slices, never a
//! record-by-record decode of the whole batch. Good records always come through; bad
//! ones are returned with their kind and reason, for the tables' policies to handle.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arrow_array::builder::{BinaryBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow_json::ReaderBuilder;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow_select::concat::concat_batches;
use arrow_select::filter::filter_record_batch;
use floe_catalog::TopicPartition;
use floe_sql::job::{
    AvroSchemaSource, MetadataKey, SourceColumn, SourceDef, SourceFormat, SubjectName,
    ViolationKind,
};
use floe_sql::plan::slot_schema;

use tracing::{info, warn};

use super::avro::{AvroPayload, WriterSchemas};
use super::evolution::{SchemaWatch, Verdict};
use super::framing::HEADER_LEN;
use super::framing::schema_id;
use super::json_schema::JsonSchemas;
use super::json_values::JsonValues;
use super::keys::{KeyPlan, decode_keys};
use super::protobuf::ProtobufPayload;
use super::registry::{Lookup, RegisteredSchema, Registry, RegistryError, client_for};
use super::value_failure::ValueFailure;
use crate::error::{EngineError, Result};

/// What the decoder needs to know about a source.
#[derive(Debug, Clone)]
pub struct DecodePlan {
    /// The payload columns, all nullable: NOT NULL is checked after decoding, over the
    /// whole batch at once, so a missing field isolates one record rather than failing all.
    payload: SchemaRef,
    /// How the payload is read and brought to its declared types (numbers in timestamp
    /// columns, rounding of decimals).
    values: JsonValues,
    /// Indices (in `payload`) and names of the payload columns declared NOT NULL.
    required: Vec<(usize, String)>,
    /// The slot schema: the source's columns, then the row column.
    full: SchemaRef,
    /// For each source column: where it comes from.
    columns: Vec<ColumnSource>,
    utf8_keys: bool,
    max_record_bytes: Option<u64>,
    /// How record values are framed and decoded.
    format: Payload,
    /// The schema registry client of a registry format.
    registry: Option<Arc<Registry>>,
    /// How the columns of `'key.fields'` are read from record keys.
    key: Option<Arc<KeyPlan>>,
    /// Writer schemas that add columns end the run (`source::evolution`).
    watch: Option<Arc<SchemaWatch>>,
}

/// How a source's record values are decoded.
#[derive(Debug, Clone)]
enum Payload {
    /// JSON text, by arrow-json; `framed`: behind the Confluent header, its JSON Schema
    /// in a registry (`json-confluent`).
    Json { framed: Option<Arc<JsonSchemas>> },
    /// Avro datums (`avro-confluent`, `avro`).
    Avro(Arc<AvroPayload>),
    /// Protobuf messages (`protobuf-confluent`).
    Protobuf(Arc<ProtobufPayload>),
}

#[derive(Debug, Clone)]
enum ColumnSource {
    Payload(usize),
    Meta(MetadataKey, DataType),
    /// The key plan's column at this index.
    Key(usize),
}

impl DecodePlan {
    /// The plan for `source`; a source in a registry format gets its registry client.
    pub fn new(source: &SourceDef) -> Result<Self> {
        let mut payload_fields = vec![];
        let mut required = vec![];
        let key_fields = source.kafka.key.as_ref().map(|k| k.fields.as_slice());
        let key_index = |name: &str| key_fields.and_then(|f| f.iter().position(|k| k == name));
        let columns = source
            .columns
            .iter()
            .map(|c| match (c.metadata, key_index(&c.name)) {
                (Some(k), _) => ColumnSource::Meta(k, c.data_type.clone()),
                (None, Some(i)) => ColumnSource::Key(i),
                (None, None) => {
                    let i = payload_fields.len();
                    if !c.nullable {
                        required.push((i, c.name.clone()));
                    }
                    payload_fields.push(Field::new(&c.name, c.data_type.clone(), true));
                    ColumnSource::Payload(i)
                }
            })
            .collect();
        let payload = Arc::new(Schema::new(payload_fields));
        let kafka_error = |message| EngineError::Kafka {
            source_name: source.name.clone(),
            message,
        };
        let registry = match &source.kafka.registry {
            Some(options) => Some(client_for(options).map_err(|e| kafka_error(e.to_string()))?),
            None => None,
        };
        let format = payload_format(source, registry.as_ref(), &payload).map_err(kafka_error)?;
        let key = match source.key_source() {
            Some(key_source) => Some(Arc::new(KeyPlan {
                plan: DecodePlan::new(&key_source)?,
                source: key_source,
            })),
            None => None,
        };
        Ok(Self {
            values: JsonValues::new(&payload, source.kafka.timestamp_numbers),
            format,
            payload,
            required,
            full: slot_schema(&source.schema()),
            utf8_keys: source
                .columns
                .iter()
                .any(|c| c.metadata == Some(MetadataKey::Key) && c.data_type == DataType::Utf8),
            max_record_bytes: source.kafka.max_record_bytes,
            columns,
            registry,
            key,
            watch: None,
        })
    }

    /// Makes records whose writer schema adds columns end the run, and records of a
    /// refused writer schema bad records (`source::evolution`).
    pub fn watch_schemas(&mut self, watch: SchemaWatch) {
        self.watch = Some(Arc::new(watch));
    }

    /// What the writer schema of `value` means for the plan: Fits for values without
    /// a registry schema id, or whose schema the format's own precheck will refuse.
    fn verdict(&self, watch: &SchemaWatch, value: &[u8]) -> Result<Verdict, RegistryError> {
        let (Some(registry), Ok(id)) = (&self.registry, schema_id(value)) else {
            return Ok(Verdict::Fits);
        };
        if let Some(v) = watch.known(id) {
            return Ok(v);
        }
        let Lookup::Found(schema) = registry.schema(id)? else {
            return Ok(Verdict::Fits);
        };
        let fields = match &self.format {
            Payload::Json { framed: None } => return Ok(Verdict::Fits),
            Payload::Json { framed: Some(_) } => JsonSchemas::fields_of(&schema),
            Payload::Avro(a) => a.fields_of(&schema),
            Payload::Protobuf(p) => p.fields_of(&schema),
        };
        let Ok(fields) = fields else {
            return Ok(Verdict::Fits);
        };
        let version = registry.version_in(id, watch.subject())?;
        Ok(watch.judge(id, version, &fields))
    }

    /// The counters of lookups waiting for a schema id the registry does not know yet,
    /// of the value's and the key's registries (see [`Registry::unknown_waits`]).
    pub fn unknown_id_waits(&self) -> Vec<Arc<std::sync::atomic::AtomicUsize>> {
        let mut out: Vec<_> = self.registry.iter().map(|r| r.unknown_waits()).collect();
        if let Some(k) = &self.key {
            out.extend(k.plan.unknown_id_waits());
        }
        out
    }

    /// Makes decoding stop waiting for an unavailable schema registry once `stop` is
    /// set (see [`Registry::give_up_when`]).
    pub fn give_up_when(&self, stop: Arc<AtomicBool>) {
        if let Some(k) = &self.key {
            k.plan.give_up_when(stop.clone());
        }
        if let Some(r) = &self.registry {
            r.give_up_when(stop);
        }
    }

    /// Checks a registry or Avro source's declared columns against its writer schema
    /// (a registry source: its subject's latest), and its key columns against the
    /// key's, before any record is read; plain JSON passes.
    pub fn check_schemas(&self, source: &SourceDef) -> Result<()> {
        if let Some(k) = &self.key {
            k.plan.check_schemas(&k.source)?;
        }
        self.check_value_schema(source)
    }

    fn check_value_schema(&self, source: &SourceDef) -> Result<()> {
        let check = |subject: &str| match &self.format {
            Payload::Json { framed: None } => Ok(None),
            Payload::Json { framed: Some(j) } => j.check_latest(subject),
            Payload::Avro(a) => a.check_latest(subject),
            Payload::Protobuf(p) => p.check_latest(subject),
        };
        if matches!(self.format, Payload::Json { framed: None }) {
            return Ok(());
        }
        let (subject, what) = subject_of(source);
        match check(&subject) {
            Ok(Some(version)) => {
                info!(source = %source.name, %subject, version, "declared columns fit the writer schema");
                Ok(())
            }
            Ok(None) => {
                warn!(source = %source.name, %subject, "the schema registry has no schema under this subject yet; each writer schema is checked when its first record arrives");
                Ok(())
            }
            Err(message) => Err(EngineError::Kafka {
                source_name: source.name.clone(),
                message: format!("{what}: {message}"),
            }),
        }
    }

    /// The payload columns of a source that declares none, read from its writer schema
    /// (a registry source: its subject's latest version), in the schema's field order.
    pub fn schema_columns(&self, source: &SourceDef) -> Result<(Vec<SourceColumn>, u32)> {
        let (subject, what) = subject_of(source);
        let fields = match &self.format {
            Payload::Json { framed: None } => Ok(None),
            Payload::Json { framed: Some(j) } => j.latest_fields(&subject),
            Payload::Avro(a) => a.latest_fields(&subject),
            Payload::Protobuf(p) => p.latest_fields(&subject),
        };
        let fail = |message: String| EngineError::Kafka {
            source_name: source.name.clone(),
            message: format!("{what}: {message}"),
        };
        let (fields, version) = fields.map_err(fail)?.ok_or_else(|| {
            fail(
                "the schema registry has no schema under this subject, and the source declares \
                 no columns to read: register the schema first, or declare the columns"
                    .into(),
            )
        })?;
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        info!(source = %source.name, %subject, version, columns = %names.join(", "), "columns taken from the writer schema");
        let columns = fields
            .into_iter()
            .map(|f| SourceColumn {
                name: f.name().clone(),
                data_type: f.data_type().clone(),
                nullable: f.is_nullable(),
                metadata: None,
                pos: source.pos,
            })
            .collect();
        Ok((columns, version))
    }

    /// The schema of decoded batches (the source's columns and the row column).
    pub fn schema(&self) -> &SchemaRef {
        &self.full
    }
}

/// The subject whose latest schema `source` is checked against or takes its columns
/// from (empty for plain Avro), and how errors name it.
fn subject_of(source: &SourceDef) -> (String, String) {
    match &source.kafka.registry {
        Some(options) => {
            let subject = options.subject.subject(&source.kafka.topic);
            let what = format!("subject '{subject}'");
            (subject, what)
        }
        None => (
            String::new(),
            "the writer schema of 'avro.schema'".to_string(),
        ),
    }
}

/// How `source`'s values are decoded into the `payload` columns; a source in a
/// registry format gets its registry client.
fn payload_format(
    source: &SourceDef,
    registry: Option<&Arc<Registry>>,
    payload: &SchemaRef,
) -> Result<Payload, String> {
    let k = &source.kafka;
    let registry = || {
        registry
            .cloned()
            .ok_or_else(|| "the source has no schema registry options".to_string())
    };
    let avro = |schemas| {
        Payload::Avro(Arc::new(AvroPayload::new(
            schemas,
            payload.clone(),
            k.batch_records,
        )))
    };
    Ok(match k.format {
        SourceFormat::Json => Payload::Json { framed: None },
        SourceFormat::JsonConfluent => Payload::Json {
            framed: Some(Arc::new(JsonSchemas::new(registry()?, payload.clone()))),
        },
        SourceFormat::ProtobufConfluent => {
            let record = k.registry.as_ref().and_then(|r| match &r.subject {
                SubjectName::Record(n) | SubjectName::TopicRecord(n) => Some(n.clone()),
                _ => None,
            });
            Payload::Protobuf(Arc::new(ProtobufPayload::new(
                registry()?,
                payload.clone(),
                record,
            )))
        }
        SourceFormat::AvroConfluent => avro(WriterSchemas::Registry(registry()?)),
        SourceFormat::Avro => avro(fixed_avro_schema(k.avro_schema.as_ref())?),
    })
}

/// The writer schema of a plain Avro source.
fn fixed_avro_schema(schema: Option<&AvroSchemaSource>) -> Result<WriterSchemas, String> {
    match schema {
        Some(schema) => {
            let text = match schema {
                AvroSchemaSource::Inline(text) => text.clone(),
                AvroSchemaSource::File(path) => std::fs::read_to_string(path)
                    .map_err(|e| format!("'avro.schema-file' = '{path}': {e}"))?,
            };
            Ok(WriterSchemas::Fixed(Arc::new(RegisteredSchema {
                id: 0,
                text,
                kind: "AVRO".into(),
                version: 1,
                references: vec![],
            })))
        }
        None => Err("'format' = 'avro' has no writer schema".into()),
    }
}

/// Records of one partition: their raw bytes, gathered for decoding and kept so that bad
/// records can be dead-lettered as they arrived.
#[derive(Debug, Default)]
pub struct PendingRecords {
    /// Values, each followed by a newline.
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Offsets of the records, ascending.
    pub offsets: Vec<i64>,
    timestamps: Vec<Option<i64>>,
    keys: Vec<u8>,
    /// `(start, end)` in `keys`; None for a record without a key.
    key_spans: Vec<Option<(usize, usize)>>,
    /// Records without a value.
    missing_value: Vec<bool>,
}

impl PendingRecords {
    /// Number of records gathered.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True when nothing is gathered.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Bytes of payload gathered.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Adds a record.
    pub fn push(
        &mut self,
        offset: i64,
        timestamp: Option<i64>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) {
        if let Some(v) = value {
            self.buf.extend_from_slice(v);
        }
        self.buf.push(b'\n');
        self.ends.push(self.buf.len());
        self.offsets.push(offset);
        self.timestamps.push(timestamp);
        self.missing_value.push(value.is_none());
        self.key_spans.push(key.map(|k| {
            let start = self.keys.len();
            self.keys.extend_from_slice(k);
            (start, self.keys.len())
        }));
    }

    /// Where record `i` starts in the gathered buffer.
    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] }
    }

    /// The value of record `i` (None when the record had none).
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        (!self.missing_value[i]).then(|| &self.buf[self.start(i)..self.ends[i] - 1])
    }

    /// The key of record `i`.
    pub fn key(&self, i: usize) -> Option<&[u8]> {
        self.key_spans[i].map(|(s, e)| &self.keys[s..e])
    }

    /// The Kafka timestamp of record `i`, in milliseconds.
    pub fn timestamp(&self, i: usize) -> Option<i64> {
        self.timestamps[i]
    }

    /// The newest Kafka timestamp (epoch milliseconds) of the gathered records.
    pub fn newest_timestamp(&self) -> Option<i64> {
        self.timestamps.iter().flatten().max().copied()
    }

    /// The bytes of records `from..to`, newline-separated, for one decoder pass.
    fn span(&self, from: usize, to: usize) -> &[u8] {
        &self.buf[self.start(from)..self.ends[to - 1]]
    }
}

/// A record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// Its index among the batch's records.
    pub index: usize,
    /// What kind of bad.
    pub kind: ViolationKind,
    /// Why.
    pub message: String,
}

/// The outcome of decoding one partition's records.
#[derive(Debug)]
pub struct Decoded {
    /// The good records' rows, with [`floe_sql::ROW_COLUMN`] naming their record index.
    pub batch: RecordBatch,
    /// The bad records, by index.
    pub bad: Vec<BadRecord>,
}

fn decode_bytes(schema: &SchemaRef, bytes: &[u8], rows: usize) -> Result<RecordBatch, String> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.max(1))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = decoder.decode(rest).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        rest = &rest[n..];
        if decoder.len() > rows {
            return Err("the record holds more than one JSON value".into());
        }
    }
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err("the record holds more than one JSON value".into());
    }
    if decoder.has_partial_record() {
        return Err("truncated JSON".into());
    }
    let batch = decoder.flush().map_err(|e| e.to_string())?;
    let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(schema.clone()));
    if batch.num_rows() != rows {
        return Err(format!(
            "expected {rows} JSON object(s), found {}",
            batch.num_rows()
        ));
    }
    Ok(batch)
}

/// Decodes JSON records `from..to` into the declared payload columns; `framed`
/// records (prechecked) have their Confluent headers blanked out of a copy first.
fn decode_json(
    plan: &DecodePlan,
    recs: &PendingRecords,
    from: usize,
    to: usize,
    framed: bool,
) -> Result<RecordBatch, String> {
    let (span, rows) = (recs.span(from, to), to - from);
    let blanked;
    let bytes = if framed {
        let mut copy = span.to_vec();
        let base = recs.start(from);
        for i in from..to {
            let at = recs.start(i) - base;
            if let Some(header) = copy.get_mut(at..at + HEADER_LEN) {
                header.fill(b' ');
            }
        }
        blanked = copy;
        &blanked[..]
    } else {
        span
    };
    let batch = decode_bytes(&plan.values.wire, bytes, rows)?;
    plan.values.finish(&plan.payload, bytes, batch, |schema| {
        decode_bytes(schema, bytes, rows)
    })
}

/// Decodes records `from..to` in the source's format; a failure of one record says
/// what kind of bad record it is.
fn decode_payload(
    plan: &DecodePlan,
    recs: &PendingRecords,
    from: usize,
    to: usize,
) -> Result<RecordBatch, BadRecord> {
    let values = || (from..to).map(|i| recs.value(i).unwrap_or_default());
    let failed = |f: ValueFailure| BadRecord {
        index: from,
        kind: f.kind,
        message: f.message,
    };
    match &plan.format {
        Payload::Json { framed } => {
            decode_json(plan, recs, from, to, framed.is_some()).map_err(|message| {
                let value = recs.value(from).unwrap_or_default();
                let skip = if framed.is_some() { HEADER_LEN } else { 0 };
                classify(value.get(skip..).unwrap_or_default(), message)
            })
        }
        Payload::Avro(avro) => avro.decode(values()).map_err(failed),
        Payload::Protobuf(proto) => proto.decode(values()).map_err(failed),
    }
}

/// Names the kind of a record that failed to decode alone: not one well-formed JSON
/// object is `malformed`; a well-formed object whose fields do not fit is `type`.
fn classify(value: &[u8], message: String) -> BadRecord {
    if let Err(e) = std::str::from_utf8(value) {
        return BadRecord {
            index: 0,
            kind: ViolationKind::Malformed,
            message: format!("the value is not valid UTF-8: {e}"),
        };
    }
    let well_formed = serde_json::from_slice::<serde::de::IgnoredAny>(value).is_ok();
    let is_object = value
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let kind = if well_formed && is_object {
        ViolationKind::Type
    } else {
        ViolationKind::Malformed
    };
    let message = match (well_formed, is_object) {
        (true, false) => "the value is JSON but not an object".to_string(),
        _ => message.trim_start_matches("Json error: ").to_string(),
    };
    BadRecord {
        index: 0,
        kind,
        message,
    }
}

/// Decodes records `from..to`, splitting around failures; pushes the good parts (with
/// their first record index) and the bad records.
fn decode_range(
    plan: &DecodePlan,
    recs: &PendingRecords,
    from: usize,
    to: usize,
    good: &mut Vec<(usize, RecordBatch)>,
    bad: &mut Vec<BadRecord>,
) {
    if from >= to {
        return;
    }
    match decode_payload(plan, recs, from, to) {
        Ok(b) => good.push((from, b)),
        Err(failure) if to - from == 1 => bad.push(BadRecord {
            index: from,
            ..failure
        }),
        Err(_) => {
            let mid = from + (to - from) / 2;
            decode_range(plan, recs, from, mid, good, bad);
            decode_range(plan, recs, mid, to, good, bad);
        }
    }
}

/// Records that are bad before any decoding: no value, too large, a key that is not
/// UTF-8, an Avro value whose framing or schema is wrong. An error is a schema registry
/// that refuses to answer.
fn precheck(
    plan: &DecodePlan,
    tp: &TopicPartition,
    recs: &PendingRecords,
    i: usize,
) -> Result<Option<BadRecord>> {
    let bad = |kind, message: String| {
        Ok(Some(BadRecord {
            index: i,
            kind,
            message,
        }))
    };
    let Some(value) = recs.value(i) else {
        return bad(ViolationKind::Malformed, "the record has no value".into());
    };
    if let Some(max) = plan.max_record_bytes
        && value.len() as u64 > max
    {
        return bad(
            ViolationKind::TooLarge,
            format!(
                "the value has {} bytes, more than 'source.max-record-bytes' ({max})",
                value.len()
            ),
        );
    }
    if let Some(watch) = &plan.watch {
        let verdict = plan
            .verdict(watch, value)
            .map_err(|e| EngineError::Decode {
                tp: tp.clone(),
                offset: recs.offsets[i],
                message: e.to_string(),
            })?;
        match verdict {
            Verdict::Fits => {}
            Verdict::Refused(reason) => return bad(ViolationKind::Type, reason),
            Verdict::Adds(change) => return Err(EngineError::SchemaChanged(Box::new(change))),
        }
    }
    let failure = match &plan.format {
        Payload::Json { framed: None } => None,
        Payload::Json { framed: Some(j) } => j.precheck(value).transpose(),
        Payload::Avro(a) => a.precheck(value).transpose(),
        Payload::Protobuf(p) => p.precheck(value).transpose(),
    };
    match failure {
        Some(Ok(f)) => return bad(f.kind, f.message),
        Some(Err(e)) => {
            return Err(EngineError::Decode {
                tp: tp.clone(),
                offset: recs.offsets[i],
                message: e.to_string(),
            });
        }
        None => {}
    }
    let text = match &plan.format {
        Payload::Json { framed } => Some(if framed.is_some() {
            value.get(HEADER_LEN..).unwrap_or_default()
        } else {
            value
        }),
        _ => None,
    };
    if text.is_some_and(|t| t.iter().all(u8::is_ascii_whitespace)) {
        return bad(ViolationKind::Malformed, "the record value is empty".into());
    }
    if plan.utf8_keys
        && let Some(Err(e)) = recs.key(i).map(std::str::from_utf8)
    {
        return bad(
            ViolationKind::Malformed,
            format!("the key is not valid UTF-8: {e}"),
        );
    }
    Ok(None)
}

/// Decodes the gathered records of `tp`: the good ones into one batch with the slot
/// schema, the bad ones into [`BadRecord`]s.
pub fn decode(plan: &DecodePlan, tp: &TopicPartition, recs: &PendingRecords) -> Result<Decoded> {
    let n = recs.len();
    let mut bad = vec![];
    let mut good = vec![];
    // Runs of records between pre-checked bad ones, each decoded in as few passes as it can.
    let mut run_start = 0;
    for i in 0..n {
        if let Some(b) = precheck(plan, tp, recs, i)? {
            decode_range(plan, recs, run_start, i, &mut good, &mut bad);
            bad.push(b);
            run_start = i + 1;
        }
    }
    decode_range(plan, recs, run_start, n, &mut good, &mut bad);

    let internal = |e: arrow_schema::ArrowError| EngineError::Decode {
        tp: tp.clone(),
        offset: recs.offsets.first().copied().unwrap_or(-1),
        message: e.to_string(),
    };
    // Row numbers of the decoded rows, in record order.
    let mut rows: Vec<u32> = Vec::with_capacity(n);
    for (first, b) in &good {
        rows.extend((*first..*first + b.num_rows()).map(|r| r as u32));
    }
    let payload = match good.len() {
        1 => good
            .pop()
            .map(|(_, b)| b)
            .unwrap_or_else(|| RecordBatch::new_empty(plan.payload.clone())),
        _ => concat_batches(&plan.payload, good.iter().map(|(_, b)| b)).map_err(internal)?,
    };
    let rows = UInt32Array::from(rows);

    // NOT NULL payload columns, checked over the whole batch.
    let (payload, rows) = match missing_required(plan, &payload) {
        None => (payload, rows),
        Some(missing) => {
            for (r, is_missing) in missing.iter().enumerate() {
                if is_missing == Some(true) {
                    let column = plan
                        .required
                        .iter()
                        .find(|(c, _)| payload.column(*c).is_null(r))
                        .map_or("?", |(_, name)| name.as_str());
                    bad.push(BadRecord {
                        index: rows.value(r) as usize,
                        kind: ViolationKind::NotNull,
                        message: format!("field '{column}' is missing or null, but the source declares it NOT NULL"),
                    });
                }
            }
            let keep = arrow_arith::boolean::not(&missing).map_err(internal)?;
            let payload = filter_record_batch(&payload, &keep).map_err(internal)?;
            let rows = arrow_select::filter::filter(&rows, &keep).map_err(internal)?;
            (payload, as_rows(rows.as_ref()))
        }
    };
    let (payload, rows, keys) = match &plan.key {
        Some(k) => {
            let (payload, rows, keys) = decode_keys(&k.plan, tp, recs, payload, rows, &mut bad)?;
            (payload, rows, Some(keys))
        }
        None => (payload, rows, None),
    };
    bad.sort_by_key(|b| b.index);

    let mut cols: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len() + 1);
    for c in &plan.columns {
        cols.push(match (c, &keys) {
            (ColumnSource::Payload(i), _) => payload.column(*i).clone(),
            (ColumnSource::Meta(key, ty), _) => meta_column(*key, ty, tp, recs, &rows),
            (ColumnSource::Key(i), Some(keys)) => keys.column(*i).clone(),
            (ColumnSource::Key(_), None) => {
                return Err(EngineError::Decode {
                    tp: tp.clone(),
                    offset: recs.offsets.first().copied().unwrap_or(-1),
                    message: "a key column without a key plan".into(),
                });
            }
        });
    }
    cols.push(Arc::new(rows));
    let batch = RecordBatch::try_new(plan.full.clone(), cols).map_err(internal)?;
    Ok(Decoded { batch, bad })
}

/// `array` as record indexes (the row column's type; empty if it is not that).
pub(super) fn as_rows(array: &dyn Array) -> UInt32Array {
    array
        .as_any()
        .downcast_ref::<UInt32Array>()
        .cloned()
        .unwrap_or_else(|| UInt32Array::from(Vec::<u32>::new()))
}

/// Rows where a NOT NULL payload column is null, or None when there are none.
fn missing_required(plan: &DecodePlan, payload: &RecordBatch) -> Option<BooleanArray> {
    let mut mask: Option<BooleanArray> = None;
    for (c, _) in &plan.required {
        let col = payload.column(*c);
        if col.null_count() == 0 {
            continue;
        }
        let nulls = arrow_arith::boolean::is_null(col).ok()?;
        mask = Some(match mask {
            None => nulls,
            Some(m) => arrow_arith::boolean::or(&m, &nulls).ok()?,
        });
    }
    mask
}

fn meta_column(
    key: MetadataKey,
    ty: &DataType,
    tp: &TopicPartition,
    recs: &PendingRecords,
    rows: &UInt32Array,
) -> ArrayRef {
    let n = rows.len();
    let idx = || rows.values().iter().map(|r| *r as usize);
    match key {
        MetadataKey::Topic => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            tp.topic.as_str(),
            n,
        ))),
        MetadataKey::Partition => match ty {
            DataType::Int64 => Arc::new(Int64Array::from_value(i64::from(tp.partition), n)),
            _ => Arc::new(Int32Array::from_value(tp.partition, n)),
        },
        MetadataKey::Offset => {
            Arc::new(Int64Array::from_iter_values(idx().map(|i| recs.offsets[i])))
        }
        MetadataKey::Timestamp => match ty {
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
                TimestampMicrosecondArray::from_iter(
                    idx().map(|i| recs.timestamp(i).map(|ms| ms.saturating_mul(1000))),
                )
                .with_timezone_opt(tz.clone()),
            ),
            _ => Arc::new(Int64Array::from_iter(idx().map(|i| recs.timestamp(i)))),
        },
        MetadataKey::Key => match ty {
            DataType::Utf8 => {
                let mut b = StringBuilder::new();
                for i in idx() {
                    // Keys that are not UTF-8 were set aside by `precheck`.
                    b.append_option(recs.key(i).and_then(|k| std::str::from_utf8(k).ok()));
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = BinaryBuilder::new();
                for i in idx() {
                    b.append_option(recs.key(i));
                }
                Arc::new(b.finish())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_sql::{EnvVariables, parse_job};

    fn plan() -> DecodePlan {
        let job = parse_job(
            "t.sql",
            "CREATE CATALOG c WITH ('type'='sql','uri'='sqlite://x.db','warehouse'='file:///tmp/w');
             CREATE SOURCE s (id BIGINT NOT NULL, name VARCHAR, amount DECIMAL(6, 2), p INT METADATA FROM 'partition', o BIGINT METADATA FROM 'offset')
               WITH ('connector'='kafka','topic'='t','format'='json','properties.bootstrap.servers'='x:1',
                     'source.max-record-bytes'='64');
             CREATE TABLE c.n.t (id BIGINT);
             INSERT INTO c.n.t SELECT id FROM s;",
            &EnvVariables,
        )
        .expect("job parses");
        DecodePlan::new(&job.sources[0]).expect("plan")
    }

    fn recs(values: &[&str]) -> PendingRecords {
        let mut r = PendingRecords::default();
        for (i, v) in values.iter().enumerate() {
            r.push(100 + i as i64, Some(5), None, Some(v.as_bytes()));
        }
        r
    }

    fn column<T: Clone + 'static>(b: &RecordBatch, name: &str) -> Option<T> {
        b.column_by_name(name)?
            .as_any()
            .downcast_ref::<T>()
            .cloned()
    }

    #[test]
    fn decodes_payload_and_metadata() -> Result<()> {
        let tp = TopicPartition::new("t", 3);
        let d = decode(
            &plan(),
            &tp,
            &recs(&[r#"{"id":1,"name":"a"}"#, r#"{"id":2}"#]),
        )?;
        assert!(d.bad.is_empty());
        assert_eq!(d.batch.num_rows(), 2);
        let offsets = column::<Int64Array>(&d.batch, "o").map(|a| a.values().to_vec());
        assert_eq!(offsets, Some(vec![100, 101]));
        Ok(())
    }

    #[test]
    fn bad_records_are_isolated_with_their_kind() -> Result<()> {
        let tp = TopicPartition::new("t", 0);
        let cases: [(&[u8], ViolationKind); 10] = [
            (b"{\"id\":1,\"name\":\"\xff\"}", ViolationKind::Malformed),
            (br#"{"id":"x"}"#, ViolationKind::Type),
            (br#"{"id":1,"amount":123456789}"#, ViolationKind::Type),
            (br#"{"name":"no id"}"#, ViolationKind::NotNull),
            (br#"{"id":null}"#, ViolationKind::NotNull),
            (br#"{"id":1"#, ViolationKind::Malformed),
            (br#"{"id":1}{"id":2}"#, ViolationKind::Malformed),
            (b"  ", ViolationKind::Malformed),
            (b"[1, 2]", ViolationKind::Malformed),
            (
                br#"{"id":1,"name":"far too long for the limit of sixty-four bytes, by quite a margin"}"#,
                ViolationKind::TooLarge,
            ),
        ];
        for (bad, kind) in cases {
            let mut r = recs(&[r#"{"id":1}"#]);
            r.push(101, None, None, Some(bad));
            r.push(102, None, None, Some(br#"{"id":3}"#));
            r.push(103, None, None, Some(br#"{"id":4}"#));
            let d = decode(&plan(), &tp, &r)?;
            let bad = String::from_utf8_lossy(bad);
            assert_eq!(d.bad.len(), 1, "{bad}: {:?}", d.bad);
            assert_eq!(
                (d.bad[0].index, d.bad[0].kind),
                (1, kind),
                "{bad}: {:?}",
                d.bad
            );
            // The good records still come through, with their record numbers.
            let rows =
                column::<UInt32Array>(&d.batch, floe_sql::ROW_COLUMN).map(|a| a.values().to_vec());
            assert_eq!(rows, Some(vec![0, 2, 3]), "{bad}");
            let offsets = column::<Int64Array>(&d.batch, "o").map(|a| a.values().to_vec());
            assert_eq!(offsets, Some(vec![100, 102, 103]), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn a_record_without_value_is_malformed_and_kept_raw() -> Result<()> {
        let tp = TopicPartition::new("t", 0);
        let mut r = recs(&[r#"{"id":1}"#]);
        r.push(101, None, Some(b"k"), None);
        let d = decode(&plan(), &tp, &r)?;
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].kind, ViolationKind::Malformed);
        assert_eq!(r.value(1), None);
        assert_eq!(r.key(1), Some(&b"k"[..]));
        assert_eq!(r.value(0), Some(&br#"{"id":1}"#[..]));
        Ok(())
    }

    #[test]
    fn random_bytes_never_panic_and_every_record_is_accounted_for() -> Result<()> {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        let mut rng = SmallRng::seed_from_u64(3);
        let tp = TopicPartition::new("t", 0);
        let plan = plan();
        for round in 0..200 {
            let mut r = PendingRecords::default();
            let n = rng.random_range(1..40);
            for i in 0..n {
                let len = rng.random_range(0..120);
                let mut v: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                if i % 3 == 0 {
                    v = format!(r#"{{"id":{i}}}"#).into_bytes();
                }
                r.push(i, None, None, Some(&v));
            }
            let d = decode(&plan, &tp, &r)?;
            assert_eq!(
                d.batch.num_rows() + d.bad.len(),
                n as usize,
                "round {round}"
            );
        }
        Ok(())
    }

    fn values_plan(options: &str) -> DecodePlan {
        let job = parse_job(
            "t.sql",
            &format!(
                "CREATE CATALOG c WITH ('type'='sql','uri'='sqlite://x.db','warehouse'='file:///tmp/w');
                 CREATE SOURCE s (id BIGINT NOT NULL, ts TIMESTAMP, amount DECIMAL(6, 2))
                   WITH ('connector'='kafka','topic'='t','format'='json','properties.bootstrap.servers'='x:1'{options});
                 CREATE TABLE c.n.t (id BIGINT);
                 INSERT INTO c.n.t SELECT id FROM s;"
            ),
            &EnvVariables,
        )
        .expect("job parses");
        DecodePlan::new(&job.sources[0]).expect("plan")
    }

    fn micros(d: &Decoded) -> Vec<Option<i64>> {
        column::<TimestampMicrosecondArray>(&d.batch, "ts")
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }

    #[test]
    fn numbers_in_timestamp_columns_are_epoch_millis_and_strings_keep_their_precision() -> Result<()>
    {
        let tp = TopicPartition::new("t", 0);
        let r = recs(&[
            r#"{"id":1,"ts":1700000000123}"#,
            r#"{"id":2,"ts":"2026-11-23T10:00:00.000001"}"#,
            r#"{"id":3,"ts":"2026-11-23T10:00:00+02:00"}"#,
            r#"{"id":4,"ts":null}"#,
        ]);
        let d = decode(&values_plan(""), &tp, &r)?;
        assert!(d.bad.is_empty(), "{:?}", d.bad);
        let at = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
                .ok()
        };
        assert_eq!(
            micros(&d),
            vec![
                Some(1_700_000_000_123_000),
                at("2026-11-23T10:00:00.000001"),
                at("2026-11-23T08:00:00.0"),
                None
            ]
        );
        let seconds = decode(
            &values_plan(", 'json.timestamp-number'='epoch-seconds'"),
            &tp,
            &recs(&[r#"{"id":1,"ts":1700000000}"#]),
        )?;
        assert_eq!(micros(&seconds), vec![Some(1_700_000_000_000_000)]);
        // Batches without numbers take the single-pass path and stay exact.
        let strings = decode(
            &values_plan(""),
            &tp,
            &recs(&[r#"{"id":2,"ts":"2026-11-23T10:00:00.000001"}"#]),
        )?;
        assert_eq!(micros(&strings), vec![at("2026-11-23T10:00:00.000001")]);
        Ok(())
    }

    #[test]
    fn a_number_in_a_timestamp_column_can_be_refused() -> Result<()> {
        let tp = TopicPartition::new("t", 0);
        let r = recs(&[
            r#"{"id":1,"ts":"2026-11-23T10:00:00Z"}"#,
            r#"{"id":2,"ts":1700000000123}"#,
            r#"{"id":3}"#,
        ]);
        let d = decode(&values_plan(", 'json.timestamp-number'='error'"), &tp, &r)?;
        assert_eq!(d.bad.len(), 1, "{:?}", d.bad);
        assert_eq!((d.bad[0].index, d.bad[0].kind), (1, ViolationKind::Type));
        assert!(d.bad[0].message.contains("'ts'"), "{}", d.bad[0].message);
        assert_eq!(d.batch.num_rows(), 2);
        Ok(())
    }

    #[test]
    fn extra_decimal_digits_round_half_away_from_zero() -> Result<()> {
        let tp = TopicPartition::new("t", 0);
        let r = recs(&[
            r#"{"id":1,"amount":1.235}"#,
            r#"{"id":2,"amount":"-1.235"}"#,
            r#"{"id":3,"amount":1.2349}"#,
            r#"{"id":4,"amount":9999.995}"#,
            r#"{"id":5,"amount":12}"#,
        ]);
        let d = decode(&values_plan(""), &tp, &r)?;
        assert_eq!(d.bad.len(), 1, "{:?}", d.bad);
        assert_eq!((d.bad[0].index, d.bad[0].kind), (3, ViolationKind::Type));
        let amounts = column::<arrow_array::Decimal128Array>(&d.batch, "amount")
            .map(|a| a.iter().collect::<Vec<_>>());
        assert_eq!(
            amounts,
            Some(vec![Some(124), Some(-124), Some(123), Some(1200)])
        );
        Ok(())
    }
}
