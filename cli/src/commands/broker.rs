//! `floe broker`: the embedded Kafka-protocol broker as a process of its own, for tests
//! and local experiments that must survive the `floe run` process.

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::Result;
use floe_devtools::broker::EmbeddedBroker;

/// Starts the broker, creates `topics` (`name:partitions`), prints
/// `bootstrap.servers=HOST:PORT`, and runs until standard input closes. The lines `down`
/// and `up` on standard input take the broker down and bring it back (its log kept), for
/// outage tests; each is answered with the same word once done.
pub fn broker(topics: &[String], group_join_delay: Duration) -> Result<()> {
    let broker = EmbeddedBroker::start(group_join_delay)?;
    for t in topics {
        let (name, parts) = t.split_once(':').unwrap_or((t.as_str(), "1"));
        let parts: u32 = parts.parse().map_err(|_| {
            anyhow::Error::msg(format!(
                "--topic {t}: partitions must be a number (name:partitions)"
            ))
        })?;
        broker.create_topic(name, parts)?;
    }
    println!("bootstrap.servers={}", broker.bootstrap_servers());
    let _ = std::io::stdout().flush();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let command = line.trim();
        match command {
            "down" | "up" => {
                broker.set_up(command == "up")?;
                println!("{command}");
                let _ = std::io::stdout().flush();
            }
            "" => {}
            other => eprintln!("floe broker: unknown command '{other}' (down, up)"),
        }
    }
    Ok(())
}
