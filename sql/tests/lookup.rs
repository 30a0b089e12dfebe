//! Lookup joins planned from job text and run over batches, with lookup table versions
//! installed the way the engine installs them.

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use floe_sql::plan::with_row_numbers;
use floe_sql::{CompiledJob, EnvVariables, compile, parse_job};

const HEAD: &str = "SET 'job.name' = 'orders';
CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', 'warehouse' = 'file:///tmp/wh');
CREATE SOURCE orders (id BIGINT, customer_id BIGINT, currency VARCHAR) WITH ('connector' = 'kafka',
  'topic' = 'orders', 'format' = 'json', 'properties.bootstrap.servers' = 'k:1');
CREATE TABLE lake.sales.orders (id BIGINT, segment VARCHAR, rate BIGINT);
";

fn customers_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("segment", DataType::Utf8, true),
    ]))
}

fn rates_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("code", DataType::Utf8, false),
        Field::new("rate", DataType::Int64, true),
    ]))
}

/// Parses and plans `insert` after [`HEAD`], the lookup tables given their columns as
/// the engine gives them from their catalogs.
async fn plan(insert: &str) -> Result<CompiledJob, String> {
    let text = format!("{HEAD}{insert}");
    let mut job = parse_job("orders.sql", &text, &EnvVariables).map_err(|e| e.to_string())?;
    for l in &mut job.lookups {
        l.schema = Some(match l.name.name.as_str() {
            "customers" => customers_schema(),
            _ => rates_schema(),
        });
    }
    compile(job).await.map_err(|e| e.to_string())
}

fn customers(rows: &[(i64, &str)]) -> RecordBatch {
    RecordBatch::try_new(
        customers_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        ],
    )
    .expect("customers")
}

fn rates(rows: &[(&str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        rates_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        ],
    )
    .expect("rates")
}

/// Installs `batch` as version `label` of the lookup table called `name`.
fn install(job: &CompiledJob, name: &str, label: &str, batch: RecordBatch) {
    let slot = job
        .lookups
        .iter()
        .find(|s| s.name == name)
        .expect("lookup slot");
    let version = slot.prepare(label.to_string(), batch).expect("prepare");
    slot.install(version);
}

/// Runs the first INSERT over orders `(id, customer_id, currency)`; the rows it
/// produces, as `(id, segment, rate)`.
async fn run(
    job: &CompiledJob,
    orders: &[(i64, Option<i64>, &str)],
) -> Vec<(i64, Option<String>, Option<i64>)> {
    let schema = job.job.sources[0].schema();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(orders.iter().map(|o| o.0))),
            Arc::new(Int64Array::from_iter(orders.iter().map(|o| o.1))),
            Arc::new(StringArray::from_iter_values(orders.iter().map(|o| o.2))),
        ],
    )
    .expect("orders");
    job.slots[0].set(vec![with_row_numbers(&batch).expect("rows")]);
    let out = job.inserts[0].execute(job.task_ctx()).await.expect("runs");
    let mut rows = vec![];
    for b in out {
        let ids = b
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("ids");
        let segments = b
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("segments");
        let rates = b
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("rates");
        for i in 0..b.num_rows() {
            rows.push((
                ids.value(i),
                segments.is_valid(i).then(|| segments.value(i).to_string()),
                rates.is_valid(i).then(|| rates.value(i)),
            ));
        }
    }
    rows
}

#[tokio::test]
async fn a_left_lookup_join_in_flink_syntax_enriches_and_keeps_unmatched_rows() {
    let job = plan(
        "INSERT INTO lake.sales.orders
         SELECT o.id, c.segment, CAST(NULL AS BIGINT)
         FROM orders AS o
         LEFT JOIN lake.ref.customers FOR SYSTEM_TIME AS OF o.proc_time AS c
           ON o.customer_id = c.id;",
    )
    .await
    .expect("plans");
    assert_eq!(job.job.lookups.len(), 1);
    assert_eq!(job.job.lookups[0].name.to_string(), "lake.ref.customers");
    install(
        &job,
        "lake.ref.customers",
        "101",
        customers(&[(1, "gold"), (2, "silver")]),
    );
    let rows = run(
        &job,
        &[
            (10, Some(2), "EUR"),
            (11, Some(7), "EUR"),
            (12, None, "EUR"),
            (13, Some(1), "EUR"),
        ],
    )
    .await;
    assert_eq!(
        rows,
        vec![
            (10, Some("silver".into()), None),
            (11, None, None),
            (12, None, None),
            (13, Some("gold".into()), None),
        ]
    );
    let lineage = job.inserts[0].take_lineage();
    assert_eq!(lineage.len(), 1);
    assert_eq!(lineage[0].0, "lake.ref.customers");
    assert_eq!(lineage[0].1.iter().collect::<Vec<_>>(), vec!["101"]);
    assert!(
        job.inserts[0].take_lineage().is_empty(),
        "lineage is taken once"
    );
    // Only the lookup columns the INSERT reads are gathered (the key is not).
    let explained = job.inserts[0].explain();
    assert!(
        explained.contains(
            "LookupJoin: LEFT lake.ref.customers on [o.customer_id = c.id], gathering [segment]"
        ),
        "{explained}"
    );
}

