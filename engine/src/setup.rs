//! Turning a parsed job into open catalogs and ready tables.

use std::collections::HashMap;
use std::path::Path;

use floe_catalog::{CatalogConfig, CatalogKind, OpenCatalog, open_catalog};
use floe_sinks::{RetryPolicy, TableSpec, dead_letter_spec, ensure_table, evolve_table};
use floe_sql::job::{
    CatalogDef, JobFile, SchemaEvolution, TableDef, TableName, TableOptions, Transform,
};
use floe_sql::{EnvOrKeep, EnvVariables, parse_job};
use iceberg::TableIdent;
use iceberg::table::Table;

use tracing::warn;

use crate::error::{EngineError, Result};
use crate::pipeline::lane_job;

/// Reads and parses the job file at `path`.
pub fn load_job(path: &Path) -> Result<JobFile> {
    let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(parse_job(
        &path.display().to_string(),
        &text,
        &EnvVariables,
    )?)
}

/// Reads and parses the job file at `path` for commands that use only its catalogs:
/// variables the catalogs do not use may be unset.
pub fn load_job_for_catalogs(path: &Path) -> Result<JobFile> {
    let text = std::fs::read_to_string(path).map_err(|source| EngineError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let job = parse_job(&path.display().to_string(), &text, &EnvOrKeep)?;
    for c in &job.catalogs {
        let (uri, client) = match &c.kind {
            floe_sql::job::CatalogKind::Sql { uri } => (uri, None),
            floe_sql::job::CatalogKind::Rest { uri, options } => (uri, Some(options)),
        };
        let values = [uri, &c.warehouse]
            .into_iter()
            .chain(c.storage.values())
            .chain(client.into_iter().flat_map(|o| o.values()));
        for v in values {
            if let Some(i) = v.find("${") {
                let name: String = v[i + 2..]
                    .chars()
                    .take_while(|c| *c != '}' && *c != ':')
                    .collect();
                return Err(EngineError::Config(format!(
                    "{}: catalog {} uses the variable {name}, which is not set",
                    path.display(),
                    c.name
                )));
            }
        }
    }
    Ok(job)
}

/// Reads and parses the job file at `path` for running it: it must name itself, and
/// secrets written inline are warned of.
pub fn load_runnable_job(path: &Path) -> Result<JobFile> {
    let job = load_job(path)?;
    require_job_name(&job)?;
    warn_inline_secrets(&job);
    Ok(job)
}

/// Warns of every secret written inline: whoever can read the job file (a ConfigMap, a
/// repository) can read the secret. The value itself is never printed.
fn warn_inline_secrets(job: &JobFile) {
    for s in &job.inline_secrets {
        warn!(
            "{}:{}:{}: option '{}' holds a secret written in the job file; write it as \
             '${{VAR}}' and set the variable from a secret store",
            job.path, s.line, s.column, s.key
        );
    }
}

/// A job that writes tables must name itself: the name keys its checkpoint in every
/// table, so a name taken from the file stem would let two job files of one name in
/// different folders share (and corrupt) each other's offsets without anyone deciding so.
fn require_job_name(job: &JobFile) -> Result<()> {
    if job.name_is_set {
        return Ok(());
    }
    Err(EngineError::Config(format!(
        "{}:1:1: the job has no name: add SET 'job.name' = '{}'; (or another name). The name \
         keys the job's checkpoint in every table it writes: keep it when the file moves or \
         is renamed, and give different jobs different names",
        job.path, job.name
    )))
}

fn catalog_config(def: &CatalogDef) -> CatalogConfig {
    let kind = match &def.kind {
        floe_sql::job::CatalogKind::Sql { uri } => CatalogKind::Sql { uri: uri.clone() },
        floe_sql::job::CatalogKind::Rest { uri, options } => CatalogKind::Rest {
            uri: uri.clone(),
            options: options.clone(),
        },
    };
    CatalogConfig {
        name: def.name.clone(),
        kind,
        warehouse: def.warehouse.clone(),
        storage: def.storage.clone(),
    }
}

/// Opens every catalog the job declares.
pub async fn open_catalogs(job: &JobFile) -> Result<HashMap<String, OpenCatalog>> {
    let mut out = HashMap::new();
    for c in &job.catalogs {
        out.insert(c.name.clone(), open_catalog(&catalog_config(c)).await?);
    }
    Ok(out)
}

/// The Iceberg identifier of a job's table.
pub fn table_ident(name: &TableName) -> Result<TableIdent> {
    let mut parts = name.namespace.clone();
    parts.push(name.name.clone());
    TableIdent::from_strs(parts).map_err(|e| EngineError::Config(format!("table {name}: {e}")))
}

fn transform(t: Transform) -> iceberg::spec::Transform {
    use iceberg::spec::Transform as T;
    match t {
        Transform::Identity => T::Identity,
        Transform::Year => T::Year,
        Transform::Month => T::Month,
        Transform::Day => T::Day,
        Transform::Hour => T::Hour,
        Transform::Bucket(n) => T::Bucket(n),
        Transform::Truncate(w) => T::Truncate(w),
    }
}

/// What the sink needs to create or check the table, its columns bound through `job`'s
/// column binding (see `floe_sinks::ColumnBinding`).
pub fn table_spec(def: &TableDef, job: &str) -> Result<TableSpec> {
    Ok(TableSpec {
        ident: table_ident(&def.name)?,
        schema: def.schema(),
        partition_by: def
            .partition_by
            .iter()
            .map(|p| (p.column.clone(), transform(p.transform)))
            .collect(),
        properties: def.options.properties.clone().into_iter().collect(),
        add_columns: def.options.schema_evolution == SchemaEvolution::AddColumns,
        writer: Some(job.to_string()),
    })
}

/// The catalog a table lives in.
pub fn catalog_of<'a>(
    catalogs: &'a HashMap<String, OpenCatalog>,
    name: &TableName,
) -> Result<&'a OpenCatalog> {
    catalogs.get(&name.catalog).ok_or_else(|| {
        EngineError::Config(format!(
            "table {name}: catalog {} is not open",
            name.catalog
        ))
    })
}

