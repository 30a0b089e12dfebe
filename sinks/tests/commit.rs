//! Commit protocol against a real SQL catalog (SQLite) and local storage.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use floe_catalog::checkpoint::latest_checkpoint;
use floe_catalog::offsets::ancestry;
use floe_catalog::{OffsetMap, TopicPartition};
use floe_sinks::{
    CommitRequest, RetryPolicy, SinkError, TableSpec, TableWriter, WriterConfig, commit,
    ensure_table,
};
use iceberg::spec::{DataFile, Transform};
use iceberg::table::Table;
use iceberg::{Catalog, TableIdent};

struct Fixture {
    _dir: tempfile::TempDir,
    lake: floe_catalog::OpenCatalog,
    catalog: Arc<dyn Catalog>,
    table: Table,
    spec: TableSpec,
}

fn spec(id_type: DataType) -> TableSpec {
    TableSpec {
        ident: TableIdent::from_strs(["ns", "t"]).expect("ident"),
        schema: Arc::new(Schema::new(vec![Field::new("id", id_type, false)])),
        partition_by: vec![("id".into(), Transform::Bucket(2))],
        properties: HashMap::new(),
        add_columns: false,
        writer: None,
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = common::sqlite_lake(&dir).await;
    let catalog = lake.catalog.clone();
    let spec = spec(DataType::Int64);
    let table = ensure_table(catalog.as_ref(), &spec).await.expect("table");
    Fixture {
        _dir: dir,
        lake,
        catalog,
        table,
        spec,
    }
}

async fn files(table: &Table, ids: &[i64]) -> Vec<DataFile> {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec()))])
        .expect("batch");
    let mut w = TableWriter::new(
        table,
        &WriterConfig {
            target_file_size: 1 << 20,
            file_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        },
    )
    .expect("writer");
    w.write(&batch).await.expect("write");
    w.close().await.expect("close")
}

fn offsets(entries: &[(i32, i64)]) -> OffsetMap {
    let mut m = OffsetMap::new();
    for (p, o) in entries {
        m.set(TopicPartition::new("orders", *p), *o);
    }
    m
}

fn request(files: Vec<DataFile>, from: OffsetMap, to: OffsetMap) -> CommitRequest {
    CommitRequest {
        job: "job".into(),
        files,
        from,
        to,
        properties: Default::default(),
        id: None,
        commit_interval: std::time::Duration::from_secs(1),
        table_properties: Default::default(),
        adopted: Default::default(),
        written_with: None,
    }
}

fn snapshots(t: &Table) -> usize {
    ancestry(t.metadata()).count()
}

#[tokio::test]
async fn a_commit_whose_response_was_lost_is_not_appended_again() {
    let f = fixture().await;
    let req = request(
        files(&f.table, &[1, 2, 3]).await,
        OffsetMap::new(),
        offsets(&[(0, 3)]),
    );
    let policy = RetryPolicy::default();
    // The first attempt lands, but its caller never hears of it and still holds the old table.
    commit(&f.lake, f.table.clone(), &req, &policy)
        .await
        .expect("first commit");
    let (table, outcome) = commit(&f.lake, f.table.clone(), &req, &policy)
        .await
        .expect("retry");
    assert!(
        outcome.recovered,
        "the retry must find its own commit in the ancestry"
    );
    assert_eq!(snapshots(&table), 1, "the files must be appended once");
    let cp = latest_checkpoint("t", table.metadata(), "job")
        .expect("read")
        .expect("checkpoint");
    assert_eq!(cp.offsets, offsets(&[(0, 3)]));
}

