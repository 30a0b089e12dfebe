//! The registry options of `CREATE SOURCE` (`avro-confluent.*`, `protobuf-confluent.*`,
//! `json-confluent.*`: the same settings under the format's name), read into
//! [`RegistryOptions`], and the `avro.*` options of plain Avro. Names follow Flink SQL's
//! `avro-confluent` format where Flink has them.

use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::job::{AvroSchemaSource, RegistryOptions, SourceFormat, SubjectName};
use crate::options::OptionReader;

/// The options of plain Avro.
pub(crate) const AVRO_OPTIONS: &[&str] = &["avro.schema", "avro.schema-file"];

/// The writer schema of a plain `avro` source; None for other formats (whose `avro.*`
/// options are then refused). `at` is where the options start: empty for the value,
/// `key.` for the key (`'key.avro.schema'`).
pub(crate) fn avro_schema(
    r: &mut OptionReader,
    what: &str,
    pos: Pos,
    format: SourceFormat,
    at: &str,
) -> Result<Option<AvroSchemaSource>> {
    let err = |message: String| SqlError::new(ErrorKind::Option, pos, message);
    let inline = r
        .string(&format!("{at}avro.schema"))
        .filter(|s| !s.trim().is_empty());
    let file = r
        .string(&format!("{at}avro.schema-file"))
        .filter(|s| !s.trim().is_empty());
    if format != SourceFormat::Avro {
        if inline.is_some() || file.is_some() {
            return Err(err(format!(
                "{what}: '{at}avro.schema' and '{at}avro.schema-file' are options of '{at}format' = 'avro'"
            )));
        }
        return Ok(None);
    }
    match (inline, file) {
        (Some(s), None) => {
            if serde_json::from_str::<serde_json::Value>(&s).is_err() {
                return Err(err(format!(
                    "{what}: '{at}avro.schema' is not JSON (an Avro schema is a JSON document)"
                )));
            }
            Ok(Some(AvroSchemaSource::Inline(s)))
        }
        (None, Some(f)) => Ok(Some(AvroSchemaSource::File(f))),
        (Some(_), Some(_)) => Err(err(format!(
            "{what}: give '{at}avro.schema' or '{at}avro.schema-file', not both"
        ))),
        (None, None) => Err(err(format!(
            "{what}: '{at}format' = 'avro' needs the writer schema: '{at}avro.schema' (its JSON) or '{at}avro.schema-file' (a file holding it)"
        ))),
    }
}

/// Every option of the registry formats.
pub(crate) const REGISTRY_OPTIONS: &[&str] = &[
    "avro-confluent.url",
    "avro-confluent.basic-auth.user-info",
    "avro-confluent.bearer-auth.token",
    "avro-confluent.ssl.ca-location",
    "avro-confluent.subject",
    "avro-confluent.subject-name-strategy",
    "avro-confluent.record-name",
    "protobuf-confluent.url",
    "protobuf-confluent.basic-auth.user-info",
    "protobuf-confluent.bearer-auth.token",
    "protobuf-confluent.ssl.ca-location",
    "protobuf-confluent.subject",
    "protobuf-confluent.subject-name-strategy",
    "protobuf-confluent.record-name",
    "json-confluent.url",
    "json-confluent.basic-auth.user-info",
    "json-confluent.bearer-auth.token",
    "json-confluent.ssl.ca-location",
    "json-confluent.subject",
    "json-confluent.subject-name-strategy",
    "json-confluent.record-name",
];

/// Where a format's options are read, and what stands in for those not given.
pub(crate) struct RegistryScope<'a> {
    /// Where the options start: empty for the value's format, `key.` for the key's.
    pub at: &'a str,
    /// The value's registry settings, which the key's format shares unless it has its
    /// own `'key.<format>.url'`.
    pub shared: Option<&'a RegistryOptions>,
    /// The subject of the strategy `topic` (`<topic>-value`, `<topic>-key`).
    pub topic_subject: SubjectName,
}

impl RegistryScope<'static> {
    /// The value's format: `'avro-confluent.url'`, subject `<topic>-value`.
    pub fn value() -> Self {
        Self {
            at: "",
            shared: None,
            topic_subject: SubjectName::Topic,
        }
    }
}

