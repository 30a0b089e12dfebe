//! Compacted topics read as lookup tables (`'connector' = 'upsert-kafka'`).
//!
//! How a topic becomes a table, on a thread of its own (polling and decoding are
//! blocking, CPU-bound work):
//! 1. The topic's partitions and their high watermarks are read, and every partition is
//!    assigned from its beginning. There is no consumer group: every replica of the job
//!    needs the whole table.
//! 2. Records are gathered per partition, decoded with the source's decode plan and
//!    applied to an [`Upserts`] store (the latest value per record key; a null value
//!    deletes the key). Once every partition is read to the watermark taken in step 1,
//!    the table is indexed and installed, and [`follow`] returns: the stream's first
//!    batch is joined with the topic as it was when the job started.
//! 3. The thread reads on; every `'lookup.refresh-interval'` of the source, if rows
//!    changed, a new version is indexed and swapped in between batches. A version's
//!    label, recorded in lineage, is the next offset of each partition.
//!
//! A record without a key, or whose value cannot be decoded, is logged, counted in
//! `floe_lookup_skipped_records_total` and left out (its key keeps the row it had):
//! stopping the job instead would stop it again on every restart, since each start
//! reads the topic from its beginning.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use floe_catalog::TopicPartition;
use floe_sql::job::SourceDef;
use floe_sql::plan::lookup::{LookupError, LookupSlot, LookupVersion};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{error, info, warn};

use super::load::install_version;
use super::upserts::{Skipped, Upserts};
use crate::error::{EngineError, Result};
use crate::observe::metrics;
use crate::source::client_log::{QuietContext, Throttle};
use crate::source::consumer_config;
use floe_formats::{DecodePlan, PendingRecords, decode};

/// How long reading a topic to its end may go without a record before the job gives up.
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// How long the topic's partitions and watermarks may take to read at start.
const METADATA_LIMIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
/// Records between reads of the clock while following a busy topic.
const CHECK_EVERY: u32 = 256;
/// Raw records gathered over all partitions before they are decoded and applied: reading
/// a long topic to its end polls without pause, and many partitions of gathered records
/// would otherwise outweigh the table itself.
const MAX_PENDING_BYTES: usize = 16 << 20;

/// A topic being followed; the thread stops when this is dropped.
#[derive(Debug)]
pub struct TopicLookup {
    stop: Arc<AtomicBool>,
}

impl Drop for TopicLookup {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads the topic of `def` to its end into `slot`, then keeps following it. Fails if
/// the topic cannot be read, or its table is too large.
pub async fn follow(
    def: &SourceDef,
    bootstrap: &str,
    slot: Arc<LookupSlot>,
) -> Result<TopicLookup> {
    let guard = TopicLookup {
        stop: Arc::new(AtomicBool::new(false)),
    };
    let reader = Reader::new(def, bootstrap, slot, guard.stop.clone())?;
    let (ready, started) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("lookup-{}", def.name))
        .spawn({
            let span = tracing::Span::current();
            move || span.in_scope(|| reader.run(ready))
        })
        .map_err(|e| EngineError::Runtime(format!("cannot start a lookup thread: {e}")))?;
    match started.await {
        Ok(result) => result.map(|()| guard),
        Err(_) => Err(EngineError::Internal(format!(
            "lookup table {}: its reading thread ended before the table was read",
            def.name
        ))),
    }
}

/// What one poll brought.
enum Polled {
    /// A record of `partition`; `next` is the offset after it.
    Record { partition: i32, next: i64 },
    /// An error, logged.
    Error,
    /// Nothing within the poll timeout.
    Idle,
}

struct Reader {
    name: String,
    topic: String,
    consumer: BaseConsumer<QuietContext>,
    plan: DecodePlan,
    slot: Arc<LookupSlot>,
    store: Upserts,
    pending: HashMap<i32, PendingRecords>,
    /// Bytes of values in `pending`.
    pending_bytes: usize,
    batch_records: usize,
    every: Duration,
    stop: Arc<AtomicBool>,
    throttle: Throttle,
    /// True until the topic has been read to its end once.
    catching_up: bool,
}