#[tokio::test]
async fn an_inner_join_drops_unmatched_rows_and_a_new_version_applies_to_the_next_batch() {
    let job = plan(
        "INSERT INTO lake.sales.orders
         SELECT o.id, c.segment, r.rate
         FROM orders o
         JOIN ref.customers c ON c.id = o.customer_id
         JOIN lake.ref.rates r ON upper(o.currency) = r.code;",
    )
    .await
    .expect("plans");
    assert_eq!(
        job.job.lookups.len(),
        2,
        "a two-part name resolves to the one catalog"
    );
    install(
        &job,
        "lake.ref.customers",
        "1",
        customers(&[(1, "gold"), (2, "silver")]),
    );
    install(
        &job,
        "lake.ref.rates",
        "7",
        rates(&[("EUR", 100), ("USD", 90)]),
    );
    let orders = [
        (1, Some(1), "eur"),
        (2, Some(2), "gbp"),
        (3, Some(3), "usd"),
        (4, Some(2), "usd"),
    ];
    assert_eq!(
        run(&job, &orders).await,
        vec![
            (1, Some("gold".into()), Some(100)),
            (4, Some("silver".into()), Some(90))
        ]
    );
    install(
        &job,
        "lake.ref.customers",
        "2",
        customers(&[(1, "bronze"), (3, "gold")]),
    );
    assert_eq!(
        run(&job, &orders).await,
        vec![
            (1, Some("bronze".into()), Some(100)),
            (3, Some("gold".into()), Some(90))
        ]
    );
    let lineage = job.inserts[0].take_lineage();
    let customers_used: Vec<_> = lineage
        .iter()
        .find(|(t, _)| t == "lake.ref.customers")
        .map(|(_, v)| v.iter().cloned().collect())
        .expect("customers lineage");
    assert_eq!(customers_used, vec!["1".to_string(), "2".to_string()]);
}

#[tokio::test]
async fn a_lookup_key_matching_several_rows_yields_a_row_for_each() {
    let job = plan(
        "INSERT INTO lake.sales.orders
         SELECT o.id, c.segment, CAST(NULL AS BIGINT) FROM orders o JOIN lake.ref.customers c ON o.customer_id = c.id;",
    )
    .await
    .expect("plans");
    install(
        &job,
        "lake.ref.customers",
        "1",
        customers(&[(1, "a"), (2, "b"), (1, "c")]),
    );
    assert_eq!(
        run(&job, &[(5, Some(1), "EUR"), (6, Some(2), "EUR")]).await,
        vec![
            (5, Some("a".into()), None),
            (5, Some("c".into()), None),
            (6, Some("b".into()), None)
        ]
    );
}

#[tokio::test]
async fn joins_that_are_not_lookup_joins_are_refused_with_the_reason() {
    let cases = [
        (
            "INSERT INTO lake.sales.orders SELECT o.id, c.segment, CAST(NULL AS BIGINT) FROM orders o \
             FULL JOIN lake.ref.customers c ON o.customer_id = c.id;",
            "lookup joins are INNER, or LEFT with the stream on the left",
        ),
        (
            "INSERT INTO lake.sales.orders SELECT o.id, c.segment, CAST(NULL AS BIGINT) FROM orders o \
             JOIN lake.ref.customers c ON o.customer_id > c.id;",
            "is not an equality between the stream's columns and a column of lake.ref.customers",
        ),
        (
            "INSERT INTO lake.sales.orders SELECT o.id, c.segment, CAST(NULL AS BIGINT) FROM orders o \
             JOIN lake.ref.customers c ON o.customer_id + c.id = 3;",
            "is not an equality",
        ),
        (
            "INSERT INTO lake.sales.orders SELECT c.id, c.segment, CAST(NULL AS BIGINT) FROM lake.ref.customers c;",
            "must read from exactly one source, but reads none",
        ),
        (
            "INSERT INTO lake.sales.orders SELECT o.id, 'x', CAST(NULL AS BIGINT) FROM orders o \
             WHERE o.customer_id IN (SELECT id FROM lake.ref.customers);",
            "can only be joined to the stream",
        ),
        (
            "INSERT INTO lake.sales.orders SELECT a.id, 'x', CAST(NULL AS BIGINT) FROM orders a JOIN orders b ON a.id = b.id;",
            "joins would give results that depend on where batches happen to be cut",
        ),
        (
            "INSERT INTO lake.sales.orders SELECT o.id, c.segment, CAST(NULL AS BIGINT) FROM orders o \
             JOIN lake.ref.deep.customers c ON o.customer_id = c.id;",
            "a lookup table's namespace must have one level",
        ),
    ];
    for (insert, want) in cases {
        match plan(insert).await {
            Ok(_) => panic!("planned: {insert}"),
            Err(e) => assert!(e.contains(want), "{insert}\n  error: {e}\n  want: {want}"),
        }
    }
}

