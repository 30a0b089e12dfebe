//! Test helpers of the registry formats: the embedded registry holding given schemas,
//! a decode plan for an `orders` source, records gathered as the source gathers them.

use floe_sql::job::{SourceDef, ViolationKind};

use crate::{DecodePlan, Decoded, PendingRecords};
use floe_devtools::registry::store::{RegistryState, StoredSchema};
use floe_devtools::registry::{RegistryServer, ServerOptions};

/// A registry server and the directory of its state.
pub struct TestRegistry {
    pub server: RegistryServer,
    _dir: tempfile::TempDir,
}

/// A registry holding `schemas` (`(kind, text)`, ids from 1 in order), with ids
/// `latest` (in order) as the versions of subject `orders-value`.
pub fn registry(schemas: &[(&str, &str)], latest: &[u32]) -> TestRegistry {
    registry_with(schemas, &[("orders-value", latest)])
}

/// A registry holding `schemas` (`(kind, text)`, ids from 1 in order), with `subjects`
/// (`(subject, ids of its versions in order)`).
pub fn registry_with(schemas: &[(&str, &str)], subjects: &[(&str, &[u32])]) -> TestRegistry {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = RegistryState {
        schemas: schemas
            .iter()
            .map(|(kind, text)| StoredSchema {
                schema: text.to_string(),
                kind: kind.to_string(),
                references: serde_json::Value::Null,
            })
            .collect(),
        subjects: subjects
            .iter()
            .map(|(subject, ids)| (subject.to_string(), ids.to_vec()))
            .collect(),
        ..RegistryState::default()
    };
    let file = dir.path().join("registry.json");
    std::fs::write(&file, serde_json::to_string(&state).expect("state")).expect("write");
    let server = RegistryServer::start(ServerOptions {
        state_file: Some(file),
        ..ServerOptions::default()
    })
    .expect("registry");
    TestRegistry { server, _dir: dir }
}

/// The decode plan of source `orders (id BIGINT NOT NULL, amount DOUBLE, note VARCHAR,
/// placed TIMESTAMP)` with `format` options.
pub fn plan_with(format: &str) -> (DecodePlan, SourceDef) {
    plan_declaring(
        "id BIGINT NOT NULL, amount DOUBLE, note VARCHAR, placed TIMESTAMP",
        format,
    )
}

/// The decode plan of source `orders (columns)` with `format` options; `id` must be
/// among the columns.
pub fn plan_declaring(columns: &str, format: &str) -> (DecodePlan, SourceDef) {
    let text = format!(
        "SET 'job.name' = 'j';
         CREATE CATALOG c WITH ('type' = 'sql', 'uri' = 'sqlite://x.db', 'warehouse' = 'file:///tmp/w');
         CREATE SOURCE orders ({columns})
         WITH ('connector' = 'kafka', 'topic' = 'orders', {format},
               'properties.bootstrap.servers' = 'x:1');
         CREATE TABLE c.n.t (id BIGINT);
         INSERT INTO c.n.t SELECT id FROM orders;"
    );
    let job = floe_sql::parse_job("job.sql", &text, &floe_sql::EnvOrKeep).expect("job");
    let source = job.sources[0].clone();
    (DecodePlan::new(&source).expect("plan"), source)
}

/// Source `orders` in `format`, declaring no columns: they come from its schema.
pub fn source_without_columns(format: &str) -> SourceDef {
    let text = format!(
        "SET 'job.name' = 'j';
         CREATE CATALOG c WITH ('type' = 'sql', 'uri' = 'sqlite://x.db', 'warehouse' = 'file:///tmp/w');
         CREATE SOURCE orders WITH ('connector' = 'kafka', 'topic' = 'orders', {format},
               'properties.bootstrap.servers' = 'x:1');
         CREATE TABLE c.n.t (id BIGINT);
         INSERT INTO c.n.t SELECT 1 AS id;"
    );
    let job = floe_sql::parse_job("job.sql", &text, &floe_sql::EnvOrKeep).expect("job");
    job.sources[0].clone()
}

/// `values` gathered as one partition's records.
pub fn records(values: &[Vec<u8>]) -> PendingRecords {
    let mut recs = PendingRecords::default();
    for (i, v) in values.iter().enumerate() {
        recs.push(i as i64, Some(0), None, Some(v));
    }
    recs
}

/// Column `name` of `batch` as `T`.
pub fn column<'a, T: 'static>(batch: &'a arrow_array::RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .expect("column")
}

/// `header` (magic 0, `id`) and `body`.
pub fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The bad records of `d` as `(index, kind)`.
pub fn bad_kinds(d: &Decoded) -> Vec<(usize, ViolationKind)> {
    d.bad.iter().map(|b| (b.index, b.kind)).collect()
}

/// The message of bad record `index` of `d` (empty when it is not bad).
pub fn bad_message(d: &Decoded, index: usize) -> String {
    d.bad
        .iter()
        .find(|b| b.index == index)
        .map(|b| b.message.clone())
        .unwrap_or_default()
}
