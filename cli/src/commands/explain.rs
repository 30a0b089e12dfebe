//! `floe validate` and `floe explain`.

use std::path::Path;

use anyhow::Result;
use floe_engine::plan::plan_job;
use floe_engine::setup::load_runnable_job;
use floe_sql::CompiledJob;

use crate::embedded::Embedded;

/// Reads, parses and plans the job file at `path`, with an embedded registry it names
/// served by this process.
async fn load_and_compile(path: &Path) -> Result<CompiledJob> {
    let mut job = load_runnable_job(path)?;
    Embedded::wire(&mut job)?;
    Ok(plan_job(job).await?)
}

/// Parses and plans the job; prints a summary.
pub async fn validate(path: &Path) -> Result<()> {
    let job = load_and_compile(path).await?;
    println!(
        "{}: OK — job '{}', {} catalog(s), {} source(s), {} table(s), {} INSERT(s), {} lookup table(s)",
        path.display(),
        job.job.name,
        job.job.catalogs.len(),
        job.job.sources.len(),
        job.job.tables.len(),
        job.inserts.len(),
        job.lookups.len() + job.topic_lookups.len()
    );
    Ok(())
}

/// Prints each INSERT's logical and physical plan.
pub async fn explain(path: &Path) -> Result<()> {
    let job = load_and_compile(path).await?;
    for (i, ins) in job.inserts.iter().enumerate() {
        if i > 0 {
            println!("\n----------------------------------------\n");
        }
        println!("{}", ins.explain());
    }
    Ok(())
}