/// The registry settings of a source in `format`; None for a format without a registry
/// (whose registry options are then refused).
pub(crate) fn registry_options(
    r: &mut OptionReader,
    what: &str,
    pos: Pos,
    format: SourceFormat,
    scope: &RegistryScope,
) -> Result<Option<RegistryOptions>> {
    let err = |message: String| SqlError::new(ErrorKind::Option, pos, message);
    let at = scope.at;
    let Some(prefix) = format.registry_prefix() else {
        if let Some(key) = REGISTRY_OPTIONS
            .iter()
            .map(|k| format!("{at}{k}"))
            .find(|k| r.has(k))
        {
            let owner = key[at.len()..].split('.').next().unwrap_or_default();
            return Err(err(format!(
                "{what}: '{key}' is an option of '{at}format' = '{owner}'"
            )));
        }
        return Ok(None);
    };
    if let Some(key) = REGISTRY_OPTIONS
        .iter()
        .filter(|k| !k.starts_with(&format!("{prefix}.")))
        .map(|k| format!("{at}{k}"))
        .find(|k| r.has(k))
    {
        return Err(err(format!(
            "{what}: '{key}' is not an option of '{at}format' = '{prefix}' (its options are '{at}{prefix}.url' and the like)"
        )));
    }
    let key = |setting: &str| format!("{at}{prefix}.{setting}");
    let url = r.string(&key("url")).filter(|u| !u.trim().is_empty());
    let shared = scope.shared.filter(|_| url.is_none());
    if let Some(shared) = shared {
        let own = [
            "basic-auth.user-info",
            "bearer-auth.token",
            "ssl.ca-location",
        ];
        if let Some(k) = own.iter().map(|s| key(s)).find(|k| r.has(k)) {
            return Err(err(format!(
                "{what}: '{k}' goes with '{}' (without it, the key's schemas come from the value's registry, with its settings)",
                key("url")
            )));
        }
        return Ok(Some(RegistryOptions {
            subject: subject_name(r, what, pos, &format!("{at}{prefix}"), &scope.topic_subject)?,
            ..shared.clone()
        }));
    }
    let url = url.ok_or_else(|| {
        err(format!(
            "{what}: '{at}format' = '{prefix}' needs '{}' (the Schema Registry, or 'embedded')",
            key("url")
        ))
    })?;
    let basic_auth = r.string(&key("basic-auth.user-info"));
    // A `${VAR}` left unresolved (checking a job without its secrets) is not judged.
    if basic_auth
        .as_ref()
        .is_some_and(|u| !u.contains(':') && !u.contains("${"))
    {
        return Err(err(format!(
            "{what}: '{}' is 'user:password'",
            key("basic-auth.user-info")
        )));
    }
    let bearer_token = r.string(&key("bearer-auth.token"));
    if basic_auth.is_some() && bearer_token.is_some() {
        return Err(err(format!(
            "{what}: give '{}' or '{}', not both",
            key("basic-auth.user-info"),
            key("bearer-auth.token")
        )));
    }
    Ok(Some(RegistryOptions {
        url: url.trim_end_matches('/').to_string(),
        basic_auth,
        bearer_token,
        ca_location: r.string(&key("ssl.ca-location")),
        subject: subject_name(r, what, pos, &format!("{at}{prefix}"), &scope.topic_subject)?,
    }))
}

/// The subject of options under `prefix` (`avro-confluent`, `key.avro-confluent`);
/// `topic` is the subject of the default strategy.
fn subject_name(
    r: &mut OptionReader,
    what: &str,
    pos: Pos,
    prefix: &str,
    topic: &SubjectName,
) -> Result<SubjectName> {
    let err = |message: String| SqlError::new(ErrorKind::Option, pos, message);
    let strategy = r.choice(
        &format!("{prefix}.subject-name-strategy"),
        &["topic", "record", "topic-record"],
    )?;
    let record = r.string(&format!("{prefix}.record-name"));
    let explicit = r.string(&format!("{prefix}.subject"));
    if explicit.is_some() && strategy.is_some() {
        return Err(err(format!(
            "{what}: '{prefix}.subject' names the subject; it does not go with '{prefix}.subject-name-strategy'"
        )));
    }
    let needs_record = |r: Option<String>| {
        r.ok_or_else(|| {
            err(format!(
                "{what}: that subject name strategy needs '{prefix}.record-name' (the record's full name, like 'com.acme.Order')"
            ))
        })
    };
    Ok(match (strategy, explicit) {
        (_, Some(s)) => SubjectName::Explicit(s),
        (Some("record"), None) => SubjectName::Record(needs_record(record)?),
        (Some("topic-record"), None) => SubjectName::TopicRecord(needs_record(record)?),
        _ if record.is_some() => {
            return Err(err(format!(
                "{what}: '{prefix}.record-name' is used with '{prefix}.subject-name-strategy' = 'record' or 'topic-record'"
            )));
        }
        _ => topic.clone(),
    })
}

