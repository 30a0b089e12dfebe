//! librdkafka's log lines and errors, without the flood: while a broker is unreachable
//! librdkafka reports the same failure many times a second, so each distinct message is
//! logged at most once per interval, with a count of what was held back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use tracing::{debug, info, warn};

const INTERVAL: Duration = Duration::from_secs(30);

/// Lets a message through once per interval per key.
#[derive(Debug, Default)]
pub struct Throttle(Mutex<HashMap<String, (Instant, u64)>>);

impl Throttle {
    /// `Some(n)` when the message with `key` should be logged now (`n` were held back
    /// since it was last logged); `None` to hold it back.
    pub fn admit(&self, key: &str) -> Option<u64> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match map.get_mut(key) {
            Some((at, held)) if now.duration_since(*at) < INTERVAL => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                let n = *held;
                *at = now;
                *held = 0;
                Some(n)
            }
            None => {
                if map.len() > 1000 {
                    map.clear();
                }
                map.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

fn suffix(held: u64) -> String {
    if held == 0 {
        String::new()
    } else {
        format!(" ({held} similar messages held back)")
    }
}

/// Logs a librdkafka log line through the throttle.
pub fn log_line(throttle: &Throttle, level: RDKafkaLogLevel, fac: &str, msg: &str) {
    match level {
        RDKafkaLogLevel::Debug => debug!(target: "librdkafka", "{fac} {msg}"),
        RDKafkaLogLevel::Info | RDKafkaLogLevel::Notice => {
            info!(target: "librdkafka", "{fac} {msg}")
        }
        _ => {
            if let Some(held) = throttle.admit(fac) {
                warn!(target: "librdkafka", "kafka client: {fac} {msg}{}", suffix(held));
            }
        }
    }
}

/// Logs a librdkafka global error through the throttle.
pub fn log_error(throttle: &Throttle, error: &KafkaError, reason: &str) {
    let key = format!("{error}");
    if let Some(held) = throttle.admit(&key) {
        warn!(target: "librdkafka", "kafka client: {error}: {reason}{}", suffix(held));
    }
}

/// A client context for producers and reading-only consumers: throttled logging, and a
/// count of records the broker did not accept (producers).
#[derive(Debug, Default)]
pub struct QuietContext {
    throttle: Throttle,
    /// Records whose delivery failed.
    pub failed: AtomicU64,
}

impl ProducerContext for QuietContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Some(held) = self.throttle.admit("delivery") {
                warn!("a record was not delivered: {e}{}", suffix(held));
            }
        }
    }
}

/// A consumer that only reads (assigned partitions, no group to rebalance) needs nothing
/// more of its context than logging.
impl rdkafka::consumer::ConsumerContext for QuietContext {}

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_line(&self.throttle, level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_error(&self.throttle, &error, reason);
    }
}
