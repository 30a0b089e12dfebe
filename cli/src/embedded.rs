//! The quickstart's embedded mode, wired in by the command line: where a job file says
//! `'properties.bootstrap.servers' = 'embedded'` or a registry URL of `embedded`, this
//! process serves the broker (librdkafka's mock cluster) or the Schema Registry itself,
//! and a generator fills each embedded topic. The runtime never starts either: it is
//! handed their addresses like any other.

use std::time::Duration;

use anyhow::Result;
use floe_catalog::{OffsetMap, TopicPartition};
use floe_devtools::ToolError;
use floe_devtools::avro_feed::register_for;
use floe_devtools::broker::{EmbeddedBroker, RETENTION_BYTES_PER_PARTITION, retained_records};
use floe_devtools::feed_options::FeedOptions;
use floe_devtools::generator::{GenerateSpec, produce, typical_record_bytes};
use floe_engine::EngineError;
use floe_engine::job::SourceBrokers;
use floe_sql::job::{JobFile, RegistryOptions, SourceDef};
use tracing::{error, info, warn};

/// What embedded mode serves for one job; the broker stops when it is dropped.
#[derive(Default)]
pub struct Embedded {
    /// Per source: its generator's options, if it is on the embedded broker, and the id
    /// its Avro feed's schema has in the embedded registry.
    feeds: Vec<Option<(FeedOptions, Option<u32>)>>,
    broker: Option<EmbeddedBroker>,
}

impl Embedded {
    /// Reads the `'embedded.*'` options of the sources on the embedded broker, and
    /// serves the embedded registry if the job names it: registers the schema of every
    /// Avro feed, then gives every `embedded` registry option the registry's address.
    pub fn wire(job: &mut JobFile) -> Result<Self> {
        let mut feeds = vec![];
        for s in &job.sources {
            feeds.push(match &s.kafka.embedded {
                Some(options) => {
                    let config = |e| as_config(&job.path, e);
                    let feed = FeedOptions::parse(&s.name, options).map_err(config)?;
                    let avro_id = register_for(s, &feed).map_err(config)?;
                    Some((feed, avro_id))
                }
                None => None,
            });
        }
        let mut embedded = registry_options(job).filter(|r| r.is_embedded()).peekable();
        if embedded.peek().is_some() {
            let url = floe_devtools::registry::embedded()?.url().to_string();
            embedded.for_each(|r| r.url = url.clone());
        }
        Ok(Self {
            feeds,
            broker: None,
        })
    }
}

/// An embedded source's options that do not fit its generator are the job file's to
/// fix (exit status 2); the tooling's other failures stay as they are.
fn as_config(path: &str, e: ToolError) -> anyhow::Error {
    match e {
        ToolError::Feed { .. } => EngineError::Config(format!("{path}: {e}")).into(),
        other => other.into(),
    }
}

/// Every registry option of a job: its sources' and lookup topics' values and keys.
fn registry_options(job: &mut JobFile) -> impl Iterator<Item = &mut RegistryOptions> {
    job.sources
        .iter_mut()
        .chain(job.lookup_topics.iter_mut())
        .flat_map(|s| {
            let key = s.kafka.key.as_mut().and_then(|k| k.registry.as_mut());
            s.kafka.registry.as_mut().into_iter().chain(key)
        })
}

impl SourceBrokers for Embedded {
    /// Starts the embedded broker and the generators of the sources that use it; every
    /// other source keeps the servers its options name.
    fn bootstraps(
        &mut self,
        job: &JobFile,
        committed: &[OffsetMap],
    ) -> floe_engine::Result<Vec<String>> {
        self.start(job, committed)
            .map_err(|e| EngineError::Runtime(e.to_string()))
    }
}

impl Embedded {
    fn start(&mut self, job: &JobFile, committed: &[OffsetMap]) -> Result<Vec<String>> {
        let mut bootstraps = vec![];
        for (i, s) in job.sources.iter().enumerate() {
            let Some(Some((feed, avro_schema_id))) = self.feeds.get(i) else {
                bootstraps.push(s.kafka.bootstrap_servers.clone());
                continue;
            };
            // This job is the broker's only consumer: no other member is worth waiting
            // for before the first assignment.
            let broker = match &mut self.broker {
                Some(b) => b,
                None => self.broker.insert(EmbeddedBroker::start(Duration::ZERO)?),
            };
            broker.create_topic(&s.kafka.topic, feed.partitions)?;
            let bootstrap = broker.bootstrap_servers();
            info!(source = %s.name, %bootstrap, topic = %s.kafka.topic, "embedded broker started");
            let empty = OffsetMap::new();
            let done = committed.get(i).unwrap_or(&empty);
            start_generator(
                s,
                feed,
                feed_spec(s, feed, done, *avro_schema_id),
                &bootstrap,
            );
            bootstraps.push(bootstrap);
        }
        Ok(bootstraps)
    }
}

/// Starts the generator of embedded source `s` on a thread of its own.
fn start_generator(s: &SourceDef, feed: &FeedOptions, spec: GenerateSpec, bootstrap: &str) {
    let per_partition = feed
        .records
        .map_or(u64::MAX, |n| n.div_ceil(u64::from(feed.partitions)));
    let retained = retained_records(typical_record_bytes(spec.feed));
    if feed.rate.is_none() && per_partition > retained {
        warn!(
            source = %s.name,
            "the embedded broker keeps only the newest {} MB (about {retained} records of this feed) per partition; \
             unpaced, the generator can outrun the job and records will expire unread (the job then stops with an \
             out-of-range error). Set 'embedded.rate' or more 'embedded.partitions'",
            RETENTION_BYTES_PER_PARTITION >> 20
        );
    }
    let addr = bootstrap.to_string();
    std::thread::spawn(move || match produce(&addr, &spec) {
        Ok(n) => info!(records = n, topic = %spec.topic, "generator finished"),
        Err(e) => error!(error = %e, "generator failed"),
    });
}

/// What the generator of an embedded source produces: first the log up to what the
/// tables have committed (`committed`, rebuilt deterministically, so offsets line up
/// with the committed ones), then the configured number of new records.
fn feed_spec(
    s: &SourceDef,
    feed: &FeedOptions,
    committed: &OffsetMap,
    avro_schema_id: Option<u32>,
) -> GenerateSpec {
    let parts = feed.partitions;
    let new_per_partition = feed
        .records
        .map_or(u64::MAX / 4, |n| n.div_ceil(u64::from(parts)));
    let mut ranges = vec![];
    let mut paced_from = vec![];
    for p in 0..parts {
        let tp = TopicPartition::new(s.kafka.topic.clone(), p as i32);
        let done = committed.get(&tp).unwrap_or(0).max(0) as u64;
        ranges.push((0, done.saturating_add(new_per_partition)));
        paced_from.push(done);
    }
    GenerateSpec {
        topic: s.kafka.topic.clone(),
        partitions: parts,
        ranges,
        rate: feed.rate,
        paced_from,
        seed: feed.seed,
        properties: vec![],
        dirty_every: feed.dirty_every,
        feed: feed.generator,
        avro_schema_id,
    }
}