#[tokio::test]
async fn a_version_larger_than_the_cap_is_refused_naming_the_setting() {
    let text = format!(
        "SET 'lookup.max-memory' = '1KB';\n{HEAD}INSERT INTO lake.sales.orders SELECT o.id, c.segment, CAST(NULL AS BIGINT) \
         FROM orders o JOIN lake.ref.customers c ON o.customer_id = c.id;"
    );
    let mut job = parse_job("orders.sql", &text, &EnvVariables).expect("parses");
    job.lookups[0].schema = Some(customers_schema());
    let job = compile(job).await.expect("plans");
    let many: Vec<(i64, &str)> = (0..10_000).map(|i| (i, "segment")).collect();
    let err = match job.lookups[0].prepare("9".into(), customers(&many)) {
        Ok(_) => panic!("a version of 10 000 rows fits in 1 KB"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("lookup table lake.ref.customers (9)"), "{err}");
    assert!(
        err.contains("'lookup.max-memory' allows (1024 bytes)"),
        "{err}"
    );
}

/// A compacted topic declared with `'connector' = 'upsert-kafka'` (customer id → segment).
const CUSTOMER_TOPIC: &str = "CREATE SOURCE customers (
  id BIGINT NOT NULL, segment VARCHAR, PRIMARY KEY (id) NOT ENFORCED
) WITH (
  'connector' = 'upsert-kafka', 'topic' = 'customers', 'format' = 'json',
  'properties.bootstrap.servers' = 'k:1', 'lookup.refresh-interval' = '250ms');
";

#[tokio::test]
async fn an_upsert_kafka_source_is_a_lookup_table_under_its_name_not_a_stream() {
    let job = plan(&format!(
        "{CUSTOMER_TOPIC}INSERT INTO lake.sales.orders
         SELECT o.id, c.segment, CAST(NULL AS BIGINT)
         FROM orders AS o
         LEFT JOIN customers FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.customer_id = c.id;"
    ))
    .await
    .expect("plans");
    assert_eq!(job.job.sources.len(), 1, "only orders is a stream");
    assert_eq!(job.job.lookup_topics.len(), 1);
    let upsert = job.job.lookup_topics[0].upsert.expect("upsert options");
    assert_eq!(
        upsert.refresh_interval,
        std::time::Duration::from_millis(250)
    );
    assert!(job.job.lookups.is_empty(), "no Iceberg lookup table");
    assert_eq!(job.inserts[0].source, 0);
    let slot = job.topic_lookups[0].clone();
    let version = slot
        .prepare("0:3".into(), customers(&[(1, "gold"), (2, "silver")]))
        .expect("prepare");
    slot.install(version);
    assert_eq!(
        run(&job, &[(10, Some(2), "EUR"), (11, Some(5), "EUR")]).await,
        vec![(10, Some("silver".into()), None), (11, None, None)]
    );
    let lineage = job.inserts[0].take_lineage();
    assert_eq!(lineage[0].0, "customers");
    assert_eq!(lineage[0].1.iter().collect::<Vec<_>>(), vec!["0:3"]);
}

#[tokio::test]
async fn options_that_do_not_fit_a_topic_read_as_a_table_are_refused() {
    let insert = "INSERT INTO lake.sales.orders SELECT o.id, c.segment, CAST(NULL AS BIGINT) \
                  FROM orders o JOIN customers c ON o.customer_id = c.id;";
    let cases = [
        (
            CUSTOMER_TOPIC.replace(
                "'format' = 'json',",
                "'format' = 'json', 'scan.startup.mode' = 'latest-offset',",
            ),
            "'scan.startup.mode' does not apply to an 'upsert-kafka' source",
        ),
        (
            CUSTOMER_TOPIC.replace("'k:1'", "'embedded'"),
            "the embedded broker generates streams only",
        ),
        (
            CUSTOMER_TOPIC.replace("'250ms'", "'10ms'"),
            "'lookup.refresh-interval' must be at least 100ms",
        ),
        (
            CUSTOMER_TOPIC.replace("PRIMARY KEY (id)", "PRIMARY KEY (customer)"),
            "PRIMARY KEY column customer is not declared",
        ),
        (
            CUSTOMER_TOPIC.replace("'upsert-kafka'", "'kafka'"),
            "PRIMARY KEY is not supported: Floe appends rows to Iceberg tables",
        ),
        (
            CUSTOMER_TOPIC
                .replace("'upsert-kafka'", "'kafka'")
                .replace(", PRIMARY KEY (id) NOT ENFORCED", ""),
            "'lookup.refresh-interval' belongs to 'upsert-kafka' sources",
        ),
        (
            CUSTOMER_TOPIC
                .replace("'upsert-kafka'", "'kafka'")
                .replace(", PRIMARY KEY (id) NOT ENFORCED", "")
                .replace(", 'lookup.refresh-interval' = '250ms'", ""),
            "joins the streams customers and orders: a join between two streams is not supported",
        ),
    ];
    for (source, want) in cases {
        match plan(&format!("{source}{insert}")).await {
            Ok(_) => panic!("planned: {source}"),
            Err(e) => assert!(e.contains(want), "{source}\n  error: {e}\n  want: {want}"),
        }
    }
}