impl Reader {
    fn new(
        def: &SourceDef,
        bootstrap: &str,
        slot: Arc<LookupSlot>,
        stop: Arc<AtomicBool>,
    ) -> Result<Self> {
        let mut config = consumer_config(def, bootstrap);
        // Partitions are assigned, never subscribed to, and no offset is committed: the
        // group id only names the client (librdkafka assigns through a group handle).
        config.remove("statistics.interval.ms");
        // The rows are held once decoded: prefetching less keeps reading a large topic
        // from holding it twice (unless the job says otherwise).
        for (key, value) in [
            ("queued.min.messages", "20000"),
            ("queued.max.messages.kbytes", "16384"),
        ] {
            if !def.kafka.properties.contains_key(key) {
                config.set(key, value);
            }
        }
        if def.kafka.group_id.is_empty() {
            config.set("group.id", format!("floe-lookup-{}", def.name));
        }
        let consumer = config
            .create_with_context(QuietContext::default())
            .map_err(|e| kafka_error(def, format!("cannot create the consumer: {e}")))?;
        let plan = DecodePlan::new(def)?;
        plan.give_up_when(stop.clone());
        Ok(Self {
            name: def.name.clone(),
            topic: def.kafka.topic.clone(),
            consumer,
            plan,
            store: Upserts::new(slot.schema.clone()),
            slot,
            pending: HashMap::new(),
            pending_bytes: 0,
            batch_records: def.kafka.batch_records,
            every: def.upsert.unwrap_or_default().refresh_interval,
            stop,
            throttle: Throttle::default(),
            catching_up: true,
        })
    }

