//! The consumer's callbacks: rebalances and lag.
//!
//! A rebalance is a handshake with the pipeline, made while the group waits for this
//! member. Before partitions are given up, the pipeline commits what it has read of them,
//! so the next owner starts exactly where this one stopped. When partitions arrive, the
//! pipeline first reloads the tables' committed offsets, which another replica may have
//! moved, and reading starts there.

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

    fn resume_of(&self, tp: &TopicPartition) -> Option<i64> {
        self.resume
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tp)
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
    fn startup_offsets(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let mut by_time = TopicPartitionList::new();
        let assigned: Vec<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| TopicPartition::new(e.topic(), e.partition()))
            .collect();
        for tp in assigned {
            let offset = match self.shared.resume_of(&tp) {
                Some(o) => Offset::Offset(o),
                None => match self.shared.startup {
                    StartupMode::Earliest => Offset::Beginning,
                    StartupMode::Latest => Offset::End,
                    StartupMode::GroupOffsets => Offset::Stored,
                    StartupMode::Timestamp(ms) => {
                        let _ = by_time.add_partition_offset(
                            &tp.topic,
                            tp.partition,
                            Offset::Offset(ms),
                        );
                        continue;
                    }
                },
            };
            info!(partition = %tp, ?offset, "partition assigned");
            let _ = tpl_set(tpl, &tp, offset);
        }
        if by_time.count() > 0 {
            match consumer.offsets_for_times(by_time, Duration::from_secs(10)) {
                Ok(found) => {
                    let found: Vec<(TopicPartition, Offset)> = found
                        .elements()
                        .iter()
                        .map(|e| (TopicPartition::new(e.topic(), e.partition()), e.offset()))
                        .collect();
                    for (tp, offset) in found {
                        let offset = match offset {
                            Offset::Offset(o) => Offset::Offset(o),
                            _ => Offset::End,
                        };
                        info!(partition = %tp, ?offset, "partition assigned at timestamp");
                        let _ = tpl_set(tpl, &tp, offset);
                    }
                }
                Err(e) => {
                    warn!(error = %e, "cannot look up offsets for the startup timestamp; starting at the end")
                }
            }
        }
    }
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
                self.startup_offsets(consumer, tpl);
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
