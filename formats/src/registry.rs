//! The Schema Registry client of a source: writer schemas by id (fetched once, then
//! cached for the life of the job: a registered schema never changes), and a subject's
//! latest version.
//!
//! Lookups come from the decoding thread, which is not an async task, and from `floe
//! replay`, which is: each fetch runs on a short-lived thread of its own with a
//! single-threaded runtime, so it works from either. Fetches are rare (one per schema
//! id per job), so the thread costs nothing that matters.
//!
//! A registry that cannot be reached, or answers 5xx or 429, is waited for with backoff
//! and said so in the log: good records are never dead-lettered because the registry is
//! down. An id the registry answers 404 for is asked for again with backoff for
//! [`UNKNOWN_ID_WAIT`] (a replica behind a load balancer may not yet have seen a schema
//! a producer just registered elsewhere); only then is it the record's fault (a bad
//! record), and the id is asked for again at most every [`UNKNOWN_ID_RECHECK`], never
//! cached as unknown. Any other answer (401, 403, a body that is not a schema) stops the
//! job with the URL and the registry's message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use floe_sql::job::RegistryOptions;
use serde::Deserialize;
use tracing::warn;

/// Longest wait between two attempts to reach the registry.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long the check at start (and the reading of a source's columns) waits for a
/// registry that cannot be reached: `floe validate` must answer.
pub const START_CHECK_WAIT: Duration = Duration::from_secs(60);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an id the registry answers 404 for is asked for again before its records
/// count as bad.
pub const UNKNOWN_ID_WAIT: Duration = Duration::from_secs(10);
/// After that, how often the registry is asked again for such an id (records carrying it
/// in between are bad without a request).
pub const UNKNOWN_ID_RECHECK: Duration = Duration::from_secs(1);

/// An id the registry did not know: when it first answered 404, and when it was last asked.
#[derive(Debug, Clone, Copy)]
struct Miss {
    first: Instant,
    asked: Instant,
}

/// A registry failure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry could not be reached or is overloaded: try again later.
    #[error("schema registry {url}: {message}")]
    Unavailable {
        /// The request's URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// The registry answered, and retrying will not change the answer.
    #[error("schema registry {url}: {message}")]
    Refused {
        /// The request's URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// The job is stopping: waiting for an unavailable registry was given up.
    #[error("schema registry {url}: stopped waiting for it, the job is stopping")]
    Stopped {
        /// The request's URL.
        url: String,
    },
}

impl RegistryError {
    /// Whether waiting and asking again can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// A schema as the registry stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// Its global id (what the wire format carries).
    pub id: u32,
    /// The schema text (Avro or JSON Schema JSON, or a `.proto` file).
    pub text: String,
    /// `AVRO`, `PROTOBUF` or `JSON`.
    pub kind: String,
    /// Its version within the subject it was looked up in (0 when looked up by id).
    pub version: u32,
    /// The schemas it imports (a `.proto` file's imports), by import name.
    pub references: Vec<SchemaReference>,
}

/// A schema that another imports: the import's name, and where the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SchemaReference {
    /// The name the importing schema uses (a `.proto` import path).
    pub name: String,
    /// The subject that holds it.
    pub subject: String,
    /// Its version in that subject.
    pub version: u32,
}

/// What a lookup by id found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The schema.
    Found(Arc<RegisteredSchema>),
    /// The registry does not have this id.
    Unknown,
}

/// One entry of `GET /schemas/ids/{id}/versions`.
#[derive(Debug, Deserialize)]
struct SubjectVersion {
    subject: String,
    version: u32,
}

#[derive(Debug, Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    id: Option<u32>,
    version: Option<u32>,
    #[serde(default)]
    references: Vec<SchemaReference>,
}

/// How requests authenticate.
enum Auth {
    Basic(String, String),
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Basic(..) => "Basic <redacted>",
            Self::Bearer(_) => "Bearer <redacted>",
        })
    }
}

