//! The exit status of `floe`, so that the platform running it can tell a job file to fix
//! from data that broke a `fail` rule, a replica that lost its partitions, and an outage.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | stopped cleanly (a signal, or `--stop-when-idle`), everything read committed |
//! | 1 | runtime failure: a broker, catalog or store failed past its retries, or a bug |
//! | 2 | configuration: the job file, an option or a table does not fit (also bad arguments) |
//! | 3 | data policy: a record broke a rule whose policy is `fail` |
//! | 4 | fenced: another writer committed the partitions this one had read |

use floe_sinks::SinkError;
use floe_sql::SqlError;

use crate::error::EngineError;

/// A runtime failure.
pub const RUNTIME: u8 = 1;
/// The job file or its options are wrong (clap uses 2 for bad arguments too).
pub const CONFIGURATION: u8 = 2;
/// A record broke a rule whose policy is `fail`.
pub const DATA_POLICY: u8 = 3;
/// Another writer took the partitions over; this one's work was abandoned.
pub const FENCED: u8 = 4;

/// The exit status for the error that stopped a command.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<SqlError>().is_some() {
        return CONFIGURATION;
    }
    match e.downcast_ref::<EngineError>() {
        Some(EngineError::Job(_) | EngineError::Io { .. } | EngineError::NoCheckpoint { .. }) => {
            CONFIGURATION
        }
        // An existing table that does not fit the job (another writer dropped a declared
        // column, say) is the job's configuration against that table.
        Some(EngineError::Sink(SinkError::Incompatible { .. })) => CONFIGURATION,
        Some(EngineError::Rejected { .. }) => DATA_POLICY,
        Some(EngineError::Sink(SinkError::Fenced { .. })) => FENCED,
        _ => RUNTIME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_that_does_not_fit_the_job_is_a_configuration_error() {
        let e = anyhow::Error::new(EngineError::Sink(SinkError::Incompatible {
            table: "lake.sales.orders".into(),
            message: "column currency (field id 4) was dropped".into(),
        }));
        assert_eq!(exit_code(&e), CONFIGURATION);
        let fenced = anyhow::Error::new(EngineError::Sink(SinkError::Fenced {
            table: "lake.sales.orders".into(),
            message: "moved".into(),
        }));
        assert_eq!(exit_code(&fenced), FENCED);
    }
}
