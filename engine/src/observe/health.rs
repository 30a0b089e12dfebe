//! Liveness and readiness of `floe run`, as a container platform's probes ask for them.
//!
//! Alive: the job is starting (loading tables, replaying); or the pipeline loop has
//! turned within the stall bound, or it is inside a commit
//! that is still within the commit loop's own retry deadline (a long retry is the job
//! working, not hanging). Ready: every source is a member of its consumer group (it holds
//! an assignment, possibly empty: a replica beyond the partition count is idle, not
//! broken), its broker is reachable, and commits succeed.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const STARTING: u8 = 0;
const RUNNING: u8 = 1;
const STOPPED: u8 = 2;

/// A commit running longer than this counts as not succeeding, for readiness.
const SLOW_COMMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
struct SourceHealth {
    in_group: bool,
    broker_up: bool,
}

/// What the probes report, updated by the pipeline and the consumers.
#[derive(Debug)]
pub struct Health {
    epoch: OnceLock<Instant>,
    /// STARTING, RUNNING or STOPPED.
    phase: AtomicU8,
    loop_turned_ms: AtomicU64,
    /// Milliseconds (since the epoch) when the running commit started; 0 when none runs.
    commit_since_ms: AtomicU64,
    last_commit_failed: AtomicBool,
    sources: Mutex<Vec<SourceHealth>>,
    stall_bound_ms: AtomicU64,
    commit_bound_ms: AtomicU64,
}

/// A probe's answer and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Healthy (alive, or ready).
    pub ok: bool,
    /// One line for a human reading the probe's body.
    pub reason: String,
}

impl Health {
    const fn new() -> Self {
        Self {
            epoch: OnceLock::new(),
            phase: AtomicU8::new(STARTING),
            loop_turned_ms: AtomicU64::new(0),
            commit_since_ms: AtomicU64::new(0),
            last_commit_failed: AtomicBool::new(false),
            sources: Mutex::new(Vec::new()),
            stall_bound_ms: AtomicU64::new(60_000),
            commit_bound_ms: AtomicU64::new(180_000),
        }
    }

    fn now_ms(&self) -> u64 {
        let start = *self.epoch.get_or_init(Instant::now);
        // Never 0, which means "none" in the commit marker.
        start.elapsed().as_millis() as u64 + 1
    }

    /// The pipeline starts with `sources` sources; `stall` bounds a loop turn, `commit` a
    /// commit (its retry deadline and some).
    pub fn start(&self, sources: usize, stall: Duration, commit: Duration) {
        *self.sources.lock().unwrap_or_else(|p| p.into_inner()) = vec![
            SourceHealth {
                in_group: false,
                broker_up: true,
            };
            sources
        ];
        self.stall_bound_ms
            .store(stall.as_millis() as u64, Ordering::Relaxed);
        self.commit_bound_ms
            .store(commit.as_millis() as u64, Ordering::Relaxed);
        self.turned();
        self.phase.store(RUNNING, Ordering::SeqCst);
    }

    /// The pipeline stopped to be planned again (a writer schema added columns): alive,
    /// not ready, until it starts again.
    pub fn replanning(&self) {
        self.phase.store(STARTING, Ordering::SeqCst);
    }

    /// The pipeline stopped (cleanly or not): neither alive nor ready any more.
    pub fn stop(&self) {
        self.phase.store(STOPPED, Ordering::SeqCst);
    }

