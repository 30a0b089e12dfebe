//! Tables other writers change: a column renamed or dropped by another engine, files
//! committed while orphan cleanup runs, a table of another format version. Against a
//! real SQL catalog (SQLite) and local storage; rows read back through iceberg-rust's
//! own scan, which resolves columns by field id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use floe_catalog::orphans::{remove_orphans, scan_orphans};
use floe_catalog::table_change::TableChange;
use floe_catalog::{ManifestCache, OffsetMap, OpenCatalog};
use floe_sinks::binding::binding_property;
use floe_sinks::position_deletes::write_position_deletes;
use floe_sinks::{
    ColumnBinding, CommitRequest, CompactionConfig, CompactionReport, MaintenanceConfig,
    MaintenanceReport, RetryPolicy, RowDelta, TableSpec, TableWriter, WriterConfig,
    check_compatible, commit, commit_row_delta, ensure_table, maintain,
};
use iceberg::spec::{
    NestedField, PrimitiveType, Schema as IcebergSchema, Struct, Transform, Type,
    UnboundPartitionSpec,
};
use iceberg::table::Table;
use iceberg::{TableIdent, TableRequirement, TableUpdate};

mod common;

const JOB: &str = "job";

struct Lake {
    dir: tempfile::TempDir,
    lake: OpenCatalog,
}

async fn lake() -> Lake {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = common::sqlite_lake(&dir).await;
    Lake { dir, lake }
}

/// The job's declaration: `id` and `currency`.
fn spec() -> TableSpec {
    TableSpec {
        ident: TableIdent::from_strs(["ns", "orders"]).expect("ident"),
        schema: declared(),
        partition_by: vec![],
        properties: HashMap::new(),
        add_columns: false,
        writer: Some(JOB.into()),
    }
}

fn declared() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("currency", DataType::Utf8, true),
    ]))
}

fn currency_of(id: i64) -> String {
    ["EUR", "USD", "GBP"][(id % 3) as usize].to_string()
}

/// The partitioned job's declaration: `id`, `currency` and `part` (`id % 2`), by
/// identity of `part`.
fn partitioned_spec() -> TableSpec {
    let mut fields: Vec<Field> = declared().fields().iter().map(|f| (**f).clone()).collect();
    fields.push(Field::new("part", DataType::Int32, true));
    TableSpec {
        ident: TableIdent::from_strs(["ns", "parts"]).expect("ident"),
        schema: Arc::new(Schema::new(fields)),
        partition_by: vec![("part".into(), Transform::Identity)],
        ..spec()
    }
}

/// The rows `from..to` of the declared columns `declared`.
fn batch_of(declared: &Arc<Schema>, from: i64, to: i64) -> RecordBatch {
    let ids: Vec<i64> = (from..to).collect();
    let columns: Vec<arrow_array::ArrayRef> = declared
        .fields()
        .iter()
        .map(|f| -> arrow_array::ArrayRef {
            match f.name().as_str() {
                "id" => Arc::new(Int64Array::from(ids.clone())),
                "currency" => Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|i| currency_of(*i)),
                )),
                _ => Arc::new(arrow_array::Int32Array::from_iter_values(
                    ids.iter().map(|i| (i % 2) as i32),
                )),
            }
        })
        .collect();
    RecordBatch::try_new(declared.clone(), columns).expect("batch")
}

/// Commits rows `from..to` as the job does: through a writer bound by field id, with
/// the binding stored beside the checkpoint.
async fn append(lake: &OpenCatalog, table: Table, from: i64, to: i64) -> Table {
    append_file(lake, table, from, to).await.0
}

/// [`append`], and the path of the data file it wrote (rows in id order).
async fn append_file(lake: &OpenCatalog, table: Table, from: i64, to: i64) -> (Table, String) {
    append_declared(lake, table, &spec(), from, to).await
}

