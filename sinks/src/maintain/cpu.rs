//! The CPU each maintenance step costs, so that operators (and the long-run benchmark)
//! can see what compaction costs apart from expiry and orphan cleanup.
//!
//! The job runs its passes on a thread of their own with a single-threaded runtime, so
//! that thread's CPU time read before and after a step is the step's CPU, apart from
//! file I/O handed to the runtime's blocking pool. The time comes from
//! `/proc/thread-self/stat` in clock ticks: a single step reads coarsely, but sums over
//! many passes converge on the true figure. Where that file does not exist every step
//! reads zero; where a pass hops between threads (a multi-threaded runtime) the figures
//! mean nothing.

use std::time::Duration;

/// `/proc`'s CPU times are in these ticks per second (`USER_HZ`, 100 on every Linux ABI).
const TICKS_PER_SECOND: u64 = 100;

/// CPU per step of one pass; `None` for a step the pass did not run.
#[derive(Debug, Clone, Default)]
pub struct StepCpu {
    /// Compaction, with its replace commit.
    pub compaction: Option<Duration>,
    /// Manifest merging on its own.
    pub manifests: Option<Duration>,
    /// Snapshot expiry and the removal of the files it freed.
    pub expiry: Option<Duration>,
    /// Orphan cleanup.
    pub orphans: Option<Duration>,
}

impl StepCpu {
    /// The name and CPU of each step the pass ran.
    pub fn steps(&self) -> impl Iterator<Item = (&'static str, Duration)> {
        [
            ("compaction", self.compaction),
            ("manifests", self.manifests),
            ("expiry", self.expiry),
            ("orphans", self.orphans),
        ]
        .into_iter()
        .filter_map(|(step, cpu)| Some((step, cpu?)))
    }
}

/// CPU of consecutive steps on the calling thread.
#[derive(Debug)]
pub(crate) struct StepClock {
    last: Duration,
}

impl StepClock {
    pub(crate) fn start() -> Self {
        Self { last: thread_cpu() }
    }

    /// CPU since the previous lap (or the start).
    pub(crate) fn lap(&mut self) -> Duration {
        let now = thread_cpu();
        let spent = now.saturating_sub(self.last);
        self.last = now;
        spent
    }
}

/// The calling thread's user and system CPU time so far.
fn thread_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start after ") "; utime and
    // stime are the 12th and 13th of them.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_reads_its_own_cpu() {
        if !std::path::Path::new("/proc/thread-self/stat").exists() {
            return;
        }
        let mut clock = StepClock::start();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let (mut x, mut spent) = (0u64, Duration::ZERO);
        while spent < Duration::from_millis(200) {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread's CPU never advanced"
            );
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            spent += clock.lap();
        }
        assert!(
            clock.lap() < Duration::from_millis(100),
            "an idle lap reads near zero"
        );
    }
}
