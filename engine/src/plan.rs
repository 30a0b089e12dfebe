//! Planning a parsed job: its registry sources get their columns (or have them
//! checked) from their writer schemas, its lookup tables theirs from their catalogs,
//! then every INSERT is compiled. Planning reads registries and catalogs; parsing
//! (`floe_sql`) does not.

use floe_sql::job::JobFile;
use floe_sql::{CompiledJob, compile};

use crate::error::Result;
use crate::lookup;

/// Plans a parsed job: its registry sources get their columns (or have them checked)
/// from their writer schemas as the registry has them now, its lookup tables theirs
/// from their catalogs, then every INSERT is compiled. A running job plans again from
/// the same parse when a writer schema adds columns (see [`crate::job`]).
pub async fn plan_job(mut job: JobFile) -> Result<CompiledJob> {
    read_writer_schemas(&mut job)?;
    lookup::read_schemas(&mut job).await?;
    Ok(compile(job).await?)
}

/// Gives every source in a registry format or plain Avro its columns before the job
/// is planned and a record is read: a source that declares none takes them from its
/// writer schema (a registry source: its subject's latest version); declared columns
/// are checked against that schema.
pub fn read_writer_schemas(job: &mut JobFile) -> Result<()> {
    let avro = |s: &&mut floe_sql::job::SourceDef| {
        let key = s.kafka.key.as_ref();
        s.kafka.registry.is_some()
            || s.kafka.avro_schema.is_some()
            || key.is_some_and(|k| k.registry.is_some() || k.avro_schema.is_some())
    };
    let sources = job.sources.iter_mut().chain(job.lookup_topics.iter_mut());
    for source in sources.filter(avro) {
        let plan = floe_formats::DecodePlan::new(source)?;
        if source.columns_from_schema {
            let (value, version) = plan.schema_columns(source)?;
            let keys = floe_formats::key_columns_from_schema(source, &value)?;
            source.take_payload_columns(keys.into_iter().chain(value).collect(), version);
        } else {
            plan.check_schemas(source)?;
        }
    }
    Ok(())
}
