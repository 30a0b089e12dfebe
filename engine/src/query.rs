//! SQL over a job's Iceberg tables through DataFusion: `floe query`, replay's reading
//! of dead letters and the benchmark's reconciliation use one session shape.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
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
            .map_err(|e| EngineError::Other(format!("catalog {name}: {e}")))?;
        ctx.register_catalog(name.as_str(), Arc::new(provider));
    }
    Ok(ctx)
}

/// Runs `sql` and collects the result.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let df = ctx
        .sql(sql)
        .await
        .map_err(|e| EngineError::Other(format!("query: {}", e.strip_backtrace())))?;
    df.collect()
        .await
        .map_err(|e| EngineError::Other(format!("query: {}", e.strip_backtrace())))
}
