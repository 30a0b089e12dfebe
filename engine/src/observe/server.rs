//! The HTTP listener of `--metrics-addr`: `GET /metrics` (Prometheus text format),
//! `/healthz` (liveness) and `/readyz` (readiness), 200 or 503 with a one-line reason.
//!
//! It runs on its own task and reads only the registry and the health state, so a slow
//! or hostile scraper never touches the data path. One request per connection; a
//! request must arrive within a few seconds and fit in a few kilobytes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

use super::health::{Verdict, health};
use super::metrics::metrics;
use crate::error::{EngineError, Result};

/// The largest request head read.
const MAX_REQUEST: usize = 8 << 10;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` and serves until the process ends; returns the bound address.
pub async fn serve(addr: &str) -> Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        EngineError::Config(format!("--metrics-addr {addr}: cannot listen there: {e}"))
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| EngineError::Runtime(format!("--metrics-addr {addr}: {e}")))?;
    info!(address = %bound, "serving /metrics, /healthz and /readyz");
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream));
                }
                Err(e) => debug!(error = %e, "metrics listener: accept failed"),
            }
        }
    });
    Ok(bound)
}

async fn answer(mut stream: TcpStream) {
    let Ok(Some(path)) = tokio::time::timeout(READ_TIMEOUT, request_path(&mut stream))
        .await
        .unwrap_or(Ok(None))
    else {
        return;
    };
    let (status, content_type, body) = route(&path);
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The path of a `GET` request's first line; None for anything else.
async fn request_path(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut first = text.lines().next().unwrap_or_default().split_whitespace();
    Ok(match (first.next(), first.next()) {
        (Some("GET"), Some(target)) => Some(target.split('?').next().unwrap_or("/").to_string()),
        _ => None,
    })
}

/// Status line, content type and body for `path`.
fn route(path: &str) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    match path {
        "/metrics" => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics().render(),
        ),
        "/healthz" => probe(health().alive()),
        "/readyz" => probe(health().ready()),
        _ => (
            "404 Not Found",
            TEXT,
            "try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

fn probe(v: Verdict) -> (&'static str, &'static str, String) {
    let status = if v.ok {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    (
        status,
        "text/plain; charset=utf-8",
        format!("{}\n", v.reason),
    )
}
