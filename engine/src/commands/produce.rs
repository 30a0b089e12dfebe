//! `floe produce`: fill a topic with generated order events.

use std::time::Instant;

use crate::embedded::generator::{GenerateSpec, produce as produce_records};
use crate::error::Result;

/// Produces `records` orders spread over `partitions`, starting at index `start` in each.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    records: u64,
    partitions: u32,
    start: u64,
    rate: Option<u64>,
    seed: u64,
    properties: Vec<(String, String)>,
) -> Result<()> {
    let partitions = partitions.max(1);
    let spec = GenerateSpec {
        topic: topic.to_string(),
        partitions,
        ranges: vec![(start, start + records.div_ceil(u64::from(partitions))); partitions as usize],
        rate,
        paced_from: vec![0; partitions as usize],
        seed,
        properties,
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