/// Creates or checks every table of the job; a table with `'schema.evolution' =
/// 'add-columns'` gains the columns and promotions its INSERTs need before the job
/// writes a row.
pub async fn ensure_tables(
    job: &JobFile,
    catalogs: &HashMap<String, OpenCatalog>,
) -> Result<Vec<Table>> {
    let mut out = vec![];
    for t in &job.tables {
        let cat = catalog_of(catalogs, &t.name)?;
        let spec = table_spec(t, &job.name)?;
        let mut table = ensure_table(cat.catalog.as_ref(), &spec).await?;
        if spec.add_columns {
            (table, _) = evolve_table(cat, &spec, table, &RetryPolicy::default()).await?;
        }
        out.push(table);
    }
    Ok(out)
}

/// The dead-letter tables the job's tables route bad records to, each with the options it
/// is written with (committed as often as the most frequent of its targets).
pub fn dead_letter_tables(job: &JobFile) -> Vec<(TableName, TableOptions)> {
    let mut out: Vec<(TableName, TableOptions)> = vec![];
    for t in &job.tables {
        let Some(d) = &t.quality.dead_letter else {
            continue;
        };
        match out.iter_mut().find(|(n, _)| n == d) {
            Some((_, o)) => o.commit_interval = o.commit_interval.min(t.options.commit_interval),
            None => out.push((
                d.clone(),
                TableOptions {
                    commit_interval: t.options.commit_interval,
                    ..TableOptions::default()
                },
            )),
        }
    }
    out
}

/// Creates or checks the job's dead-letter tables.
pub async fn ensure_dead_letter_tables(
    job: &JobFile,
    catalogs: &HashMap<String, OpenCatalog>,
) -> Result<Vec<(TableName, TableOptions, Table)>> {
    let mut out = vec![];
    for (name, options) in dead_letter_tables(job) {
        let cat = catalog_of(catalogs, &name)?;
        // Lanes bind alike; the first lane's binding checks the table.
        let lane = job
            .tables
            .iter()
            .find(|t| t.quality.dead_letter.as_ref() == Some(&name))
            .map(|t| lane_job(&job.name, &t.name));
        let spec = dead_letter_spec(table_ident(&name)?, lane);
        let table = ensure_table(cat.catalog.as_ref(), &spec).await?;
        out.push((name, options, table));
    }
    Ok(out)
}

/// The job's table (a declared table or a dead-letter table) that `written` names, as
/// `catalog.namespace.table` or `namespace.table`.
pub fn resolve_table(job: &JobFile, written: &str) -> Result<TableName> {
    let names: Vec<TableName> = job
        .tables
        .iter()
        .map(|t| t.name.clone())
        .chain(dead_letter_tables(job).into_iter().map(|(n, _)| n))
        .collect();
    names
        .iter()
        .find(|n| {
            n.to_string() == written || format!("{}.{}", n.namespace.join("."), n.name) == written
        })
        .cloned()
        .ok_or_else(|| {
            EngineError::Config(format!(
                "{written} is not a table of {}; its tables are: {}",
                job.path,
                names
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}