/// Files of rows `from..to` written as the job writes them (bound by field id), their
/// schema, and the request that commits them with the binding.
async fn written(table: &Table, spec: &TableSpec, from: i64, to: i64) -> CommitRequest {
    let binding = spec.binding(table).expect("binding");
    let config = WriterConfig {
        target_file_size: 1 << 20,
        file_prefix: format!("job-{}", uuid::Uuid::new_v4().simple()),
    };
    let mut w = TableWriter::bound(table, &config, &binding).expect("writer");
    w.write(&batch_of(&spec.schema, from, to))
        .await
        .expect("write");
    let offsets = |o: i64| {
        let mut m = OffsetMap::new();
        if o > 0 {
            m.set(floe_catalog::TopicPartition::new("orders", 0), o);
        }
        m
    };
    CommitRequest {
        job: JOB.into(),
        files: w.close().await.expect("close"),
        from: offsets(from),
        to: offsets(to),
        properties: BTreeMap::new(),
        id: None,
        commit_interval: Duration::from_secs(1),
        table_properties: [(binding_property(JOB), binding.to_json().to_string())].into(),
        adopted: OffsetMap::new(),
        written_with: Some(table.metadata().current_schema().clone()),
    }
}

/// Commits rows `from..to` of `spec`'s declared columns as the job does.
async fn append_declared(
    lake: &OpenCatalog,
    table: Table,
    spec: &TableSpec,
    from: i64,
    to: i64,
) -> (Table, String) {
    let req = written(&table, spec, from, to).await;
    let path = req.files[0].file_path().to_string();
    let table = commit(lake, table, &req, &RetryPolicy::default())
        .await
        .expect("append")
        .0;
    (table, path)
}

/// A lake whose table holds rows 0..10, committed as the job commits them.
async fn ten_rows() -> (Lake, Table) {
    let l = lake().await;
    let t = ensure_table(l.lake.catalog.as_ref(), &spec())
        .await
        .expect("table");
    let t = append(&l.lake, t, 0, 10).await;
    (l, t)
}

/// Another engine's schema change: the current schema with `change` applied.
async fn change_schema(
    lake: &OpenCatalog,
    table: &Table,
    change: impl FnOnce(Vec<NestedField>) -> Vec<NestedField>,
) -> Table {
    let m = table.metadata();
    let fields: Vec<NestedField> = m
        .current_schema()
        .as_struct()
        .fields()
        .iter()
        .map(|f| (**f).clone())
        .collect();
    let schema = IcebergSchema::builder()
        .with_schema_id(m.current_schema_id() + 1)
        .with_fields(change(fields).into_iter().map(Arc::new))
        .build()
        .expect("schema");
    let change = TableChange {
        requirements: vec![TableRequirement::CurrentSchemaIdMatch {
            current_schema_id: m.current_schema_id(),
        }],
        updates: vec![
            TableUpdate::AddSchema { schema },
            TableUpdate::SetCurrentSchema { schema_id: -1 },
        ],
    };
    lake.commit_change(table, change)
        .await
        .expect("schema change")
}

fn without(fields: Vec<NestedField>, name: &str) -> Vec<NestedField> {
    fields.into_iter().filter(|f| f.name != name).collect()
}

fn rename(fields: Vec<NestedField>, from: &str, to: &str) -> Vec<NestedField> {
    fields
        .into_iter()
        .map(|mut f| {
            if f.name == from {
                f.name = to.into();
            }
            f
        })
        .collect()
}

/// Every row as (id, the string column `column`), read by field id through
/// iceberg-rust's scan.
async fn rows(lake: &OpenCatalog, table: &Table, column: &str) -> Vec<(i64, Option<String>)> {
    let batches = common::scan(lake, table).await;
    let mut out = vec![];
    for b in batches {
        let ids = b
            .column_by_name("id")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
            .expect("ids");
        let values = b
            .column_by_name(column)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
            .unwrap_or_else(|| panic!("no column {column}"));
        for i in 0..b.num_rows() {
            let v = values.is_valid(i).then(|| values.value(i).to_string());
            out.push((ids.value(i), v));
        }
    }
    out.sort();
    out
}

/// One compaction pass with `policy` and a fresh manifest cache.
async fn pass(l: &Lake, t: Table, policy: &RetryPolicy) -> (Table, MaintenanceReport) {
    maintain(&l.lake, t, &compaction(), policy, &ManifestCache::default()).await
}

/// One compaction pass that must rewrite: the table after it, and what it did.
async fn compacted(l: &Lake, t: Table) -> (Table, CompactionReport) {
    let policy = RetryPolicy::default();
    let (t, report) = pass(l, t, &policy).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    (t, report.compaction.expect("compacted"))
}

