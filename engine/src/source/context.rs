//! The consumer's callbacks: rebalances and lag.
//!
//! A rebalance is a handshake with the pipeline, made while the group waits for this
//! member. Before partitions are given up, the pipeline commits what it has read of them,
//! so the next owner starts exactly where this one stopped. When partitions arrive, the
//! pipeline first reloads the tables' committed offsets, which another replica may have
//! moved, and reading starts there.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use floe_catalog::{OffsetMap, TopicPartition};
use floe_sql::job::StartupMode;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::SourceEvent;
use super::client_log::{Throttle, log_error, log_line};

/// State shared between the consumer's callbacks and the pipeline.
#[derive(Debug)]
pub struct SourceShared {
    /// Where each partition resumes: the lowest committed offset over the job's tables
    /// that read this source. Updated by the pipeline after every commit.
    pub resume: Mutex<OffsetMap>,
    /// Partitions revoked since the source thread last looked: records it gathered of
    /// them but did not hand on are dropped, the next owner reads them.
    revoked: Mutex<Vec<i32>>,
    /// Set together with `revoked`, so the poll loop can check without locking.
    any_revoked: AtomicBool,
    /// Total consumer lag from the latest statistics (-1 until known).
    pub lag: AtomicI64,
    /// Where to start partitions nobody has committed.
    pub startup: StartupMode,
}

impl SourceShared {
    /// Shared state starting from `resume`.
    pub fn new(resume: OffsetMap, startup: StartupMode) -> Arc<Self> {
        Arc::new(Self {
            resume: Mutex::new(resume),
            revoked: Mutex::new(vec![]),
            any_revoked: AtomicBool::new(false),
            lag: AtomicI64::new(-1),
            startup,
        })
    }

    /// Records that the table commits moved the resume point of `tp` to `next`.
    pub fn set_resume(&self, offsets: &OffsetMap) {
        let mut r = self.resume.lock().unwrap_or_else(|p| p.into_inner());
        *r = offsets.clone();
    }

