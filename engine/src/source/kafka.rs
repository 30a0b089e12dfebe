//! The Kafka source: a dedicated thread that polls rdkafka, gathers records per partition
//! and decodes them into Arrow batches, so that decoding runs beside SQL and Parquet
//! encoding instead of on the async runtime.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use floe_catalog::{OffsetMap, TopicPartition};
use floe_sql::job::SourceDef;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::client_log::Throttle;
use super::context::{FloeContext, Handshake, SourceShared};
use crate::error::{EngineError, Result};
use floe_formats::evolution::{SchemaChange, SchemaWatch};
use floe_formats::{BadRecord, DecodePlan, PendingRecords, decode};

/// Records of one partition, in offset order: decoded where they could be, raw always.
#[derive(Debug)]
pub struct SourceBatch {
    /// Index of the source in the job.
    pub source: usize,
    /// Where the records come from.
    pub tp: TopicPartition,
    /// The good records' rows with the slot schema (the source's columns, then the
    /// record index of each row).
    pub batch: RecordBatch,
    /// Records that could not be decoded.
    pub bad: Vec<BadRecord>,
    /// The raw records: offsets, timestamps, keys and values.
    pub records: PendingRecords,
}

/// What a source tells the pipeline.
#[derive(Debug)]
pub enum SourceEvent {
    /// Records.
    Batch(SourceBatch),
    /// Partitions were assigned: the tables' committed offsets must be reloaded (another
    /// replica may have moved them) before reading starts from them.
    Assigned {
        /// Index of the source.
        source: usize,
        /// How many partitions this member was given (a group may assign none, while
        /// it waits for a member that died to time out).
        partitions: usize,
        /// Answered once the offsets are fresh.
        done: Handshake,
    },
    /// Partitions of a topic the tables know nothing of yet start at these offsets (the
    /// startup mode's answer, resolved to numbers); the tables record them with their next
    /// commit, even if no record follows.
    Started {
        /// Index of the source.
        source: usize,
        /// Start offset per partition.
        offsets: OffsetMap,
        /// Answered once the tables hold them as pending.
        done: Handshake,
    },
    /// Partitions are about to be given up: what was read of them must be committed now,
    /// before the next owner starts from the tables' offsets.
    Revoked {
        /// Index of the source.
        source: usize,
        /// How many partitions go.
        partitions: usize,
        /// The group already gave them away (this member was too slow or cut off); a
        /// commit can only land if the next owner has committed nothing yet.
        lost: bool,
        /// Answered once committed.
        done: Handshake,
    },
    /// A record's writer schema adds columns: the source stopped before it, and the
    /// job plans again (`floe_formats::evolution`).
    SchemaChanged(SchemaChange),
    /// The source cannot go on.
    Failed(EngineError),
}

/// How long records of a partition may wait before they are decoded and sent on.
const LINGER: Duration = Duration::from_millis(100);
/// Messages between checks of the linger deadlines.
const CHECK_EVERY: u32 = 256;
/// Largest payload gathered per partition before decoding.
const MAX_BATCH_BYTES: usize = 16 << 20;

/// A running source thread.
pub struct KafkaSource {
    stop: Arc<AtomicBool>,
    commits: std_mpsc::Sender<OffsetMap>,
    handle: Option<JoinHandle<()>>,
    /// Shared with the consumer callbacks.
    pub shared: Arc<SourceShared>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource").finish_non_exhaustive()
    }
}

/// The librdkafka settings of a source; `properties.*` options override Floe's defaults.
pub fn consumer_config(def: &SourceDef, bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", &def.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "error")
        .set("statistics.interval.ms", "5000")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "200000")
        // With all partitions feeding one consumer queue, the queue is over the
        // threshold above as a whole, and librdkafka then postpones every partition's
        // next fetch by this much (default 1 s): the reader drained the queue in a
        // fraction of that and sat idle. Checking again soon keeps fetches flowing.
        .set("fetch.queue.backoff.ms", "10")
        // A broker may hold a fetch this long waiting for more data; freshness pays it.
        .set("fetch.wait.max.ms", "100");
    for (k, v) in &def.kafka.properties {
        c.set(k, v);
    }
    c
}