fn compaction() -> MaintenanceConfig {
    MaintenanceConfig {
        compaction: Some(CompactionConfig {
            target_file_size: 1 << 20,
            min_input_files: 4,
            max_bytes_per_pass: 1 << 30,
        }),
        max_manifests: 100,
        expiry: None,
        orphan_age: None,
        file_prefix: "compacted".into(),
        publish_to: None,
        paused: Default::default(),
    }
}

#[tokio::test]
async fn a_column_renamed_by_another_writer_keeps_its_values_in_new_rows_and_compaction() {
    let l = lake().await;
    let mut t = ensure_table(l.lake.catalog.as_ref(), &spec())
        .await
        .expect("table");
    for c in 0..3 {
        t = append(&l.lake, t, c * 10, c * 10 + 10).await;
    }
    t = change_schema(&l.lake, &t, |f| rename(f, "currency", "ccy")).await;
    // The job keeps its declaration; its stored binding finds the renamed field.
    check_compatible(&spec(), &t).expect("a renamed column still matches");
    for c in 3..6 {
        t = append(&l.lake, t, c * 10, c * 10 + 10).await;
    }
    let (t, c) = compacted(&l, t).await;
    assert_eq!(c.files_in, 6);
    let expected: Vec<(i64, Option<String>)> = (0..60).map(|i| (i, Some(currency_of(i)))).collect();
    assert_eq!(rows(&l.lake, &t, "ccy").await, expected);
    assert!(
        t.metadata()
            .current_schema()
            .field_by_name("currency")
            .is_none(),
        "no column was added under the old name"
    );
}

#[tokio::test]
async fn a_column_dropped_by_another_writer_stops_the_job_naming_it() {
    let (l, t) = ten_rows().await;
    let t = change_schema(&l.lake, &t, |f| without(f, "currency")).await;
    let err = check_compatible(&spec(), &t).expect_err("dropped");
    assert!(
        err.to_string()
            .contains("column currency (field id 2) was dropped"),
        "{err}"
    );
    let binding = ColumnBinding::resolve("ns.orders", t.metadata(), Some(JOB), ["id", "currency"])
        .expect("binding");
    let config = WriterConfig {
        target_file_size: 1 << 20,
        file_prefix: "job-x".into(),
    };
    let err = TableWriter::bound(&t, &config, &binding).expect_err("no writer");
    assert!(err.to_string().contains("currency (field id 2)"), "{err}");
}

/// Sets the modification time of every file under `dir` to an hour ago.
fn age(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            age(&path);
        } else {
            let f = std::fs::File::options()
                .append(true)
                .open(&path)
                .expect("open");
            f.set_modified(SystemTime::now() - Duration::from_secs(3600))
                .expect("set time");
        }
    }
}

#[tokio::test]
async fn orphan_cleanup_compares_storage_with_the_table_loaded_after_listing() {
    let l = lake().await;
    let t = ensure_table(l.lake.catalog.as_ref(), &spec())
        .await
        .expect("table");
    let stale = append(&l.lake, t, 0, 10).await;
    // Another commit lands after the state a pass holds was loaded.
    let newer = append(&l.lake, stale.clone(), 10, 20).await;
    age(l.dir.path());
    let cache = ManifestCache::default();
    let scan = scan_orphans(l.lake.catalog.as_ref(), &stale, &l.lake.store, &cache)
        .await
        .expect("scan");
    assert!(
        scan.data.is_empty() && scan.metadata.is_empty(),
        "files committed after the stale state are not orphans: {:?} {:?}",
        scan.data,
        scan.metadata
    );
    let (removed, _) = remove_orphans(&scan, &l.lake.store, Duration::ZERO)
        .await
        .expect("remove");
    assert!(removed.is_empty(), "{removed:?}");
    let expected: Vec<(i64, Option<String>)> = (0..20).map(|i| (i, Some(currency_of(i)))).collect();
    assert_eq!(rows(&l.lake, &newer, "currency").await, expected);
}

