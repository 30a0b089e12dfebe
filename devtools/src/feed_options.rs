//! The `'embedded.*'` options of a source on the embedded broker: which generator fills
//! its topic, with how many records, how fast, over how many partitions. The job file
//! carries them as written; they are read here, where the generator is, so that the
//! job-file language knows nothing of the tooling.

use std::collections::BTreeMap;

use crate::error::{Result, ToolError};

/// The options the generator reads, without their `embedded.` prefix.
const NAMES: [&str; 6] = [
    "generator",
    "records",
    "rate",
    "partitions",
    "seed",
    "dirty-every",
];

/// The event streams the generator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Feed {
    /// Order events (`order_id`, `customer_id`, `amount`, `currency`, `order_ts`).
    #[default]
    Orders,
    /// Nexmark bids (~150 bytes each).
    Bids,
    /// Nexmark auctions.
    Auctions,
    /// Nexmark persons.
    Persons,
}

impl Feed {
    /// Parses a feed name as job files write it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "orders" => Some(Self::Orders),
            "bids" | "nexmark-bids" => Some(Self::Bids),
            "auctions" | "nexmark-auctions" => Some(Self::Auctions),
            "persons" | "nexmark-persons" => Some(Self::Persons),
            _ => None,
        }
    }
}

/// What the generator of an embedded source produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedOptions {
    /// Which events (`'embedded.generator'`, default orders).
    pub generator: Feed,
    /// How many records in all (None: unbounded).
    pub records: Option<u64>,
    /// Records per second (None: as fast as possible).
    pub rate: Option<u64>,
    /// Partitions of the topic (default 4, at most 1024).
    pub partitions: u32,
    /// Seed, so that runs are reproducible (default 42).
    pub seed: u64,
    /// One record in this many is bad (every kind in turn), to see the dead-letter path.
    pub dirty_every: Option<u64>,
}

impl FeedOptions {
    /// Reads source `source`'s `'embedded.*'` options; an unknown one, or a value that
    /// does not fit, is an error that names the option.
    pub fn parse(source: &str, options: &BTreeMap<String, String>) -> Result<Self> {
        let fail = |message: String| ToolError::Feed {
            source_name: source.to_string(),
            message,
        };
        if let Some(key) = options.keys().find(|k| !NAMES.contains(&k.as_str())) {
            let known: Vec<String> = NAMES.iter().map(|n| format!("'embedded.{n}'")).collect();
            return Err(fail(format!(
                "unknown option 'embedded.{key}'; the embedded generator reads {}",
                known.join(", ")
            )));
        }
        let count = |key: &str| -> Result<Option<u64>> {
            let Some(v) = options.get(key) else {
                return Ok(None);
            };
            let n = v.trim().replace('_', "").parse::<u64>();
            n.map(Some)
                .map_err(|_| fail(format!("'embedded.{key}' = '{v}' is not a whole number")))
        };
        let generator = match options.get("generator") {
            None => Feed::Orders,
            Some(name) => Feed::parse(name.trim()).ok_or_else(|| {
                fail(format!(
                    "'embedded.generator' = '{name}' is not one of orders, bids, auctions, persons"
                ))
            })?,
        };
        Ok(Self {
            generator,
            records: count("records")?,
            rate: count("rate")?,
            partitions: count("partitions")?.unwrap_or(4).clamp(1, 1024) as u32,
            seed: count("seed")?.unwrap_or(42),
            dirty_every: count("dirty-every")?.filter(|n| *n > 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_values_and_bad_options_are_read_as_the_job_file_writes_them() {
        let plain = FeedOptions::parse("orders", &options(&[])).expect("defaults");
        assert_eq!(plain.generator, Feed::Orders);
        assert_eq!((plain.partitions, plain.seed, plain.records), (4, 42, None));
        let set = options(&[
            ("generator", "bids"),
            ("records", "200_000"),
            ("rate", "5000"),
        ]);
        let bids = FeedOptions::parse("bids", &set).expect("set");
        assert_eq!(bids.generator, Feed::Bids);
        assert_eq!((bids.records, bids.rate), (Some(200_000), Some(5000)));
        let typo = FeedOptions::parse("orders", &options(&[("rat", "5")])).expect_err("typo");
        assert!(
            typo.to_string().contains("unknown option 'embedded.rat'"),
            "{typo}"
        );
        let word = FeedOptions::parse("orders", &options(&[("rate", "fast")])).expect_err("word");
        assert!(
            word.to_string().contains("'embedded.rate' = 'fast'"),
            "{word}"
        );
    }
}
