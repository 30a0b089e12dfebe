//! Log output on stderr: lines for people, or one JSON object per line with
//! `FLOE_LOG_FORMAT=json` (with the job in `span.job` and the table, topic and partition
//! as fields where an event concerns one). `FLOE_LOG` filters, as `RUST_LOG` does.
//!
//! Dependencies' debug output that repeats the job file is kept out whatever the filter
//! says: the SQL parser logs every statement it parses, and a job file may hold a
//! password written inline.

use tracing_subscriber::EnvFilter;

/// The filter without `FLOE_LOG`.
const DEFAULT: &str = "info,iceberg=warn,sqlx=warn,datafusion=warn";
/// Appended to every filter: targets whose output carries the job file's text.
const QUIET: &str = "sqlparser=off";

/// Installs the global subscriber.
pub fn init() {
    let json = std::env::var("FLOE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(std::env::var("FLOE_LOG").ok().as_deref()))
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}

/// `FLOE_LOG` (or the default when unset or invalid) with the quiet targets appended.
fn filter(floe_log: Option<&str>) -> EnvFilter {
    floe_log
        .and_then(|f| EnvFilter::try_new(format!("{f},{QUIET}")).ok())
        .unwrap_or_else(|| EnvFilter::new(format!("{DEFAULT},{QUIET}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_stays_quiet_even_when_asked() {
        let f = filter(Some("debug,sqlparser=trace")).to_string();
        assert!(f.contains("sqlparser=off") && !f.contains("trace"), "{f}");
    }
}
