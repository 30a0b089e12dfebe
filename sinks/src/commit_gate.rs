//! Commits first: while the job commits a table (closes its data files and commits
//! them), maintenance pauses its rewrites and deletions at the next record batch or
//! file, so that the two do not share the CPU and the disk. A commit never waits for
//! maintenance; maintenance waits out a commit, for [`MAX_YIELD`] at most (a commit
//! retrying against a catalog that is down must not stall maintenance for good).
//!
//! The gate is process-wide: commits of any table take the CPU maintenance would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Commits in progress in this process.
static IN_PROGRESS: AtomicUsize = AtomicUsize::new(0);

/// The longest one wait of maintenance for commits.
pub const MAX_YIELD: Duration = Duration::from_secs(2);

/// How often a waiting pass looks again.
const POLL: Duration = Duration::from_millis(1);

/// Marks a commit as running until it is dropped.
#[derive(Debug)]
pub struct Committing(());

impl Drop for Committing {
    fn drop(&mut self) {
        IN_PROGRESS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks a commit as running, until the returned guard drops.
pub fn committing() -> Committing {
    IN_PROGRESS.fetch_add(1, Ordering::AcqRel);
    Committing(())
}

/// Waits while a commit runs, [`MAX_YIELD`] at most; returns how long it waited.
pub(crate) async fn yield_to_commits() -> Duration {
    let started = Instant::now();
    while IN_PROGRESS.load(Ordering::Acquire) > 0 && started.elapsed() < MAX_YIELD {
        tokio::time::sleep(POLL).await;
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn maintenance_waits_while_a_commit_runs_and_no_longer() {
        assert!(yield_to_commits().await < Duration::from_millis(50));
        let guard = committing();
        let released = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(guard);
        });
        let waited = yield_to_commits().await;
        released.await.expect("released");
        assert!(waited >= Duration::from_millis(90), "{waited:?}");
        assert!(waited < MAX_YIELD, "{waited:?}");
    }
}
