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
        Some(
            EngineError::Job(_)
            | EngineError::Config(_)
            | EngineError::Io { .. }
            | EngineError::NoCheckpoint { .. },
        ) => CONFIGURATION,
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
    use floe_catalog::TopicPartition;
    use floe_sql::{ErrorKind, Pos};

    use super::*;

    fn code_of(e: impl std::error::Error + Send + Sync + 'static) -> u8 {
        exit_code(&anyhow::Error::new(e))
    }

    /// One error of each kind the README's exit-status table names, and its code.
    #[test]
    fn every_row_of_the_exit_status_table_has_its_code() {
        let table = "lake.sales.orders".to_string();
        let sink = |e: SinkError| EngineError::Sink(e);
        let cases: Vec<(&str, u8, EngineError)> = vec![
            (
                "a broker past its retries",
                RUNTIME,
                EngineError::Kafka {
                    source_name: "orders".into(),
                    message: "all brokers down".into(),
                },
            ),
            (
                "the job file",
                CONFIGURATION,
                EngineError::Job(SqlError::new(
                    ErrorKind::Option,
                    Pos::new(3, 7),
                    "unknown option",
                )),
            ),
            (
                "a table without the job's checkpoint",
                CONFIGURATION,
                EngineError::NoCheckpoint {
                    table: table.clone(),
                    job: "orders".into(),
                },
            ),
            (
                "a table that does not fit the job",
                CONFIGURATION,
                sink(SinkError::Incompatible {
                    table: table.clone(),
                    message: "column currency (field id 4) was dropped".into(),
                }),
            ),
            (
                "a record that broke a fail rule",
                DATA_POLICY,
                EngineError::Rejected {
                    table: table.clone(),
                    tp: TopicPartition::new("orders", 0),
                    offset: 42,
                    rule: "positive_amount".into(),
                    message: "amount > 0".into(),
                },
            ),
            (
                "another writer took the partitions",
                FENCED,
                sink(SinkError::Fenced {
                    table,
                    message: "moved".into(),
                }),
            ),
        ];
        for (what, code, e) in cases {
            assert_eq!(code_of(e), code, "{what}");
        }
        let bare = SqlError::new(ErrorKind::Syntax, Pos::new(1, 1), "expected SELECT");
        assert_eq!(code_of(bare), CONFIGURATION, "a job-file error on its own");
        let bug = EngineError::Internal("batch without its row column".into());
        assert_eq!(code_of(bug), RUNTIME, "an invariant that did not hold");
    }

    /// A job file that does not name itself is refused as configuration, as the real
    /// loader reports it.
    #[test]
    fn a_job_without_a_name_exits_as_configuration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nameless.sql");
        let job = "CREATE CATALOG lake WITH ('type' = 'sql', 'uri' = 'sqlite:///tmp/x.db', \
                   'warehouse' = 'file:///tmp/wh');
                   CREATE SOURCE s (a BIGINT) WITH ('connector' = 'kafka', 'topic' = 't', \
                   'format' = 'json', 'properties.bootstrap.servers' = 'k:9092');
                   CREATE TABLE lake.n.t (a BIGINT);
                   INSERT INTO lake.n.t SELECT a FROM s;";
        std::fs::write(&path, job).expect("write the job");
        let err = crate::setup::load_runnable_job(&path).expect_err("a job without a name");
        assert!(err.to_string().contains("the job has no name"), "{err}");
        assert_eq!(code_of(err), CONFIGURATION);
    }
}
