//! `floe describe`: a table's snapshots, row counts and committed offsets.

use std::path::Path;

use datafusion::arrow::util::pretty::pretty_format_batches;
use floe_catalog::checkpoint::latest_checkpoint;
use floe_catalog::offsets::{
    COMMIT_ID_KEY, COUNTS_KEY, JOB_KEY, LOOKUPS_KEY, OFFSETS_KEY, ancestry,
};
use std::collections::HashMap;

use floe_catalog::OpenCatalog;
use floe_sql::job::{JobFile, TableName};
use iceberg::spec::{Snapshot, TableMetadata};

use anyhow::Result;
use floe_catalog::ManifestCache;
use floe_catalog::orphans::scan_orphans;
use floe_engine::pipeline::lane_job;
use floe_engine::query::{run_sql, session_over};
use floe_engine::setup::{
    catalog_of, dead_letter_tables, load_job_for_catalogs, open_catalogs, resolve_table,
    table_ident,
};

/// Prints what the catalog knows about `table` (as named in the job) and, for the job,
/// the offsets it has committed per partition.
pub async fn describe(job_path: &Path, table: &str) -> Result<()> {
    let job = load_job_for_catalogs(job_path)?;
    let dead_letters: Vec<TableName> = dead_letter_tables(&job)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let name = &resolve_table(&job, table)?;
    let catalogs = open_catalogs(&job).await?;
    let cat = catalog_of(&catalogs, name)?;
    let t = cat
        .catalog
        .load_table(&table_ident(name)?)
        .await
        .map_err(|e| anyhow::Error::msg(format!("table {name}: {e}")))?;
    let md = t.metadata();
    print_shape(name, md);
    let snaps: Vec<_> = ancestry(md).collect();
    print_snapshots(&snaps);
    print_offsets(&job, name, md, dead_letters.contains(name))?;
    print_lineage(
        snaps
            .iter()
            .map(|s| (s.snapshot_id(), &s.summary().additional_properties)),
        &job.name,
    );
    print_counts(md, &job.name);
    let orphans = scan_orphans(
        cat.catalog.as_ref(),
        &t,
        &cat.store,
        &ManifestCache::default(),
    )
    .await?
    .data;
    if !orphans.is_empty() {
        println!();
        println!(
            "{} data files ({:.1} MB) are referenced by no snapshot (written, never committed); \
             `floe orphans --job … {name}` lists them and removes old ones",
            orphans.len(),
            orphans.iter().map(|o| o.size).sum::<u64>() as f64 / 1e6
        );
    }
    if dead_letters.contains(name) {
        print_dead_letters(&catalogs, name).await?;
    }
    Ok(())
}

/// The table's name, location, schema and partitioning.
fn print_shape(name: &TableName, md: &TableMetadata) {
    println!("table      {name}");
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
            .map(|f| {
                // By the column it is computed from (`day(order_ts)`), not the partition
                // field's own name (`order_ts_day`).
                let source = md
                    .current_schema()
                    .field_by_id(f.source_id)
                    .map_or(f.name.as_str(), |c| c.name.as_str());
                match f.transform {
                    iceberg::spec::Transform::Bucket(n) => format!("bucket({n}, {source})"),
                    iceberg::spec::Transform::Truncate(w) => format!("truncate({w}, {source})"),
                    t => format!("{t}({source})"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The row count and the newest snapshots on `main`.
fn print_snapshots(snaps: &[&Snapshot]) {
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
}

/// The offsets the job committed to the table; a dead-letter table keeps one checkpoint
/// per target it serves (its lanes).
fn print_offsets(
    job: &JobFile,
    name: &TableName,
    md: &TableMetadata,
    dead_letters: bool,
) -> Result<()> {
    let identities: Vec<(String, String)> = if dead_letters {
        job.tables
            .iter()
            .filter(|t| t.quality.dead_letter.as_ref() == Some(name))
            .map(|t| {
                let lane = lane_job(&job.name, &t.name);
                (
                    lane.clone(),
                    format!("dead letters of {}, as '{lane}'", t.name),
                )
            })
            .collect()
    } else {
        vec![(job.name.clone(), format!("job '{}'", job.name))]
    };
    for (identity, label) in identities {
        match latest_checkpoint(&name.to_string(), md, &identity)? {
            None => println!("{label}: no offsets committed to this table"),
            Some(c) => {
                println!(
                    "offsets committed by {label} (snapshot {}, {OFFSETS_KEY}):",
                    c.snapshot_id
                );
                for (tp, o) in c.offsets.iter() {
                    println!("  {tp:<30} next offset {o}");
                }
            }
        }
    }
    Ok(())
}

/// What became of the job's records besides the table's rows.
fn print_counts(md: &TableMetadata, job: &str) {
    let counts = floe_catalog::checkpoint::job_counts(md, job);
    if counts.is_empty() {
        return;
    }
    println!();
    println!("records of job '{job}' that are not rows of this table ({COUNTS_KEY}):");
    println!("  filtered by the SELECT  {}", counts.filtered);
    for (what, map) in [
        ("dead-lettered", &counts.dead_lettered),
        ("dropped", &counts.dropped),
    ] {
        for (rule, n) in map {
            println!("  {what:<13} {rule:<24} {n}");
        }
    }
}

/// A dead-letter table's records by target and rule, and how many a replay resolved.
async fn print_dead_letters(
    catalogs: &HashMap<String, OpenCatalog>,
    name: &TableName,
) -> Result<()> {
    println!();
    println!("dead letters by target and rule (resolved: recovered or filtered by a replay):");
    let ctx = session_over(catalogs).await?;
    let sql = format!(
        "SELECT d.target_table, d.error_kind, coalesce(d.rule, '') AS rule, count(*) AS records, \
             count(r.\"offset\") AS resolved, min(d.caught_at) AS first_caught, max(d.caught_at) AS last_caught \
             FROM {name} d LEFT JOIN (SELECT DISTINCT target_table, topic, partition, \"offset\" \
               FROM {name} WHERE error_kind = 'replayed') r \
             ON d.target_table = r.target_table AND d.topic = r.topic AND d.partition = r.partition \
               AND d.\"offset\" = r.\"offset\" \
             WHERE d.error_kind <> 'replayed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    );
    let batches = run_sql(&ctx, &sql).await?;
    let text = pretty_format_batches(&batches)?;
    println!("{text}");
    Ok(())
}

/// The lookup table versions that the job's newest snapshots' rows were joined with.
fn print_lineage<'a>(
    snapshots: impl Iterator<Item = (i64, &'a std::collections::HashMap<String, String>)>,
    job: &str,
) {
    let joined: Vec<(i64, &String)> = snapshots
        .filter(|(_, p)| p.get(JOB_KEY).is_some_and(|j| j == job))
        .filter_map(|(id, p)| p.get(LOOKUPS_KEY).map(|l| (id, l)))
        .take(5)
        .collect();
    if joined.is_empty() {
        return;
    }
    println!();
    println!(
        "lookup table snapshots the rows of job '{job}' were joined with ({LOOKUPS_KEY}), newest first:"
    );
    for (id, lookups) in joined {
        let parsed: std::collections::BTreeMap<String, Vec<String>> =
            serde_json::from_str(lookups).unwrap_or_default();
        let text: Vec<String> = parsed
            .iter()
            .map(|(table, versions)| format!("{table} @ {}", versions.join(", ")))
            .collect();
        println!("  snapshot {id:<20} {}", text.join("; "));
    }
}
