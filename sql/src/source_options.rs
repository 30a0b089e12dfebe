//! The options of `CREATE SOURCE … WITH (…)`: what each means and which fit together.
//! The statement's syntax is read by the parser; the options of a source's registry and
//! key have modules of their own (`registry_options`, `key_options`).

use std::collections::BTreeMap;

use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::job::{KafkaOptions, SourceFormat, StartupMode, TimestampNumbers, UpsertOptions};
use crate::key_options::{Declared, key_option_names, key_options};
use crate::options::{OptionReader, RawOption};
use crate::registry_options::{
    AVRO_OPTIONS, REGISTRY_OPTIONS, RegistryScope, avro_schema, registry_options,
};

/// The bootstrap servers that select the broker embedded in `floe`.
pub const EMBEDDED_BOOTSTRAP: &str = "embedded";

/// The shortest `'lookup.refresh-interval'`, of the job (`SET`) or of an `'upsert-kafka'`
/// source: each refresh reads or indexes a whole lookup table.
pub(crate) const MIN_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

const SOURCE_OPTIONS: &[&str] = &[
    "connector",
    "topic",
    "format",
    "properties.bootstrap.servers",
    "properties.group.id",
    "properties.*",
    "scan.startup.mode",
    "scan.startup.timestamp-millis",
    "scan.batch.records",
    "source.max-record-bytes",
    "lookup.refresh-interval",
    "json.timestamp-number",
    "embedded.*",
];

/// The `WITH` options of `CREATE SOURCE`: the Kafka connection, the value's and key's
/// formats, where to start, and how an `'upsert-kafka'` source is followed as a table.
/// Returns the options and, for `'upsert-kafka'`, its settings as a lookup table.
pub(crate) fn kafka_options(
    what: &str,
    pos: Pos,
    options: Vec<RawOption>,
    declared: &[Declared],
) -> Result<(KafkaOptions, Option<UpsertOptions>)> {
    let mut r = OptionReader::new(what, pos, options)?;
    let upsert = match r.choice("connector", &["kafka", "upsert-kafka"])? {
        Some("upsert-kafka") => Some(upsert_options(&mut r, what, pos)?),
        Some(_) => {
            refuse_for_streams(&mut r, what)?;
            None
        }
        None => {
            return Err(SqlError::new(
                ErrorKind::Option,
                pos,
                format!(
                    "{what} needs 'connector' = 'kafka' (a stream), or 'upsert-kafka' (a \
                     compacted topic read as a lookup table)"
                ),
            ));
        }
    };
    let topic = r.required("topic")?;
    let format = value_format(&mut r, what, pos)?;
    let registry = registry_options(&mut r, what, pos, format, &RegistryScope::value())?;
    let avro_schema = avro_schema(&mut r, what, pos, format, "")?;
    let key = key_options(&mut r, what, pos, &topic, registry.as_ref(), declared)?;
    let startup = startup_mode(&mut r, what, pos)?;
    let batch_records = r
        .count("scan.batch.records")?
        .unwrap_or(8192)
        .clamp(1, 1 << 20) as usize;
    let max_record_bytes = r.size("source.max-record-bytes")?;
    let timestamp_numbers = timestamp_numbers(&mut r)?;
    let mut properties = r.with_prefix("properties.");
    let bootstrap_servers = properties
        .remove("bootstrap.servers")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            SqlError::new(
                ErrorKind::Option,
                pos,
                format!("{what} needs the option 'properties.bootstrap.servers'"),
            )
        })?;
    let group_id = properties.remove("group.id").unwrap_or_default();
    let embedded = embedded_feed(&mut r, what, pos, &bootstrap_servers, upsert.is_some())?;
    let key_names = key_option_names();
    let known: Vec<&str> = SOURCE_OPTIONS
        .iter()
        .chain(REGISTRY_OPTIONS)
        .chain(AVRO_OPTIONS)
        .copied()
        .chain(key_names.iter().map(String::as_str))
        .collect();
    r.finish(&known)?;
    let kafka = KafkaOptions {
        topic,
        bootstrap_servers,
        group_id,
        properties,
        format,
        startup,
        batch_records,
        embedded,
        max_record_bytes,
        timestamp_numbers,
        registry,
        avro_schema,
        key,
    };
    Ok((kafka, upsert))
}

