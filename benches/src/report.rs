//! The benchmark's table and JSON.

use serde_json::json;

use crate::floe_job::FloeRun;

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What ran.
    pub name: String,
    /// Events per second.
    pub events_per_s: f64,
    /// Payload megabytes per second.
    pub mb_per_s: f64,
    /// Wall seconds.
    pub seconds: f64,
    /// Events per CPU-second.
    pub per_cpu_s: f64,
    /// Peak RSS, MiB.
    pub peak_rss_mib: f64,
    /// Ratios and remarks.
    pub note: String,
}

impl Row {
    /// A ceiling measured in-process over `n` events of `mb` payload megabytes.
    pub fn ceiling(name: &str, n: f64, mb: f64, seconds: f64) -> Row {
        Row {
            name: name.into(),
            events_per_s: n / seconds.max(1e-9),
            mb_per_s: mb / seconds.max(1e-9),
            seconds,
            per_cpu_s: f64::NAN,
            peak_rss_mib: f64::NAN,
            note: String::new(),
        }
    }

    /// A Floe run, with its ratio to the consume-only ceiling.
    pub fn floe(name: &str, n: f64, mb: f64, run: &FloeRun, consume_rate: f64) -> Row {
        let rate = n / run.seconds.max(1e-9);
        let steady = n / run.seconds_after_assignment.max(1e-9);
        Row {
            name: format!("floe {name}"),
            events_per_s: rate,
            mb_per_s: mb / run.seconds.max(1e-9),
            seconds: run.seconds,
            per_cpu_s: n / run.cpu_seconds.max(1e-9),
            peak_rss_mib: run.peak_rss_mib,
            note: format!(
                "{:.0}% of consume-only; {:.0}% after the group join ({:.2}M/s)",
                100.0 * rate / consume_rate,
                100.0 * steady / consume_rate,
                steady / 1e6
            ),
        }
    }

    /// The row as JSON.
    pub fn summary(&self) -> serde_json::Value {
        json!({
            "name": self.name, "events_per_s": finite(self.events_per_s), "mb_per_s": finite(self.mb_per_s),
            "seconds": finite(self.seconds), "events_per_cpu_s": finite(self.per_cpu_s),
            "peak_rss_mib": finite(self.peak_rss_mib), "note": self.note,
        })
    }

    /// The row and what the Floe run committed, as JSON.
    pub fn to_json(&self, run: &FloeRun) -> serde_json::Value {
        let commits: Vec<_> = run.snapshots.iter().filter(|s| s.files > 0).collect();
        let files: u64 = commits.iter().map(|s| s.files).sum();
        let bytes: u64 = commits.iter().map(|s| s.bytes).sum();
        let mut commit_ms = run.commit_ms.clone();
        commit_ms.sort_by(f64::total_cmp);
        json!({
            "row": self.summary(),
            "seconds_after_assignment": run.seconds_after_assignment,
            "cpu_seconds": run.cpu_seconds,
            "snapshots": run.snapshots.len(),
            "rows_written": run.rows,
            "files_per_commit": files as f64 / commits.len().max(1) as f64,
            "mean_file_mb": bytes as f64 / files.max(1) as f64 / 1e6,
            "commit_p50_ms": percentile(&commit_ms, 0.5),
            "commit_p99_ms": percentile(&commit_ms, 0.99),
        })
    }
}

fn finite(v: f64) -> serde_json::Value {
    if v.is_finite() {
        json!((v * 100.0).round() / 100.0)
    } else {
        serde_json::Value::Null
    }
}

/// The `q` quantile of sorted `v` (NaN when empty).
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

fn cell(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "-".into()
    }
}

/// The results as an aligned text table.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<22} {:>12} {:>8} {:>9} {:>12} {:>9}  {}\n",
        "run", "events/s", "MB/s", "seconds", "ev/CPU-s", "RSS MiB", "note"
    );
    for r in rows {
        out += &format!(
            "{:<22} {:>12} {:>8} {:>9} {:>12} {:>9}  {}\n",
            r.name,
            cell(r.events_per_s, 0),
            cell(r.mb_per_s, 1),
            cell(r.seconds, 2),
            cell(r.per_cpu_s, 0),
            cell(r.peak_rss_mib, 0),
            r.note
        );
    }
    out
}

/// Sets the note of row `of` to `note(its events/s over those of row `to`)`, when both
/// rows are there.
pub fn note_ratio(rows: &mut [Row], of: &str, to: &str, note: impl Fn(f64) -> String) {
    let rate = |name: &str| rows.iter().find(|r| r.name == name).map(|r| r.events_per_s);
    if let (Some(a), Some(b)) = (rate(of), rate(to))
        && let Some(r) = rows.iter_mut().find(|r| r.name == of)
    {
        r.note = note(a / b.max(1e-9));
    }
}
