//! What the long run reads from a job's log: each commit's latency and when it was
//! logged, and each maintenance pass that compacted (when it ended, how long it took,
//! the bytes it read). Each window then tells the commits that overlapped a compaction
//! pass from those that did not, so a slow percentile can be attributed to the passes
//! or cleared of them.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::floe_job::field;
use crate::report::percentile;

/// One commit: logged at `at`, having taken `ms`.
#[derive(Debug, Clone, Copy)]
pub struct Commit {
    pub at: Instant,
    pub ms: f64,
}

/// One compaction pass: `start..end`, reading `bytes_in`.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    pub start: Instant,
    pub end: Instant,
    pub bytes_in: f64,
}

/// A job's commits and compaction passes, as its log lines arrive.
#[derive(Debug, Default)]
pub struct CommitLog {
    pub commits: Vec<Commit>,
    pub passes: Vec<Pass>,
}

impl CommitLog {
    /// Takes `line`, received at `at`, if it is a commit or compaction line of `table`.
    pub fn read(&mut self, line: &str, table: &str, at: Instant) {
        if !line.contains(&format!("table={table}")) {
            return;
        }
        if line.contains(" committed ")
            && let Some(ms) = field(line, "commit_ms")
        {
            self.commits.push(Commit { at, ms });
        } else if line.contains(" compacted ")
            && let Some(took) = field(line, "took_ms")
        {
            let start = at
                .checked_sub(Duration::from_secs_f64(took / 1000.0))
                .unwrap_or(at);
            let bytes_in = field(line, "bytes_in").unwrap_or(0.0);
            self.passes.push(Pass {
                start,
                end: at,
                bytes_in,
            });
        }
    }

    /// Commits `from..from + n`, as `(latency, whether it overlapped a compaction pass)`.
    fn window(&self, from: usize, n: usize) -> Vec<(f64, bool)> {
        let commits = self.commits.iter().skip(from).take(n);
        commits
            .map(|c| {
                let began =
                    c.at.checked_sub(Duration::from_secs_f64(c.ms / 1000.0))
                        .unwrap_or(c.at);
                let overlaps = self
                    .passes
                    .iter()
                    .any(|p| p.start <= c.at && began <= p.end);
                (c.ms, overlaps)
            })
            .collect()
    }

    /// The latency figures of commits `from..from + n`: p50 and p99 of all, and of the
    /// commits that overlapped a compaction pass and those that did not; the passes that
    /// ended in the window, the most bytes one of them read, and the longest.
    pub fn window_figures(&self, from: usize, n: usize) -> Value {
        let window = self.window(from, n);
        let sorted = |keep: &dyn Fn(bool) -> bool| {
            let mut v: Vec<f64> = window
                .iter()
                .filter(|(_, o)| keep(*o))
                .map(|(ms, _)| *ms)
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (all, during, outside) = (sorted(&|_| true), sorted(&|o| o), sorted(&|o| !o));
        let first = self.commits.get(from).map(|c| c.at);
        let last = (from + window.len())
            .checked_sub(1)
            .and_then(|i| self.commits.get(i))
            .map(|c| c.at);
        let passes: Vec<&Pass> = match (first, last) {
            (Some(first), Some(last)) => self
                .passes
                .iter()
                .filter(|p| p.end >= first && p.end <= last)
                .collect(),
            _ => vec![],
        };
        let longest = passes
            .iter()
            .map(|p| (p.end - p.start).as_secs_f64() * 1000.0);
        json!({
            "commit_p50_ms": percentile(&all, 0.5),
            "commit_p99_ms": percentile(&all, 0.99),
            "commit_max_ms": all.last().copied().unwrap_or(0.0),
            "commits_during_compaction": during.len(),
            "commit_p99_during_compaction_ms": percentile(&during, 0.99),
            "commit_p99_outside_compaction_ms": percentile(&outside, 0.99),
            "compaction_passes": passes.len(),
            "compaction_max_bytes_in": passes.iter().map(|p| p.bytes_in).fold(0.0, f64::max),
            "compaction_longest_ms": longest.fold(0.0, f64::max).round(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_that_overlap_a_compaction_pass_are_told_apart() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let table = "lake.bench.long_run";
        let mut log = CommitLog::default();
        // A pass from 1 000 to 3 000 ms; commits ending at 500 (10 ms), 2 000 (80 ms,
        // during the pass), 3 050 (100 ms: began at 2 950, during) and 4 000 (12 ms).
        log.read(
            &format!("INFO committed table={table} commit_ms=10"),
            table,
            at(500),
        );
        log.read(
            &format!("INFO committed table={table} commit_ms=80"),
            table,
            at(2_000),
        );
        log.read(
            &format!("INFO compacted table={table} bytes_in=5000 took_ms=2000"),
            table,
            at(3_000),
        );
        log.read(
            &format!("INFO committed table={table} commit_ms=100"),
            table,
            at(3_050),
        );
        log.read("INFO committed table=other commit_ms=999", table, at(3_500));
        log.read(
            &format!("INFO committed table={table} commit_ms=12"),
            table,
            at(4_000),
        );
        let f = log.window_figures(0, 4);
        assert_eq!(f["commits_during_compaction"], 2);
        assert_eq!(f["commit_max_ms"], 100.0);
        assert_eq!(f["compaction_passes"], 1);
        assert_eq!(f["compaction_max_bytes_in"], 5000.0);
        assert_eq!(f["compaction_longest_ms"], 2000.0);
        let outside = f["commit_p99_outside_compaction_ms"]
            .as_f64()
            .unwrap_or(0.0);
        assert!(outside <= 12.0, "{f}");
        assert_eq!(log.window_figures(2, 2)["commits_during_compaction"], 1);
    }
}
