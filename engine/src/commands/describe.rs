//! `floe describe`: a table's snapshots, row counts and committed offsets.

use std::path::Path;

use floe_catalog::offsets::{COMMIT_ID_KEY, JOB_KEY, OFFSETS_KEY, ancestry, latest_checkpoint};

use crate::error::{EngineError, Result};
use crate::setup::{catalog_of, load_job_for_catalogs, open_catalogs, table_ident};

/// Prints what the catalog knows about `table` (as named in the job) and, for the job,
/// the offsets it has committed per partition.
pub async fn describe(job_path: &Path, table: &str) -> Result<()> {
    let job = load_job_for_catalogs(job_path)?;
    let def = job
        .tables
        .iter()
        .find(|t| {
            t.name.to_string() == table
                || format!("{}.{}", t.name.namespace.join("."), t.name.name) == table
        })
        .ok_or_else(|| {
            EngineError::Other(format!(
                "{table} is not a table of {}; its tables are: {}",
                job_path.display(),
                job.tables
                    .iter()
                    .map(|t| t.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let catalogs = open_catalogs(&job).await?;
    let cat = catalog_of(&catalogs, &def.name)?;
    let t = cat
        .catalog
        .load_table(&table_ident(&def.name)?)
        .await
        .map_err(|e| EngineError::Other(format!("table {}: {e}", def.name)))?;
    let md = t.metadata();
    println!("table      {}", def.name);
    println!("location   {}", md.location());
    println!(
        "schema     {}",
        md.current_schema()
            .as_struct()
            .fields()
            .iter()
            .map(|f| format!(
                "{} {}{}",
                f.name,
                f.field_type,
                if f.required { " NOT NULL" } else { "" }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "partition  {}",
        md.default_partition_spec()
            .fields()
            .iter()
            .map(|f| format!("{}({})", f.transform, f.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let snaps: Vec<_> = ancestry(md).collect();
    let total = snaps
        .first()
        .and_then(|s| s.summary().additional_properties.get("total-records"))
        .cloned()
        .unwrap_or_else(|| "0".into());
    println!("rows       {total}");
    println!("snapshots  {} on main", snaps.len());
    println!();
    println!(
        "{:<20} {:<24} {:>10} {:>12}  {:<16} commit id",
        "snapshot", "committed at (UTC)", "added", "total", "job"
    );
    for s in snaps.iter().take(20) {
        let p = &s.summary().additional_properties;
        let at = chrono::DateTime::from_timestamp_millis(s.timestamp_ms())
            .map(|d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
            .unwrap_or_default();
        println!(
            "{:<20} {:<24} {:>10} {:>12}  {:<16} {}",
            s.snapshot_id(),
            at,
            p.get("added-records").map_or("0", String::as_str),
            p.get("total-records").map_or("0", String::as_str),
            p.get(JOB_KEY).map_or("-", String::as_str),
            p.get(COMMIT_ID_KEY).map_or("-", String::as_str),
        );
    }
    if snaps.len() > 20 {
        println!("… {} older snapshots", snaps.len() - 20);
    }
    println!();
    match latest_checkpoint(&def.name.to_string(), md, &job.name)? {
        None => println!("job '{}' has committed no offsets to this table", job.name),
        Some(c) => {
            println!(
                "offsets committed by job '{}' (snapshot {}, {OFFSETS_KEY}):",
                job.name, c.snapshot_id
            );
            for (tp, o) in c.offsets.iter() {
                println!("  {tp:<30} next offset {o}");
            }
        }
    }
    Ok(())
}
