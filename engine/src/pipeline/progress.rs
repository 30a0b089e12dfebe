//! Counters of a running job and the progress line printed every few seconds.

use std::time::Instant;

/// Running totals.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Records read from Kafka.
    pub records_in: u64,
    /// Payload bytes read.
    pub bytes_in: u64,
    /// Rows written to tables.
    pub rows_out: u64,
    /// Records skipped because a table already had them.
    pub skipped: u64,
    /// Commits made.
    pub commits: u64,
    /// Filtered, dropped and dead-lettered records, over all tables.
    pub records: super::RecordCounts,
}

/// Prints rates since the previous line.
#[derive(Debug)]
pub struct Progress {
    last: Counters,
    at: Instant,
}

impl Progress {
    /// Starts measuring now.
    pub fn new() -> Self {
        Self {
            last: Counters::default(),
            at: Instant::now(),
        }
    }

    /// The line for `now` (and resets the interval).
    pub fn line(&mut self, c: &Counters, last_snapshot: Option<i64>, lag: i64) -> String {
        let secs = self.at.elapsed().as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / secs;
        let r = &c.records;
        let mut quality = String::new();
        if !r.is_empty() {
            quality = format!(" | filtered {}", r.filtered);
            if !r.dead_lettered.is_empty() {
                quality += &format!(
                    " | dead-lettered {} ({})",
                    r.total_dead_lettered(),
                    super::RecordCounts::show(&r.dead_lettered)
                );
            }
            if !r.dropped.is_empty() {
                quality += &format!(
                    " | dropped {} ({})",
                    r.total_dropped(),
                    super::RecordCounts::show(&r.dropped)
                );
            }
        }
        let line = format!(
            "in {} rec/s ({:.1} MB/s) | out {} rows/s | total in {} out {}{quality} | commits {} | last snapshot {} | lag {}",
            human(rate(c.records_in, self.last.records_in)),
            rate(c.bytes_in, self.last.bytes_in) / 1e6,
            human(rate(c.rows_out, self.last.rows_out)),
            c.records_in,
            c.rows_out,
            c.commits,
            last_snapshot.map_or_else(|| "-".into(), |s| s.to_string()),
            if lag < 0 { "?".into() } else { lag.to_string() },
        );
        self.last = c.clone();
        self.at = Instant::now();
        line
    }
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