impl KafkaSource {
    /// Subscribes to the source's topic and starts polling on a thread of its own.
    pub fn start(
        index: usize,
        def: &SourceDef,
        bootstrap: &str,
        tables: Vec<OffsetMap>,
        watch: Option<SchemaWatch>,
        tx: mpsc::Sender<SourceEvent>,
    ) -> Result<Self> {
        let shared = SourceShared::new(tables, def.kafka.startup);
        let kafka_err = |message: String| EngineError::Kafka {
            source_name: def.name.clone(),
            message,
        };
        let consumer: BaseConsumer<FloeContext> = consumer_config(def, bootstrap)
            .create_with_context(FloeContext {
                shared: shared.clone(),
                throttle: Throttle::default(),
                source: index,
                name: def.name.clone(),
                events: tx.clone(),
            })
            .map_err(|e| kafka_err(format!("cannot create the consumer: {e}")))?;
        consumer
            .subscribe(&[def.kafka.topic.as_str()])
            .map_err(|e| kafka_err(format!("cannot subscribe to {}: {e}", def.kafka.topic)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut plan = DecodePlan::new(def)?;
        plan.give_up_when(stop.clone());
        shared.note_schema_waits(plan.unknown_id_waits());
        if let Some(watch) = watch {
            plan.watch_schemas(watch);
        }
        let (commits, commit_rx) = std_mpsc::channel();
        let mut worker = Worker {
            index,
            name: def.name.clone(),
            topic: def.kafka.topic.clone(),
            plan,
            batch_records: def.kafka.batch_records,
            consumer,
            shared: shared.clone(),
            stop: stop.clone(),
            commit_rx,
            tx,
            pending: HashMap::new(),
            throttle: Throttle::default(),
            unchecked: 0,
        };
        let handle = std::thread::Builder::new()
            .name(format!("source-{}", def.name))
            .spawn({
                // The thread's events belong to the job's span, as the pipeline's do.
                let span = tracing::Span::current();
                move || span.in_scope(|| worker.run())
            })
            .map_err(|e| kafka_err(format!("cannot start the source thread: {e}")))?;
        Ok(Self {
            stop,
            commits,
            handle: Some(handle),
            shared,
        })
    }

    /// Commits `offsets` to the consumer group (for lag monitoring; never read back as truth).
    pub fn commit_group_offsets(&self, offsets: OffsetMap) {
        let _ = self.commits.send(offsets);
    }

    /// Asks the thread to stop polling; it finishes what it gathered first.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops polling and waits for the thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for KafkaSource {
    /// Only asks the thread to stop: a pipeline that fails drops its sources while the
    /// thread may be waiting in a rebalance handshake that nobody will answer until the
    /// event channel is dropped too.
    fn drop(&mut self) {
        self.request_stop();
    }
}

struct Worker {
    index: usize,
    name: String,
    topic: String,
    plan: DecodePlan,
    batch_records: usize,
    consumer: BaseConsumer<FloeContext>,
    shared: Arc<SourceShared>,
    stop: Arc<AtomicBool>,
    commit_rx: std_mpsc::Receiver<OffsetMap>,
    tx: mpsc::Sender<SourceEvent>,
    pending: HashMap<i32, (PendingRecords, Instant)>,
    throttle: Throttle,
    /// Messages since the linger deadlines were last checked.
    unchecked: u32,
}

impl Worker {
    fn run(&mut self) {
        if let Err(e) = self.poll_loop() {
            let _ = self.tx.blocking_send(SourceEvent::Failed(e));
        }
        // Last group-offset commits, synchronously, so that lag monitors see them.
        while let Ok(offsets) = self.commit_rx.try_recv() {
            self.commit(&offsets, CommitMode::Sync);
        }
        self.consumer.unsubscribe();
    }

    fn poll_loop(&mut self) -> Result<()> {
        while !self.stop.load(Ordering::SeqCst) {
            while let Ok(offsets) = self.commit_rx.try_recv() {
                self.commit(&offsets, CommitMode::Async);
            }
            let polled = self.consumer.poll(Duration::from_millis(50));
            for p in self.shared.take_revoked() {
                self.pending.remove(&p);
            }
            let idle = polled.is_none();
            match polled {
                Some(Ok(msg)) => {
                    let partition = msg.partition();
                    let (recs, _) = self
                        .pending
                        .entry(partition)
                        .or_insert_with(|| (PendingRecords::default(), Instant::now()));
                    recs.push(
                        msg.offset(),
                        msg.timestamp().to_millis(),
                        msg.key(),
                        msg.payload(),
                    );
                    if (recs.len() >= self.batch_records || recs.bytes() >= MAX_BATCH_BYTES)
                        && !self.flush(partition)?
                    {
                        return Ok(());
                    }
                }
                Some(Err(e)) => self.on_error(e)?,
                None => {}
            }
            // Reading the clock for every partition on every message costs more than the
            // rest of the loop: deadlines are checked when the poll was idle, or every
            // CHECK_EVERY messages (well under a millisecond of records at full speed).
            self.unchecked += 1;
            if !idle && self.unchecked < CHECK_EVERY {
                continue;
            }
            self.unchecked = 0;
            let now = Instant::now();
            let due: Vec<i32> = self
                .pending
                .iter()
                .filter(|(_, (r, since))| {
                    !r.is_empty() && (idle || now.duration_since(*since) >= LINGER)
                })
                .map(|(p, _)| *p)
                .collect();
            for p in due {
                if !self.flush(p)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Decodes and sends the records of `partition`; false when the pipeline is gone.
    fn flush(&mut self, partition: i32) -> Result<bool> {
        let Some((recs, _)) = self.pending.remove(&partition) else {
            return Ok(true);
        };
        if recs.is_empty() {
            return Ok(true);
        }
        let tp = TopicPartition::new(self.topic.clone(), partition);
        let decoded = match decode(&self.plan, &tp, &recs) {
            Ok(d) => d,
            // Decoding waited for the schema registry until the job stopped: these
            // records are not committed, so the next run reads them again.
            Err(e) if self.stop.load(Ordering::SeqCst) => {
                warn!(source = %self.name, %tp, records = recs.len(), error = %e, "stopping before these records could be decoded; they will be read again");
                return Ok(false);
            }
            // Nothing of this partition from these records on is sent: the job plans
            // again and reads them from the tables' offsets.
            Err(floe_formats::FormatError::SchemaChanged(change)) => {
                let _ = self.tx.blocking_send(SourceEvent::SchemaChanged(*change));
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        let ev = SourceEvent::Batch(SourceBatch {
            source: self.index,
            tp,
            batch: decoded.batch,
            bad: decoded.bad,
            records: recs,
        });
        Ok(self.tx.blocking_send(ev).is_ok())
    }

    fn on_error(&mut self, e: KafkaError) -> Result<()> {
        let code = e.rdkafka_error_code();
        match code {
            Some(RDKafkaErrorCode::AutoOffsetReset) | Some(RDKafkaErrorCode::OffsetOutOfRange) => {
                Err(EngineError::Kafka {
                    source_name: self.name.clone(),
                    message: format!(
                        "{e}: the offset to resume from is no longer in the topic {} (the topic may have been deleted and re-created, or retention removed records before they were committed). \
                         Floe does not skip or re-read records silently; set 'properties.auto.offset.reset' = 'earliest' or 'latest' to accept the jump",
                        self.topic
                    ),
                })
            }
            _ => {
                if let Some(held) = self.throttle.admit(&e.to_string()) {
                    warn!(source = %self.name, error = %e, held_back = held, "kafka reported an error; retrying");
                }
                Ok(())
            }
        }
    }

    fn commit(&self, offsets: &OffsetMap, mode: CommitMode) {
        let mut tpl = TopicPartitionList::new();
        for (tp, o) in offsets.iter() {
            if tp.topic == self.topic {
                let _ = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(o));
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer.commit(&tpl, mode) {
            debug!(source = %self.name, error = %e, "consumer-group offset commit failed (lag monitoring only)");
        }
    }
}
