use std::collections::BTreeMap;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::registry::RegistryOptions;
use crate::error::Pos;

/// `CREATE SOURCE name (columns) WITH ('connector' = 'kafka', …)`.
#[derive(Debug, Clone)]
pub struct SourceDef {
    /// The name queries use in `FROM`.
    pub name: String,
    /// Where it is declared.
    pub pos: Pos,
    /// Payload and metadata columns, in declared order.
    pub columns: Vec<SourceColumn>,
    /// True when the job declares no payload columns (no column list, or METADATA
    /// columns only): the payload columns come from the writer schema (a registry
    /// source: its subject's latest version at start) and are filled in by
    /// [`SourceDef::take_payload_columns`] before the job is planned.
    pub columns_from_schema: bool,
    /// The version of the writer schema the payload columns were taken from, once they
    /// were (for messages about later versions).
    pub columns_version: Option<u32>,
    /// Connector settings.
    pub kafka: KafkaOptions,
    /// Set for `'connector' = 'upsert-kafka'`: the topic is read as a table (the latest
    /// value of each record key) that INSERTs join their streams with, not as a stream.
    pub upsert: Option<UpsertOptions>,
}

/// How a compacted topic read as a lookup table (`'connector' = 'upsert-kafka'`) is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpsertOptions {
    /// How often the changes read from the topic are swapped in (`'lookup.refresh-interval'`):
    /// each swap indexes the whole table again, so a large table wants a longer interval.
    pub refresh_interval: std::time::Duration,
}

impl Default for UpsertOptions {
    fn default() -> Self {
        Self {
            refresh_interval: std::time::Duration::from_secs(1),
        }
    }
}

impl SourceDef {
    /// The Arrow schema queries see: every column, payload and metadata, in declared order.
    pub fn schema(&self) -> SchemaRef {
        std::sync::Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// Puts `payload` (read from the writer schema) before the declared METADATA
    /// columns, for a source whose columns come from its schema.
    pub fn take_payload_columns(&mut self, payload: Vec<SourceColumn>, version: u32) {
        let metadata = std::mem::take(&mut self.columns);
        self.columns = payload.into_iter().chain(metadata).collect();
        self.columns_version = Some(version);
    }

    /// Whether column `name` is read from the record key (`'key.fields'`).
    pub fn is_key_column(&self, name: &str) -> bool {
        self.kafka
            .key
            .as_ref()
            .is_some_and(|k| k.fields.iter().any(|f| f == name))
    }

    /// The source that reads record keys as its values: its columns are the key
    /// columns named as in the key (without `'key.fields-prefix'`), its format, registry
    /// and schema the key's. None for a source without `'key.format'`.
    pub fn key_source(&self) -> Option<SourceDef> {
        let key = self.kafka.key.as_ref()?;
        let columns = key
            .fields
            .iter()
            .filter_map(|f| self.columns.iter().find(|c| &c.name == f))
            .map(|c| SourceColumn {
                name: c
                    .name
                    .strip_prefix(&key.prefix)
                    .unwrap_or(&c.name)
                    .to_string(),
                metadata: None,
                ..c.clone()
            })
            .collect();
        Some(SourceDef {
            name: format!("{} (key)", self.name),
            pos: self.pos,
            columns,
            columns_from_schema: false,
            columns_version: None,
            kafka: KafkaOptions {
                format: key.format,
                registry: key.registry.clone(),
                avro_schema: key.avro_schema.clone(),
                max_record_bytes: None,
                key: None,
                ..self.kafka.clone()
            },
            upsert: None,
        })
    }

    /// The schema of the payload alone (what the decoder reads from record values).
    pub fn payload_schema(&self) -> SchemaRef {
        std::sync::Arc::new(Schema::new(
            self.columns
                .iter()
                .filter(|c| c.metadata.is_none() && !self.is_key_column(&c.name))
                .map(|c| Field::new(&c.name, c.data_type.clone(), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }
}

/// A column of a source.
#[derive(Debug, Clone)]
pub struct SourceColumn {
    /// Column name.
    pub name: String,
    /// Arrow type the value is decoded into.
    pub data_type: DataType,
    /// False for `NOT NULL` columns: a record without the field cannot be decoded.
    pub nullable: bool,
    /// Set for `METADATA` columns, which come from the Kafka record rather than its value.
    pub metadata: Option<MetadataKey>,
    /// Where it is declared.
    pub pos: Pos,
}

/// Kafka record attributes a source can expose as columns (`METADATA FROM 'offset'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKey {
    /// The topic name.
    Topic,
    /// The partition number.
    Partition,
    /// The record offset.
    Offset,
    /// The record timestamp.
    Timestamp,
    /// The record key.
    Key,
}

impl MetadataKey {
    /// All keys, as written in job files.
    pub const NAMES: [&'static str; 5] = ["topic", "partition", "offset", "timestamp", "key"];

    /// Parses a key as written in `METADATA FROM '…'`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "topic" => Self::Topic,
            "partition" => Self::Partition,
            "offset" => Self::Offset,
            "timestamp" => Self::Timestamp,
            "key" => Self::Key,
            _ => return None,
        })
    }

    /// Whether a column of type `ty` can hold this attribute.
    pub fn accepts(self, ty: &DataType) -> bool {
        match self {
            Self::Topic => matches!(ty, DataType::Utf8),
            Self::Partition => matches!(ty, DataType::Int32 | DataType::Int64),
            Self::Offset => matches!(ty, DataType::Int64),
            Self::Timestamp => matches!(ty, DataType::Timestamp(_, _) | DataType::Int64),
            Self::Key => matches!(ty, DataType::Utf8 | DataType::Binary),
        }
    }
}

/// Payload formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// One JSON object per record value.
    Json,
    /// Avro in the Confluent wire format (magic byte 0, a 4-byte big-endian schema id,
    /// the Avro datum), its writer schemas in a Schema Registry.
    AvroConfluent,
    /// Bare Avro datums, all written with one schema given in the job (`'avro.schema'`
    /// or `'avro.schema-file'`), for topics without a registry.
    Avro,
    /// Protobuf in the Confluent wire format (magic byte 0, the schema id, the message
    /// indexes as zigzag varints, the message), its schemas in a Schema Registry.
    ProtobufConfluent,
    /// JSON in the Confluent wire format (magic byte 0, the schema id, the JSON text),
    /// its JSON Schemas in a Schema Registry.
    JsonConfluent,
}

impl SourceFormat {
    /// Every format, as `'format'` names it.
    pub const NAMES: [&'static str; 5] = [
        "json",
        "avro-confluent",
        "avro",
        "protobuf-confluent",
        "json-confluent",
    ];

