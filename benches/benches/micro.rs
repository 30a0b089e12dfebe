//! Criterion micro-benchmarks of the hot parts, each alone: JSON → Arrow and Avro →
//! Arrow decode of the same bids, the compiled SQL over one batch, Parquet encode, and
//! one Iceberg commit.
//!
//! `cargo bench -p floe-bench --bench micro`

use std::hint::black_box;
use std::path::Path;

use arrow_array::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use floe_catalog::{CatalogConfig, CatalogKind, OffsetMap, TopicPartition, open_catalog};
use floe_devtools::avro_feed::{BID_SCHEMA, bid_avro};
use floe_devtools::nexmark::bid_json;
use floe_devtools::registry::{RegistryServer, ServerOptions};
use floe_formats::{DecodePlan, PendingRecords, decode};
use floe_sinks::{
    CommitRequest, RetryPolicy, TableSpec, TableWriter, WriterConfig, commit, ensure_table,
};
use floe_sql::job::{RegistryOptions, SourceDef, SourceFormat, SubjectName};
use floe_sql::{CompiledJob, EnvVariables, compile, parse_job};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

const ROWS: usize = 8192;

fn job(dir: &Path) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/q1.sql"))
        .expect("q1.sql");
    text.replace("${BENCH_HOME}", &dir.display().to_string())
        .replace("${KAFKA_BOOTSTRAP}", "127.0.0.1:9")
}

fn records() -> PendingRecords {
    records_with(|s| s.to_string())
}

/// The bids with `dateTime` as epoch milliseconds instead of a string: the decoder's
/// second reading of the timestamp columns.
fn records_with_numeric_times() -> PendingRecords {
    records_with(|s| {
        let mut v: serde_json::Value = serde_json::from_str(s).expect("bid JSON");
        v["dateTime"] = serde_json::json!(1_793_491_200_123_i64);
        v.to_string()
    })
}

fn records_with(edit: impl Fn(&str) -> String) -> PendingRecords {
    let mut r = PendingRecords::default();
    let mut s = String::new();
    for i in 0..ROWS as u64 {
        bid_json(42, i, &mut s);
        let value = edit(&s);
        r.push(
            i as i64,
            Some(1_793_491_200_000),
            None,
            Some(value.as_bytes()),
        );
    }
    r
}

/// The same bids in Avro (Confluent wire format), and a plan that reads them as the
/// q1 source declares its columns, with the bids' schema in `registry`.
fn avro_bids(json_source: &SourceDef, registry: &RegistryServer) -> (DecodePlan, PendingRecords) {
    let id = registry
        .register("bids-value", BID_SCHEMA)
        .expect("register");
    let mut source = json_source.clone();
    source.kafka.format = SourceFormat::AvroConfluent;
    source.kafka.registry = Some(RegistryOptions {
        url: registry.url().to_string(),
        basic_auth: None,
        bearer_token: None,
        ca_location: None,
        subject: SubjectName::Topic,
    });
    let mut r = PendingRecords::default();
    let mut value = Vec::new();
    for i in 0..ROWS as u64 {
        bid_avro(42, i, id, &mut value);
        r.push(i as i64, Some(1_793_491_200_000), None, Some(&value));
    }
    (DecodePlan::new(&source).expect("Avro plan"), r)
}

