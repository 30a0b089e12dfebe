//! How long and how often the commit loop tries, and the faults tests inject into it.

use std::sync::Arc;
use std::time::Duration;

/// Decides whether to inject the fault it is named (for recovery tests): `commit-error`
/// (the catalog commit fails, retryably), `commit-fatal` (it fails for good) and
/// `commit-lost-response` (it succeeds, but the caller sees an error).
pub type FaultHook = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Retry settings of the commit loop.
#[derive(Clone)]
pub struct RetryPolicy {
    /// First back-off.
    pub min_backoff: Duration,
    /// Largest back-off.
    pub max_backoff: Duration,
    /// Give up after this long.
    pub deadline: Duration,
    /// Fault injection, for tests; None in normal runs.
    pub faults: Option<FaultHook>,
}

impl std::fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("deadline", &self.deadline)
            .field("faults", &self.faults.is_some())
            .finish()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            deadline: Duration::from_secs(120),
            faults: None,
        }
    }
}

impl RetryPolicy {
    pub(crate) fn inject(&self, fault: &str) -> bool {
        self.faults.as_ref().is_some_and(|f| f(fault))
    }
}