/// One registry, shared by the sources that use it.
#[derive(Debug)]
pub struct Registry {
    base: String,
    http: reqwest::Client,
    auth: Option<Auth>,
    by_id: Mutex<HashMap<u32, Arc<RegisteredSchema>>>,
    /// Ids the registry answered 404 for (see the module doc).
    misses: Mutex<HashMap<u32, Miss>>,
    /// How long a 404 is asked again before the id counts as unknown.
    unknown_id_wait: Duration,
    /// Lookups waiting now for an id the registry does not know yet: the job is busy,
    /// not idle, while one waits (`--stop-when-idle`).
    unknown_waits: Arc<AtomicUsize>,
    /// Set when the job stops: waiting for an unavailable registry then ends.
    give_up: OnceLock<Arc<AtomicBool>>,
}

impl Registry {
    /// A client of the registry at `url` (already resolved when the job names the
    /// embedded one), set up from the source's options.
    pub fn new(options: &RegistryOptions, url: &str) -> Result<Self, RegistryError> {
        let refused = |message: String| RegistryError::Refused {
            url: url.to_string(),
            message,
        };
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        if let Some(path) = &options.ca_location {
            let pem = std::fs::read(path).map_err(|e| {
                refused(format!("'avro-confluent.ssl.ca-location' = '{path}': {e}"))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                refused(format!(
                    "'avro-confluent.ssl.ca-location' = '{path}' holds no PEM certificates: {e}"
                ))
            })?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(|e| refused(format!("cannot set up the HTTP client: {e}")))?;
        let auth = match (&options.basic_auth, &options.bearer_token) {
            (Some(user_info), _) => {
                let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
                Some(Auth::Basic(user.to_string(), password.to_string()))
            }
            (None, Some(token)) => Some(Auth::Bearer(token.clone())),
            (None, None) => None,
        };
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            http,
            auth,
            by_id: Mutex::new(HashMap::new()),
            misses: Mutex::new(HashMap::new()),
            unknown_id_wait: UNKNOWN_ID_WAIT,
            unknown_waits: Arc::new(AtomicUsize::new(0)),
            give_up: OnceLock::new(),
        })
    }

    /// The same client, asking for an unknown id for `wait` before it counts as unknown.
    pub fn with_unknown_id_wait(mut self, wait: Duration) -> Self {
        self.unknown_id_wait = wait;
        self
    }

    /// The writer schema with global id `id`, from the cache or the registry; waits
    /// while the registry is unavailable, and while an id it answers 404 for may still
    /// appear (see the module doc).
    pub fn schema(&self, id: u32) -> Result<Lookup, RegistryError> {
        if let Some(found) = self.cached(id) {
            return Ok(Lookup::Found(found));
        }
        let url = format!("{}/schemas/ids/{id}", self.base);
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.recently_missed(id) {
                return Ok(Lookup::Unknown);
            }
            if let Some(body) = self.get_waiting(&url, None)? {
                let found = Arc::new(parse_schema(&url, &body, id, 0)?);
                if let Ok(mut cache) = self.by_id.lock() {
                    cache.insert(id, found.clone());
                }
                if let Ok(mut misses) = self.misses.lock() {
                    misses.remove(&id);
                }
                return Ok(Lookup::Found(found));
            }
            let first = self.note_miss(id);
            if first.elapsed() >= self.unknown_id_wait {
                return Ok(Lookup::Unknown);
            }
            warn!(
                schema_id = id,
                "the schema registry does not know this id (yet); asking again in {backoff:?}"
            );
            self.unknown_waits.fetch_add(1, Ordering::SeqCst);
            let paused = self.pause(backoff);
            self.unknown_waits.fetch_sub(1, Ordering::SeqCst);
            if !paused {
                return Err(RegistryError::Stopped { url });
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// How many lookups wait now for an id the registry does not know yet.
    pub fn unknown_waits(&self) -> Arc<AtomicUsize> {
        self.unknown_waits.clone()
    }

    /// Whether `id` was found unknown after its wait, and was asked for too recently to
    /// ask again.
    fn recently_missed(&self, id: u32) -> bool {
        let Ok(misses) = self.misses.lock() else {
            return false;
        };
        misses.get(&id).is_some_and(|m| {
            m.first.elapsed() >= self.unknown_id_wait && m.asked.elapsed() < UNKNOWN_ID_RECHECK
        })
    }

    /// Records a 404 for `id` now; returns when the first one came.
    fn note_miss(&self, id: u32) -> Instant {
        let now = Instant::now();
        let Ok(mut misses) = self.misses.lock() else {
            return now;
        };
        let m = misses.entry(id).or_insert(Miss {
            first: now,
            asked: now,
        });
        m.asked = now;
        m.first
    }

    /// The newest version registered under `subject`; None when the subject does not
    /// exist. Waits while the registry is unavailable, for `limit` at most: this is the
    /// check at start, and `floe validate` must answer.
    pub fn latest(
        &self,
        subject: &str,
        limit: Duration,
    ) -> Result<Option<RegisteredSchema>, RegistryError> {
        let url = format!(
            "{}/subjects/{}/versions/latest",
            self.base,
            percent_encode(subject)
        );
        match self.get_waiting(&url, Some(Instant::now() + limit))? {
            None => Ok(None),
            Some(body) => Ok(Some(parse_schema(&url, &body, 0, 0)?)),
        }
    }

    /// Version `version` of `subject` (a schema another one imports); None when the
    /// registry has no such version. Waits while the registry is unavailable.
    pub fn version(
        &self,
        subject: &str,
        version: u32,
    ) -> Result<Option<RegisteredSchema>, RegistryError> {
        let url = format!(
            "{}/subjects/{}/versions/{version}",
            self.base,
            percent_encode(subject)
        );
        match self.get_waiting(&url, None)? {
            None => Ok(None),
            Some(body) => Ok(Some(parse_schema(&url, &body, 0, version)?)),
        }
    }

    /// The version schema `id` has under `subject`; None when the registry does not
    /// say (it lacks the route, or the schema is not under that subject). Waits while
    /// the registry is unavailable.
    pub fn version_in(&self, id: u32, subject: &str) -> Result<Option<u32>, RegistryError> {
        let url = format!("{}/schemas/ids/{id}/versions", self.base);
        let Some(body) = self.get_waiting(&url, None)? else {
            return Ok(None);
        };
        let versions: Vec<SubjectVersion> = serde_json::from_str(&body).unwrap_or_default();
        Ok(versions
            .into_iter()
            .find(|v| v.subject == subject)
            .map(|v| v.version))
    }

    fn cached(&self, id: u32) -> Option<Arc<RegisteredSchema>> {
        self.by_id.lock().ok().and_then(|c| c.get(&id).cloned())
    }

    /// GETs `url` until it answers (or `deadline` passes); None for 404.
    fn get_waiting(
        &self,
        url: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<String>, RegistryError> {
        self.send_waiting(url, None, deadline)
    }

    /// Sends a GET (or a POST of `body`) until the registry answers (or `deadline`
    /// passes), waiting with backoff while it is unavailable; None for 404.
    fn send_waiting(
        &self,
        url: &str,
        body: Option<&str>,
        deadline: Option<Instant>,
    ) -> Result<Option<String>, RegistryError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.send_once(url, body) {
                Err(e) if e.is_retryable() && deadline.is_none_or(|d| Instant::now() < d) => {
                    warn!(error = %e, "the schema registry is unavailable; waiting for it (next try in {backoff:?})");
                    if !self.pause(backoff) {
                        return Err(RegistryError::Stopped {
                            url: url.to_string(),
                        });
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                other => return other,
            }
        }
    }

    /// Makes waiting for an unavailable registry end once `flag` is set (the job's
    /// stop): the records whose schemas were awaited are not committed, so they are
    /// read again when the job restarts.
    pub fn give_up_when(&self, flag: Arc<AtomicBool>) {
        let _ = self.give_up.set(flag);
    }

    /// Sleeps for `wait`, in short steps; false as soon as the job is stopping.
    fn pause(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        let stopping = || {
            self.give_up
                .get()
                .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
        };
        while !stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        false
    }

    /// Registers the Avro schema `text` under `subject` (as a producer does), returning
    /// its id; waits while the registry is unavailable.
    pub fn register(&self, subject: &str, text: &str) -> Result<u32, RegistryError> {
        let url = format!(
            "{}/subjects/{}/versions",
            self.base,
            percent_encode(subject)
        );
        let body = serde_json::json!({ "schema": text }).to_string();
        let answer = self.send_waiting(&url, Some(&body), None)?;
        let refused = |message: String| RegistryError::Refused {
            url: url.clone(),
            message,
        };
        let body = answer.ok_or_else(|| refused("HTTP 404".into()))?;
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_u64())
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| refused(format!("the answer holds no schema id: {}", excerpt(&body))))
    }

    /// One GET (or a POST of `body`), on a thread of its own (see the module doc).
    fn send_once(&self, url: &str, body: Option<&str>) -> Result<Option<String>, RegistryError> {
        let unavailable = |message: String| RegistryError::Unavailable {
            url: url.to_string(),
            message,
        };
        let request = || async {
            let mut req = match body {
                None => self.http.get(url),
                Some(b) => self
                    .http
                    .post(url)
                    .header("Content-Type", "application/vnd.schemaregistry.v1+json")
                    .body(b.to_string()),
            }
            .header("Accept", "application/vnd.schemaregistry.v1+json");
            req = match &self.auth {
                Some(Auth::Basic(user, password)) => req.basic_auth(user, Some(password)),
                Some(Auth::Bearer(token)) => req.bearer_auth(token),
                None => req,
            };
            let resp = req.send().await.map_err(|e| unavailable(describe(&e)))?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| unavailable(describe(&e)))?;
            answer(url, status.as_u16(), body)
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| unavailable(format!("cannot start an HTTP runtime: {e}")))?;
                rt.block_on(request())
            })
            .join()
            .unwrap_or_else(|_| Err(unavailable("the request thread panicked".into())))
        })
    }
}

