//! What the sinks' integration tests share: a lake (a SQLite catalog and a local
//! warehouse in a temporary directory) and reading a table back through iceberg-rust's
//! own scan. Each test binary uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use floe_catalog::{CatalogConfig, CatalogKind, OpenCatalog, open_catalog};
use futures::TryStreamExt;
use iceberg::table::Table;

/// A SQL catalog on SQLite with its warehouse, both in `dir`.
pub async fn sqlite_lake(dir: &tempfile::TempDir) -> OpenCatalog {
    let cfg = CatalogConfig {
        name: "lake".into(),
        kind: CatalogKind::Sql {
            uri: format!("sqlite://{}/c.db", dir.path().display()),
        },
        warehouse: format!("file://{}/wh", dir.path().display()),
        storage: BTreeMap::new(),
    };
    open_catalog(&cfg).await.expect("catalog")
}

/// Every row of `table` as loaded now, through iceberg-rust's scan (columns by field
/// id, deletes applied).
pub async fn scan(lake: &OpenCatalog, table: &Table) -> Vec<RecordBatch> {
    let t = lake
        .catalog
        .load_table(table.identifier())
        .await
        .expect("load");
    t.scan()
        .select_all()
        .build()
        .expect("scan")
        .to_arrow()
        .await
        .expect("arrow")
        .try_collect()
        .await
        .expect("read")
}
