//! Table maintenance against a real SQL catalog (SQLite) and local storage; rows are
//! read back through iceberg-rust's own scan.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use floe_catalog::checkpoint::{job_counts, latest_checkpoint};
use floe_catalog::counts::RecordCounts;
use floe_catalog::offsets::COUNTS_KEY;
use floe_catalog::{ManifestCache, OffsetMap, OpenCatalog, TopicPartition};
use floe_sinks::{
    CommitOutcome, CommitRequest, CompactionConfig, ExpiryConfig, MAINTENANCE_KEY,
    MaintenanceConfig, MaintenanceReport, NewestTable, RetryPolicy, TableSpec, TableWriter,
    WriterConfig, commit, ensure_table, maintain,
};
use iceberg::TableIdent;
use iceberg::spec::{DataFile, Operation, Transform};
use iceberg::table::Table;

struct Fixture {
    _dir: tempfile::TempDir,
    lake: OpenCatalog,
    table: Table,
    /// Shared by every pass of a test, as the job's maintenance thread shares one.
    cache: ManifestCache,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = common::sqlite_lake(&dir).await;
    let spec = TableSpec {
        ident: TableIdent::from_strs(["ns", "t"]).expect("ident"),
        schema: Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        partition_by: vec![("id".into(), Transform::Bucket(2))],
        properties: HashMap::new(),
        add_columns: false,
        writer: None,
    };
    let table = ensure_table(lake.catalog.as_ref(), &spec)
        .await
        .expect("table");
    Fixture {
        _dir: dir,
        lake,
        table,
        cache: ManifestCache::default(),
    }
}

async fn files(table: &Table, ids: &[i64]) -> Vec<DataFile> {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec()))])
        .expect("batch");
    let config = WriterConfig {
        target_file_size: 1 << 20,
        file_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
    };
    let mut w = TableWriter::new(table, &config).expect("writer");
    w.write(&batch).await.expect("write");
    w.close().await.expect("close")
}

fn at(offset: i64) -> OffsetMap {
    let mut m = OffsetMap::new();
    if offset > 0 {
        m.set(TopicPartition::new("orders", 0), offset);
    }
    m
}

/// Commits ids `from..to` as the job would, reading offsets `from..to`; each commit
/// counts one record the SELECT filtered out.
async fn append(lake: &OpenCatalog, table: Table, from: i64, to: i64) -> Table {
    append_with_outcome(lake, table, from, to).await.0
}

async fn append_with_outcome(
    lake: &OpenCatalog,
    table: Table,
    from: i64,
    to: i64,
) -> (Table, CommitOutcome) {
    let ids: Vec<i64> = (from..to).collect();
    let counts = RecordCounts {
        filtered: 1,
        ..RecordCounts::default()
    };
    let req = CommitRequest {
        job: "job".into(),
        files: files(&table, &ids).await,
        from: at(from),
        to: at(to),
        properties: [(COUNTS_KEY.to_string(), counts.to_json())].into(),
        id: None,
        commit_interval: Duration::from_secs(1),
        table_properties: Default::default(),
        adopted: Default::default(),
        written_with: None,
    };
    commit(lake, table, &req, &RetryPolicy::default())
        .await
        .expect("append")
}

/// `commits` appends of 10 ids each.
async fn appended(f: &Fixture, commits: i64) -> Table {
    let mut t = f.table.clone();
    for c in 0..commits {
        t = append(&f.lake, t, c * 10, c * 10 + 10).await;
    }
    t
}

async fn ids(lake: &OpenCatalog, table: &Table) -> Vec<i64> {
    let batches = common::scan(lake, table).await;
    let mut out = vec![];
    for b in batches {
        let col = b
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("ids");
        out.extend((0..col.len()).map(|i| col.value(i)));
    }
    out.sort_unstable();
    out
}

/// One pass with `cfg` and the default retry policy.
async fn pass(f: &Fixture, table: Table, cfg: &MaintenanceConfig) -> (Table, MaintenanceReport) {
    let done = no_failures(maintain(&f.lake, table, cfg, &RetryPolicy::default(), &f.cache).await);
    f.cache.end_pass();
    done
}

fn config(
    compaction: bool,
    max_manifests: usize,
    expiry: Option<ExpiryConfig>,
) -> MaintenanceConfig {
    MaintenanceConfig {
        compaction: compaction.then_some(CompactionConfig {
            target_file_size: 1 << 20,
            min_input_files: 4,
            max_bytes_per_pass: 1 << 30,
        }),
        max_manifests,
        expiry,
        orphan_age: None,
        file_prefix: "compacted".into(),
        publish_to: None,
        paused: Default::default(),
    }
}