/// The client for a source's registry options. `'embedded'` names a registry the
/// command line serves in its own process, and must have been replaced by its address
/// before the job is planned.
pub fn client_for(options: &RegistryOptions) -> Result<Arc<Registry>, RegistryError> {
    if options.is_embedded() {
        return Err(RegistryError::Refused {
            url: options.url.clone(),
            message: "'embedded' is served by the floe command line: run the job with `floe run`"
                .into(),
        });
    }
    Registry::new(options, &options.url).map(Arc::new)
}

/// What an HTTP answer means for a lookup.
fn answer(url: &str, status: u16, body: String) -> Result<Option<String>, RegistryError> {
    match status {
        200..=299 => Ok(Some(body)),
        404 => Ok(None),
        429 | 500..=599 => Err(RegistryError::Unavailable {
            url: url.to_string(),
            message: format!("HTTP {status}: {}", excerpt(&body)),
        }),
        401 | 403 => Err(RegistryError::Refused {
            url: url.to_string(),
            message: format!(
                "HTTP {status}: {} (check the source's 'basic-auth.user-info' or 'bearer-auth.token' registry option)",
                excerpt(&body)
            ),
        }),
        _ => Err(RegistryError::Refused {
            url: url.to_string(),
            message: format!("HTTP {status}: {}", excerpt(&body)),
        }),
    }
}

