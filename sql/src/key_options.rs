//! The key options of `CREATE SOURCE`, in Flink SQL's names: `'key.format'` decodes
//! each record's key, `'key.fields'` names the declared columns read from it (separated
//! by `;`), `'key.fields-prefix'` is stripped from those columns' names to give the key's
//! field names, and the key format's own options sit under `key.`
//! (`'key.avro-confluent.url'`, `'key.avro.schema'`). A key in a registry format without
//! its own `'key.<format>.url'` uses the value's registry, subject `<topic>-key`.

use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::job::{KeyOptions, RegistryOptions, SourceFormat, SubjectName};
use crate::options::OptionReader;
use crate::registry_options::{
    AVRO_OPTIONS, REGISTRY_OPTIONS, RegistryScope, avro_schema, registry_options,
};

/// The key options themselves, besides the key format's under `key.`.
const KEY_OPTIONS: &[&str] = &[
    "key.format",
    "key.fields",
    "key.fields-prefix",
    "value.format",
    "value.fields-include",
];

/// Every key option, for the hint on an unknown one.
pub(crate) fn key_option_names() -> Vec<String> {
    let format_options = REGISTRY_OPTIONS.iter().chain(AVRO_OPTIONS);
    KEY_OPTIONS
        .iter()
        .map(|k| k.to_string())
        .chain(format_options.map(|k| format!("key.{k}")))
        .collect()
}

/// A declared source column, as the key options see it.
pub(crate) struct Declared<'a> {
    pub name: &'a str,
    pub metadata: bool,
}

/// The key settings of a source (`what`, declared at `pos`, reading `topic`); None
/// without `'key.format'`.
pub(crate) fn key_options(
    r: &mut OptionReader,
    what: &str,
    pos: Pos,
    topic: &str,
    value_registry: Option<&RegistryOptions>,
    columns: &[Declared],
) -> Result<Option<KeyOptions>> {
    let err = |at: Pos, message: String| SqlError::new(ErrorKind::Option, at, message);
    let format = r.choice("key.format", &SourceFormat::NAMES)?;
    let fields = r.string_at("key.fields");
    let prefix = r.string("key.fields-prefix").unwrap_or_default();
    let include = r.choice("value.fields-include", &["all", "except_key"])?;
    let Some(format) = format.and_then(SourceFormat::named) else {
        let stray = [
            ("key.fields", fields.is_some()),
            ("key.fields-prefix", !prefix.is_empty()),
        ];
        if let Some((key, _)) = stray.iter().find(|(_, given)| *given) {
            let message = format!("{what}: '{key}' goes with 'key.format' (how keys are decoded)");
            return Err(err(pos, message));
        }
        return Ok(None);
    };
    if include == Some("all") {
        return Err(err(
            pos,
            format!(
                "{what}: 'value.fields-include' = 'ALL' is not supported: each column of \
                 'key.fields' is read from the key only ('EXCEPT_KEY', the default here)"
            ),
        ));
    }
    let (fields, fields_pos) = fields.ok_or_else(|| {
        err(
            pos,
            format!(
                "{what}: 'key.format' needs 'key.fields' (the declared columns read from the \
                 key, separated by ';')"
            ),
        )
    })?;
    let fields = if columns.iter().all(|c| c.metadata) {
        schema_key_fields(&fields, &prefix, format)
    } else {
        key_fields(&fields, &prefix, columns)
    }
    .map_err(|m| err(fields_pos, format!("{what}: 'key.fields' {m}")))?;
    let scope = RegistryScope {
        at: "key.",
        shared: value_registry,
        topic_subject: SubjectName::Explicit(format!("{topic}-key")),
    };
    Ok(Some(KeyOptions {
        format,
        fields,
        prefix,
        registry: registry_options(r, what, pos, format, &scope)?,
        avro_schema: avro_schema(r, what, pos, format, "key.")?,
    }))
}

