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
            "{} is missing: build it first (`cargo build --release -p floe-engine -p floe-bench`, as benches/run.sh does)",
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
        let mut child = Command::new(floe)
            .args(["broker", "--topic", &format!("{topic}:{partitions}")])
            // The ceilings and the Python baseline read without a consumer group; Floe
            // joins one, and Kafka's default wait of 3 s for more members would be counted
            // against it alone.
            .args(["--group-join-delay", "0s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting floe broker")?;
        let stdout = child.stdout.take().context("broker stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let bootstrap = line
            .trim()
            .strip_prefix("bootstrap.servers=")
            .with_context(|| format!("unexpected broker output: {line}"))?
            .to_string();
        Ok(Broker { child, bootstrap })
    }

    /// Produces bids to this broker (see [`produce`]).
    pub fn produce(
        &self,
        floe: &Path,
        topic: &str,
        events: u64,
        partitions: u32,
        rate: Option<u64>,
        properties: &[String],
    ) -> Result<std::time::Duration> {
        produce(
            floe,
            &self.bootstrap,
            topic,
            events,
            partitions,
            rate,
            properties,
        )
    }
}

/// Produces `events` bids over `partitions` (optionally at `rate` per second) with the
/// given producer settings, through `floe produce`; returns how long it took.
pub fn produce(
    floe: &Path,
    bootstrap: &str,
    topic: &str,
    events: u64,
    partitions: u32,
    rate: Option<u64>,
    properties: &[String],
) -> Result<std::time::Duration> {
    {
        let mut cmd = Command::new(floe);
        cmd.args(["produce", "--generator", "bids", "--bootstrap", bootstrap])
            .args(["--topic", topic, "--records", &events.to_string()])
            .args(["--partitions", &partitions.to_string()]);
        if let Some(r) = rate {
            cmd.args(["--rate", &r.to_string()]);
        }
        for p in properties {
            cmd.args(["--property", p]);
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
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