fn parse_schema(
    url: &str,
    body: &str,
    id: u32,
    version: u32,
) -> Result<RegisteredSchema, RegistryError> {
    let parsed: SchemaBody = serde_json::from_str(body).map_err(|e| RegistryError::Refused {
        url: url.to_string(),
        message: format!("the answer is not a schema ({e}): {}", excerpt(body)),
    })?;
    Ok(RegisteredSchema {
        id: parsed.id.unwrap_or(id),
        text: parsed.schema,
        kind: parsed.schema_type.unwrap_or_else(|| "AVRO".into()),
        version: parsed.version.unwrap_or(version),
        references: parsed.references,
    })
}

/// The error and its causes, on one line (reqwest's own message omits the cause).
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn excerpt(body: &str) -> String {
    let one_line = body.replace('\n', " ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// Subject names may hold any character; a path segment may not.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted_into_found_missing_wait_and_stop() {
        assert_eq!(answer("u", 200, "x".into()).ok(), Some(Some("x".into())));
        assert_eq!(answer("u", 404, String::new()).ok(), Some(None));
        assert!(answer("u", 503, String::new()).is_err_and(|e| e.is_retryable()));
        assert!(answer("u", 429, String::new()).is_err_and(|e| e.is_retryable()));
        let denied = answer("u", 401, "{}".into()).expect_err("401");
        assert!(!denied.is_retryable());
        assert!(
            denied.to_string().contains("'basic-auth.user-info'"),
            "{denied}"
        );
    }

    #[test]
    fn waiting_for_an_unreachable_registry_ends_when_the_job_stops() {
        // A port nothing listens on: every attempt is refused, so the lookup waits.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let options = RegistryOptions {
            url: format!("http://127.0.0.1:{port}"),
            basic_auth: None,
            bearer_token: None,
            ca_location: None,
            subject: floe_sql::job::SubjectName::Topic,
        };
        let registry = Registry::new(&options, &options.url).expect("client");
        let stop = Arc::new(AtomicBool::new(false));
        registry.give_up_when(stop.clone());
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let looked_up = registry.schema(7);
        setter.join().expect("setter");
        assert!(
            matches!(looked_up, Err(RegistryError::Stopped { .. })),
            "{looked_up:?}"
        );
    }

    fn client_of(url: &str) -> Registry {
        let options = RegistryOptions {
            url: url.to_string(),
            basic_auth: None,
            bearer_token: None,
            ca_location: None,
            subject: floe_sql::job::SubjectName::Topic,
        };
        Registry::new(&options, url).expect("client")
    }

    const SCHEMA: &str = r#"{"type":"record","name":"o","fields":[{"name":"id","type":"long"}]}"#;

    #[test]
    fn an_id_registered_while_it_is_asked_for_is_found() {
        let registry = crate::test_registry::registry_with(&[], &[]);
        let client = client_of(registry.server.url());
        let waits = client.unknown_waits();
        std::thread::scope(|s| {
            // The schema is registered once the lookup has been answered 404 and waits.
            s.spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(5);
                while waits.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                    std::thread::yield_now();
                }
                registry
                    .server
                    .register("orders-value", SCHEMA)
                    .expect("register")
            });
            let looked_up = client.schema(1).expect("lookup");
            assert!(matches!(looked_up, Lookup::Found(_)), "{looked_up:?}");
        });
    }

    #[test]
    fn an_unknown_id_is_bad_after_its_wait_and_found_once_registered() {
        let registry = crate::test_registry::registry_with(&[], &[]);
        let client =
            client_of(registry.server.url()).with_unknown_id_wait(Duration::from_millis(300));
        let started = Instant::now();
        assert!(matches!(client.schema(1), Ok(Lookup::Unknown)));
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "asked again for the wait"
        );
        // Within the re-check interval, records with the id are bad without a request.
        assert!(matches!(client.schema(1), Ok(Lookup::Unknown)));
        registry
            .server
            .register("orders-value", SCHEMA)
            .expect("register");
        std::thread::sleep(UNKNOWN_ID_RECHECK);
        let found = client.schema(1).expect("lookup");
        assert!(
            matches!(found, Lookup::Found(_)),
            "not cached as unknown: {found:?}"
        );
    }

    #[test]
    fn subjects_are_encoded_for_the_path() {
        assert_eq!(percent_encode("orders-value"), "orders-value");
        assert_eq!(percent_encode("a/b c"), "a%2Fb%20c");
    }
}
