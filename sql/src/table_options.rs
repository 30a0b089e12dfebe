//! The options of `CREATE TABLE … WITH (…)`: what each means and which fit together.
//! The statement's syntax (columns, constraints, partitioning) is read by the parser;
//! the `maintenance.*` options have a module of their own.

use crate::error::{ErrorKind, Pos, Result, SqlError, nearest};
use crate::job::{CheckDef, Policy, QualityDef, SchemaEvolution, TableOptions, ViolationKind};
use crate::maintenance_options::maintenance_options;
use crate::options::{OptionReader, RawOption};

const TABLE_OPTIONS: &[&str] = &[
    "commit.interval",
    "commit.max-bytes",
    "commit.max-records",
    "write.target-file-size",
    "checkpoint.missing",
    "on-violation",
    "on-violation.*",
    "dead-letter.table",
    "iceberg.*",
    "maintenance.enabled",
    "maintenance.interval",
    "maintenance.compaction",
    "maintenance.compaction.min-input-files",
    "maintenance.max-manifests",
    "maintenance.snapshot-retention",
    "maintenance.min-snapshots",
    "maintenance.orphan-age",
    "schema.evolution",
];

/// What a table's `WITH` options say.
pub(crate) struct TableWith {
    /// Commits, files, maintenance, schema evolution, table properties.
    pub options: TableOptions,
    /// The policies of the table's rules.
    pub quality: QualityDef,
    /// The dead-letter table as written, and where.
    pub dead_letter: Option<(String, Pos)>,
}

/// The `WITH` options of `CREATE TABLE`: commits, files, maintenance, schema evolution,
/// and the data-quality policies of its `CHECK` rules (with its dead-letter table as
/// written, resolved once every table is known).
pub(crate) fn table_options(
    what: &str,
    pos: Pos,
    options: Vec<RawOption>,
    checks: Vec<CheckDef>,
) -> Result<TableWith> {
    let mut r = OptionReader::new(what, pos, options)?;
    let defaults = TableOptions::default();
    let commit_interval = r
        .duration("commit.interval")?
        .unwrap_or(defaults.commit_interval);
    if commit_interval.is_zero() {
        return Err(SqlError::new(
            ErrorKind::Option,
            pos,
            format!("{what}: 'commit.interval' must be more than 0"),
        ));
    }
    let options = TableOptions {
        commit_interval,
        commit_max_bytes: r.size("commit.max-bytes")?,
        commit_max_records: r.count("commit.max-records")?,
        target_file_size: r
            .size("write.target-file-size")?
            .unwrap_or(defaults.target_file_size)
            .max(1024),
        properties: r.with_prefix("iceberg."),
        start_without_checkpoint: r
            .choice("checkpoint.missing", &["fail", "startup-mode"])?
            .is_some_and(|c| c == "startup-mode"),
        maintenance: maintenance_options(&mut r, what, pos)?,
        schema_evolution: match r.choice("schema.evolution", &["none", "add-columns"])? {
            Some("add-columns") => SchemaEvolution::AddColumns,
            _ => SchemaEvolution::None,
        },
    };
    let (quality, dead_letter) = quality_options(&mut r, what, pos, checks)?;
    r.finish(TABLE_OPTIONS)?;
    Ok(TableWith {
        options,
        quality,
        dead_letter,
    })
}

/// Reads `'on-violation'`, `'on-violation.<rule>'` and `'dead-letter.table'`.
fn quality_options(
    r: &mut OptionReader,
    what: &str,
    pos: Pos,
    checks: Vec<CheckDef>,
) -> Result<(QualityDef, Option<(String, Pos)>)> {
    let dead_letter = r.string_at("dead-letter.table");
    let policy_of = |v: &str, at: Pos, key: &str| {
        let l = v.trim().to_ascii_lowercase();
        Policy::parse(&l).ok_or_else(|| {
            let hint = nearest(&l, Policy::NAMES.iter().copied())
                .map(|n| format!("; did you mean '{n}'?"))
                .unwrap_or_default();
            SqlError::new(
                ErrorKind::Option,
                at,
                format!(
                    "option '{key}' of {what}: '{v}' is not one of {}{hint}",
                    Policy::NAMES.join(", ")
                ),
            )
        })
    };
    let default_policy = match r.string_at("on-violation") {
        Some((v, at)) => policy_of(&v, at, "on-violation")?,
        None if dead_letter.is_some() => Policy::DeadLetter,
        None => Policy::Fail,
    };
    let mut overrides = std::collections::BTreeMap::new();
    let rules: Vec<String> = checks
        .iter()
        .map(|c| c.name.clone())
        .chain(
            ViolationKind::BUILT_IN
                .iter()
                .map(|k| k.as_str().to_string()),
        )
        .collect();
    for (rule, (v, key_at, value_at)) in r.with_prefix_at("on-violation.") {
        let Some(found) = rules.iter().find(|x| x.eq_ignore_ascii_case(&rule)) else {
            let hint = nearest(&rule, rules.iter().map(String::as_str))
                .map(|n| format!("; did you mean '{n}'?"))
                .unwrap_or_default();
            return Err(SqlError::new(
                ErrorKind::Option,
                key_at,
                format!(
                    "option 'on-violation.{rule}' of {what}: '{rule}' is neither a constraint of the table nor a kind of bad record ({}){hint}",
                    rules.join(", ")
                ),
            ));
        };
        overrides.insert(
            found.clone(),
            policy_of(&v, value_at, &format!("on-violation.{rule}"))?,
        );
    }
    let quality = QualityDef {
        checks,
        dead_letter: None,
        default_policy,
        overrides,
    };
    let wants_dlq = quality.default_policy == Policy::DeadLetter
        || quality.overrides.values().any(|p| *p == Policy::DeadLetter);
    if wants_dlq && dead_letter.is_none() {
        return Err(SqlError::new(
            ErrorKind::Option,
            pos,
            format!("{what}: the policy 'dead-letter' needs the option 'dead-letter.table'"),
        ));
    }
    Ok((quality, dead_letter))
}