/// The columns `'key.fields'` names for a source that takes its columns from its
/// schemas: each once, each `prefix` and a field of the key's schema (which the engine
/// checks when it reads the schema).
fn schema_key_fields(
    list: &str,
    prefix: &str,
    format: SourceFormat,
) -> Result<Vec<String>, String> {
    if format == SourceFormat::Json {
        return Err(
            "names key columns of a source that takes its columns from its schemas, but \
             'key.format' = 'json' has no schema to take them from: declare the source's columns"
                .into(),
        );
    }
    let mut out: Vec<String> = vec![];
    for name in names(list)? {
        if name.len() <= prefix.len() || !name.starts_with(prefix) {
            return Err(format!(
                "names '{name}', which is not 'key.fields-prefix' ('{prefix}') followed by a \
                 field of the key"
            ));
        }
        if out.iter().any(|o| o == name) {
            return Err(format!("names '{name}' twice"));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// The `;`-separated names of `list`, trimmed; an empty one is refused.
fn names(list: &str) -> Result<Vec<&str>, String> {
    list.split(';')
        .map(str::trim)
        .map(|name| {
            if name.is_empty() {
                Err(format!(
                    "'{list}' has an empty name (separate names with ';')"
                ))
            } else {
                Ok(name)
            }
        })
        .collect()
}

/// The columns `'key.fields'` names: declared payload columns, each once, each
/// starting with `prefix`; their declared spelling.
fn key_fields(list: &str, prefix: &str, columns: &[Declared]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = vec![];
    for name in names(list)? {
        let column = columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("names '{name}', which the source does not declare"))?;
        if column.metadata {
            return Err(format!("names '{name}', a METADATA column"));
        }
        if !column.name.starts_with(prefix) {
            return Err(format!(
                "names '{name}', which does not start with 'key.fields-prefix' ('{prefix}')"
            ));
        }
        if out.iter().any(|o| o == column.name) {
            return Err(format!("names '{name}' twice"));
        }
        out.push(column.name.to_string());
    }
    if columns
        .iter()
        .all(|c| c.metadata || out.iter().any(|o| o == c.name))
    {
        return Err("names every declared column; the value must hold at least one".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::EnvOrKeep;
    use crate::job::{JobFile, SourceFormat};

    fn source(columns: &str, options: &str) -> crate::Result<JobFile> {
        let text = format!(
            "CREATE CATALOG c WITH ('type' = 'sql', 'uri' = 'sqlite://x.db', 'warehouse' = 'file:///w');
             CREATE SOURCE s ({columns}) WITH ('connector' = 'kafka', 'topic' = 'orders', \
             'properties.bootstrap.servers' = 'localhost:9092', {options});
             CREATE TABLE c.n.t (id BIGINT);
             INSERT INTO c.n.t SELECT id FROM s;"
        );
        crate::parse_job("job.sql", &text, &EnvOrKeep)
    }

    fn error(columns: &str, options: &str) -> String {
        source(columns, options).expect_err("refused").to_string()
    }

    const AVRO_BOTH: &str = "'value.format' = 'avro-confluent', \
        'avro-confluent.url' = 'http://registry:8081', 'key.format' = 'avro-confluent', \
        'key.fields' = 'k_id; k_region', 'key.fields-prefix' = 'k_'";

    #[test]
    fn key_columns_come_from_the_key_in_the_values_registry_under_topic_key() {
        let job = source(
            "k_id BIGINT NOT NULL, k_region VARCHAR, id BIGINT",
            AVRO_BOTH,
        )
        .expect("parses");
        let s = &job.sources[0];
        let key = s.kafka.key.as_ref().expect("key options");
        assert_eq!(key.fields, ["k_id", "k_region"]);
        let registry = key.registry.as_ref().expect("registry");
        assert_eq!(registry.url, "http://registry:8081");
        assert_eq!(registry.subject.subject("orders"), "orders-key");
        let names = |schema: arrow_schema::SchemaRef| {
            let fields = schema.fields().iter().map(|f| f.name().clone());
            fields.collect::<Vec<_>>()
        };
        assert_eq!(names(s.payload_schema()), ["id"]);
        let key_source = s.key_source().expect("key source");
        assert_eq!(names(key_source.schema()), ["id", "region"]);
        assert_eq!(key_source.kafka.format, SourceFormat::AvroConfluent);
        assert!(!key_source.columns[0].nullable);
    }

    #[test]
    fn a_key_in_its_own_registry_reads_the_key_options() {
        let job = source(
            "id BIGINT, name VARCHAR",
            "'format' = 'json', 'key.format' = 'protobuf-confluent', 'key.fields' = 'id', \
             'key.protobuf-confluent.url' = 'http://keys:8081', \
             'key.protobuf-confluent.basic-auth.user-info' = 'u:p'",
        )
        .expect("parses");
        let key = job.sources[0].kafka.key.clone().expect("key");
        let registry = key.registry.expect("registry");
        assert_eq!(
            (registry.url.as_str(), registry.basic_auth.as_deref()),
            ("http://keys:8081", Some("u:p"))
        );
    }

    #[test]
    fn key_options_that_cannot_work_are_refused_naming_the_option() {
        let cols = "k_id BIGINT, k_region VARCHAR, id BIGINT";
        let e = error(cols, &AVRO_BOTH.replace("k_id; k_region", "k_id;nope"));
        assert!(
            e.contains("'key.fields' names 'nope', which the source does not declare"),
            "{e}"
        );
        let e = error(cols, &AVRO_BOTH.replace("k_id; k_region", "id"));
        assert!(
            e.contains("does not start with 'key.fields-prefix' ('k_')"),
            "{e}"
        );
        let e = error(
            "id BIGINT, name VARCHAR",
            "'format' = 'json', 'key.format' = 'json'",
        );
        assert!(e.contains("'key.format' needs 'key.fields'"), "{e}");
        let e = error(
            "id BIGINT, name VARCHAR",
            "'format' = 'json', 'key.fields' = 'id'",
        );
        assert!(e.contains("'key.fields' goes with 'key.format'"), "{e}");
        let e = error(
            "id BIGINT, name VARCHAR",
            "'format' = 'json', 'key.format' = 'avro-confluent', 'key.fields' = 'id'",
        );
        assert!(e.contains("needs 'key.avro-confluent.url'"), "{e}");
        let e = error(
            cols,
            &format!("{AVRO_BOTH}, 'value.fields-include' = 'ALL'"),
        );
        assert!(
            e.contains("'value.fields-include' = 'ALL' is not supported"),
            "{e}"
        );
        let e = error(cols, &format!("{AVRO_BOTH}, 'format' = 'json'"));
        assert!(
            e.contains("give 'format' or 'value.format', not both"),
            "{e}"
        );
        let e = error(
            cols,
            &format!("{AVRO_BOTH}, 'key.avro-confluent.bearer-auth.token' = 't'"),
        );
        assert!(e.contains("goes with 'key.avro-confluent.url'"), "{e}");
        let e = error(
            cols,
            &format!("{AVRO_BOTH}, 'key.avro-confluent.urll' = 'x'"),
        );
        assert!(e.contains("did you mean 'key.avro-confluent.url'"), "{e}");
    }

    #[test]
    fn a_source_without_columns_names_its_key_columns_by_the_keys_fields() {
        let text = |options: &str| {
            format!(
                "CREATE CATALOG c WITH ('type' = 'sql', 'uri' = 'sqlite://x.db', 'warehouse' = 'file:///w');
                 CREATE SOURCE s WITH ('connector' = 'kafka', 'topic' = 'orders', \
                 'properties.bootstrap.servers' = 'localhost:9092', {options});
                 CREATE TABLE c.n.t (id BIGINT);
                 INSERT INTO c.n.t SELECT id FROM s;"
            )
        };
        let job = crate::parse_job("job.sql", &text(AVRO_BOTH), &EnvOrKeep).expect("parses");
        let key = job.sources[0].kafka.key.clone().expect("key");
        assert_eq!(key.fields, ["k_id", "k_region"]);
        let refused = |options: &str| {
            crate::parse_job("job.sql", &text(options), &EnvOrKeep)
                .expect_err("refused")
                .to_string()
        };
        let e = refused(&AVRO_BOTH.replace("k_id; k_region", "k_id;region"));
        assert!(
            e.contains("names 'region', which is not 'key.fields-prefix' ('k_')"),
            "{e}"
        );
        let e = refused(&AVRO_BOTH.replace("k_id; k_region", "k_id;k_id"));
        assert!(e.contains("names 'k_id' twice"), "{e}");
        let e = refused(
            "'format' = 'avro-confluent', 'avro-confluent.url' = 'http://r:8081', \
             'key.format' = 'json', 'key.fields' = 'id'",
        );
        assert!(e.contains("'key.format' = 'json' has no schema"), "{e}");
    }
}
