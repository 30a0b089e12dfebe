//! What the long run reads from a job's log: each commit's latency and when it was
//! logged, and each maintenance pass that compacted or expired snapshots (when it ended,
//! how long it took, the bytes it read). Each window then tells the commits that
//! overlapped a pass from those that did not (compaction passes apart, and any pass,
//! expiry's file deletions included), so a slow percentile can be attributed to the
//! passes or cleared of them.

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

/// One maintenance pass: `start..end`; a compaction pass read `bytes_in`.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    pub start: Instant,
    pub end: Instant,
    pub bytes_in: f64,
    /// It compacted (its log line says `compacted`); otherwise it expired snapshots.
    pub compacted: bool,
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
        } else if let Some(compacted) = pass_kind(line)
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
                compacted,
            });
        }
    }

    /// Commits `from..from + n`, as `(latency, whether it overlapped a compaction pass,
    /// whether it overlapped any pass)`.
    fn window(&self, from: usize, n: usize) -> Vec<(f64, bool, bool)> {
        let commits = self.commits.iter().skip(from).take(n);
        commits
            .map(|c| {
                let began =
                    c.at.checked_sub(Duration::from_secs_f64(c.ms / 1000.0))
                        .unwrap_or(c.at);
                let overlapping = || {
                    self.passes
                        .iter()
                        .filter(move |p| p.start <= c.at && began <= p.end)
                };
                let compaction = overlapping().any(|p| p.compacted);
                (c.ms, compaction, overlapping().next().is_some())
            })
            .collect()
    }

    /// The latency figures of commits `from..from + n`: p50 and p99 of all, and of the
    /// commits that overlapped a compaction pass and those that did not; the passes that
    /// ended in the window, the most bytes one of them read, and the longest.
    pub fn window_figures(&self, from: usize, n: usize) -> Value {
        let window = self.window(from, n);
        let sorted = |keep: &dyn Fn(&(f64, bool, bool)) -> bool| {
            let mut v: Vec<f64> = window
                .iter()
                .filter(|w| keep(w))
                .map(|(ms, _, _)| *ms)
                .collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let all = sorted(&|_| true);
        let (during, outside) = (sorted(&|w| w.1), sorted(&|w| !w.1));
        let (in_any, out_any) = (sorted(&|w| w.2), sorted(&|w| !w.2));
        let first = self.commits.get(from).map(|c| c.at);
        let last = (from + window.len())
            .checked_sub(1)
            .and_then(|i| self.commits.get(i))
            .map(|c| c.at);
        let ended: Vec<&Pass> = match (first, last) {
            (Some(first), Some(last)) => self
                .passes
                .iter()
                .filter(|p| p.end >= first && p.end <= last)
                .collect(),
            _ => vec![],
        };
        let passes: Vec<&Pass> = ended.iter().copied().filter(|p| p.compacted).collect();
        let max = |v: &[f64]| v.last().copied().unwrap_or(0.0);
        let longest = passes
            .iter()
            .map(|p| (p.end - p.start).as_secs_f64() * 1000.0);
        json!({
            "commit_p50_ms": percentile(&all, 0.5),
            "commit_p99_ms": percentile(&all, 0.99),
            "commit_max_ms": max(&all),
            "commits_during_compaction": during.len(),
            "commit_p99_during_compaction_ms": percentile(&during, 0.99),
            "commit_p99_outside_compaction_ms": percentile(&outside, 0.99),
            "commits_during_maintenance": in_any.len(),
            "commit_p99_during_maintenance_ms": percentile(&in_any, 0.99),
            "commit_p99_outside_maintenance_ms": percentile(&out_any, 0.99),
            "commit_max_during_maintenance_ms": max(&in_any),
            "commit_max_outside_maintenance_ms": max(&out_any),
            "expiry_passes": ended.iter().filter(|p| !p.compacted).count(),
            "compaction_passes": passes.len(),
            "compaction_max_bytes_in": passes.iter().map(|p| p.bytes_in).fold(0.0, f64::max),
            "compaction_longest_ms": longest.fold(0.0, f64::max).round(),
        })
    }
}

/// Whether `line` ends a maintenance pass: Some(true) for one that compacted, Some(false)
/// for one that only expired snapshots or removed files (a pass that did both logs both
/// lines, with the same duration).
fn pass_kind(line: &str) -> Option<bool> {
    if line.contains(" compacted ") {
        Some(true)
    } else if line.contains(" expired snapshots ") {
        Some(false)
    } else {
        None
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
        // An expiry pass from 4 500 to 5 000 ms, and a commit during it (60 ms).
        log.read(
            &format!("INFO expired snapshots table={table} expired=3 took_ms=500"),
            table,
            at(5_000),
        );
        log.read(
            &format!("INFO committed table={table} commit_ms=60"),
            table,
            at(4_800),
        );
        let f = log.window_figures(0, 5);
        assert_eq!(f["commits_during_maintenance"], 3);
        assert_eq!(f["commit_max_outside_maintenance_ms"], 12.0);
        assert_eq!(f["commit_max_during_maintenance_ms"], 100.0);
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
