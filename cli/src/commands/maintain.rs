//! `floe maintain`: one maintenance pass by hand, for tables whose job is stopped, or
//! a dry run that says what a pass would do.

use std::path::Path;

use floe_sinks::{MaintenanceConfig, MaintenancePlan, RetryPolicy, plan_maintenance};
use floe_sql::job::JobFile;

use anyhow::Result;
use floe_engine::maintenance::{MaintainedTable, config_of, run_pass};
use floe_engine::setup::{
    catalog_of, load_job_for_catalogs, open_catalogs, resolve_table, table_ident,
};

/// Runs one pass on `table` with the job's `maintenance.*` options (all steps, whether
/// or not the running job has maintenance on), or with `dry_run` prints its plan.
pub async fn maintain(job_path: &Path, table: &str, dry_run: bool) -> Result<()> {
    let job = load_job_for_catalogs(job_path)?;
    let name = resolve_table(&job, table)?;
    let catalogs = open_catalogs(&job).await?;
    let cat = catalog_of(&catalogs, &name)?;
    let t = MaintainedTable {
        ident: table_ident(&name)?,
        catalog: cat.clone(),
        config: config_for(&job, &name),
        interval: std::time::Duration::ZERO,
        name: name.clone(),
        cache: floe_catalog::ManifestCache::default(),
    };
    if dry_run {
        let loaded = cat
            .catalog
            .load_table(&t.ident)
            .await
            .map_err(|e| anyhow::Error::msg(format!("table {name}: {e}")))?;
        let plan = plan_maintenance(cat, &loaded, &t.config).await?;
        print_plan(&name.to_string(), &t.config, &plan);
        return Ok(());
    }
    let policy = RetryPolicy {
        faults: floe_engine::failpoint::commit_faults(),
        ..RetryPolicy::default()
    };
    let report = run_pass(&t, &policy).await.ok_or_else(|| {
        anyhow::Error::msg(format!(
            "table {name}: the maintenance pass failed (see the log above)"
        ))
    })?;
    match (&report.compaction, &report.abandoned) {
        (Some(c), _) => println!(
            "{name}: compacted {} files ({} bytes) into {} ({} bytes), applying {} position-delete files",
            c.files_in, c.bytes_in, c.files_out, c.bytes_out, c.deletes_applied
        ),
        (None, Some(why)) => println!("{name}: compaction abandoned: {why}"),
        (None, None) => println!("{name}: nothing to compact"),
    }
    if let Some(m) = report
        .manifests
        .as_ref()
        .or(report.compaction.as_ref().map(|c| &c.commit))
    {
        println!("{name}: manifests {} -> {}", m.manifests.0, m.manifests.1);
    }
    println!(
        "{name}: expired {} snapshots, removed {} files they alone referenced and {} orphan files",
        report.expiry.expired, report.expiry.files_removed, report.orphans_removed
    );
    for (step, why) in &report.skipped {
        println!("{name}: {} skipped: {why}", step.name());
    }
    for f in &report.failures {
        println!("{name}: {} failed: {}", f.step.name(), f.error);
    }
    if let Some(f) = report.failures.first() {
        return Err(anyhow::Error::msg(format!(
            "table {name}: {} of the pass's steps failed (first: {}); the others ran",
            report.failures.len(),
            f.step.name()
        )));
    }
    Ok(())
}

/// The pass settings of `name`: its own options, or for a dead-letter table those of
/// the first table that routes to it.
fn config_for(job: &JobFile, name: &floe_sql::job::TableName) -> MaintenanceConfig {
    let def = job.tables.iter().find(|d| &d.name == name).or_else(|| {
        job.tables
            .iter()
            .find(|d| d.quality.dead_letter.as_ref() == Some(name))
    });
    let options = def.map(|d| d.options.clone()).unwrap_or_default();
    config_of(&options.maintenance, options.target_file_size, &job.name)
}

fn print_plan(name: &str, config: &MaintenanceConfig, plan: &MaintenancePlan) {
    match &plan.compaction_skipped {
        Some(why) => println!("{name}: would not compact: {why}"),
        None if plan.bins.is_empty() => println!("{name}: nothing to compact"),
        None => println!(
            "{name}: would compact {} files ({} bytes) in {} groups",
            plan.bins.iter().map(|b| b.0).sum::<usize>(),
            plan.bins.iter().map(|b| b.1).sum::<u64>(),
            plan.bins.len()
        ),
    }
    let merge = if plan.manifests > config.max_manifests {
        "would merge them"
    } else {
        "within the limit"
    };
    println!(
        "{name}: {} manifests (limit {}): {merge}",
        plan.manifests, config.max_manifests
    );
    if let Some(e) = &config.expiry {
        println!(
            "{name}: {} snapshots, {} older than {}s (at least {} are kept)",
            plan.snapshots,
            plan.snapshots_past_age,
            e.max_age.as_secs(),
            e.min_snapshots
        );
    }
    println!(
        "{name}: {} orphan files, {} past the grace and would be removed",
        plan.orphans.0, plan.orphans.1
    );
    println!("{name}: dry run; nothing changed");
}
