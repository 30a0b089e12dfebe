//! `floe query`: ad-hoc SQL over a job's Iceberg tables through DataFusion.

use std::path::Path;

use datafusion::arrow::util::pretty::pretty_format_batches;

use anyhow::Result;
use floe_engine::query::{run_sql, session_over};
use floe_engine::setup::{load_job_for_catalogs, open_catalogs};

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
            let text = pretty_format_batches(&batches)?;
            println!("{text}");
        }
        OutputFormat::Json => {
            let mut out = Vec::new();
            let mut w = arrow_json::LineDelimitedWriter::new(&mut out);
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
            print!("{}", String::from_utf8_lossy(&out));
        }
    }
    Ok(())
}