    /// The format `'format'` names (one of [`Self::NAMES`]).
    pub fn named(name: &str) -> Option<Self> {
        Some(match name {
            "json" => Self::Json,
            "avro-confluent" => Self::AvroConfluent,
            "avro" => Self::Avro,
            "protobuf-confluent" => Self::ProtobufConfluent,
            "json-confluent" => Self::JsonConfluent,
            _ => return None,
        })
    }

    /// The format's name in `'format'`, which is also the prefix of its registry
    /// options; None for a format without a registry.
    pub fn registry_prefix(self) -> Option<&'static str> {
        match self {
            Self::AvroConfluent => Some("avro-confluent"),
            Self::ProtobufConfluent => Some("protobuf-confluent"),
            Self::JsonConfluent => Some("json-confluent"),
            Self::Json | Self::Avro => None,
        }
    }
}

/// Where a plain `avro` source's writer schema is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvroSchemaSource {
    /// The schema's JSON, written in the job file.
    Inline(String),
    /// A file holding it (read when the job starts).
    File(String),
}

/// What a JSON number in a `TIMESTAMP` column means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampNumbers {
    /// Milliseconds since the epoch (the default: what most producers write).
    #[default]
    EpochMillis,
    /// Seconds since the epoch.
    EpochSeconds,
    /// Microseconds since the epoch.
    EpochMicros,
    /// A number is a `type` bad record: only strings are timestamps.
    Error,
}

/// Where a source starts when no table of the job has committed offsets for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    /// The oldest retained record.
    Earliest,
    /// Only records produced after the job starts.
    Latest,
    /// The first record at or after this time (milliseconds since the epoch).
    Timestamp(i64),
    /// The consumer group's committed offsets, falling back to `auto.offset.reset`.
    GroupOffsets,
}

/// Settings of a Kafka source.
#[derive(Clone)]
pub struct KafkaOptions {
    /// The topic to read.
    pub topic: String,
    /// `properties.bootstrap.servers`, or `embedded` for the built-in broker.
    pub bootstrap_servers: String,
    /// The consumer group (used for assignment and lag monitoring only).
    pub group_id: String,
    /// Every `properties.*` option, passed to librdkafka as is (SASL, SSL, …).
    pub properties: BTreeMap<String, String>,
    /// Payload format.
    pub format: SourceFormat,
    /// Where to start without committed offsets.
    pub startup: StartupMode,
    /// Largest number of records decoded into one Arrow batch.
    pub batch_records: usize,
    /// For a source on the broker embedded in `floe` (`'properties.bootstrap.servers' =
    /// 'embedded'`): its `'embedded.*'` options as written, without the prefix, for the
    /// command line's tooling to read; None for any other broker.
    pub embedded: Option<BTreeMap<String, String>>,
    /// Records larger than this are bad records of kind `too-large`.
    pub max_record_bytes: Option<u64>,
    /// What a JSON number in a `TIMESTAMP` column means (`'json.timestamp-number'`).
    pub timestamp_numbers: TimestampNumbers,
    /// The Schema Registry of a registry format (`'avro-confluent.*'`).
    pub registry: Option<RegistryOptions>,
    /// The writer schema of `'format' = 'avro'`.
    pub avro_schema: Option<AvroSchemaSource>,
    /// Columns read from record keys (`'key.format'`, `'key.fields'`).
    pub key: Option<KeyOptions>,
}

/// How a source reads some of its columns from record keys: Flink SQL's `'key.format'`
/// and `'key.fields'`. Each such column comes from the key only; the value is not
/// asked for it (Flink's `'value.fields-include' = 'EXCEPT_KEY'`).
#[derive(Debug, Clone)]
pub struct KeyOptions {
    /// How keys are decoded.
    pub format: SourceFormat,
    /// The declared columns read from the key, in `'key.fields'` order.
    pub fields: Vec<String>,
    /// `'key.fields-prefix'`: stripped from a column's name to give its field in the key.
    pub prefix: String,
    /// The key format's Schema Registry (`'key.avro-confluent.*'`, or the value's).
    pub registry: Option<RegistryOptions>,
    /// The writer schema of `'key.format' = 'avro'`.
    pub avro_schema: Option<AvroSchemaSource>,
}

impl std::fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaOptions")
            .field("topic", &self.topic)
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("properties", &crate::redact::Redacted(&self.properties))
            .field("format", &self.format)
            .field("startup", &self.startup)
            .field("batch_records", &self.batch_records)
            .field("embedded", &self.embedded)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("timestamp_numbers", &self.timestamp_numbers)
            .field("registry", &self.registry)
            .field("avro_schema", &self.avro_schema)
            .field("key", &self.key)
            .finish()
    }
}

impl KafkaOptions {
    /// True when the source runs against the broker embedded in the `floe` process.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }
}
