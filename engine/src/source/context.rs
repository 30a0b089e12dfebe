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
use super::start::{Plan, plan};
use crate::observe::{health, metrics};

/// State shared between the consumer's callbacks and the pipeline.
#[derive(Debug)]
pub struct SourceShared {
    /// The offsets of each table that reads this source (committed, or pending in its
    /// writer): where each partition starts is decided from them (see [`super::start`]).
    /// Updated by the pipeline after every commit and before every assignment.
    tables: Mutex<Vec<OffsetMap>>,
    /// Partitions revoked since the source thread last looked: records it gathered of
    /// them but did not hand on are dropped, the next owner reads them.
    revoked: Mutex<Vec<i32>>,
    /// Set together with `revoked`, so the poll loop can check without locking.
    any_revoked: AtomicBool,
    /// Total consumer lag from the latest statistics (-1 until known).
    pub lag: AtomicI64,
    /// Where to start partitions a table knows nothing of.
    pub startup: StartupMode,
    /// Lookups of the source's registries waiting for a schema id not known yet.
    schema_waits: Mutex<Vec<Arc<std::sync::atomic::AtomicUsize>>>,
}

impl SourceShared {
    /// Shared state starting from the offsets of the tables that read the source.
    pub fn new(tables: Vec<OffsetMap>, startup: StartupMode) -> Arc<Self> {
        Arc::new(Self {
            tables: Mutex::new(tables),
            revoked: Mutex::new(vec![]),
            any_revoked: AtomicBool::new(false),
            lag: AtomicI64::new(-1),
            startup,
            schema_waits: Mutex::new(vec![]),
        })
    }

    /// Counts `waits` (see [`Self::waiting_for_schemas`]).
    pub fn note_schema_waits(&self, waits: Vec<Arc<std::sync::atomic::AtomicUsize>>) {
        self.schema_waits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(waits);
    }

    /// Whether a record of this source waits for its writer schema to appear in the
    /// registry: the source is busy then, not idle.
    pub fn waiting_for_schemas(&self) -> bool {
        self.schema_waits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|w| w.load(Ordering::SeqCst) > 0)
    }

    /// Records the offsets the tables that read this source hold now.
    pub fn set_tables(&self, tables: Vec<OffsetMap>) {
        *self.tables.lock().unwrap_or_else(|p| p.into_inner()) = tables;
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

    fn tables(&self) -> Vec<OffsetMap> {
        self.tables
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
    /// The source's name in the job (a metrics label).
    pub name: String,
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
        let m = metrics();
        let mut lag = 0;
        for (topic, t) in &stats.topics {
            for p in t.partitions.values().filter(|p| p.partition >= 0) {
                let partition = p.partition.to_string();
                let labels = [self.name.as_str(), topic.as_str(), partition.as_str()];
                if p.consumer_lag >= 0 {
                    lag += p.consumer_lag;
                    m.consumer_lag.set(&labels, p.consumer_lag as f64);
                }
            }
        }
        self.shared.lag.store(lag, Ordering::Relaxed);
        // Bootstrap entries have no node id; a known broker that is up means reachable.
        let up = stats
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        health().set_broker_up(self.source, up);
    }
}

impl FloeContext {
    /// Sets where each assigned partition starts, and returns the startup mode's answers
    /// (resolved to numbers) that tables without a position must record with their next
    /// commit, even if no record follows.
    ///
    /// The consumer starts each partition at the lowest position any table needs (see
    /// [`super::start`]); tables skip what they already hold. The startup mode answers
    /// only for tables that know nothing of the topic, and its answer is committed, so a
    /// later start, or another replica taking a quiet partition over, begins at the same
    /// place instead of asking the startup mode again ('latest' would then skip what
    /// arrived in between).
    fn startup_offsets(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
    ) -> OffsetMap {
        let tables = self.shared.tables();
        let plans: Vec<(TopicPartition, Plan)> = tpl
            .elements()
            .iter()
            .map(|e| TopicPartition::new(e.topic(), e.partition()))
            .map(|tp| {
                let p = plan(&tables, &tp);
                (tp, p)
            })
            .collect();
        let asking: Vec<&TopicPartition> = plans
            .iter()
            .filter(|(_, p)| p.startup)
            .map(|(tp, _)| tp)
            .collect();
        let pins = self.resolve_startup(consumer, &asking);
        for (tp, p) in &plans {
            if p.beginning {
                info!(partition = %tp, "partition new since the job started: reading it from the beginning");
            }
            let offset = start_offset(p, pins.get(tp), self.shared.startup);
            info!(partition = %tp, ?offset, "partition assigned");
            let _ = tpl_set(tpl, tp, offset);
        }
        pins
    }

