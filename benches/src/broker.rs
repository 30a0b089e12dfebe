//! The broker and the producer, as `floe` processes of their own on loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The `floe` binary next to this one (built in the same profile).
pub fn floe_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating floe-bench")?;
    let floe = me.with_file_name("floe");
    if !floe.exists() {
        bail!(
            "{} is missing: build it first (`cargo build --release -p floe-cli -p floe-bench`, as benches/run.sh does)",
            floe.display()
        );
    }
    Ok(floe)
}

/// A `floe broker` process, stopped on drop.
pub struct Broker {
    child: Child,
    /// `host:port`.
    pub bootstrap: String,
}

impl Broker {
    /// Starts a broker with one topic of `partitions` partitions.
    pub fn start(floe: &Path, topic: &str, partitions: u32) -> Result<Broker> {
        Self::start_with(floe, &[topic], partitions)
    }

    /// Starts a broker with `topics` of `partitions` partitions each.
    pub fn start_with(floe: &Path, topics: &[&str], partitions: u32) -> Result<Broker> {
        let mut cmd = Command::new(floe);
        cmd.arg("broker");
        for t in topics {
            cmd.args(["--topic", &format!("{t}:{partitions}")]);
        }
        // The ceilings and the Python baseline read without a consumer group; Floe joins
        // one, and Kafka's default wait of 3 s for more members would be counted against
        // it alone.
        cmd.args(["--group-join-delay", "0s"]);
        let (child, bootstrap) = announced(&mut cmd, "bootstrap.servers=")?;
        Ok(Broker { child, bootstrap })
    }

    /// Produces bids to this broker (see [`produce`]).
    pub fn produce(&self, floe: &Path, what: &Produce<'_>) -> Result<std::time::Duration> {
        produce(floe, &self.bootstrap, what)
    }
}

/// What `floe produce` writes.
#[derive(Debug, Clone, Copy)]
pub struct Produce<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The generator (`bids`, `auctions`, …).
    pub generator: &'a str,
    /// Bids in all.
    pub events: u64,
    /// Partitions to spread them over.
    pub partitions: u32,
    /// Bids per second (None: as fast as possible).
    pub rate: Option<u64>,
    /// Producer settings, `key=value`.
    pub properties: &'a [String],
    /// Write Avro through the Schema Registry at this URL.
    pub avro_registry: Option<&'a str>,
}

/// Produces events as `what` says, through `floe produce`; returns how long it took.
pub fn produce(floe: &Path, bootstrap: &str, what: &Produce<'_>) -> Result<std::time::Duration> {
    let mut cmd = Command::new(floe);
    cmd.args(["produce", "--generator", what.generator])
        .args(["--bootstrap", bootstrap])
        .args(["--topic", what.topic, "--records", &what.events.to_string()])
        .args(["--partitions", &what.partitions.to_string()]);
    if let Some(r) = what.rate {
        cmd.args(["--rate", &r.to_string()]);
    }
    for p in what.properties {
        cmd.args(["--property", p]);
    }
    if let Some(url) = what.avro_registry {
        cmd.args(["--avro-registry", url]);
    }
    let t = Instant::now();
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .context("running floe produce")?;
    if !out.status.success() {
        bail!(
            "floe produce failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(t.elapsed())
}

/// Starts `cmd` (a `floe` server that runs until its standard input closes) and reads
/// the first line it prints, `PREFIX…`; returns the child and what follows the prefix.
pub fn announced(cmd: &mut Command, prefix: &str) -> Result<(Child, String)> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let value = line
        .trim()
        .strip_prefix(prefix)
        .with_context(|| format!("unexpected first line of {cmd:?}: {line}"))?
        .to_string();
    Ok((child, value))
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
