//! `floe query`: ad-hoc SQL over a job's Iceberg tables through DataFusion.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use floe_catalog::OpenCatalog;
use iceberg_datafusion::IcebergCatalogProvider;

use crate::error::{EngineError, Result};
use crate::setup::{load_job_for_catalogs, open_catalogs};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// One JSON object per row.
    Json,
}

/// Runs `sql` with every catalog of the job registered under its name
/// (`SELECT … FROM lake.sales.orders_clean`).
pub async fn query(job_path: &Path, sql: &str, format: OutputFormat) -> Result<()> {
    let job = load_job_for_catalogs(job_path)?;
    let catalogs = open_catalogs(&job).await?;
    let ctx = session_over(&catalogs).await?;
    let batches = run_sql(&ctx, sql).await?;
    match format {
        OutputFormat::Table => {
            let text =
                pretty_format_batches(&batches).map_err(|e| EngineError::Other(e.to_string()))?;
            println!("{text}");
        }
        OutputFormat::Json => {
            let mut out = Vec::new();
            let mut w = arrow_json::LineDelimitedWriter::new(&mut out);
            for b in &batches {
                w.write(b).map_err(|e| EngineError::Other(e.to_string()))?;
            }
            w.finish().map_err(|e| EngineError::Other(e.to_string()))?;
            print!("{}", String::from_utf8_lossy(&out));
        }
    }
    Ok(())
}

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