    /// The pipeline loop went round once.
    pub fn turned(&self) {
        self.loop_turned_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A commit starts.
    pub fn commit_started(&self) {
        self.commit_since_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A commit ended, landed or not.
    pub fn commit_ended(&self, landed: bool) {
        self.commit_since_ms.store(0, Ordering::Relaxed);
        self.last_commit_failed.store(!landed, Ordering::Relaxed);
        self.turned();
    }

    fn with_source(&self, source: usize, f: impl FnOnce(&mut SourceHealth)) {
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sources.get_mut(source) {
            f(s);
        }
    }

    /// Source `source` holds an assignment (`true`) or gave it up.
    pub fn set_in_group(&self, source: usize, in_group: bool) {
        self.with_source(source, |s| s.in_group = in_group);
    }

    /// Whether a broker of source `source` is reachable, from the client's statistics.
    pub fn set_broker_up(&self, source: usize, up: bool) {
        self.with_source(source, |s| s.broker_up = up);
    }

    /// The liveness probe's answer.
    pub fn alive(&self) -> Verdict {
        match self.phase.load(Ordering::SeqCst) {
            STARTING => return verdict(true, "starting"),
            STOPPED => return verdict(false, "the pipeline has stopped"),
            _ => {}
        }
        let now = self.now_ms();
        let commit_since = self.commit_since_ms.load(Ordering::Relaxed);
        if commit_since != 0 {
            let took = now.saturating_sub(commit_since);
            return if took <= self.commit_bound_ms.load(Ordering::Relaxed) {
                verdict(true, format!("committing for {took} ms"))
            } else {
                verdict(false, format!("a commit has not returned for {took} ms"))
            };
        }
        let idle = now.saturating_sub(self.loop_turned_ms.load(Ordering::Relaxed));
        if idle <= self.stall_bound_ms.load(Ordering::Relaxed) {
            verdict(true, format!("the pipeline loop turned {idle} ms ago"))
        } else {
            verdict(
                false,
                format!("the pipeline loop has not turned for {idle} ms"),
            )
        }
    }

    /// The readiness probe's answer.
    pub fn ready(&self) -> Verdict {
        if self.phase.load(Ordering::SeqCst) != RUNNING {
            return verdict(false, "the pipeline is not running");
        }
        let sources = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(i) = sources.iter().position(|s| !s.broker_up) {
            return verdict(false, format!("source {i}: no broker is reachable"));
        }
        if let Some(i) = sources.iter().position(|s| !s.in_group) {
            return verdict(false, format!("source {i}: waiting for partitions"));
        }
        if self.last_commit_failed.load(Ordering::Relaxed) {
            return verdict(false, "the last commit failed");
        }
        let commit_since = self.commit_since_ms.load(Ordering::Relaxed);
        if commit_since != 0
            && self.now_ms().saturating_sub(commit_since) > SLOW_COMMIT.as_millis() as u64
        {
            return verdict(false, "a commit is retrying");
        }
        verdict(true, "partitions assigned, commits succeeding")
    }
}

fn verdict(ok: bool, reason: impl Into<String>) -> Verdict {
    Verdict {
        ok,
        reason: reason.into(),
    }
}

/// The process's health.
pub fn health() -> &'static Health {
    static HEALTH: Health = Health::new();
    &HEALTH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalled_loop_is_dead_but_a_long_commit_is_not() {
        let h = Health::new();
        // The clock starts ten seconds ago, so "long ago" needs no waiting.
        let earlier = Instant::now().checked_sub(Duration::from_secs(10));
        h.epoch
            .set(earlier.expect("a clock ten seconds old"))
            .expect("unset");
        assert_eq!(h.alive().reason, "starting");
        h.start(1, Duration::from_secs(1), Duration::from_secs(60));
        assert!(h.alive().ok, "{:?}", h.alive());
        // The loop last turned at the clock's start, ten seconds ago: past the 1 s bound.
        h.loop_turned_ms.store(1, Ordering::Relaxed);
        assert!(!h.alive().ok, "{:?}", h.alive());
        h.commit_started();
        assert!(h.alive().ok, "a commit within its bound is alive");
        h.commit_ended(true);
        assert!(h.alive().ok, "a landed commit turns the loop");
        h.stop();
        assert!(!h.alive().ok);
    }

    #[test]
    fn ready_needs_the_group_a_broker_and_good_commits() {
        let h = Health::new();
        h.start(2, Duration::from_secs(60), Duration::from_secs(60));
        assert!(!h.ready().ok);
        h.set_in_group(0, true);
        assert!(!h.ready().ok, "{:?}", h.ready());
        h.set_in_group(1, true);
        assert!(h.ready().ok);
        h.set_broker_up(1, false);
        assert_eq!(h.ready().reason, "source 1: no broker is reachable");
        h.set_broker_up(1, true);
        h.commit_ended(false);
        assert!(!h.ready().ok);
        h.commit_ended(true);
        assert!(h.ready().ok);
    }
}
