//! The ceilings Floe is measured against, on the same topic in the same run: how fast
//! the topic can be drained, the payloads decoded, and the rows encoded as Parquet.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arrow_array::RecordBatch;
use floe_catalog::TopicPartition;
use floe_engine::source::consumer_config;
use floe_formats::{DecodePlan, PendingRecords, decode};
use floe_sql::job::SourceDef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Records per decoded batch, as Floe's default `scan.batch.records`.
const BATCH: usize = 8192;

/// The drained topic, kept for the decode and encode ceilings.
pub struct Drained {
    /// Per partition, chunks of at most [`BATCH`] records.
    pub chunks: Vec<(TopicPartition, PendingRecords)>,
    /// Payload bytes.
    pub bytes: u64,
    /// How long draining took.
    pub elapsed: Duration,
}

/// Drains `events` records of `topic` from the beginning of every partition, with the
/// consumer settings Floe uses, copying every payload (as Floe does into its buffers).
pub fn consume(
    source: &SourceDef,
    bootstrap: &str,
    partitions: u32,
    events: u64,
) -> Result<Drained> {
    let consumer: BaseConsumer = consumer_config(source, bootstrap)
        .set("group.id", "floe-bench-ceiling")
        .create()
        .context("creating the consumer")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(&source.kafka.topic, p as i32, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut open: Vec<PendingRecords> =
        (0..partitions).map(|_| PendingRecords::default()).collect();
    let mut chunks = vec![];
    let mut bytes = 0u64;
    let mut seen = 0u64;
    let t = Instant::now();
    let deadline = Duration::from_secs(600);
    while seen < events {
        if t.elapsed() > deadline {
            bail!("drained only {seen} of {events} records in {deadline:?}");
        }
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg?;
        let p = msg.partition() as usize;
        let value = msg.payload();
        bytes += value.map_or(0, |v| v.len() as u64);
        let Some(recs) = open.get_mut(p) else {
            continue;
        };
        recs.push(msg.offset(), msg.timestamp().to_millis(), msg.key(), value);
        seen += 1;
        if recs.len() >= BATCH {
            let full = std::mem::take(recs);
            chunks.push((
                TopicPartition::new(source.kafka.topic.clone(), p as i32),
                full,
            ));
        }
    }
    let elapsed = t.elapsed();
    for (p, recs) in open.into_iter().enumerate() {
        if !recs.is_empty() {
            chunks.push((
                TopicPartition::new(source.kafka.topic.clone(), p as i32),
                recs,
            ));
        }
    }
    Ok(Drained {
        chunks,
        bytes,
        elapsed,
    })
}

/// Decodes every chunk with Floe's decoder; returns the batches and the time it took.
pub fn decode_all(source: &SourceDef, drained: &Drained) -> Result<(Vec<RecordBatch>, Duration)> {
    let plan = DecodePlan::new(source)?;
    let t = Instant::now();
    let mut out = Vec::with_capacity(drained.chunks.len());
    for (tp, recs) in &drained.chunks {
        let d = decode(&plan, tp, recs)?;
        if !d.bad.is_empty() {
            bail!("{} records of {tp} do not decode", d.bad.len());
        }
        out.push(d.batch);
    }
    Ok((out, t.elapsed()))
}

/// Encodes the payload columns of `batches` as one zstd Parquet file in memory, as the
/// sink does; returns the time and the file size.
pub fn encode_all(batches: &[RecordBatch], payload_columns: usize) -> Result<(Duration, usize)> {
    let Some(first) = batches.first() else {
        return Ok((Duration::ZERO, 0));
    };
    let keep: Vec<usize> = (0..payload_columns.min(first.num_columns())).collect();
    let projected: Vec<RecordBatch> = batches
        .iter()
        .map(|b| b.project(&keep))
        .collect::<Result<_, _>>()?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let t = Instant::now();
    let mut buf = Vec::with_capacity(64 << 20);
    let mut w = ArrowWriter::try_new(&mut buf, projected[0].schema(), Some(props))?;
    for b in &projected {
        w.write(b)?;
    }
    w.close()?;
    Ok((t.elapsed(), buf.len()))
}
