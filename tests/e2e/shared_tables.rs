//! Tables shared with other engines: PyIceberg renames and drops columns and creates
//! the table as format version 1 while (or before) the job writes it with maintenance
//! passes every two seconds; every record id and column value is reconciled through
//! PyIceberg.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::fixture::{Broker, Lake, assert_same_ids, expected_clean_ids, produced};
use crate::maintenance::{EAGER, lake_with, produce_chunks, run_producing};
use crate::pyiceberg::{ids_of, read_through, read_with_duckdb, read_with_pyiceberg, run_on_lake};

/// Runs PyIceberg's `foreign_writer.py COMMAND ARGS` on the lake.
fn foreign(lake: &Lake, args: &[&str]) -> String {
    run_on_lake(
        lake,
        "foreign_writer.py",
        "PyIceberg as another writer",
        args,
    )
}

/// Every row of `table` as PyIceberg reads it.
fn rows(lake: &Lake, table: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let dir = lake.dir.path();
    let v = read_through(
        &format!("sqlite:///{}/catalog.db", dir.display()),
        &format!("file://{}/warehouse", dir.display()),
        &["rows=all".to_string()],
        table,
    );
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r.as_object().expect("row").clone())
        .collect()
}

/// The currency each clean order must hold (`upper(trim(currency))`), by order id.
fn expected_currencies(per_partition: u64) -> BTreeMap<u64, Option<String>> {
    let records = produced(4, per_partition);
    let clean = expected_clean_ids(&records);
    records
        .iter()
        .filter_map(|r| {
            let id = r["order_id"].as_u64()?;
            clean.binary_search(&id).ok()?;
            let currency = r["currency"].as_str().map(|c| c.trim().to_uppercase());
            Some((id, currency))
        })
        .collect()
}

/// Each order once, with the currency it was produced with, in column `column`.
fn assert_currencies(lake: &Lake, column: &str, per_partition: u64) {
    let expected = expected_currencies(per_partition);
    let mut seen: BTreeMap<u64, Option<String>> = BTreeMap::new();
    for row in rows(lake, "sales.orders_clean") {
        let id = row["order_id"].as_u64().expect("order_id");
        let value = row
            .get(column)
            .unwrap_or_else(|| panic!("no column {column} in {row:?}"))
            .as_str()
            .map(str::to_string);
        assert!(seen.insert(id, value).is_none(), "order {id} twice");
    }
    assert_eq!(seen.len(), expected.len(), "every clean order once");
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(id, c)| seen.get(id) != Some(c))
        .take(5)
        .map(|(id, c)| (id, c, seen.get(id)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{column} as produced (id, expected, read): {wrong:?}"
    );
}

#[test]
fn a_column_another_engine_renames_keeps_its_values_through_the_job_and_compaction() {
    let broker = Broker::start(&["orders:4"]);
    let lake = lake_with(EAGER);
    let (mut child, log) = run_producing(&lake, &broker, 2, "8s");
    foreign(&lake, &["rename", "sales.orders_clean", "currency", "ccy"]);
    let compactions_before = log.text().matches("compacted").count();
    produce_chunks(&lake, &broker, &log, 2..5, 0);
    assert!(
        log.wait_for_count("compacted", compactions_before + 2, Duration::from_secs(30)),
        "passes compact files from before and after the rename: {}",
        log.text()
    );
    assert!(child.wait().expect("floe run").success(), "{}", log.text());
    assert!(
        log.text().contains("another writer renamed the column"),
        "the job says it keeps writing the renamed field: {}",
        log.text()
    );
    // A restart binds the declared column to the same field, not to a new one.
    broker.produce_all(400, 4, 500);
    let out = lake.run_until_idle(&broker, "3s");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_currencies(&lake, "ccy", 600);
}

#[test]
fn a_column_another_engine_drops_stops_the_job_naming_it() {
    let broker = Broker::start(&["orders:4"]);
    let lake = lake_with(EAGER);
    let (mut child, log) = run_producing(&lake, &broker, 1, "30s");
    foreign(&lake, &["drop-column", "sales.orders_clean", "currency"]);
    broker.produce_all(400, 4, 100);
    let said = "column currency (field id 4) was dropped from the table by another writer";
    assert!(
        log.wait_for(said, Duration::from_secs(60)),
        "the running job stops naming the column: {}",
        log.text()
    );
    let status = child.wait().expect("floe run");
    assert_eq!(
        status.code(),
        Some(2),
        "a configuration error: {}",
        log.text()
    );
    // A restart refuses the table the same way, before reading anything.
    broker.produce_all(400, 4, 200);
    let err = lake.run_failing(&broker, "3s");
    assert!(err.contains(said), "{err}");
}

#[test]
fn maintenance_of_a_format_version_1_table_skips_rewrites_and_still_expires() {
    let broker = Broker::start(&["orders:4"]);
    let lake = lake_with(EAGER);
    foreign(&lake, &["create-v1", "sales.orders_clean"]);
    let (mut child, log) = run_producing(&lake, &broker, 6, "8s");
    assert!(child.wait().expect("floe run").success(), "{}", log.text());
    let text = log.text();
    let skipped = text.matches("maintenance step skipped").count();
    assert!(
        text.contains("needs a format-version 2 table; this one is v1"),
        "the skip is said: {text}"
    );
    assert_eq!(
        skipped, 2,
        "compaction and manifest merging, each said once, not every pass: {text}"
    );
    assert!(
        !text.contains("maintenance step failed") && !text.contains("maintenance pass failed"),
        "{text}"
    );
    let v = read_through(
        &format!("sqlite:///{}/catalog.db", lake.dir.path().display()),
        &format!("file://{}/warehouse", lake.dir.path().display()),
        &[],
        "sales.orders_clean",
    );
    let snapshots = v["snapshots"].as_u64().expect("snapshots");
    assert!(
        snapshots <= 4,
        "expiry ran on the v1 table: {snapshots} snapshots"
    );
    assert_currencies(&lake, "currency", 600);
}

