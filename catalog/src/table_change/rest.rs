//! The REST catalog's compare-and-swap: `POST /v1/{prefix}/namespaces/{ns}/tables/{table}`
//! with the change's requirements and updates; the server checks and applies them
//! atomically and answers 409 when a requirement no longer holds.
//!
//! Authenticates as iceberg-catalog-rest does with the same options: a `token`, or a
//! `credential` exchanged for one (OAuth2 client credentials at `oauth2-server-uri`,
//! by default `{uri}/v1/oauth/tokens`), plus `header.*`. The route prefix comes from the
//! server's `/v1/config` (its overrides win over the `prefix` option, which wins over its
//! defaults).

use std::collections::{BTreeMap, HashMap};

use iceberg::table::Table;
use iceberg::{Catalog, Error, ErrorKind};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use tokio::sync::{Mutex, OnceCell};

use super::TableChange;

/// Commits changes to tables of one REST catalog.
pub(crate) struct RestCommits {
    uri: String,
    warehouse: String,
    options: BTreeMap<String, String>,
    client: reqwest::Client,
    prefix: OnceCell<Option<String>>,
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for RestCommits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Options hold credentials.
        f.debug_struct("RestCommits")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ConfigResponse {
    #[serde(default)]
    defaults: HashMap<String, String>,
    #[serde(default)]
    overrides: HashMap<String, String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

fn unexpected(
    message: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::new(ErrorKind::Unexpected, message.into())
        .with_source(source)
        .with_retryable(true)
}

impl RestCommits {
    /// Commits to the REST catalog at `uri` with the job's client `options`.
    pub(crate) fn new(uri: String, warehouse: String, options: BTreeMap<String, String>) -> Self {
        Self {
            uri: uri.trim_end_matches('/').to_string(),
            warehouse,
            options,
            client: reqwest::Client::new(),
            prefix: OnceCell::new(),
            token: Mutex::new(None),
        }
    }

    pub(crate) async fn commit(
        &self,
        catalog: &dyn Catalog,
        base: &Table,
        change: TableChange,
    ) -> iceberg::Result<Table> {
        let ident = base.identifier();
        let url = self.table_url(ident).await?;
        let body = serde_json::json!({
            "identifier": { "namespace": ident.namespace().as_ref(), "name": ident.name() },
            "requirements": change.requirements,
            "updates": change.updates,
        });
        let response = self.send(Method::POST, url, Some(&body)).await?;
        let status = response.status();
        match status {
            s if s.is_success() => catalog.load_table(ident).await,
            StatusCode::CONFLICT => Err(Error::new(
                ErrorKind::CatalogCommitConflicts,
                format!("table {ident} changed while the commit was prepared"),
            )
            .with_retryable(true)),
            StatusCode::NOT_FOUND => Err(Error::new(
                ErrorKind::TableNotFound,
                format!("table {ident} does not exist"),
            )),
            s => {
                let text = response.text().await.unwrap_or_default();
                // 5xx leaves the outcome unknown: the caller looks for its commit and retries.
                let error = Error::new(
                    ErrorKind::Unexpected,
                    format!("the REST catalog answered {s} to a commit of {ident}: {text}"),
                );
                Err(error.with_retryable(s.is_server_error()))
            }
        }
    }

    async fn table_url(&self, ident: &iceberg::TableIdent) -> iceberg::Result<Url> {
        let mut url = self.url("v1")?;
        let prefix = self.prefix().await?;
        {
            let mut path = url.path_segments_mut().map_err(|()| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!("'{}' cannot be a base URL", self.uri),
                )
            })?;
            if let Some(p) = prefix {
                path.extend(p.split('/').filter(|s| !s.is_empty()));
            }
            path.push("namespaces")
                .push(&ident.namespace().join("\u{1f}"))
                .push("tables")
                .push(ident.name());
        }
        Ok(url)
    }

    fn url(&self, path: &str) -> iceberg::Result<Url> {
        Url::parse(&format!("{}/{path}", self.uri)).map_err(|e| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("REST catalog uri '{}'", self.uri),
            )
            .with_source(e)
        })
    }

    async fn prefix(&self) -> iceberg::Result<&Option<String>> {
        self.prefix
            .get_or_try_init(|| async {
                let mut url = self.url("v1/config")?;
                if !self.warehouse.is_empty() {
                    url.query_pairs_mut()
                        .append_pair("warehouse", &self.warehouse);
                }
                let response = self.send(Method::GET, url, None).await?;
                let config: ConfigResponse = response
                    .error_for_status()
                    .map_err(|e| unexpected("reading the REST catalog's /v1/config", e))?
                    .json()
                    .await
                    .map_err(|e| unexpected("reading the REST catalog's /v1/config", e))?;
                Ok(config
                    .overrides
                    .get("prefix")
                    .or(self.options.get("prefix"))
                    .or(config.defaults.get("prefix"))
                    .cloned())
            })
            .await
    }

    /// Sends a request with the catalog's headers and token, fetching a new token once
    /// when the server refuses the one held.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> iceberg::Result<reqwest::Response> {
        let response = self
            .attempt(method.clone(), url.clone(), body, false)
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED && self.options.contains_key("credential")
        {
            return self.attempt(method, url, body, true).await;
        }
        Ok(response)
    }

    async fn attempt(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        fresh_token: bool,
    ) -> iceberg::Result<reqwest::Response> {
        let mut request = self.client.request(method.clone(), url.clone());
        for (k, v) in &self.options {
            if let Some(name) = k.strip_prefix("header.") {
                request = request.header(name, v);
            }
        }
        if let Some(t) = self.token(fresh_token).await? {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(b);
        }
        request
            .send()
            .await
            .map_err(|e| unexpected(format!("{method} {url}"), e))
    }

    async fn token(&self, fresh: bool) -> iceberg::Result<Option<String>> {
        if let Some(t) = self.options.get("token") {
            return Ok(Some(t.clone()));
        }
        let Some(credential) = self.options.get("credential") else {
            return Ok(None);
        };
        let mut held = self.token.lock().await;
        if fresh || held.is_none() {
            *held = Some(self.fetch_token(credential).await?);
        }
        Ok(held.clone())
    }

    async fn fetch_token(&self, credential: &str) -> iceberg::Result<String> {
        let (id, secret) = credential.split_once(':').unwrap_or(("", credential));
        let endpoint = match self.options.get("oauth2-server-uri") {
            Some(u) => Url::parse(u).map_err(|e| {
                Error::new(ErrorKind::DataInvalid, "option 'oauth2-server-uri'").with_source(e)
            })?,
            None => self.url("v1/oauth/tokens")?,
        };
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_secret", secret),
            (
                "scope",
                self.options.get("scope").map_or("catalog", String::as_str),
            ),
        ];
        if !id.is_empty() {
            form.push(("client_id", id));
        }
        for key in ["audience", "resource"] {
            if let Some(v) = self.options.get(key) {
                form.push((key, v));
            }
        }
        let response = self
            .client
            .post(endpoint)
            .form(&form)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| unexpected("fetching an OAuth2 token for the REST catalog", e))?;
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|e| unexpected("reading the OAuth2 token response", e))?;
        Ok(token.access_token)
    }
}
