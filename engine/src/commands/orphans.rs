//! `floe orphans`: data files a table's writers wrote but never committed.

use std::path::Path;
use std::time::Duration;

use floe_catalog::ManifestCache;
use floe_catalog::orphans::{find_orphans, remove_orphans};

use crate::error::{EngineError, Result};
use crate::setup::{catalog_of, load_job_for_catalogs, open_catalogs, resolve_table, table_ident};

/// Lists the orphan data files of `table`, and with `remove` deletes those older than
/// `grace` (younger ones may still be committed by a running writer).
pub async fn orphans(job_path: &Path, table: &str, remove: bool, grace: Duration) -> Result<()> {
    let job = load_job_for_catalogs(job_path)?;
    let name = resolve_table(&job, table)?;
    let catalogs = open_catalogs(&job).await?;
    let cat = catalog_of(&catalogs, &name)?;
    let t = cat
        .catalog
        .load_table(&table_ident(&name)?)
        .await
        .map_err(|e| EngineError::Other(format!("table {name}: {e}")))?;
    let found = find_orphans(&t, &cat.store, &ManifestCache::default()).await?;
    if found.is_empty() {
        println!("{name}: no orphan data files");
        return Ok(());
    }
    for f in &found {
        println!(
            "{:>12} bytes  {:>8}s old  {}",
            f.size,
            f.age.as_secs(),
            f.location
        );
    }
    if !remove {
        println!(
            "{} orphan data files; `--remove` deletes those older than {}s",
            found.len(),
            grace.as_secs()
        );
        return Ok(());
    }
    let (removed, applied) =
        remove_orphans(&t, &cat.store, grace, &ManifestCache::default()).await?;
    if let Some((job, interval)) = &applied.slowest_writer {
        println!(
            "kept orphans younger than {}s: job '{job}' commits this table every {}s, so its newest files may still be committed",
            applied.keep_younger_than.as_secs(),
            interval.as_secs()
        );
    }
    println!(
        "removed {} of {} orphan data files ({} bytes); younger ones are left for writers that may still commit them",
        removed.len(),
        found.len(),
        removed.iter().map(|f| f.size).sum::<u64>()
    );
    Ok(())
}