/// Another engine's merge-on-read `DELETE FROM sales.orders_clean WHERE doomed(order_id)`:
/// the rows' positions found in the live data files, one position-delete file per
/// partition, committed as a row delta through Floe's own commit path (as Spark or
/// Flink would commit theirs). Returns the ids deleted.
fn delete_merge_on_read(lake: &Lake, doomed: impl Fn(u64) -> bool) -> Vec<u64> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = lake.dir.path();
        let config = floe_catalog::CatalogConfig {
            name: "lake".into(),
            kind: floe_catalog::CatalogKind::Sql {
                uri: format!("sqlite://{}/catalog.db", dir.display()),
            },
            warehouse: format!("file://{}/warehouse", dir.display()),
            storage: Default::default(),
        };
        let catalog = floe_catalog::open_catalog(&config).await.expect("catalog");
        let ident = iceberg::TableIdent::from_strs(["sales", "orders_clean"]).expect("ident");
        // A compaction that removes a named file first makes the delta fail: resolve again.
        for _ in 0..20 {
            let table = catalog.catalog.load_table(&ident).await.expect("load");
            let (delta, ids) = resolve_deletes(&table, &doomed).await;
            let policy = floe_sinks::RetryPolicy::default();
            match floe_sinks::commit_row_delta(&catalog, table, &delta, 100, &policy).await {
                Ok(_) => return ids,
                Err(floe_sinks::SinkError::RewriteAbandoned { .. }) => continue,
                Err(e) => panic!("row delta: {e}"),
            }
        }
        panic!("the row delta kept losing to compaction");
    })
}

/// The position deletes of the rows `doomed` picks in `table`'s live data files, and
/// their ids.
async fn resolve_deletes(
    table: &iceberg::table::Table,
    doomed: &impl Fn(u64) -> bool,
) -> (floe_sinks::RowDelta, Vec<u64>) {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use futures::TryStreamExt;
    let tasks: Vec<_> = table
        .scan()
        .build()
        .expect("scan")
        .plan_files()
        .await
        .expect("plan")
        .try_collect()
        .await
        .expect("tasks");
    let mut by_partition: BTreeMap<String, (iceberg::spec::Struct, Vec<(String, i64)>)> =
        BTreeMap::new();
    let mut ids = vec![];
    for task in tasks {
        let bytes = table
            .file_io()
            .new_input(&task.data_file_path)
            .expect("input")
            .read()
            .await
            .expect("read");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .expect("parquet");
        let mut pos = 0i64;
        for batch in reader {
            let batch = batch.expect("batch");
            let col = batch
                .column_by_name("order_id")
                .and_then(|c| {
                    c.as_any()
                        .downcast_ref::<arrow_array::Int64Array>()
                        .cloned()
                })
                .expect("order_id");
            for i in 0..col.len() {
                let id = col.value(i) as u64;
                if doomed(id) {
                    let partition = task
                        .partition
                        .clone()
                        .unwrap_or_else(iceberg::spec::Struct::empty);
                    let entry = by_partition
                        .entry(format!("{partition:?}"))
                        .or_insert_with(|| (partition, vec![]));
                    entry.1.push((task.data_file_path.clone(), pos));
                    ids.push(id);
                }
                pos += 1;
            }
        }
    }
    let spec_id = table.metadata().default_partition_spec_id();
    let mut delta = floe_sinks::RowDelta {
        spec_id,
        ..Default::default()
    };
    for (_, (partition, rows)) in by_partition {
        delta.named.extend(rows.iter().map(|(p, _)| p.clone()));
        let file = floe_sinks::position_deletes::write_position_deletes(
            table,
            spec_id,
            partition,
            rows,
            "other-engine",
        )
        .await
        .expect("position deletes");
        delta.delete_files.push(file);
    }
    delta.named.sort();
    delta.named.dedup();
    ids.sort_unstable();
    ids.dedup();
    (delta, ids)
}

#[test]
fn rows_another_engine_deletes_stay_deleted_through_the_job_and_compaction() {
    let broker = Broker::start(&["orders:4"]);
    let lake = lake_with(EAGER);
    let (mut child, log) = run_producing(&lake, &broker, 2, "8s");
    let doomed = |id: u64| id.is_multiple_of(7);
    let deleted = delete_merge_on_read(&lake, doomed);
    assert!(!deleted.is_empty(), "rows to delete");
    let compactions_before = log.text().matches("compacted").count();
    produce_chunks(&lake, &broker, &log, 2..5, deleted.len());
    assert!(
        log.wait_for_count("compacted", compactions_before + 1, Duration::from_secs(30)),
        "a pass compacts after the delete: {}",
        log.text()
    );
    assert!(child.wait().expect("floe run").success(), "{}", log.text());
    let expected: Vec<u64> = expected_clean_ids(&produced(4, 500))
        .into_iter()
        .filter(|id| deleted.binary_search(id).is_err())
        .collect();
    assert_same_ids("Floe", &lake.ids("lake.sales.orders_clean"), &expected);
    let v = read_with_pyiceberg(&lake, "sales.orders_clean");
    assert_same_ids("PyIceberg", &ids_of(&v), &expected);
    assert_same_ids(
        "DuckDB",
        &read_with_duckdb(&lake, "sales.orders_clean"),
        &expected,
    );
    assert_eq!(
        v["summary"]["total-delete-files"], "0",
        "compaction applied the deletes and dropped their files: {}",
        v["summary"]
    );
}