/// Another engine's merge-on-read DELETE: one position-delete file naming `rows`
/// (data file, position), committed as a row delta.
async fn delete_rows(lake: &OpenCatalog, rows: &[(String, i64)]) -> Table {
    let table = lake.catalog.load_table(&spec().ident).await.expect("load");
    let file = write_position_deletes(&table, 0, Struct::empty(), rows.to_vec(), "other-engine")
        .await
        .expect("position deletes");
    let mut named: Vec<String> = rows.iter().map(|(p, _)| p.clone()).collect();
    named.dedup();
    let delta = RowDelta {
        delete_files: vec![file],
        named,
        ..RowDelta::default()
    };
    commit_row_delta(lake, table, &delta, 100, &RetryPolicy::default())
        .await
        .expect("row delta")
        .0
}

/// Six files of ten rows each (ids 0..60), and their paths.
async fn six_files(l: &Lake) -> (Table, Vec<String>) {
    let mut t = ensure_table(l.lake.catalog.as_ref(), &spec())
        .await
        .expect("table");
    let mut paths = vec![];
    for c in 0..6 {
        let (next, path) = append_file(&l.lake, t, c * 10, c * 10 + 10).await;
        t = next;
        paths.push(path);
    }
    (t, paths)
}

fn live_delete_files(table: &Table) -> i64 {
    table
        .metadata()
        .current_snapshot()
        .and_then(|s| {
            s.summary()
                .additional_properties
                .get("total-delete-files")
                .cloned()
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

#[tokio::test]
async fn compaction_applies_position_deletes_and_drops_the_delete_files_it_applied() {
    let l = lake().await;
    let (_, paths) = six_files(&l).await;
    // Ids 0..3 (file 0, positions 0..3) and 15 (file 1, position 5) are deleted.
    let deleted = [
        (paths[0].clone(), 0),
        (paths[0].clone(), 1),
        (paths[0].clone(), 2),
        (paths[1].clone(), 5),
    ];
    let t = delete_rows(&l.lake, &deleted).await;
    assert_eq!(live_delete_files(&t), 1);
    let expected: Vec<(i64, Option<String>)> = (0..60)
        .filter(|i| ![0, 1, 2, 15].contains(i))
        .map(|i| (i, Some(currency_of(i))))
        .collect();
    assert_eq!(
        rows(&l.lake, &t, "currency").await,
        expected,
        "the deletes apply"
    );

    let (t, c) = compacted(&l, t).await;
    assert_eq!((c.files_in, c.deletes_applied), (6, 1));
    assert_eq!(
        live_delete_files(&t),
        0,
        "the applied delete file left the table"
    );
    assert_eq!(
        rows(&l.lake, &t, "currency").await,
        expected,
        "no deleted row came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_committed_while_compaction_rewrites_are_never_lost() {
    let l = lake().await;
    let (t, paths) = six_files(&l).await;
    // The other engine deletes ids 0..5 after the rewrite read the files, before its commit.
    let fired = Arc::new(AtomicBool::new(false));
    let (lake, first, hook_fired) = (l.lake.clone(), paths[0].clone(), fired.clone());
    let policy = RetryPolicy {
        faults: Some(Arc::new(move |fault: &str| {
            if fault == "compaction-before-commit" && !hook_fired.swap(true, Ordering::SeqCst) {
                let rows: Vec<(String, i64)> = (0..5).map(|p| (first.clone(), p)).collect();
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(delete_rows(&lake, &rows))
                });
            }
            false
        })),
        ..RetryPolicy::default()
    };
    let (t, report) = pass(&l, t, &policy).await;
    assert!(
        fired.load(Ordering::SeqCst),
        "the deletes were committed mid-rewrite"
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    // The rewrite gave up, and the pass planned it again with the new deletes applied.
    let why = report.abandoned.expect("abandoned once");
    assert!(why.contains("committed deletes"), "{why}");
    let c = report.compaction.expect("compacted on the second attempt");
    assert_eq!((c.retries, c.deletes_applied), (1, 1));
    assert_eq!(live_delete_files(&t), 0);
    let expected: Vec<(i64, Option<String>)> = (5..60).map(|i| (i, Some(currency_of(i)))).collect();
    assert_eq!(rows(&l.lake, &t, "currency").await, expected);
}

/// Another engine's `ALTER TABLE … ALTER COLUMN part TYPE BIGINT`.
fn promote_to_long(fields: Vec<NestedField>, name: &str) -> Vec<NestedField> {
    fields
        .into_iter()
        .map(|mut f| {
            if f.name == name {
                f.field_type = Box::new(Type::Primitive(PrimitiveType::Long));
            }
            f
        })
        .collect()
}

/// Another engine's `ALTER TABLE … REPLACE PARTITION FIELD part WITH bucket(2, id)`.
async fn repartition_by_id_bucket(lake: &OpenCatalog) {
    let ident = partitioned_spec().ident;
    let table = lake.catalog.load_table(&ident).await.expect("load");
    let spec = UnboundPartitionSpec::builder()
        .add_partition_field(1, "id_bucket_2", Transform::Bucket(2))
        .expect("field")
        .build();
    let change = TableChange {
        requirements: vec![TableRequirement::DefaultSpecIdMatch {
            default_spec_id: table.metadata().default_partition_spec_id(),
        }],
        updates: vec![
            TableUpdate::AddSpec { spec },
            TableUpdate::SetDefaultSpec { spec_id: -1 },
        ],
    };
    lake.commit_change(&table, change)
        .await
        .expect("spec change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_copes_with_a_promoted_partition_column_and_a_spec_change_mid_rewrite() {
    let l = lake().await;
    let spec = partitioned_spec();
    let mut t = ensure_table(l.lake.catalog.as_ref(), &spec)
        .await
        .expect("table");
    for c in 0..4 {
        t = append_declared(&l.lake, t, &spec, c * 10, c * 10 + 10)
            .await
            .0;
    }
    t = change_schema(&l.lake, &t, |f| promote_to_long(f, "part")).await;
    check_compatible(&spec, &t).expect("the job's INT fits the promoted column");
    for c in 4..8 {
        t = append_declared(&l.lake, t, &spec, c * 10, c * 10 + 10)
            .await
            .0;
    }
    let fired = Arc::new(AtomicBool::new(false));
    let (lake, hook_fired) = (l.lake.clone(), fired.clone());
    let policy = RetryPolicy {
        faults: Some(Arc::new(move |fault: &str| {
            if fault == "compaction-before-commit" && !hook_fired.swap(true, Ordering::SeqCst) {
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(repartition_by_id_bucket(&lake))
                });
            }
            false
        })),
        ..RetryPolicy::default()
    };
    let (t, report) = pass(&l, t, &policy).await;
    assert!(
        fired.load(Ordering::SeqCst),
        "the spec changed mid-rewrite: {report:?}"
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let c = report.compaction.expect("compacted");
    assert_eq!(
        (c.files_in, c.files_out),
        (16, 2),
        "two partitions, each its own file"
    );
    assert_ne!(t.metadata().default_partition_spec_id(), 0);
    let expected: Vec<(i64, Option<String>)> = (0..80).map(|i| (i, Some(currency_of(i)))).collect();
    assert_eq!(rows(&l.lake, &t, "currency").await, expected);
}

#[tokio::test]
async fn files_written_before_another_writer_drops_their_column_are_never_committed() {
    let (l, t) = ten_rows().await;
    // Written while the column exists; the drop lands before their commit.
    let req = written(&t, &spec(), 10, 20).await;
    change_schema(&l.lake, &t, |f| without(f, "currency")).await;
    let err = commit(&l.lake, t.clone(), &req, &RetryPolicy::default())
        .await
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("column currency (field id 2) was dropped"),
        "{err}"
    );
    let now = l
        .lake
        .catalog
        .load_table(t.identifier())
        .await
        .expect("load");
    assert_eq!(
        now.metadata().current_snapshot_id(),
        t.metadata().current_snapshot_id(),
        "nothing was committed"
    );
}

#[tokio::test]
async fn files_written_before_another_writer_renames_their_column_land_under_the_new_schema() {
    let (l, t) = ten_rows().await;
    let req = written(&t, &spec(), 10, 20).await;
    let renamed = change_schema(&l.lake, &t, |f| rename(f, "currency", "ccy")).await;
    assert_ne!(
        renamed.metadata().current_schema_id(),
        t.metadata().current_schema_id()
    );
    let (t, outcome) = commit(&l.lake, t, &req, &RetryPolicy::default())
        .await
        .expect("lands on the renamed table");
    assert_eq!(outcome.conflicts, 1, "planned again on the new schema");
    let expected: Vec<(i64, Option<String>)> = (0..20).map(|i| (i, Some(currency_of(i)))).collect();
    assert_eq!(rows(&l.lake, &t, "ccy").await, expected);
}
