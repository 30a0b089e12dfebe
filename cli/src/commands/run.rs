//! `floe run`: the long-lived job, with the quickstart's embedded broker and registry
//! wired in where the job file says `embedded`.

use std::path::Path;

use anyhow::Result;
use floe_engine::job::RunArgs;
use floe_engine::setup::load_runnable_job;

use crate::embedded::Embedded;

/// Runs the job at `path` until a signal (or idleness) stops it; `metrics_addr` serves
/// the metrics and probes from the start, so they answer while the job starts.
pub async fn run(path: &Path, metrics_addr: Option<&str>, args: RunArgs) -> Result<()> {
    if let Some(addr) = metrics_addr {
        floe_engine::observe::server::serve(addr).await?;
    }
    let mut parsed = load_runnable_job(path)?;
    let mut embedded = Embedded::wire(&mut parsed)?;
    floe_engine::job::run(parsed, args, &mut embedded).await?;
    Ok(())
}
