//! Scraping `floe run`'s metrics endpoint while a benchmark job runs, so that what a
//! Prometheus scrape costs the job shows in its throughput (`--scrape-every`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

/// A thread that GETs `/metrics` every interval until finished.
pub struct Scraper {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<u64>,
    /// The address `floe run` must serve on (`FLOE_METRICS_ADDR`).
    pub addr: String,
}

impl Scraper {
    /// Picks a free loopback port and starts scraping it every `every` (connection
    /// failures, before the job listens, are retried at the same pace).
    pub fn start(every: Duration) -> Result<Self> {
        let port = free_port()?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut scrapes = 0;
                while !stop.load(Ordering::Relaxed) {
                    if scrape(port).is_some() {
                        scrapes += 1;
                    }
                    std::thread::sleep(every);
                }
                scrapes
            }
        });
        Ok(Self {
            stop,
            handle,
            addr: format!("127.0.0.1:{port}"),
        })
    }

    /// Stops scraping; returns how many scrapes got an answer.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

/// A loopback port nothing listens on now, for a job's metrics endpoint.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("a free port for the metrics endpoint")?
        .port())
}

/// One `GET /metrics`; the body's length when it answered 200.
fn scrape(port: u16) -> Option<usize> {
    metrics_text(port).map(|t| t.len())
}

/// One `GET /metrics`: the response (status line, headers, body) when it answered 200.
pub fn metrics_text(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// The sum of `name`'s samples whose labels include every pair of `with`.
pub fn metric_sum(text: &str, name: &str, with: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter(|l| {
            with.iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .fold(0.0, |sum, v| sum + v)
}
