//! `floe produce`: fill a topic with generated order events.

use std::time::Instant;

use floe_sql::job::{RegistryOptions, SubjectName};

use anyhow::Result;
use floe_devtools::generator::{Feed, GenerateSpec, produce as produce_records};

/// What `floe produce` was asked for.
#[derive(Debug, Clone)]
pub struct ProduceArgs {
    /// Target topic.
    pub topic: String,
    /// Records in all.
    pub records: u64,
    /// Partitions to spread them over.
    pub partitions: u32,
    /// First record index in every partition.
    pub start: u64,
    /// Records per second.
    pub rate: Option<u64>,
    /// Generator seed.
    pub seed: u64,
    /// librdkafka producer settings.
    pub properties: Vec<(String, String)>,
    /// One record in this many is bad.
    pub dirty_every: Option<u64>,
    /// Which events.
    pub feed: Feed,
    /// Write Avro, the feed's schema registered in the registry at this URL.
    pub avro_registry: Option<String>,
}

/// Registers the Avro schema of `feed` under `<topic>-value` at `url`.
fn register(url: &str, topic: &str, feed: Feed, dirty_every: Option<u64>) -> Result<u32> {
    let Some(schema) = floe_devtools::generator::schema_of(feed) else {
        return Err(anyhow::Error::msg(format!(
            "--avro-registry: the {feed:?} feed has no Avro form (orders and bids have)"
        )));
    };
    if dirty_every.is_some() {
        return Err(anyhow::Error::msg(
            "--avro-registry: --dirty-every makes bad JSON records, not bad Avro ones",
        ));
    }
    let options = RegistryOptions {
        url: url.to_string(),
        basic_auth: None,
        bearer_token: None,
        ca_location: None,
        subject: SubjectName::Topic,
    };
    let registry = floe_formats::registry::client_for(&options)?;
    registry
        .register(&SubjectName::Topic.subject(topic), schema)
        .map_err(|e| anyhow::Error::msg(e.to_string()))
}

/// Produces the requested events, spread evenly over the partitions.
pub fn produce(bootstrap: &str, args: ProduceArgs) -> Result<()> {
    let partitions = args.partitions.max(1);
    let (start, topic) = (args.start, args.topic.clone());
    let spec = GenerateSpec {
        topic: args.topic,
        partitions,
        ranges: vec![
            (start, start + args.records.div_ceil(u64::from(partitions)));
            partitions as usize
        ],
        rate: args.rate,
        paced_from: vec![0; partitions as usize],
        seed: args.seed,
        properties: args.properties,
        dirty_every: args.dirty_every,
        feed: args.feed,
        avro_schema_id: match &args.avro_registry {
            Some(url) => Some(register(url, &topic, args.feed, args.dirty_every)?),
            None => None,
        },
    };
    let t = Instant::now();
    let n = produce_records(bootstrap, &spec)?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "produced {n} records to {topic} in {secs:.2}s ({:.0} rec/s)",
        n as f64 / secs.max(1e-6)
    );
    Ok(())
}
