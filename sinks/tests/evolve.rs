//! Schema evolution against a real SQL catalog (SQLite): columns added with fresh ids,
//! types promoted in place, changes the table cannot take refused, and a second writer's
//! stale view of the table reconciled by reloading.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use floe_catalog::OpenCatalog;
use floe_sinks::{
    RetryPolicy, TableSpec, TableWriter, WriterConfig, ensure_table, evolve_table, write_schema,
};
use iceberg::TableIdent;
use iceberg::spec::{PrimitiveType, Type};

fn spec(columns: Vec<Field>, add_columns: bool) -> TableSpec {
    TableSpec {
        ident: TableIdent::from_strs(["ns", "t"]).expect("ident"),
        schema: Arc::new(Schema::new(columns)),
        partition_by: vec![],
        properties: HashMap::new(),
        add_columns,
        writer: None,
    }
}

fn first() -> Vec<Field> {
    vec![
        Field::new("id", DataType::Int64, false),
        Field::new("qty", DataType::Int32, true),
        Field::new("gone", DataType::Utf8, true),
    ]
}

fn second() -> Vec<Field> {
    let tag = Field::new("element", DataType::Utf8, true);
    vec![
        Field::new("id", DataType::Int64, false),
        Field::new("qty", DataType::Int64, true),
        Field::new("note", DataType::Utf8, false),
        Field::new("tags", DataType::List(Arc::new(tag)), true),
    ]
}

async fn lake(dir: &tempfile::TempDir) -> OpenCatalog {
    common::sqlite_lake(dir).await
}

#[tokio::test]
async fn a_table_gains_columns_and_promotions_and_keeps_its_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cat = lake(&dir).await;
    ensure_table(cat.catalog.as_ref(), &spec(first(), false))
        .await
        .expect("table");
    let wanted = spec(second(), true);
    let table = ensure_table(cat.catalog.as_ref(), &wanted)
        .await
        .expect("an add-columns declaration accepts the older table");
    let policy = RetryPolicy::default();
    let (evolved, changes) = evolve_table(&cat, &wanted, table.clone(), &policy)
        .await
        .expect("evolves");
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes[0].contains("qty int to long"), "{changes:?}");

    let loaded = cat.catalog.load_table(&wanted.ident).await.expect("reload");
    assert_eq!(loaded.metadata_location(), evolved.metadata_location());
    let schema = loaded.metadata().current_schema();
    let field = |name: &str| schema.field_by_name(name).expect(name).clone();
    assert_eq!(
        (field("id").id, field("qty").id, field("gone").id),
        (1, 2, 3)
    );
    assert_eq!(
        *field("qty").field_type,
        Type::Primitive(PrimitiveType::Long)
    );
    assert_eq!(field("note").id, 4);
    // Added as optional, though declared NOT NULL: older rows have no value.
    assert!(!field("note").required);
    assert_eq!(field("tags").id, 5);
    assert_eq!(field("tags.element").id, 6);
    assert_eq!(loaded.metadata().last_column_id(), 6);
    assert_eq!(loaded.metadata().schemas_iter().len(), 2);

    // Nothing left to do, from the current table or from a stale view of it (a second
    // replica that loaded the table before the change).
    let (again, changes) = evolve_table(&cat, &wanted, loaded.clone(), &policy)
        .await
        .expect("no-op");
    assert!(changes.is_empty());
    assert_eq!(again.metadata_location(), loaded.metadata_location());
    let (stale, changes) = evolve_table(&cat, &wanted, table, &policy)
        .await
        .expect("stale view reconciled");
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(stale.metadata().current_schema_id(), schema.schema_id());

    // Rows without the new columns are written with NULLs in them.
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![1, 2]))],
    )
    .expect("batch");
    let config = WriterConfig {
        target_file_size: 1 << 20,
        file_prefix: "t".into(),
    };
    let mut writer = TableWriter::new(&loaded, &config).expect("writer");
    writer
        .write(&batch)
        .await
        .expect("nullable columns are filled");
    assert_eq!(writer.close().await.expect("files").len(), 1);
    assert_eq!(write_schema(&loaded).expect("schema").fields().len(), 5);
}

#[tokio::test]
async fn a_change_the_table_cannot_take_is_refused_naming_the_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cat = lake(&dir).await;
    let table = ensure_table(cat.catalog.as_ref(), &spec(first(), false))
        .await
        .expect("table");
    let policy = RetryPolicy::default();
    let mut text = first();
    text[1] = Field::new("qty", DataType::Utf8, true);
    let err = evolve_table(&cat, &spec(text, true), table.clone(), &policy)
        .await
        .expect_err("int to string is no promotion");
    assert!(
        err.to_string()
            .contains("column qty is int in the existing table but string in the job"),
        "{err}"
    );
    // A narrower declaration needs no change: its values are cast up on write.
    let mut narrow = first();
    narrow[0] = Field::new("id", DataType::Int32, false);
    let (_, changes) = evolve_table(&cat, &spec(narrow, true), table.clone(), &policy)
        .await
        .expect("narrower is fine");
    assert!(changes.is_empty(), "{changes:?}");
    // Without add-columns, a column the job no longer declares is still refused.
    let err = ensure_table(cat.catalog.as_ref(), &spec(first()[..2].to_vec(), false))
        .await
        .expect_err("gone is undeclared");
    assert!(
        err.to_string()
            .contains("column gone which the job does not declare"),
        "{err}"
    );
}
