//! `floe orphans`: data files a table's writers wrote but never committed.

use std::path::Path;
use std::time::Duration;

use floe_catalog::ManifestCache;
use floe_catalog::orphans::{remove_orphans, scan_orphans};

use anyhow::Result;
use floe_engine::setup::{
    catalog_of, load_job_for_catalogs, open_catalogs, resolve_table, table_ident,
};

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
        .map_err(|e| anyhow::Error::msg(format!("table {name}: {e}")))?;
    let scan = scan_orphans(
        cat.catalog.as_ref(),
        &t,
        &cat.store,
        &ManifestCache::default(),
    )
    .await?;
    let found = &scan.data;
    if found.is_empty() {
        println!("{name}: no orphan data files");
        return Ok(());
    }
    for f in found {
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
    // Data files only: the metadata orphans are left to maintenance passes.
    let data_only = floe_catalog::orphans::OrphanScan {
        table: scan.table.clone(),
        data: scan.data.clone(),
        metadata: vec![],
    };
    let (removed, applied) = remove_orphans(&data_only, &cat.store, grace).await?;
    let slowest = applied
        .slowest_writer
        .as_ref()
        .map_or_else(String::new, |(job, interval)| {
            format!(" job '{job}' commits this table every {interval:?}, and")
        });
    println!(
        "kept orphans younger than {:?}:{slowest} a commit may retry for {:?}, so the newest files may still be committed",
        applied.keep_younger_than,
        floe_catalog::orphans::COMMIT_RETRY_DEADLINE
    );
    println!(
        "removed {} of {} orphan data files ({} bytes); younger ones are left for writers that may still commit them",
        removed.len(),
        found.len(),
        removed.iter().map(|f| f.size).sum::<u64>()
    );
    Ok(())
}