/// `'scan.startup.mode'` and its timestamp.
fn startup_mode(r: &mut OptionReader, what: &str, pos: Pos) -> Result<StartupMode> {
    let modes = [
        "earliest-offset",
        "latest-offset",
        "timestamp",
        "group-offsets",
    ];
    Ok(match r.choice("scan.startup.mode", &modes)? {
        None | Some("group-offsets") if !r.has("scan.startup.timestamp-millis") => {
            if r.has("scan.startup.mode") {
                StartupMode::GroupOffsets
            } else {
                StartupMode::Earliest
            }
        }
        Some("earliest-offset") => StartupMode::Earliest,
        Some("latest-offset") => StartupMode::Latest,
        Some("timestamp") => {
            let ms = r.count("scan.startup.timestamp-millis")?.ok_or_else(|| {
                SqlError::new(
                    ErrorKind::Option,
                    pos,
                    format!(
                        "{what}: 'scan.startup.mode' = 'timestamp' needs 'scan.startup.timestamp-millis'"
                    ),
                )
            })?;
            StartupMode::Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
        }
        _ => {
            return Err(SqlError::new(
                ErrorKind::Option,
                pos,
                format!(
                    "{what}: 'scan.startup.timestamp-millis' is only used with 'scan.startup.mode' = 'timestamp'"
                ),
            ));
        }
    })
}

/// What a JSON number in a `TIMESTAMP` column means (`'json.timestamp-number'`).
fn timestamp_numbers(r: &mut OptionReader) -> Result<TimestampNumbers> {
    let names = ["epoch-millis", "epoch-seconds", "epoch-micros", "error"];
    Ok(match r.choice("json.timestamp-number", &names)? {
        Some("epoch-seconds") => TimestampNumbers::EpochSeconds,
        Some("epoch-micros") => TimestampNumbers::EpochMicros,
        Some("error") => TimestampNumbers::Error,
        _ => TimestampNumbers::EpochMillis,
    })
}

/// The `'embedded.*'` options of a source on the embedded broker, as written (the
/// command line's tooling reads them); None for a source on a broker of its own, whose
/// `'embedded.*'` options are ignored.
fn embedded_feed(
    r: &mut OptionReader,
    what: &str,
    pos: Pos,
    bootstrap_servers: &str,
    upsert: bool,
) -> Result<Option<BTreeMap<String, String>>> {
    let options = r.with_prefix("embedded.");
    if bootstrap_servers != EMBEDDED_BOOTSTRAP {
        return Ok(None);
    }
    if upsert {
        return Err(SqlError::new(
            ErrorKind::Option,
            pos,
            format!(
                "{what}: the embedded broker generates streams only; an 'upsert-kafka' \
                 source reads its table from a broker of its own"
            ),
        ));
    }
    Ok(Some(options))
}

/// The settings of an `'upsert-kafka'` source, refusing the options that do not apply
/// to a topic read as a table.
fn upsert_options(r: &mut OptionReader, what: &str, pos: Pos) -> Result<UpsertOptions> {
    for key in ["scan.startup.mode", "scan.startup.timestamp-millis"] {
        if let Some((_, at)) = r.string_at(key) {
            return Err(SqlError::new(
                ErrorKind::Option,
                at,
                format!(
                    "{what}: '{key}' does not apply to an 'upsert-kafka' source, which is read \
                     from the beginning of its topic (the latest value of each key is the table)"
                ),
            ));
        }
    }
    let mut out = UpsertOptions::default();
    let at = r
        .string_at("lookup.refresh-interval")
        .map_or(pos, |(_, at)| at);
    if let Some(d) = r.duration("lookup.refresh-interval")? {
        if d < MIN_REFRESH_INTERVAL {
            return Err(SqlError::new(
                ErrorKind::Option,
                at,
                format!("{what}: 'lookup.refresh-interval' must be at least 100ms"),
            ));
        }
        out.refresh_interval = d;
    }
    Ok(out)
}

/// Refuses the options of `'upsert-kafka'` sources on a stream.
fn refuse_for_streams(r: &mut OptionReader, what: &str) -> Result<()> {
    if let Some((_, at)) = r.string_at("lookup.refresh-interval") {
        return Err(SqlError::new(
            ErrorKind::Option,
            at,
            format!(
                "{what}: 'lookup.refresh-interval' belongs to 'upsert-kafka' sources (topics \
                 read as lookup tables); a stream's records are read as they come"
            ),
        ));
    }
    Ok(())
}

/// The value's format: `'format'`, or Flink's `'value.format'` (not both).
fn value_format(r: &mut OptionReader, what: &str, pos: Pos) -> Result<SourceFormat> {
    let key = if r.has("value.format") {
        if r.has("format") {
            return Err(SqlError::new(
                ErrorKind::Option,
                pos,
                format!("{what}: give 'format' or 'value.format', not both"),
            ));
        }
        "value.format"
    } else {
        "format"
    };
    match r.choice(key, &SourceFormat::NAMES)?.and_then(SourceFormat::named) {
        Some(f) => Ok(f),
        None => Err(r.misspelled("format").unwrap_or_else(|| {
            SqlError::new(
                ErrorKind::Option,
                pos,
                format!("{what} needs 'format' = 'json', 'avro-confluent', 'protobuf-confluent', 'json-confluent' or 'avro'"),
            )
        })),
    }
}
