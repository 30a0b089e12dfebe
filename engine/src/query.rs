//! SQL over a job's Iceberg tables through DataFusion: `floe query`, replay's reading
//! of dead letters and the benchmark's reconciliation use one session shape.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use floe_catalog::OpenCatalog;
use iceberg_datafusion::IcebergCatalogProvider;

use crate::error::{EngineError, Result};

/// A DataFusion session with every catalog registered under its job name.
pub async fn session_over(catalogs: &HashMap<String, OpenCatalog>) -> Result<SessionContext> {
    let ctx =
        SessionContext::new_with_config(floe_sql::plan::session_config().with_target_partitions(2));
    for (name, c) in catalogs {
        let provider = IcebergCatalogProvider::try_new(c.catalog.clone())
            .await
            .map_err(|e| EngineError::Runtime(format!("catalog {name}: {e}")))?;
        ctx.register_catalog(name.as_str(), Arc::new(provider));
    }
    Ok(ctx)
}

/// Runs `sql` and collects the result.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let df = ctx.sql(sql).await.map_err(query_error)?;
    df.collect().await.map_err(query_error)
}

/// A statement DataFusion cannot parse or plan is the query's fault; anything else
/// (reading a file, the catalog) is the outside world's.
fn query_error(e: DataFusionError) -> EngineError {
    let message = format!("query: {}", e.strip_backtrace());
    match e.find_root() {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => EngineError::Config(message),
        _ => EngineError::Runtime(message),
    }
}
