//! A warehouse on an S3-compatible store with a PostgreSQL catalog: two replicas share
//! the catalog, PyIceberg reads the same tables through the same catalog and store, and a
//! store that fails gives a clear error that names the location but not the secret. And
//! a warehouse on Azure Blob Storage (Azurite), and a Google Cloud Storage store that does
//! not answer.

use std::time::Duration;

use crate::fixture::{Broker, Lake, assert_exactly_once, orders_job_in};
use crate::pyiceberg::{assert_pyiceberg_orders, read_through};
use crate::services::{AZURITE_ACCOUNT, AZURITE_KEY, Azurite, Postgres, S3Server, ThrottleProxy};

const PG_PASSWORD: &str = "pg-pw-never-logged";
const S3_SECRET: &str = "s3-secret-never-logged";

/// The catalog options of a lake in `bucket` on `s3`, cataloged in `pg`.
fn catalog(pg: &Postgres, endpoint: &str, bucket: &str, extra: &str) -> String {
    format!(
        "'type' = 'sql',
  'uri' = 'postgres://floe:${{PG_PASSWORD}}@127.0.0.1:{port}/postgres',
  {}{extra}",
        s3_warehouse(endpoint, bucket),
        port = pg.port
    )
}

/// The warehouse options of a lake in `bucket` of the S3 server at `endpoint`, with the
/// secret key from `${S3_SECRET}`.
fn s3_warehouse(endpoint: &str, bucket: &str) -> String {
    format!(
        "'warehouse' = 's3://{bucket}/warehouse',
  'storage.s3.endpoint' = '{endpoint}',
  'storage.s3.region' = 'us-east-1',
  'storage.s3.access-key-id' = 'floe',
  'storage.s3.secret-access-key' = '${{S3_SECRET}}'"
    )
}

/// A lake with a SQLite catalog in its temp dir and the warehouse `warehouse` declares
/// (the `'warehouse'` and `'storage.*'` options).
fn sqlite_lake(warehouse: &str, commit_interval: &str) -> Lake {
    Lake::with_job(|dir| {
        let catalog = format!(
            "'type' = 'sql',\n  'uri' = 'sqlite://{}/catalog.db',\n  {warehouse}",
            dir.display()
        );
        orders_job_in(&catalog, commit_interval)
    })
}

fn secrets() -> Vec<(String, String)> {
    vec![
        ("PG_PASSWORD".into(), PG_PASSWORD.into()),
        ("S3_SECRET".into(), S3_SECRET.into()),
    ]
}

/// `what` (a log or an error) shows none of `secrets`.
fn assert_no_secrets(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows a secret:\n{text}");
    }
}

#[test]
fn replicas_share_a_postgres_catalog_and_an_s3_warehouse_that_pyiceberg_reads() {
    let broker = Broker::start(&["orders:4"]);
    let pg = Postgres::start();
    let s3 = S3Server::start("lake");
    let mut lake = Lake::with_job(|_| {
        orders_job_in(&catalog(&pg, &s3.endpoint, "lake", ""), "1s").replace(
            "'commit.interval' = '1s'",
            "'commit.interval' = '1s', 'maintenance.compaction.min-input-files' = '2'",
        )
    });
    lake.env = secrets();
    let per_partition = 3000;
    let mut producer = broker.produce(per_partition * 4, 4, 0, Some(4000));
    let (mut a, a_log) = lake.spawn_replica(&broker, "floe-shared", "5s");
    assert!(a_log.wait_for("partition assigned", Duration::from_secs(60)));
    let (mut b, b_log) = lake.spawn_replica(&broker, "floe-shared", "5s");
    assert!(producer.wait().expect("producer").success());
    let (sa, sb) = (a.wait().expect("replica a"), b.wait().expect("replica b"));
    assert!(
        sa.success() && sb.success(),
        "both replicas stop cleanly.\n--- a:\n{}\n--- b:\n{}",
        a_log.text(),
        b_log.text()
    );
    assert!(
        b_log.text().contains("partition assigned"),
        "the second replica took partitions over:\n{}",
        b_log.text()
    );
    assert_no_secrets("replica a's log", &a_log.text(), &[PG_PASSWORD, S3_SECRET]);
    assert_no_secrets("replica b's log", &b_log.text(), &[PG_PASSWORD, S3_SECRET]);
    // Floe's own reader goes through the same catalog and store.
    assert_exactly_once(&lake, per_partition);
    // PyIceberg opens the PostgreSQL catalog and reads the Parquet files from the store.
    let v = read_through(
        &format!("postgresql+psycopg2://floe@127.0.0.1:{}/postgres", pg.port),
        "s3://lake/warehouse",
        &[
            format!("s3.endpoint={}", s3.endpoint),
            "s3.region=us-east-1".into(),
            "s3.access-key-id=floe".into(),
            "s3.secret-access-key=floe".into(),
        ],
        "sales.orders_clean",
    );
    assert_pyiceberg_orders(&v, per_partition);
    assert!(
        v["summary"]["floe.offsets"].is_string(),
        "the snapshot summary carries the offsets: {v}"
    );

    // Three more runs add small files of about one size to each bucket of big_orders
    // (at least two of them share a size tier); compaction then commits through
    // PostgreSQL's compare-and-swap and writes to the store.
    for run in 0..3 {
        broker.produce_all(400, 4, per_partition + run * 100);
        lake.run_in_group(&broker, Some("floe-shared"), "3s");
    }
    let said = lake.maintain("lake.sales.big_orders", &[]);
    assert!(said.contains("compacted"), "{said}");
    assert_exactly_once(&lake, per_partition + 300);
    let v = read_through(
        &format!("postgresql+psycopg2://floe@127.0.0.1:{}/postgres", pg.port),
        "s3://lake/warehouse",
        &[
            format!("s3.endpoint={}", s3.endpoint),
            "s3.region=us-east-1".into(),
            "s3.access-key-id=floe".into(),
            "s3.secret-access-key=floe".into(),
        ],
        "sales.big_orders",
    );
    assert_eq!(v["operation"], "replace", "{v}");
    crate::fixture::assert_same_ids(
        "PyIceberg big_orders",
        &crate::pyiceberg::ids_of(&v),
        &crate::fixture::expected_big_ids(&crate::fixture::produced(4, per_partition + 300)),
    );
}

