//! Crash points for recovery tests.
//!
//! `FLOE_FAILPOINTS="before-commit=abort@3"` makes the process abort, as `kill -9` would,
//! the 3rd time it reaches the point named `before-commit`; `sleep:MS` instead of `abort`
//! stalls there for MS milliseconds (to hold a stop in progress); `error` makes the point
//! fail the way it can fail in production. Several points are separated by commas. The
//! variable is read once; when it is unset a point costs one relaxed atomic load.
//!
//! Points:
//! - `before-write`: rows are about to be written to a table's data files;
//! - `before-commit`: data files are closed and written, the catalog commit has not started;
//! - `commit-error` (`error`): the catalog commit fails, retryably;
//! - `commit-fatal` (`error`): the catalog commit fails for good; the job stops;
//! - `commit-lost-response` (`error`): the commit lands, but Floe sees an error;
//! - `after-commit`: the catalog commit succeeded, group offsets are not committed yet;
//! - `shutdown`: a stop is draining, before the final commits;
//! - `replay-after-commit`: a replay committed its rows, its markers are not written yet;
//! - `compaction-before-commit`, `compaction-after-commit`: a maintenance pass has
//!   rewritten small files and is about to commit / has committed the replace snapshot;
//!   `manifests-before-commit`, `manifests-after-commit` likewise for manifest merging;
//! - `compaction-lost-response`, `manifests-lost-response` (`error`): the replace commit
//!   lands, but the pass sees an error;
//! - `rebalance-assigned`, `rebalance-revoked`: the pipeline has acted on a rebalance step
//!   and is about to let the consumer go on (`sleep` holds the group waiting for it).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static ARMED: AtomicBool = AtomicBool::new(true);
static POINTS: OnceLock<HashMap<String, Point>> = OnceLock::new();

#[derive(Debug)]
enum Action {
    Abort,
    Sleep(u64),
    Error,
}

#[derive(Debug)]
struct Point {
    action: Action,
    nth: u64,
    hits: AtomicU64,
}

fn points() -> &'static HashMap<String, Point> {
    POINTS.get_or_init(|| {
        let spec = std::env::var("FLOE_FAILPOINTS").unwrap_or_default();
        let map: HashMap<String, Point> = spec
            .split(',')
            .filter_map(|p| {
                let (name, action) = p.trim().split_once('=')?;
                let (action, nth) = action.split_once('@').unwrap_or((action, "1"));
                let action = match action.split_once(':') {
                    Some(("sleep", ms)) => Action::Sleep(ms.parse().ok()?),
                    None if action == "abort" => Action::Abort,
                    None if action == "error" => Action::Error,
                    _ => return None,
                };
                let point = Point {
                    action,
                    nth: nth.parse().unwrap_or(1),
                    hits: AtomicU64::new(0),
                };
                Some((name.to_string(), point))
            })
            .collect();
        if map.is_empty() {
            ARMED.store(false, Ordering::Relaxed);
        }
        map
    })
}

/// Aborts the process (or stalls) if the point `name` is armed and this is its chosen
/// hit; returns true when the point's action is `error`, for the caller to fail.
pub fn hit(name: &str) -> bool {
    if !ARMED.load(Ordering::Relaxed) {
        return false;
    }
    if let Some(p) = points().get(name)
        && p.hits.fetch_add(1, Ordering::SeqCst) + 1 == p.nth
    {
        match p.action {
            Action::Abort => {
                eprintln!("failpoint {name}: aborting");
                std::process::abort();
            }
            Action::Sleep(ms) => {
                eprintln!("failpoint {name}: sleeping {ms} ms");
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            Action::Error => {
                eprintln!("failpoint {name}: failing");
                return true;
            }
        }
    }
    false
}

/// The commit loop's fault hook, driven by the `commit-*` points.
pub fn commit_faults() -> Option<floe_sinks::FaultHook> {
    if !ARMED.load(Ordering::Relaxed) || points().is_empty() {
        return None;
    }
    Some(std::sync::Arc::new(hit))
}
