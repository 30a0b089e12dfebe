//! The `maintenance.*` options of `CREATE TABLE`, read into [`MaintenanceOptions`].

use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::job::MaintenanceOptions;
use crate::options::OptionReader;

/// The `maintenance.*` options of a table.
pub(crate) fn maintenance_options(
    r: &mut OptionReader,
    what: &str,
    pos: Pos,
) -> Result<MaintenanceOptions> {
    let d = MaintenanceOptions::default();
    let on = |r: &mut OptionReader, key: &str, default: bool| -> Result<bool> {
        Ok(r.choice(key, &["true", "false"])?
            .map_or(default, |c| c == "true"))
    };
    let m = MaintenanceOptions {
        enabled: on(r, "maintenance.enabled", d.enabled)?,
        interval: r.duration("maintenance.interval")?.unwrap_or(d.interval),
        compaction: on(r, "maintenance.compaction", d.compaction)?,
        min_input_files: r
            .count("maintenance.compaction.min-input-files")?
            .unwrap_or(d.min_input_files),
        max_manifests: r
            .count("maintenance.max-manifests")?
            .unwrap_or(d.max_manifests),
        snapshot_retention: r
            .duration("maintenance.snapshot-retention")?
            .unwrap_or(d.snapshot_retention),
        min_snapshots: r
            .count("maintenance.min-snapshots")?
            .unwrap_or(d.min_snapshots),
        orphan_age: r
            .duration("maintenance.orphan-age")?
            .unwrap_or(d.orphan_age),
    };
    let floor = |key: &str, value: u64, min: u64| -> Result<()> {
        if value < min {
            return Err(SqlError::new(
                ErrorKind::Option,
                pos,
                format!("{what}: '{key}' must be at least {min}"),
            ));
        }
        Ok(())
    };
    floor(
        "maintenance.compaction.min-input-files",
        m.min_input_files,
        2,
    )?;
    floor("maintenance.max-manifests", m.max_manifests, 2)?;
    floor("maintenance.min-snapshots", m.min_snapshots, 1)?;
    if m.interval.is_zero() {
        return Err(SqlError::new(
            ErrorKind::Option,
            pos,
            format!("{what}: 'maintenance.interval' must be more than 0"),
        ));
    }
    Ok(m)
}
