//! Where each source's Kafka is. A job asks once its tables' checkpoints are known, so
//! that a broker the command line serves in its own process (the quickstart's
//! `embedded`) can be filled up to where the tables are before the job reads it.

use floe_catalog::OffsetMap;
use floe_sql::job::JobFile;

use crate::error::Result;
use crate::pipeline::TableState;

/// Gives every source of a job its bootstrap servers.
pub trait SourceBrokers {
    /// The bootstrap servers of each of `job`'s sources, in its order; `committed`
    /// holds, per source, the next offset of each partition the job's tables have
    /// committed (the furthest, where several tables read the source).
    fn bootstraps(&mut self, job: &JobFile, committed: &[OffsetMap]) -> Result<Vec<String>>;
}

/// The brokers a job file names (`'properties.bootstrap.servers'`), as they are.
#[derive(Debug, Default)]
pub struct ConfiguredBrokers;

impl SourceBrokers for ConfiguredBrokers {
    fn bootstraps(&mut self, job: &JobFile, _: &[OffsetMap]) -> Result<Vec<String>> {
        Ok(job
            .sources
            .iter()
            .map(|s| s.kafka.bootstrap_servers.clone())
            .collect())
    }
}

/// Per source of `job`, the furthest next offset any of `states` has committed of
/// each partition.
pub fn committed_per_source(job: &JobFile, states: &[TableState]) -> Vec<OffsetMap> {
    (0..job.sources.len())
        .map(|source| {
            let mut furthest = OffsetMap::new();
            for state in states.iter().filter(|t| t.sources.contains(&source)) {
                for (tp, next) in state.committed.iter() {
                    furthest.advance(tp, next);
                }
            }
            furthest
        })
        .collect()
}