#[test]
fn a_store_that_fails_names_the_location_and_not_the_secret() {
    let broker = Broker::start(&["orders:1"]);
    let pg = Postgres::start();
    let s3 = S3Server::start("lake");
    let checking = S3Server::start_checking_keys("lake");
    let down = format!("http://127.0.0.1:{}", crate::services::free_port());
    let fast_retries = ",\n  'storage.s3.max-retries' = '1',\n  'storage.s3.retry-timeout' = '2s'";
    // A bucket that does not exist; keys the store does not know; a store that does not
    // answer.
    for (endpoint, bucket, says) in [
        (s3.endpoint.as_str(), "missing", "NoSuchBucket"),
        (checking.endpoint.as_str(), "lake", "InvalidAccessKeyId"),
        (down.as_str(), "lake", "error sending request"),
    ] {
        let mut lake =
            Lake::with_job(|_| orders_job_in(&catalog(&pg, endpoint, bucket, fast_retries), "1s"));
        lake.env = secrets();
        let err = lake.run_failing(&broker, "3s");
        assert!(
            err.contains(&format!("s3://{bucket}/warehouse/")) && err.contains(says),
            "the error names the location and says what went wrong ({says}): {err}"
        );
        assert_no_secrets("the error", &err, &[PG_PASSWORD, S3_SECRET]);
    }
}

#[test]
fn a_throttling_store_slows_the_job_down_and_loses_nothing() {
    let broker = Broker::start(&["orders:4"]);
    let s3 = S3Server::start("lake");
    // One request in four is refused with "503 SlowDown": data files, manifests and
    // metadata alike, on writes and reads.
    let proxy = ThrottleProxy::start(&s3.endpoint, 4);
    let mut lake = sqlite_lake(&s3_warehouse(&proxy.endpoint, "lake"), "500ms");
    lake.env = secrets();
    broker.produce_all(4000, 4, 0);
    let out = lake.run_until_idle(&broker, "4s");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("503") && log.contains("committed"),
        "the job backs off and commits:\n{log}"
    );
    assert_no_secrets("the log", &log, &[S3_SECRET]);
    assert_exactly_once(&lake, 1000);
}

#[test]
fn an_azure_warehouse_holds_the_tables_exactly_once() {
    let broker = Broker::start(&["orders:4"]);
    let azure = Azurite::start("lake");
    let mut lake = sqlite_lake(
        &format!(
            "'warehouse' = 'abfss://lake@{AZURITE_ACCOUNT}.dfs.core.windows.net/warehouse',
  'storage.adls.endpoint' = '{}',
  'storage.adls.account-key' = '${{AZURE_KEY}}'",
            azure.endpoint
        ),
        "1s",
    );
    lake.env = vec![("AZURE_KEY".into(), AZURITE_KEY.into())];
    broker.produce_all(4000, 4, 0);
    let out = lake.run_until_idle(&broker, "4s");
    assert_no_secrets(
        "the log",
        &String::from_utf8_lossy(&out.stderr),
        &[AZURITE_KEY],
    );
    assert_exactly_once(&lake, 1000);
    // The data files are blobs in the container.
    let parquet = azure.list("lake", "warehouse/");
    assert!(
        parquet.iter().any(|b| b.ends_with(".parquet")),
        "data files in the container: {parquet:?}"
    );
}

#[test]
fn a_gcs_store_that_does_not_answer_names_the_location_and_not_the_secret() {
    const PRIVATE_KEY: &str = "gcs-private-key-never-logged";
    let broker = Broker::start(&["orders:1"]);
    let down = format!("http://127.0.0.1:{}", crate::services::free_port());
    let mut lake = sqlite_lake(
        &format!(
            "'warehouse' = 'gs://lake/warehouse',
  'storage.gcs.endpoint' = '{down}',
  'storage.gcs.service-account-key' = '${{GCS_KEY}}',
  'storage.gcs.max-retries' = '1',
  'storage.gcs.retry-timeout' = '2s'"
        ),
        "1s",
    );
    // A service account key without an OAuth2 token exchange, as emulators take it.
    let key = format!(
        r#"{{"disable_oauth": true, "client_email": "floe@test", "private_key_id": "k1", "private_key": "{PRIVATE_KEY}"}}"#
    );
    lake.env = vec![("GCS_KEY".into(), key)];
    let err = lake.run_failing(&broker, "3s");
    assert!(
        err.contains("gs://lake/warehouse/"),
        "the error names the location: {err}"
    );
    assert_no_secrets("the error", &err, &[PRIVATE_KEY]);
}