#[tokio::test]
async fn commits_of_other_partitions_are_rebased_and_merged() {
    let f = fixture().await;
    let policy = RetryPolicy::default();
    let a = request(
        files(&f.table, &[1]).await,
        OffsetMap::new(),
        offsets(&[(0, 10)]),
    );
    let b = request(
        files(&f.table, &[2]).await,
        OffsetMap::new(),
        offsets(&[(1, 7)]),
    );
    commit(&f.lake, f.table.clone(), &a, &policy)
        .await
        .expect("a");
    // b was planned on the table before a's commit.
    let (table, outcome) = commit(&f.lake, f.table.clone(), &b, &policy)
        .await
        .expect("b");
    assert!(!outcome.recovered);
    assert_eq!(snapshots(&table), 2);
    assert_eq!(outcome.offsets, offsets(&[(0, 10), (1, 7)]));
    assert_eq!((outcome.conflicts, outcome.retries), (1, 0), "one re-plan");
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_counted() {
    let f = fixture().await;
    // The catalog is unavailable once.
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let policy = RetryPolicy {
        faults: Some(std::sync::Arc::new(move |fault: &str| {
            fault == "commit-error" && !failed.swap(true, std::sync::atomic::Ordering::SeqCst)
        })),
        ..RetryPolicy::default()
    };
    let req = request(
        files(&f.table, &[1]).await,
        OffsetMap::new(),
        offsets(&[(0, 1)]),
    );
    let (table, outcome) = commit(&f.lake, f.table.clone(), &req, &policy)
        .await
        .expect("commit");
    assert_eq!(
        (outcome.retries, outcome.conflicts, outcome.attempts),
        (1, 0, 2)
    );
    assert_eq!(snapshots(&table), 1);
}

#[tokio::test]
async fn a_stale_writer_of_the_same_partition_is_fenced() {
    let f = fixture().await;
    let policy = RetryPolicy::default();
    let a = request(
        files(&f.table, &[1]).await,
        OffsetMap::new(),
        offsets(&[(0, 10)]),
    );
    let b = request(
        files(&f.table, &[1]).await,
        OffsetMap::new(),
        offsets(&[(0, 12)]),
    );
    let (table, _) = commit(&f.lake, f.table.clone(), &a, &policy)
        .await
        .expect("a");
    let err = commit(&f.lake, f.table.clone(), &b, &policy)
        .await
        .expect_err("b must be fenced");
    assert!(matches!(err, SinkError::Fenced { .. }), "{err}");
    assert!(err.to_string().contains("orders/0"), "{err}");
    let now = f
        .catalog
        .load_table(table.identifier())
        .await
        .expect("load");
    assert_eq!(snapshots(&now), 1);
}

/// Two replicas meet a new dead-letter lane at once: each adopts every partition at its
/// target's offsets and reads records of its own partitions only.
#[tokio::test]
async fn writers_that_adopt_the_same_partitions_fence_neither() {
    let f = fixture().await;
    let policy = RetryPolicy::default();
    let adopted = offsets(&[(0, 50), (1, 50)]);
    let a = CommitRequest {
        adopted: adopted.clone(),
        ..request(
            files(&f.table, &[1]).await,
            OffsetMap::new(),
            offsets(&[(0, 100), (1, 50)]),
        )
    };
    let b = CommitRequest {
        adopted: adopted.clone(),
        ..request(
            files(&f.table, &[2]).await,
            OffsetMap::new(),
            offsets(&[(0, 50), (1, 120)]),
        )
    };
    let (_, first) = commit(&f.lake, f.table.clone(), &a, &policy)
        .await
        .expect("a");
    assert_eq!(first.offsets, offsets(&[(0, 100), (1, 50)]));
    let (table, second) = commit(&f.lake, f.table.clone(), &b, &policy)
        .await
        .expect("b is not fenced");
    assert_eq!(
        second.offsets,
        offsets(&[(0, 100), (1, 120)]),
        "b's read partition advances; a's stands"
    );

    // A writer that adopted below what was written past it is fenced as any other.
    let late = CommitRequest {
        adopted: offsets(&[(0, 40)]),
        ..request(
            files(&f.table, &[3]).await,
            OffsetMap::new(),
            offsets(&[(0, 60)]),
        )
    };
    let err = commit(&f.lake, table, &late, &policy)
        .await
        .expect_err("fenced");
    assert!(matches!(err, SinkError::Fenced { .. }), "{err}");
}

#[tokio::test]
async fn an_existing_table_that_differs_is_rejected_with_the_difference() {
    let f = fixture().await;
    assert!(
        ensure_table(f.catalog.as_ref(), &f.spec).await.is_ok(),
        "same declaration is fine"
    );
    let err = ensure_table(f.catalog.as_ref(), &spec(DataType::Utf8))
        .await
        .expect_err("type differs");
    assert!(
        err.to_string()
            .contains("column id is long in the existing table but string in the job"),
        "{err}"
    );
    let mut other = spec(DataType::Int64);
    other.partition_by = vec![("id".into(), Transform::Identity)];
    let err = ensure_table(f.catalog.as_ref(), &other)
        .await
        .expect_err("spec differs");
    assert!(
        err.to_string().contains("partitioned by (bucket[2](id))"),
        "{err}"
    );
}

/// Appends `ids` as another writer would: a snapshot without Floe's summary.
async fn foreign_append(catalog: &Arc<dyn Catalog>, table: &Table, ids: &[i64]) -> Table {
    use iceberg::transaction::{ApplyTransactionAction, Transaction};
    let tx = Transaction::new(table);
    let tx = tx
        .fast_append()
        .add_data_files(files(table, ids).await)
        .apply(tx)
        .expect("apply");
    tx.commit(catalog.as_ref()).await.expect("foreign append")
}

/// Expires every snapshot but the current one, as `expire_snapshots` with
/// `retain_last = 1` does in Spark or PyIceberg.
async fn expire_all_but_current(catalog: &Arc<dyn Catalog>, table: &Table) -> Table {
    use iceberg::transaction::{ApplyTransactionAction, Transaction};
    let tx = Transaction::new(table);
    let tx = tx
        .expire_snapshots()
        .expire_older_than_ms(chrono::Utc::now().timestamp_millis() + 60_000)
        .retain_last(1)
        .apply(tx)
        .expect("apply");
    tx.commit(catalog.as_ref()).await.expect("expire")
}

#[tokio::test]
async fn the_checkpoint_survives_expiry_behind_a_foreign_snapshot() {
    let f = fixture().await;
    let policy = RetryPolicy::default();
    let a = request(
        files(&f.table, &[1]).await,
        OffsetMap::new(),
        offsets(&[(0, 10), (1, 4)]),
    );
    let (table, _) = commit(&f.lake, f.table.clone(), &a, &policy)
        .await
        .expect("a");
    let table = foreign_append(&f.catalog, &table, &[100]).await;
    let table = expire_all_but_current(&f.catalog, &table).await;
    assert_eq!(snapshots(&table), 1, "only the foreign snapshot is left");
    let cp = latest_checkpoint("t", table.metadata(), "job")
        .expect("read")
        .expect("the checkpoint outlives the job's snapshots");
    assert_eq!(cp.offsets, offsets(&[(0, 10), (1, 4)]));
    // The job continues from there: not fenced, and the offsets carry on.
    let b = request(
        files(&table, &[2]).await,
        offsets(&[(0, 10), (1, 4)]),
        offsets(&[(0, 15), (1, 4)]),
    );
    let (table, outcome) = commit(&f.lake, table, &b, &policy)
        .await
        .expect("b continues from the kept checkpoint");
    assert_eq!(outcome.offsets, offsets(&[(0, 15), (1, 4)]));
    let record = table
        .metadata()
        .properties()
        .get("floe.checkpoint.job")
        .expect("checkpoint property");
    assert!(record.contains(r#""orders":{"0":15,"1":4}"#), "{record}");
}

#[tokio::test]
async fn a_lost_response_is_recognised_after_its_snapshot_expired() {
    let f = fixture().await;
    let policy = RetryPolicy::default();
    let req = request(
        files(&f.table, &[1, 2]).await,
        OffsetMap::new(),
        offsets(&[(0, 2)]),
    );
    // It lands, its caller never hears of it; another writer appends and the job's
    // snapshot is expired before the caller retries on the state it had.
    let (table, _) = commit(&f.lake, f.table.clone(), &req, &policy)
        .await
        .expect("first attempt");
    let table = foreign_append(&f.catalog, &table, &[100]).await;
    expire_all_but_current(&f.catalog, &table).await;
    let (table, outcome) = commit(&f.lake, f.table.clone(), &req, &policy)
        .await
        .expect("retry");
    assert!(outcome.recovered, "the retry finds its commit id");
    let rows: i64 = table
        .metadata()
        .current_snapshot()
        .and_then(|s| s.summary().additional_properties.get("total-records"))
        .and_then(|n| n.parse().ok())
        .expect("total-records");
    assert_eq!(rows, 3, "ids 1 and 2 once, and the foreign row");
}

#[tokio::test]
async fn a_retry_never_overwrites_the_manifests_of_an_attempt_that_landed() {
    let f = fixture().await;
    let policy = RetryPolicy::default();
    let req = request(
        files(&f.table, &[1, 2, 3]).await,
        OffsetMap::new(),
        offsets(&[(0, 3)]),
    );
    let (landed, first) = commit(&f.lake, f.table.clone(), &req, &policy)
        .await
        .expect("first attempt");
    // The retry was planned before the first attempt was seen: it writes its own
    // manifests, fails the catalog's compare-and-swap, and finds the landed commit.
    let (_, retry) = commit(&f.lake, f.table.clone(), &req, &policy)
        .await
        .expect("retry");
    assert!(retry.recovered);
    assert_eq!(retry.snapshot_id, first.snapshot_id);
    let snapshot = landed
        .metadata()
        .snapshot_by_id(first.snapshot_id)
        .expect("landed snapshot");
    let bytes = landed
        .file_io()
        .new_input(snapshot.manifest_list())
        .expect("manifest list")
        .read()
        .await
        .expect("read manifest list");
    let list =
        iceberg::spec::ManifestList::parse_with_version(&bytes, landed.metadata().format_version())
            .expect("parse manifest list");
    for m in list.entries() {
        let manifest = m.load_manifest(landed.file_io()).await.expect("manifest");
        for e in manifest.entries() {
            assert_eq!(
                e.snapshot_id(),
                Some(first.snapshot_id),
                "{} was rewritten by the retry",
                m.manifest_path
            );
        }
    }
}

#[tokio::test]
async fn a_commit_to_a_dropped_table_fails_at_once_naming_it() {
    let f = fixture().await;
    let req = request(
        files(&f.table, &[1]).await,
        OffsetMap::new(),
        offsets(&[(0, 1)]),
    );
    f.catalog
        .drop_table(f.table.identifier())
        .await
        .expect("drop");
    // A transient failure would be retried for an hour under this policy; a missing table
    // cannot heal, so the commit gives up on its first failure, long before the deadline.
    let patient = RetryPolicy {
        deadline: std::time::Duration::from_secs(3600),
        ..RetryPolicy::default()
    };
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        commit(&f.lake, f.table.clone(), &req, &patient),
    )
    .await
    .expect("the commit gives up instead of retrying")
    .expect_err("the table is gone");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("ns.t"), "{err}");
}