/// A pass's outcome, asserting that every step succeeded.
fn no_failures(done: (Table, MaintenanceReport)) -> (Table, MaintenanceReport) {
    assert!(
        done.1.failures.is_empty(),
        "failed steps: {:?}",
        done.1.failures
    );
    done
}

async fn live_files(table: &Table) -> Vec<String> {
    entries(table).await.0
}

async fn manifest_count(table: &Table) -> usize {
    let snapshot = table.metadata().current_snapshot().expect("snapshot");
    let list = table
        .manifest_list_reader(snapshot)
        .load()
        .await
        .expect("list");
    list.entries().len()
}

fn checkpoint(table: &Table) -> OffsetMap {
    latest_checkpoint("t", table.metadata(), "job")
        .expect("read")
        .expect("checkpoint")
        .offsets
}

#[tokio::test]
async fn compaction_keeps_every_row_and_the_checkpoint() {
    let f = fixture().await;
    let before = appended(&f, 12).await;
    assert_eq!(live_files(&before).await.len(), 24, "two buckets a commit");
    let (after, report) = pass(&f, before.clone(), &config(true, 100, None)).await;
    let c = report.compaction.expect("compacted");
    assert_eq!((c.files_in, c.files_out), (24, 2));
    assert!(!c.commit.recovered, "the commit's own answer was a success");
    let current = after.metadata().current_snapshot().expect("snapshot");
    assert_eq!(current.summary().operation, Operation::Replace);
    assert_eq!(
        current
            .summary()
            .additional_properties
            .get(MAINTENANCE_KEY)
            .map(String::as_str),
        Some("compaction")
    );
    assert_eq!(
        current
            .summary()
            .additional_properties
            .get("total-records")
            .map(String::as_str),
        Some("120")
    );
    assert_eq!(live_files(&after).await.len(), 2);
    assert_eq!(ids(&f.lake, &after).await, (0..120).collect::<Vec<_>>());
    assert_eq!(checkpoint(&after), at(120), "the job resumes where it was");
    // The job goes on committing on top of the replace snapshot.
    let next = append(&f.lake, after, 120, 130).await;
    assert_eq!(ids(&f.lake, &next).await, (0..130).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_append_that_lands_during_compaction_is_kept() {
    let f = fixture().await;
    let planned = appended(&f, 6).await;
    // The job commits after the pass loaded the table: the replace commit conflicts.
    let moved = append(&f.lake, planned.clone(), 60, 70).await;
    let (after, report) = pass(&f, planned, &config(true, 100, None)).await;
    let c = report.compaction.expect("compacted");
    assert_eq!(c.commit.conflicts, 1, "re-planned once on the job's append");
    assert_eq!(c.files_in, 12, "only what was planned is rewritten");
    assert_eq!(ids(&f.lake, &after).await, (0..70).collect::<Vec<_>>());
    assert_eq!(checkpoint(&after), checkpoint(&moved));
}

#[tokio::test]
async fn a_rewrite_of_files_another_writer_removed_gives_up() {
    let f = fixture().await;
    let stale = appended(&f, 6).await;
    // Another pass removes the same small files first.
    pass(&f, stale.clone(), &config(true, 100, None)).await;
    let (after, report) = pass(&f, stale, &config(true, 100, None)).await;
    assert!(report.compaction.is_none());
    let why = report.abandoned.expect("abandoned");
    assert!(why.contains("removed by another writer"), "{why}");
    assert_eq!(
        ids(&f.lake, &after).await,
        (0..60).collect::<Vec<_>>(),
        "no row twice"
    );
}

#[tokio::test]
async fn the_manifest_list_stays_bounded() {
    let f = fixture().await;
    let before = appended(&f, 30).await;
    assert_eq!(manifest_count(&before).await, 30);
    let (after, report) = pass(&f, before, &config(false, 10, None)).await;
    let merged = report.manifests.expect("merged");
    assert_eq!(merged.manifests, (30, 1));
    assert_eq!(manifest_count(&after).await, 1);
    assert_eq!(
        live_files(&after).await.len(),
        60,
        "merging rewrites no data"
    );
    assert_eq!(ids(&f.lake, &after).await, (0..300).collect::<Vec<_>>());
}

#[tokio::test]
async fn expiry_removes_the_files_only_expired_snapshots_reached() {
    let f = fixture().await;
    let before = appended(&f, 8).await;
    let small = live_files(&before).await;
    let expiry = ExpiryConfig {
        max_age: Duration::ZERO,
        min_snapshots: 1,
    };
    let (after, report) = no_failures(
        maintain(
            &f.lake,
            before,
            &config(true, 100, Some(expiry)),
            &RetryPolicy::default(),
            &f.cache,
        )
        .await,
    );
    assert_eq!(report.expiry.expired, 8);
    assert_eq!(after.metadata().snapshots().count(), 1);
    for path in &small {
        let local = path.trim_start_matches("file://");
        assert!(
            !std::path::Path::new(local).exists(),
            "{path} should be removed"
        );
    }
    for path in live_files(&after).await {
        assert!(std::path::Path::new(path.trim_start_matches("file://")).exists());
    }
    assert_eq!(ids(&f.lake, &after).await, (0..80).collect::<Vec<_>>());
    assert_eq!(
        checkpoint(&after),
        at(80),
        "the checkpoint outlives every job snapshot"
    );
    assert_eq!(
        job_counts(after.metadata(), "job").filtered,
        8,
        "so do the job's counts"
    );
    let next = append(&f.lake, after, 80, 90).await;
    assert_eq!(ids(&f.lake, &next).await, (0..90).collect::<Vec<_>>());
    assert_eq!(job_counts(next.metadata(), "job").filtered, 9);
}

#[tokio::test]
async fn a_replace_commit_whose_response_was_lost_is_found_not_repeated() {
    let f = fixture().await;
    let before = appended(&f, 6).await;
    let snapshots = before.metadata().snapshots().count();
    let policy = RetryPolicy {
        faults: Some(Arc::new(|fault: &str| fault == "compaction-lost-response")),
        ..RetryPolicy::default()
    };
    let (after, report) =
        no_failures(maintain(&f.lake, before, &config(true, 100, None), &policy, &f.cache).await);
    let c = report.compaction.expect("compacted");
    assert!(c.commit.recovered, "found in the table after the error");
    assert_eq!(
        after.metadata().snapshots().count(),
        snapshots + 1,
        "one replace snapshot"
    );
    assert_eq!(ids(&f.lake, &after).await, (0..60).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_and_passes_racing_lose_and_duplicate_nothing() {
    let f = fixture().await;
    let lake = f.lake.clone();
    let start = f.table.clone();
    let writer = tokio::spawn(async move {
        let mut t = start;
        for c in 0..60 {
            t = lake.catalog.load_table(t.identifier()).await.expect("load");
            t = append(&lake, t, c * 10, c * 10 + 10).await;
        }
    });
    let expiry = ExpiryConfig {
        max_age: Duration::ZERO,
        min_snapshots: 2,
    };
    let cfg = config(true, 4, Some(expiry));
    let mut passes = 0;
    while !writer.is_finished() {
        let t = f
            .lake
            .catalog
            .load_table(f.table.identifier())
            .await
            .expect("load");
        pass(&f, t, &cfg).await;
        passes += 1;
    }
    writer.await.expect("writer");
    assert!(passes > 3, "{passes} passes");
    let t = f
        .lake
        .catalog
        .load_table(f.table.identifier())
        .await
        .expect("load");
    assert_eq!(ids(&f.lake, &t).await, (0..600).collect::<Vec<_>>());
    // Every pass writes files of its own: a later pass never overwrites an earlier
    // pass's file, live or removed.
    let (live, deleted) = entries(&t).await;
    let unique: std::collections::HashSet<&String> = live.iter().collect();
    assert_eq!(unique.len(), live.len(), "a file is live twice: {live:?}");
    let reused: Vec<&String> = deleted.iter().filter(|p| unique.contains(p)).collect();
    assert!(
        reused.is_empty(),
        "removed files whose names live on: {reused:?}"
    );
}

/// Paths of the live and of the deleted entries of the current snapshot.
async fn entries(table: &Table) -> (Vec<String>, Vec<String>) {
    let (mut live, mut deleted) = (vec![], vec![]);
    let snapshot = table.metadata().current_snapshot().expect("snapshot");
    let list = table
        .manifest_list_reader(snapshot)
        .load()
        .await
        .expect("list");
    for m in list.entries() {
        let manifest = m.load_manifest(table.file_io()).await.expect("manifest");
        for e in manifest.entries() {
            let to = if e.is_alive() {
                &mut live
            } else {
                &mut deleted
            };
            to.push(e.file_path().to_string());
        }
    }
    (live, deleted)
}

#[tokio::test]
async fn a_later_pass_never_reuses_an_earlier_passs_file_names() {
    let f = fixture().await;
    let cfg = config(true, 100, None);
    let policy = RetryPolicy::default();
    let first = appended(&f, 6).await;
    let (after_first, _) = no_failures(maintain(&f.lake, first, &cfg, &policy, &f.cache).await);
    let mut t = after_first;
    for c in 6..12 {
        t = append(&f.lake, t, c * 10, c * 10 + 10).await;
    }
    let (after_second, report) = no_failures(maintain(&f.lake, t, &cfg, &policy, &f.cache).await);
    assert!(report.compaction.is_some());
    let (live, deleted) = entries(&after_second).await;
    let reused: Vec<&String> = deleted.iter().filter(|p| live.contains(p)).collect();
    assert!(
        reused.is_empty(),
        "the second pass wrote over files it removed: {reused:?}"
    );
    assert_eq!(
        ids(&f.lake, &after_second).await,
        (0..120).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_manifest_cache_serves_what_it_read_and_drops_what_a_pass_left_unread() {
    let f = fixture().await;
    let t = appended(&f, 3).await;
    let snapshots: Vec<_> = t.metadata().snapshots().cloned().collect();
    for s in &snapshots {
        f.cache.list(&t, s).await.expect("list");
    }
    let head = t.metadata().current_snapshot().expect("head").clone();
    let manifest = f.cache.list(&t, &head).await.expect("list").entries()[0].clone();
    f.cache.manifest(&t, &manifest).await.expect("manifest");
    assert_eq!(f.cache.len(), (3, 1));
    // Gone from the store, still served: a second read does not touch the file.
    t.file_io()
        .delete(head.manifest_list())
        .await
        .expect("delete");
    f.cache.end_pass();
    assert_eq!(
        f.cache.len(),
        (3, 1),
        "all were read in the pass that ended"
    );
    let served = f.cache.list(&t, &head).await.expect("served from memory");
    assert!(
        served
            .entries()
            .iter()
            .any(|m| m.manifest_path == manifest.manifest_path)
    );
    f.cache.end_pass();
    assert_eq!(
        f.cache.len(),
        (1, 0),
        "only the head's list was read in the last pass"
    );
    f.cache.end_pass();
    assert!(f.cache.is_empty());
    assert!(
        f.cache.list(&t, &head).await.is_err(),
        "dropped, so read from the store again, where it is gone"
    );
}

/// The `metadata.json` files in the table's metadata directory.
fn metadata_files(table: &Table) -> Vec<String> {
    let dir = table
        .metadata()
        .location()
        .trim_start_matches("file://")
        .to_string()
        + "/metadata";
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("metadata dir")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".metadata.json"))
        .collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn a_pass_removes_metadata_files_older_than_the_metadata_log() {
    let f = fixture().await;
    // The log keeps 100 previous versions; 110 commits push the first ones out of it.
    let t = appended(&f, 110).await;
    let before = metadata_files(&t);
    let logged: Vec<String> = t
        .metadata()
        .metadata_log()
        .iter()
        .map(|l| l.metadata_file.clone())
        .chain(t.metadata_location().map(str::to_string))
        .filter_map(|l| l.rsplit('/').next().map(str::to_string))
        .collect();
    assert_eq!(logged.len(), 101);
    assert!(before.len() > logged.len(), "{} files", before.len());
    // Manifests are not merged (1 000 allowed), so the pass commits nothing.
    let (after, report) = pass(&f, t, &config(false, 1000, None)).await;
    let mut kept = metadata_files(&after);
    let mut expected = logged.clone();
    expected.sort_unstable();
    kept.sort_unstable();
    assert_eq!(
        kept, expected,
        "exactly the logged versions and the current one remain"
    );
    assert_eq!(report.superseded_removed, before.len() - logged.len());
    assert_eq!(ids(&f.lake, &after).await, (0..1100).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_job_commit_after_a_pass_plans_on_the_state_the_pass_published() {
    let f = fixture().await;
    let expiry = ExpiryConfig {
        max_age: Duration::ZERO,
        min_snapshots: 2,
    };
    // Without the hand-over, the job's next commit meets the pass's commits as a conflict.
    let stale = appended(&f, 6).await;
    let (_, report) = pass(&f, stale.clone(), &config(true, 100, Some(expiry.clone()))).await;
    assert!(report.compaction.is_some() && report.expiry.expired > 0);
    let (stale, outcome) = append_with_outcome(&f.lake, stale, 60, 70).await;
    assert_eq!(outcome.conflicts, 1, "a stale base conflicts");

    let newest = NewestTable::default();
    newest.offer(&stale);
    let stale = append(&f.lake, stale, 70, 80).await;
    let stale = append(&f.lake, stale, 80, 90).await;
    let cfg = MaintenanceConfig {
        publish_to: Some(newest.clone()),
        ..config(true, 100, Some(expiry))
    };
    let (after, report) = pass(&f, stale.clone(), &cfg).await;
    assert!(report.compaction.is_some() && report.expiry.expired > 0);
    let published = newest
        .newer_than(&stale)
        .expect("the pass published its state");
    assert_eq!(published.metadata_location(), after.metadata_location());
    assert!(
        newest.newer_than(&after).is_none(),
        "nothing newer than the newest"
    );

    let (t, outcome) = append_with_outcome(&f.lake, newest.newest(stale), 90, 100).await;
    assert_eq!(outcome.conflicts, 0, "planned on the published state");
    assert_eq!(ids(&f.lake, &t).await, (0..100).collect::<Vec<_>>());
    assert_eq!(checkpoint(&t), at(100));
}