    fn run(mut self, ready: tokio::sync::oneshot::Sender<Result<()>>) {
        let started = Instant::now();
        let first = self.catch_up().and_then(|()| self.version());
        match first {
            Ok(version) => {
                info!(
                    table = %self.name,
                    topic = %self.topic,
                    rows = version.batch.num_rows(),
                    took_ms = started.elapsed().as_millis() as u64,
                    offsets = %version.label,
                    "lookup topic read to its end"
                );
                install_version(&self.slot, version);
                let _ = ready.send(Ok(()));
            }
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
        if let Err(e) = self.keep_up() {
            metrics().lookup_loads.add(&[&self.name, "failed"], 1.0);
            error!(table = %self.name, error = %e, "lookup table no longer follows its topic; joins go on with the version they have until the job restarts");
        }
    }

    /// Reads every partition to the high watermark it had when reading began.
    fn catch_up(&mut self) -> Result<()> {
        let (partitions, ends) = self.end_offsets()?;
        let mut assignment = TopicPartitionList::new();
        for p in &partitions {
            assignment
                .add_partition_offset(&self.topic, *p, Offset::Beginning)
                .map_err(|e| self.error(format!("cannot assign partition {p}: {e}")))?;
        }
        self.consumer
            .assign(&assignment)
            .map_err(|e| self.error(format!("cannot assign its partitions: {e}")))?;
        let mut behind = ends;
        let mut read: HashMap<i32, i64> = HashMap::new();
        // When polls last came back empty after bringing records (the clock is read
        // once per idle poll, not per record).
        let mut quiet_since = Instant::now();
        let mut brought = false;
        while !behind.is_empty() {
            if self.stop.load(Ordering::SeqCst) {
                return Err(self.error("stopped before the topic was read to its end".into()));
            }
            match self.poll_once()? {
                Polled::Record { partition, next } => {
                    read.insert(partition, next);
                    brought = true;
                    if behind.get(&partition).is_some_and(|end| next >= *end) {
                        behind.remove(&partition);
                    }
                }
                Polled::Error => {}
                Polled::Idle => {
                    self.flush_all()?;
                    // Control records (transaction markers) end a partition without a
                    // record to show it: the consumer's position does.
                    read.extend(self.positions());
                    behind.retain(|p, end| read.get(p).is_none_or(|r| r < end));
                    if brought {
                        quiet_since = Instant::now();
                        brought = false;
                    } else if quiet_since.elapsed() > STALL_LIMIT {
                        return Err(self.stalled(&behind, &read));
                    }
                }
            }
        }
        self.flush_all()?;
        self.catching_up = false;
        Ok(())
    }

    /// Reads on, installing a new version every refresh interval in which rows changed.
    fn keep_up(&mut self) -> Result<()> {
        let mut due = Instant::now() + self.every;
        let mut retry = false;
        let mut unchecked = 0u32;
        while !self.stop.load(Ordering::SeqCst) {
            let idle = matches!(self.poll_once()?, Polled::Idle);
            if idle {
                self.flush_all()?;
            }
            // The clock is read when a poll was idle or every CHECK_EVERY records.
            unchecked += 1;
            if !idle && unchecked < CHECK_EVERY {
                continue;
            }
            unchecked = 0;
            if Instant::now() < due {
                continue;
            }
            self.flush_all()?;
            if self.store.changed() || retry {
                retry = !self.refresh();
            }
            due = Instant::now() + self.every;
        }
        Ok(())
    }

    /// Indexes and installs the table as it is now; false if it could not be.
    fn refresh(&mut self) -> bool {
        let started = Instant::now();
        match self.version() {
            Ok(version) => {
                info!(
                    table = %self.name,
                    rows = version.batch.num_rows(),
                    took_ms = started.elapsed().as_millis() as u64,
                    offsets = %version.label,
                    "lookup table refreshed: batches from now on are joined with the topic's new rows"
                );
                install_version(&self.slot, version);
                true
            }
            Err(e) => {
                metrics().lookup_loads.add(&[&self.name, "failed"], 1.0);
                if let Some(held) = self.throttle.admit("refresh") {
                    error!(table = %self.name, error = %e, held_back = held, "lookup table could not be refreshed; joins go on with the version they have, and the next interval tries again");
                }
                false
            }
        }
    }

    /// The table as it is now, indexed for the joins.
    fn version(&mut self) -> Result<LookupVersion> {
        let label = self.store.label();
        let batch = self.store.snapshot().map_err(|source| LookupError::Arrow {
            table: self.name.clone(),
            version: label.clone(),
            source,
        })?;
        Ok(self.slot.prepare(label, batch)?)
    }

    /// Polls once; a record is gathered with its partition's others, which are decoded
    /// once there are `'scan.batch.records'` of them.
    fn poll_once(&mut self) -> Result<Polled> {
        let (partition, next, full) = match self.consumer.poll(POLL) {
            Some(Ok(msg)) => {
                let partition = msg.partition();
                let recs = self.pending.entry(partition).or_default();
                recs.push(
                    msg.offset(),
                    msg.timestamp().to_millis(),
                    msg.key(),
                    msg.payload(),
                );
                self.pending_bytes += msg.payload_len();
                (
                    partition,
                    msg.offset() + 1,
                    recs.len() >= self.batch_records,
                )
            }
            Some(Err(e)) => {
                self.on_error(&e);
                return Ok(Polled::Error);
            }
            None => return Ok(Polled::Idle),
        };
        if full {
            self.flush(partition)?;
        } else if self.pending_bytes > MAX_PENDING_BYTES {
            self.flush_all()?;
        }
        Ok(Polled::Record { partition, next })
    }

    fn flush_all(&mut self) -> Result<()> {
        let partitions: Vec<i32> = self.pending.keys().copied().collect();
        for p in partitions {
            self.flush(p)?;
        }
        Ok(())
    }

    /// Decodes the gathered records of `partition` and applies them to the table.
    fn flush(&mut self, partition: i32) -> Result<()> {
        let Some(recs) = self.pending.remove(&partition) else {
            return Ok(());
        };
        // Gathered bytes are the values, each followed by a newline.
        self.pending_bytes = self
            .pending_bytes
            .saturating_sub(recs.bytes().saturating_sub(recs.len()));
        if recs.is_empty() {
            return Ok(());
        }
        let tp = TopicPartition::new(self.topic.clone(), partition);
        let decoded = decode(&self.plan, &tp, &recs)?;
        let skipped = self
            .store
            .apply(partition, &recs, decoded)
            .map_err(|e| self.error(format!("partition {partition}: {e}")))?;
        for s in skipped {
            self.skipped(partition, &s);
        }
        if self.store.wants_compaction() {
            let table = self
                .store
                .compact()
                .map_err(|e| self.error(format!("compacting the rows read: {e}")))?;
            // Reading to the end stops as soon as the table outgrows its cap; later, a
            // refresh refuses a version that does.
            let bytes = table.get_array_memory_size() as u64;
            if self.catching_up && bytes > self.slot.max_memory() {
                return Err(LookupError::TooLarge {
                    table: self.name.clone(),
                    version: self.store.label(),
                    bytes,
                    cap: self.slot.max_memory(),
                }
                .into());
            }
        }
        Ok(())
    }

    fn skipped(&self, partition: i32, s: &Skipped) {
        metrics().lookup_skipped.add(&[&self.name, s.reason], 1.0);
        if let Some(held) = self.throttle.admit(s.reason) {
            warn!(
                table = %self.name,
                topic = %self.topic,
                partition,
                offset = s.offset,
                reason = s.reason,
                held_back = held,
                "a record of the lookup topic is left out: {}", s.message
            );
        }
    }

    /// The partitions of the topic, and the high watermark of each that holds records;
    /// retried while the broker does not answer.
    fn end_offsets(&self) -> Result<(Vec<i32>, BTreeMap<i32, i64>)> {
        let deadline = Instant::now() + METADATA_LIMIT;
        loop {
            match self.try_end_offsets() {
                Ok(ends) => return Ok(ends),
                Err(
                    e @ EngineError::Lookup {
                        retryable: true, ..
                    },
                ) if Instant::now() < deadline && !self.stop.load(Ordering::SeqCst) => {
                    if let Some(held) = self.throttle.admit("metadata") {
                        warn!(table = %self.name, error = %e, held_back = held, "cannot read the lookup topic's partitions yet; retrying");
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn try_end_offsets(&self) -> Result<(Vec<i32>, BTreeMap<i32, i64>)> {
        let timeout = Duration::from_secs(10);
        let md = self
            .consumer
            .fetch_metadata(Some(&self.topic), timeout)
            .map_err(|e| {
                self.error(format!(
                    "cannot read the metadata of topic {}: {e}",
                    self.topic
                ))
            })?;
        let topic = md.topics().iter().find(|t| t.name() == self.topic);
        let topic = match topic.map(|t| (t, t.error())) {
            Some((t, None)) if !t.partitions().is_empty() => t,
            Some((_, Some(e))) if e != RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART => {
                return Err(self.error(format!("topic {}: the broker answers {e:?}", self.topic)));
            }
            _ => {
                return Err(EngineError::Lookup {
                    table: self.name.clone(),
                    message: format!("topic {} does not exist", self.topic),
                    retryable: false,
                });
            }
        };
        let mut out = BTreeMap::new();
        let partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        for p in topic.partitions() {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, p.id(), timeout)
                .map_err(|e| {
                    self.error(format!("cannot read the end of partition {}: {e}", p.id()))
                })?;
            // An empty partition has nothing to wait for.
            if high > low {
                out.insert(p.id(), high);
            }
        }
        Ok((partitions, out))
    }

    /// The consumer's next offset per partition, where it has one.
    fn positions(&self) -> Vec<(i32, i64)> {
        let Ok(tpl) = self.consumer.position() else {
            return vec![];
        };
        tpl.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    }

    fn stalled(&self, behind: &BTreeMap<i32, i64>, read: &HashMap<i32, i64>) -> EngineError {
        let at: Vec<String> = behind
            .iter()
            .map(|(p, end)| {
                format!(
                    "partition {p} at {} of {end}",
                    read.get(p).copied().unwrap_or(0)
                )
            })
            .collect();
        EngineError::Lookup {
            table: self.name.clone(),
            message: format!(
                "no record of topic {} arrived for {}s before it was read to its end ({})",
                self.topic,
                STALL_LIMIT.as_secs(),
                at.join(", ")
            ),
            retryable: true,
        }
    }

    fn on_error(&self, e: &KafkaError) {
        if let Some(held) = self.throttle.admit(&e.to_string()) {
            warn!(table = %self.name, error = %e, held_back = held, "kafka reported an error while reading the lookup topic; retrying");
        }
    }

    fn error(&self, message: String) -> EngineError {
        EngineError::Lookup {
            table: self.name.clone(),
            message,
            retryable: true,
        }
    }
}

fn kafka_error(def: &SourceDef, message: String) -> EngineError {
    EngineError::Kafka {
        source_name: def.name.clone(),
        message,
    }
}
