//! How a source's records are decoded: the plan built once per source from its
//! columns, format, registry and key options, and the columns a source that declares
//! none takes from its writer schema.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use floe_sql::job::{
    AvroSchemaSource, MetadataKey, SourceColumn, SourceDef, SourceFormat, SubjectName,
};
use floe_sql::plan::slot_schema;
use tracing::{info, warn};

use crate::avro::{AvroPayload, WriterSchemas};
use crate::error::{FormatError, Result};
use crate::evolution::{SchemaWatch, Verdict};
use crate::framing::schema_id;
use crate::json_schema::JsonSchemas;
use crate::json_values::JsonValues;
use crate::protobuf::ProtobufPayload;
use crate::registry::{Lookup, RegisteredSchema, Registry, RegistryError, client_for};
use crate::schema_format::SchemaFormat;

/// What the decoder needs to know about a source.
#[derive(Debug, Clone)]
pub struct DecodePlan {
    /// The payload columns, all nullable: NOT NULL is checked after decoding, over the
    /// whole batch at once, so a missing field isolates one record rather than failing all.
    pub(crate) payload: SchemaRef,
    /// How the payload is read and brought to its declared types (numbers in timestamp
    /// columns, rounding of decimals).
    pub(crate) values: JsonValues,
    /// Indices (in `payload`) and names of the payload columns declared NOT NULL.
    pub(crate) required: Vec<(usize, String)>,
    /// The slot schema: the source's columns, then the row column.
    pub(crate) full: SchemaRef,
    /// For each source column: where it comes from.
    pub(crate) columns: Vec<ColumnSource>,
    pub(crate) utf8_keys: bool,
    pub(crate) max_record_bytes: Option<u64>,
    /// How record values are framed and decoded.
    pub(crate) format: Payload,
    /// The schema registry client of a registry format.
    pub(crate) registry: Option<Arc<Registry>>,
    /// How the columns of `'key.fields'` are read from record keys.
    pub(crate) key: Option<Arc<KeyPlan>>,
    /// Writer schemas that add columns end the run (`source::evolution`).
    pub(crate) watch: Option<Arc<SchemaWatch>>,
}

/// How a source's record values are decoded.
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    /// JSON text, by arrow-json.
    Json,
    /// Values bound to writer schemas (`avro-confluent`, `avro`, `protobuf-confluent`,
    /// `json-confluent`).
    Schema(Arc<dyn SchemaFormat>),
}

#[derive(Debug, Clone)]
pub(crate) enum ColumnSource {
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
        let kafka_error = |message| FormatError::Source {
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
    pub(crate) fn verdict(
        &self,
        watch: &SchemaWatch,
        value: &[u8],
    ) -> Result<Verdict, RegistryError> {
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
            Payload::Json => return Ok(Verdict::Fits),
            Payload::Schema(f) => f.fields_of(&schema),
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
        let Payload::Schema(format) = &self.format else {
            return Ok(());
        };
        let (subject, what) = subject_of(source);
        match format.check_latest(&subject) {
            Ok(Some(version)) => {
                info!(source = %source.name, %subject, version, "declared columns fit the writer schema");
                Ok(())
            }
            Ok(None) => {
                warn!(source = %source.name, %subject, "the schema registry has no schema under this subject yet; each writer schema is checked when its first record arrives");
                Ok(())
            }
            Err(message) => Err(FormatError::Source {
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
            Payload::Json => Ok(None),
            Payload::Schema(f) => f.latest_fields(&subject),
        };
        let fail = |message: String| FormatError::Source {
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
        Payload::Schema(Arc::new(AvroPayload::new(
            schemas,
            payload.clone(),
            k.batch_records,
        )))
    };
    Ok(match k.format {
        SourceFormat::Json => Payload::Json,
        SourceFormat::JsonConfluent => {
            Payload::Schema(Arc::new(JsonSchemas::new(registry()?, payload.clone())))
        }
        SourceFormat::ProtobufConfluent => {
            let record = k.registry.as_ref().and_then(|r| match &r.subject {
                SubjectName::Record(n) | SubjectName::TopicRecord(n) => Some(n.clone()),
                _ => None,
            });
            Payload::Schema(Arc::new(ProtobufPayload::new(
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

/// The decoding of record keys: the plan of a source whose values are the keys.
#[derive(Debug)]
pub struct KeyPlan {
    /// How the keys are decoded.
    pub plan: DecodePlan,
    /// The source whose values are the keys ([`SourceDef::key_source`]).
    pub source: SourceDef,
}

/// The key columns of a source that takes its columns from its schemas: the fields of
/// the key's writer schema (a registry key: its subject's latest) that `'key.fields'`
/// names, behind `'key.fields-prefix'`, in that order. `value` are the columns taken
/// from the value's schema: a key column may not share a name with one of them.
pub fn key_columns_from_schema(
    source: &SourceDef,
    value: &[SourceColumn],
) -> Result<Vec<SourceColumn>> {
    let (Some(key), Some(key_source)) = (source.kafka.key.as_ref(), source.key_source()) else {
        return Ok(vec![]);
    };
    let (fields, version) = DecodePlan::new(&key_source)?.schema_columns(&key_source)?;
    let fail = |message: String| FormatError::Source {
        source_name: source.name.clone(),
        message,
    };
    let mut out = vec![];
    for name in &key.fields {
        let field = name.strip_prefix(key.prefix.as_str()).unwrap_or(name);
        let Some(f) = fields.iter().find(|f| f.name == field) else {
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            return Err(fail(format!(
                "'key.fields' names '{name}', but version {version} of the key's schema has no \
                 field '{field}' (its fields: {})",
                names.join(", ")
            )));
        };
        if value.iter().any(|c| &c.name == name) {
            return Err(fail(format!(
                "column '{name}' is both a key column ('key.fields') and a field of the value's \
                 schema; set 'key.fields-prefix' to tell them apart"
            )));
        }
        out.push(SourceColumn {
            name: name.clone(),
            ..f.clone()
        });
    }
    Ok(out)
}