#[cfg(test)]
mod tests {
    use crate::EnvOrKeep;
    use crate::job::{SourceFormat, SubjectName};

    fn source(options: &str) -> crate::Result<crate::job::JobFile> {
        let text = format!(
            "CREATE CATALOG c WITH ('type' = 'sql', 'uri' = 'sqlite://x.db', 'warehouse' = 'file:///w');
             CREATE SOURCE s (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'orders', \
             'properties.bootstrap.servers' = 'localhost:9092'{options});
             CREATE TABLE c.n.t (id BIGINT);
             INSERT INTO c.n.t SELECT id FROM s;"
        );
        crate::parse_job("job.sql", &text, &EnvOrKeep)
    }

    #[test]
    fn an_avro_confluent_source_reads_its_registry_settings() {
        let job = source(
            ", 'format' = 'avro-confluent', 'avro-confluent.url' = 'http://registry:8081/', \
             'avro-confluent.basic-auth.user-info' = '${REGISTRY_AUTH}'",
        )
        .expect("parses");
        let k = &job.sources[0].kafka;
        assert_eq!(k.format, SourceFormat::AvroConfluent);
        let r = k.registry.as_ref().expect("registry options");
        assert_eq!(r.url, "http://registry:8081");
        assert_eq!(r.subject.subject("orders"), "orders-value");
        assert!(!format!("{r:?}").contains("REGISTRY_AUTH"));
    }

    #[test]
    fn subject_name_strategies_name_their_subject() {
        let job = source(
            ", 'format' = 'avro-confluent', 'avro-confluent.url' = 'embedded', \
             'avro-confluent.subject-name-strategy' = 'topic-record', \
             'avro-confluent.record-name' = 'com.acme.Order'",
        )
        .expect("parses");
        let r = job.sources[0].kafka.registry.clone().expect("registry");
        assert_eq!(r.subject, SubjectName::TopicRecord("com.acme.Order".into()));
        assert_eq!(r.subject.subject("orders"), "orders-com.acme.Order");
    }

    #[test]
    fn plain_avro_takes_its_schema_inline_or_from_a_file() {
        let job = source(", 'format' = 'avro', 'avro.schema-file' = 'order.avsc'").expect("parses");
        assert_eq!(
            job.sources[0].kafka.avro_schema,
            Some(crate::job::AvroSchemaSource::File("order.avsc".into()))
        );
        let none = source(", 'format' = 'avro'").expect_err("no schema");
        assert!(
            none.to_string().contains("needs the writer schema"),
            "{none}"
        );
        let bad = source(", 'format' = 'avro', 'avro.schema' = '{not json'").expect_err("bad");
        assert!(
            bad.to_string().contains("'avro.schema' is not JSON"),
            "{bad}"
        );
    }

    #[test]
    fn registry_mistakes_are_named() {
        let no_url = source(", 'format' = 'avro-confluent'").expect_err("no url");
        assert!(
            no_url.to_string().contains("needs 'avro-confluent.url'"),
            "{no_url}"
        );
        let on_json = source(", 'format' = 'json', 'avro-confluent.url' = 'http://r'")
            .expect_err("registry option on json");
        assert!(
            on_json
                .to_string()
                .contains("'avro-confluent.url' is an option of 'format' = 'avro-confluent'"),
            "{on_json}"
        );
        let no_record = source(
            ", 'format' = 'avro-confluent', 'avro-confluent.url' = 'http://r', \
             'avro-confluent.subject-name-strategy' = 'record'",
        )
        .expect_err("record strategy without a record name");
        assert!(
            no_record
                .to_string()
                .contains("needs 'avro-confluent.record-name'"),
            "{no_record}"
        );
    }
}