fn compiled(rt: &tokio::runtime::Runtime, dir: &Path) -> CompiledJob {
    let parsed = parse_job("q1.sql", &job(dir), &EnvVariables).expect("q1 parses");
    rt.block_on(compile(parsed)).expect("q1 plans")
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let job = compiled(&rt, dir.path());
    let source = &job.job.sources[0];
    let plan = DecodePlan::new(source).expect("plan");
    let tp = TopicPartition::new("bids", 0);
    let recs = records();
    let bytes = recs.bytes() as u64;
    let registry = RegistryServer::start(ServerOptions::default()).expect("registry");
    let (avro_plan, avro_recs) = avro_bids(source, &registry);

    let mut g = c.benchmark_group("hot-path");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.bench_function("decode 8192 bids (JSON → Arrow)", |b| {
        b.iter(|| black_box(decode(&plan, &tp, &recs).expect("decodes")))
    });
    let numeric = records_with_numeric_times();
    g.bench_function("decode 8192 bids, dateTime as epoch millis", |b| {
        b.iter(|| black_box(decode(&plan, &tp, &numeric).expect("decodes")))
    });
    g.bench_function("decode 8192 bids (Avro → Arrow)", |b| {
        b.iter(|| black_box(decode(&avro_plan, &tp, &avro_recs).expect("decodes")))
    });
    let batch = decode(&plan, &tp, &recs).expect("decodes").batch;
    let avro_batch = decode(&avro_plan, &tp, &avro_recs).expect("decodes").batch;
    assert_eq!(
        avro_batch, batch,
        "Avro and JSON bids decode to the same rows"
    );

    let insert = &job.inserts[0];
    let slot = &job.slots[insert.source];
    g.bench_function("q1 SQL over 8192 rows", |b| {
        b.iter(|| {
            slot.set(vec![batch.clone()]);
            black_box(rt.block_on(insert.execute(job.task_ctx())).expect("runs"))
        })
    });
    slot.set(vec![batch.clone()]);
    let out: Vec<RecordBatch> = rt.block_on(insert.execute(job.task_ctx())).expect("runs");

    let payload: Vec<usize> = (0..7).collect();
    let payload = batch.project(&payload).expect("payload columns");
    g.bench_function("Parquet zstd encode 8192 bids", |b| {
        b.iter(|| {
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let mut buf = Vec::with_capacity(1 << 20);
            let mut w =
                ArrowWriter::try_new(&mut buf, payload.schema(), Some(props)).expect("writer");
            w.write(&payload).expect("write");
            w.close().expect("close");
            black_box(buf.len())
        })
    });
    g.finish();
    eprintln!(
        "(payload: {bytes} bytes of JSON, {} bytes of Avro per 8192 bids)",
        avro_recs.bytes()
    );

    // One commit of one small data file on the SQLite catalog.
    let cat = rt
        .block_on(open_catalog(&CatalogConfig {
            name: "lake".into(),
            kind: CatalogKind::Sql {
                uri: format!("sqlite://{}/commit.db", dir.path().display()),
            },
            warehouse: format!("file://{}/warehouse", dir.path().display()),
            storage: Default::default(),
        }))
        .expect("catalog");
    let spec = TableSpec {
        ident: iceberg::TableIdent::from_strs(["bench", "commit"]).expect("ident"),
        schema: insert.schema.clone(),
        partition_by: vec![],
        properties: Default::default(),
        add_columns: false,
        writer: None,
    };
    let mut table = rt
        .block_on(ensure_table(cat.catalog.as_ref(), &spec))
        .expect("table");
    let rows = floe_engine::pipeline::rules::without_row_column(&out[0]).expect("rows");
    let mut next = 0i64;
    c.bench_function(
        "write one file + commit with offsets (SQLite catalog)",
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut w = TableWriter::new(
                        &table,
                        &WriterConfig {
                            target_file_size: 1 << 30,
                            file_prefix: format!("bench-{next}"),
                        },
                    )
                    .expect("writer");
                    w.write(&rows).await.expect("write");
                    let files = w.close().await.expect("close");
                    let mut from = OffsetMap::new();
                    from.set(TopicPartition::new("bids", 0), next);
                    let mut to = OffsetMap::new();
                    next += ROWS as i64;
                    to.set(TopicPartition::new("bids", 0), next);
                    let req = CommitRequest {
                        job: "bench-q1".into(),
                        files,
                        from: if next == ROWS as i64 {
                            OffsetMap::new()
                        } else {
                            from
                        },
                        to,
                        properties: Default::default(),
                        id: None,
                        commit_interval: std::time::Duration::from_secs(1),
                        table_properties: Default::default(),
                        adopted: Default::default(),
                        written_with: None,
                    };
                    let (t, _) = commit(&cat, table.clone(), &req, &RetryPolicy::default())
                        .await
                        .expect("commit");
                    table = t;
                })
            })
        },
    );
}

criterion_group!(micro, benches);
criterion_main!(micro);