    /// Partitions revoked since the last call. Called after every poll: a plain load
    /// answers the common case, without a locked read-modify-write.
    pub fn take_revoked(&self) -> Vec<i32> {
        if !self.any_revoked.load(Ordering::Relaxed)
            || !self.any_revoked.swap(false, Ordering::SeqCst)
        {
            return vec![];
        }
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn note_revoked(&self, tpl: &TopicPartitionList) {
        let mut r = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        r.extend(tpl.elements().iter().map(|e| e.partition()));
        self.any_revoked.store(true, Ordering::SeqCst);
    }

    fn resume(&self) -> OffsetMap {
        self.resume
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The rdkafka context of Floe's consumers.
pub struct FloeContext {
    /// Shared with the pipeline.
    pub shared: Arc<SourceShared>,
    /// Keeps repeated client errors from flooding the log.
    pub throttle: Throttle,
    /// Index of the source in the job.
    pub source: usize,
    /// Where rebalances are announced to the pipeline.
    pub events: mpsc::Sender<SourceEvent>,
}

impl ClientContext for FloeContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        log_line(&self.throttle, level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_error(&self.throttle, &error, reason);
    }

    fn stats(&self, stats: Statistics) {
        let lag: i64 = stats
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
        self.shared.lag.store(lag, Ordering::Relaxed);
    }
}

impl FloeContext {
    /// Sets where each assigned partition starts, and returns the start positions that
    /// the tables must record with their next commit.
    ///
    /// A partition with a committed offset resumes there. The startup mode decides only
    /// for a topic the tables know nothing of yet, the job's first start; its positions
    /// are resolved to numbers and committed even if no record follows, so that a later
    /// start, or another replica taking a quiet partition over, begins at the same place
    /// instead of asking the startup mode again ('latest' would then skip what arrived in
    /// between). A partition missing from a topic the tables already know was added after
    /// the job started, and is read from its beginning.
    fn startup_offsets(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
    ) -> OffsetMap {
        let resume = self.shared.resume();
        let known: HashSet<&str> = resume.iter().map(|(tp, _)| tp.topic.as_str()).collect();
        let assigned: Vec<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| TopicPartition::new(e.topic(), e.partition()))
            .collect();
        // Positions to look up at the broker: a timestamp, or the end (-1).
        let mut lookup = TopicPartitionList::new();
        let mut stored = TopicPartitionList::new();
        for tp in assigned {
            let offset = match resume.get(&tp) {
                Some(o) => Offset::Offset(o),
                None if known.contains(tp.topic.as_str()) => {
                    info!(partition = %tp, "partition new since the job started: reading it from the beginning");
                    Offset::Beginning
                }
                None => match self.shared.startup {
                    StartupMode::Earliest => Offset::Beginning,
                    StartupMode::Latest => {
                        let _ = lookup.add_partition_offset(&tp.topic, tp.partition, Offset::End);
                        continue;
                    }
                    StartupMode::Timestamp(ms) => {
                        let _ = lookup.add_partition_offset(
                            &tp.topic,
                            tp.partition,
                            Offset::Offset(ms),
                        );
                        continue;
                    }
                    StartupMode::GroupOffsets => {
                        let _ = stored.add_partition(&tp.topic, tp.partition);
                        Offset::Stored
                    }
                },
            };
            info!(partition = %tp, ?offset, "partition assigned");
            let _ = tpl_set(tpl, &tp, offset);
        }
        let mut pins = OffsetMap::new();
        if lookup.count() > 0 {
            // A timestamp after the newest record finds nothing: those start at the end,
            // which a second look-up turns into a number.
            let ends = self.look_up(consumer, &lookup, tpl, &mut pins);
            if ends.count() > 0 {
                self.look_up(consumer, &ends, tpl, &mut pins);
            }
        }
        if stored.count() > 0 {
            match consumer.committed_offsets(stored, LOOKUP_TIMEOUT) {
                Ok(found) => {
                    pin_found(tpl, &found, &mut pins);
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the consumer group's offsets; librdkafka resolves them when it starts fetching")
                }
            }
        }
        pins
    }

    /// Looks up the offsets of `lookup` (timestamps, or -1 for the end) and starts the
    /// partitions there; returns those the broker found nothing for, set to the end.
    fn look_up(
        &self,
        consumer: &BaseConsumer<Self>,
        lookup: &TopicPartitionList,
        tpl: &mut TopicPartitionList,
        pins: &mut OffsetMap,
    ) -> TopicPartitionList {
        match consumer.offsets_for_times(lookup.clone(), LOOKUP_TIMEOUT) {
            Ok(found) => pin_found(tpl, &found, pins),
            Err(e) => {
                warn!(error = %e, "cannot look up the startup offsets; starting at the end, uncommitted until records arrive");
                for e in lookup.elements() {
                    let _ = tpl.set_partition_offset(e.topic(), e.partition(), Offset::End);
                }
                TopicPartitionList::new()
            }
        }
    }
}

/// How long a broker look-up of start offsets may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the partitions of `found` at the offsets the broker resolved and notes them as
/// pins. Returns the partitions it found no offset for, started at the end.
fn pin_found(
    tpl: &mut TopicPartitionList,
    found: &TopicPartitionList,
    pins: &mut OffsetMap,
) -> TopicPartitionList {
    let mut ends = TopicPartitionList::new();
    for e in found.elements() {
        let tp = TopicPartition::new(e.topic(), e.partition());
        let offset = match e.offset() {
            Offset::Offset(o) if o >= 0 => {
                pins.set(tp.clone(), o);
                Offset::Offset(o)
            }
            Offset::Stored | Offset::Invalid => Offset::Stored,
            _ => {
                let _ = ends.add_partition_offset(&tp.topic, tp.partition, Offset::End);
                Offset::End
            }
        };
        info!(partition = %tp, ?offset, "partition assigned");
        let _ = tpl_set(tpl, &tp, offset);
    }
    ends
}

fn tpl_set(tpl: &mut TopicPartitionList, tp: &TopicPartition, offset: Offset) -> KafkaResult<()> {
    tpl.set_partition_offset(&tp.topic, tp.partition, offset)
}

impl FloeContext {
    /// Announces a rebalance step to the pipeline and waits until it has acted on it. When
    /// the pipeline is gone (the job is failing), there is nobody to wait for.
    fn handshake(&self, event: impl FnOnce(Handshake) -> SourceEvent) {
        let (done, acked) = std_mpsc::sync_channel(1);
        if self.events.blocking_send(event(Handshake(done))).is_ok() {
            let _ = acked.recv();
        }
    }
}

impl ConsumerContext for FloeContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let source = self.source;
                self.handshake(|done| SourceEvent::Assigned { source, done });
                let offsets = self.startup_offsets(consumer, tpl);
                if !offsets.is_empty() {
                    self.handshake(|done| SourceEvent::Started {
                        source,
                        offsets,
                        done,
                    });
                }
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = consumer.assignment_lost();
                info!(partitions = tpl.count(), lost, "partitions revoked");
                self.revoke(tpl, lost);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                warn!(error = ?other, "rebalance error");
                let all = consumer.assignment().unwrap_or_default();
                self.revoke(&all, true);
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            warn!(error = %e, "applying the assignment failed");
        }
    }
}

impl FloeContext {
    fn revoke(&self, tpl: &TopicPartitionList, lost: bool) {
        self.shared.note_revoked(tpl);
        let source = self.source;
        self.handshake(|done| SourceEvent::Revoked { source, lost, done });
    }
}

/// The pipeline's answer to a rebalance step; dropping it answers too.
#[derive(Debug)]
pub struct Handshake(std_mpsc::SyncSender<()>);

impl Handshake {
    /// Lets the rebalance go on.
    pub fn done(self) {
        let _ = self.0.send(());
    }
}
