//! The embedded registry's HTTP listener: a thread with its own runtime, so it serves
//! the same way inside `floe run` and as `floe registry`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::store::RegistryState;
use crate::error::{Result, ToolError};

/// The largest request (head and body) read.
const MAX_REQUEST: usize = 4 << 20;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How the registry serves.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Where to listen (a free loopback port when None).
    pub listen: Option<String>,
    /// `user:password` that requests must present (HTTP basic authentication).
    pub user_info: Option<String>,
    /// A JSON file that holds the state across restarts.
    pub state_file: Option<PathBuf>,
}

/// A running registry; dropping it stops the listener.
#[derive(Debug)]
pub struct RegistryServer {
    url: String,
    shared: Arc<Shared>,
    /// Whether it listens (false: connections are refused, as from a registry that is down).
    up: watch::Sender<bool>,
}

struct Shared {
    state: Mutex<RegistryState>,
    /// The `Authorization` header value requests must carry.
    expected_auth: Option<String>,
    state_file: Option<PathBuf>,
}

impl RegistryServer {
    /// Binds and starts serving.
    pub fn start(options: ServerOptions) -> Result<Self> {
        let state = match &options.state_file {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ToolError::Registry(format!("{}: {e}", path.display())))?;
                serde_json::from_str(&text).map_err(|e| {
                    ToolError::Registry(format!(
                        "{}: not a registry state file: {e}",
                        path.display()
                    ))
                })?
            }
            _ => RegistryState::default(),
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            expected_auth: options.user_info.as_ref().map(|u| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(u.as_bytes())
                )
            }),
            state_file: options.state_file.clone(),
        });
        let listen = options.listen.unwrap_or_else(|| "127.0.0.1:0".into());
        let std_listener = std::net::TcpListener::bind(&listen)
            .map_err(|e| ToolError::Registry(format!("cannot listen on {listen}: {e}")))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| ToolError::Registry(e.to_string()))?;
        let addr: SocketAddr = std_listener
            .local_addr()
            .map_err(|e| ToolError::Registry(e.to_string()))?;
        let (up, up_rx) = watch::channel(true);
        std::thread::Builder::new()
            .name("floe-registry".into())
            .spawn({
                let shared = shared.clone();
                move || serve(std_listener, addr, shared, up_rx)
            })
            .map_err(|e| ToolError::Registry(format!("cannot start: {e}")))?;
        Ok(Self {
            url: format!("http://{addr}"),
            shared,
            up,
        })
    }

    /// Takes the registry down (its port refuses connections) or brings it back on the
    /// same port with the same schemas.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// Registers the Avro schema `text` under `subject` (as a producer would), returning
    /// its id.
    pub fn register(&self, subject: &str, text: &str) -> Result<u32> {
        let path = format!("/subjects/{subject}/versions");
        let body = serde_json::json!({ "schema": text }).to_string();
        let request = Request {
            method: "POST".into(),
            path,
            authorization: self.shared.expected_auth.clone(),
            body,
        };
        let (status, answer) = respond(&self.shared, &request);
        answer["id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .filter(|_| status == 200)
            .ok_or_else(|| {
                ToolError::Registry(format!(
                    "schema registry: cannot register under {subject}: {answer}"
                ))
            })
    }

    /// The base URL clients use.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn serve(
    listener: std::net::TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut up: watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "schema registry: cannot start its runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let mut listener = TcpListener::from_std(listener).ok();
        loop {
            match listener.take() {
                Some(l) => {
                    tokio::select! {
                        _ = accept_all(&l, &shared) => {}
                        changed = up.changed() => if changed.is_err() { return },
                    }
                    if *up.borrow() {
                        listener = Some(l);
                    }
                }
                None => {
                    if up.changed().await.is_err() {
                        return;
                    }
                    if *up.borrow() {
                        listener = rebind(addr).await;
                    }
                }
            }
        }
    });
}

async fn accept_all(listener: &TcpListener, shared: &Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(answer(stream, shared.clone()));
            }
            Err(e) => debug!(error = %e, "schema registry: accept failed"),
        }
    }
}

/// Binds `addr` again after the registry was down (the port may linger for a moment).
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..50 {
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(l),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    warn!(%addr, "schema registry: cannot listen again");
    None
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("authenticated", &self.expected_auth.is_some())
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

/// A parsed request.
struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
    body: String,
}

async fn answer(mut stream: TcpStream, shared: Arc<Shared>) {
    let request = match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(Some(r))) => r,
        _ => return,
    };
    let (status, body) = respond(&shared, &request);
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        _ => "Error",
    };
    let text = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn respond(shared: &Shared, r: &Request) -> (u16, serde_json::Value) {
    if let Some(expected) = &shared.expected_auth
        && r.authorization.as_deref() != Some(expected.as_str())
    {
        return (
            401,
            serde_json::json!({"error_code": 401, "message": "Unauthorized"}),
        );
    }
    let Ok(mut state) = shared.state.lock() else {
        return (
            500,
            serde_json::json!({"error_code": 500, "message": "state lost"}),
        );
    };
    let mut changed = false;
    let answer = state.route(&r.method, &r.path, &r.body, &mut changed);
    if changed && let Some(path) = &shared.state_file {
        let saved = serde_json::to_string(&*state)
            .map_err(std::io::Error::other)
            .and_then(|text| std::fs::write(path, text));
        if let Err(e) = saved {
            warn!(error = %e, file = %path.display(), "schema registry: cannot save its state");
        }
    }
    answer
}

/// Reads one request: its head, then as many body bytes as `Content-Length` says.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > MAX_REQUEST {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(target)) = (first.next(), first.next()) else {
        return Ok(None);
    };
    let mut length = 0usize;
    let mut authorization = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    if length > MAX_REQUEST {
        return Ok(None);
    }
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(Request {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or("/").to_string(),
        authorization,
        body: String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned(),
    }))
}