    /// The startup mode's positions of `partitions`, as numbers where the broker can give
    /// them: `latest-offset` and `timestamp` through ListOffsets, `group-offsets` through
    /// the group's committed offsets; `earliest-offset` needs no number.
    fn resolve_startup(
        &self,
        consumer: &BaseConsumer<Self>,
        partitions: &[&TopicPartition],
    ) -> OffsetMap {
        let mut pins = OffsetMap::new();
        if partitions.is_empty() {
            return pins;
        }
        let mut list = TopicPartitionList::new();
        let at = match self.shared.startup {
            StartupMode::Earliest => return pins,
            StartupMode::Latest => Offset::End,
            StartupMode::Timestamp(ms) => Offset::Offset(ms),
            StartupMode::GroupOffsets => Offset::Stored,
        };
        for tp in partitions {
            let _ = list.add_partition_offset(&tp.topic, tp.partition, at);
        }
        if matches!(self.shared.startup, StartupMode::GroupOffsets) {
            match consumer.committed_offsets(list, LOOKUP_TIMEOUT) {
                Ok(found) => {
                    pin_found(&found, &mut pins);
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the consumer group's offsets; librdkafka resolves them when it starts fetching")
                }
            }
            return pins;
        }
        // A timestamp after the newest record finds nothing: those start at the end,
        // which a second look-up turns into a number.
        let ends = self.look_up(consumer, &list, &mut pins);
        if ends.count() > 0 {
            self.look_up(consumer, &ends, &mut pins);
        }
        pins
    }

    /// Looks up the offsets of `lookup` (timestamps, or -1 for the end) into `pins`;
    /// returns those the broker found nothing for, set to the end.
    fn look_up(
        &self,
        consumer: &BaseConsumer<Self>,
        lookup: &TopicPartitionList,
        pins: &mut OffsetMap,
    ) -> TopicPartitionList {
        match consumer.offsets_for_times(lookup.clone(), LOOKUP_TIMEOUT) {
            Ok(found) => pin_found(&found, pins),
            Err(e) => {
                warn!(error = %e, "cannot look up the startup offsets; starting at the end, uncommitted until records arrive");
                TopicPartitionList::new()
            }
        }
    }
}

/// Where the consumer starts a partition whose tables need `plan`, given the startup
/// mode's answer `pin` (a number, when one was asked for and found).
fn start_offset(plan: &Plan, pin: Option<i64>, startup: StartupMode) -> Offset {
    if plan.beginning || (plan.startup && matches!(startup, StartupMode::Earliest)) {
        return Offset::Beginning;
    }
    let unresolved = match startup {
        StartupMode::GroupOffsets => Offset::Stored,
        _ => Offset::End,
    };
    match (plan.at, plan.startup.then_some(pin).flatten()) {
        (Some(a), Some(p)) => Offset::Offset(a.min(p)),
        (Some(a), None) => Offset::Offset(a),
        (None, Some(p)) => Offset::Offset(p),
        (None, None) => unresolved,
    }
}

/// How long a broker look-up of start offsets may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Notes the offsets of `found` that the broker resolved as pins. Returns the partitions
/// it found no offset for, set to the end (for a second look-up).
fn pin_found(found: &TopicPartitionList, pins: &mut OffsetMap) -> TopicPartitionList {
    let mut ends = TopicPartitionList::new();
    for e in found.elements() {
        let tp = TopicPartition::new(e.topic(), e.partition());
        match e.offset() {
            Offset::Offset(o) if o >= 0 => pins.set(tp, o),
            Offset::Stored | Offset::Invalid => {}
            _ => {
                let _ = ends.add_partition_offset(&tp.topic, tp.partition, Offset::End);
            }
        }
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
                let partitions = tpl.count();
                self.handshake(|done| SourceEvent::Assigned {
                    source,
                    partitions,
                    done,
                });
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
        let partitions = tpl.count();
        self.handshake(|done| SourceEvent::Revoked {
            source,
            partitions,
            lost,
            done,
        });
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
