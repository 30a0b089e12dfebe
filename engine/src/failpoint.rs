//! Crash points for recovery tests.
//!
//! `FLOE_FAILPOINTS="before-commit=abort@3"` makes the process abort, as `kill -9` would,
//! the 3rd time it reaches the point named `before-commit`. The variable is read once;
//! when it is unset a point costs one relaxed atomic load.
//!
//! Points: `before-commit` (data files are closed and written, the catalog commit has not
//! started) and `after-commit` (the catalog commit succeeded, nothing else has happened).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static ARMED: AtomicBool = AtomicBool::new(true);
static POINTS: OnceLock<HashMap<String, (u64, AtomicU64)>> = OnceLock::new();

fn points() -> &'static HashMap<String, (u64, AtomicU64)> {
    POINTS.get_or_init(|| {
        let spec = std::env::var("FLOE_FAILPOINTS").unwrap_or_default();
        let map: HashMap<String, (u64, AtomicU64)> = spec
            .split(',')
            .filter_map(|p| {
                let (name, action) = p.trim().split_once('=')?;
                let (action, nth) = action.split_once('@').unwrap_or((action, "1"));
                (action == "abort").then(|| {
                    (
                        name.to_string(),
                        (nth.parse().unwrap_or(1), AtomicU64::new(0)),
                    )
                })
            })
            .collect();
        if map.is_empty() {
            ARMED.store(false, Ordering::Relaxed);
        }
        map
    })
}

/// Aborts the process if the point `name` is armed and this is its chosen hit.
pub fn hit(name: &str) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    if let Some((nth, count)) = points().get(name) {
        if count.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            eprintln!("failpoint {name}: aborting");
            std::process::abort();
        }
    }
}
