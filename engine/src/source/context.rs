//! The consumer's callbacks: where to start each newly assigned partition, and noticing
//! rebalances and lag.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
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
use tracing::{info, warn};

use super::client_log::{Throttle, log_error, log_line};

/// State shared between the consumer's callbacks and the pipeline.
#[derive(Debug)]
pub struct SourceShared {
    /// Where each partition resumes: the lowest committed offset over the job's tables
    /// that read this source. Updated by the pipeline after every commit.
    pub resume: Mutex<OffsetMap>,
    /// Set by a rebalance; the source discards what it gathered and tells the pipeline.
    pub rebalanced: AtomicBool,
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
            rebalanced: AtomicBool::new(false),
            lag: AtomicI64::new(-1),
            startup,
        })
    }

    /// Records that the table commits moved the resume point of `tp` to `next`.
    pub fn set_resume(&self, offsets: &OffsetMap) {
        let mut r = self.resume.lock().unwrap_or_else(|p| p.into_inner());
        *r = offsets.clone();
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

impl ConsumerContext for FloeContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.shared.rebalanced.store(true, Ordering::SeqCst);
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.startup_offsets(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                info!(partitions = tpl.count(), "partitions revoked");
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                warn!(error = ?other, "rebalance error");
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            warn!(error = %e, "applying the assignment failed");
        }
    }
}
