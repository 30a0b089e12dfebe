//! S3 and S3-compatible stores: the catalog's `storage.*` options, named as Iceberg's other
//! engines name them, mapped onto `object_store`'s Amazon S3 client.
//!
//! Credentials not given as options come from the standard AWS chain that `object_store`
//! follows: `AWS_*` environment variables, web identity tokens, container credentials and
//! the instance metadata service.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use serde::{Deserialize, Serialize};

use super::options::{check_options, client_options, retry_config, shown_options};

/// Options whose values are secrets: never shown, not even in `Debug` output.
const SECRET_OPTIONS: [&str; 2] = ["s3.secret-access-key", "s3.session-token"];

/// Where an S3 warehouse lives and how to reach it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct S3Config {
    /// The bucket every location of the warehouse is in.
    pub bucket: String,
    /// The catalog's `storage.*` options, prefix removed, already checked.
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("options", &shown_options(&self.options, &SECRET_OPTIONS))
            .finish()
    }
}

/// What each supported option means, for the error that lists them.
const OPTIONS: [(&str, &str); 11] = [
    ("s3.endpoint", "URL of an S3-compatible server"),
    ("s3.region", "the bucket's region"),
    (
        "s3.access-key-id",
        "access key (else the AWS credential chain)",
    ),
    ("s3.secret-access-key", "secret key"),
    ("s3.session-token", "session token of temporary credentials"),
    (
        "s3.path-style-access",
        "true: bucket in the path, not the host name",
    ),
    ("s3.anonymous", "true: unsigned requests to a public bucket"),
    (
        "s3.allow-http",
        "true: allow http:// endpoints (implied by one)",
    ),
    (
        "s3.max-retries",
        "retries of a failed or throttled request (default 10)",
    ),
    (
        "s3.retry-timeout",
        "give a request up after this long, e.g. 3min",
    ),
    ("s3.connect-timeout", "connection timeout, e.g. 5s"),
];

impl S3Config {
    /// Checks the options of a warehouse in `bucket`; the error names the bad option.
    pub fn new(bucket: &str, options: &BTreeMap<String, String>) -> Result<Self, String> {
        check_options(
            options,
            &OPTIONS,
            &["s3.path-style-access", "s3.anonymous", "s3.allow-http"],
            "s3",
            "an s3:// warehouse",
        )?;
        if options.contains_key("s3.access-key-id") != options.contains_key("s3.secret-access-key")
        {
            return Err(
                "storage options 's3.access-key-id' and 's3.secret-access-key' go together".into(),
            );
        }
        Ok(Self {
            bucket: bucket.to_string(),
            options: options.clone(),
        })
    }

    /// This config with the credentials a REST catalog vends for a table (its `config`
    /// in the load-table response, under Iceberg's standard `s3.*` keys) taking precedence.
    pub fn with_vended(&self, props: &std::collections::HashMap<String, String>) -> Self {
        const VENDED: [&str; 5] = [
            "s3.access-key-id",
            "s3.secret-access-key",
            "s3.session-token",
            "s3.region",
            "s3.endpoint",
        ];
        let mut out = self.clone();
        for key in VENDED {
            if let Some(v) = props.get(key) {
                out.options.insert(key.to_string(), v.clone());
            }
        }
        out
    }

    fn flag(&self, key: &str) -> bool {
        self.options.get(key).is_some_and(|v| v == "true")
    }

    /// Builds the client. Requests that fail transiently or are throttled (503 SlowDown,
    /// 429) are retried with exponential backoff.
    pub fn build(&self) -> object_store::Result<Arc<dyn ObjectStore>> {
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            // First: the settings below change these client options.
            .with_client_options(client_options(&self.options, "s3"));
        let direct = [
            ("s3.endpoint", AmazonS3ConfigKey::Endpoint),
            ("s3.region", AmazonS3ConfigKey::Region),
            ("s3.access-key-id", AmazonS3ConfigKey::AccessKeyId),
            ("s3.secret-access-key", AmazonS3ConfigKey::SecretAccessKey),
            ("s3.session-token", AmazonS3ConfigKey::Token),
        ];
        for (option, key) in direct {
            if let Some(v) = self.options.get(option) {
                b = b.with_config(key, v);
            }
        }
        let endpoint = self.options.get("s3.endpoint");
        if self.flag("s3.path-style-access") || endpoint.is_some() {
            // S3-compatible servers address buckets by path unless told otherwise.
            b = b.with_virtual_hosted_style_request(
                !self.flag("s3.path-style-access") && endpoint.is_none(),
            );
        }
        if self.flag("s3.allow-http") || endpoint.is_some_and(|e| e.starts_with("http://")) {
            b = b.with_allow_http(true);
        }
        if self.flag("s3.anonymous") {
            b = b.with_skip_signature(true);
        }
        b = b.with_retry(retry_config(&self.options, "s3"));
        Ok(Arc::new(b.build()?))
    }
}

/// Splits `s3://bucket/key` (also `s3a://`) into bucket and key.
pub fn split_s3(location: &str) -> Option<(&str, &str)> {
    let rest = location
        .strip_prefix("s3://")
        .or_else(|| location.strip_prefix("s3a://"))?;
    super::split_bucket(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_and_malformed_options_are_named() {
        let e = S3Config::new("b", &opts(&[("s3.endpont", "x")])).expect_err("refused");
        assert!(
            e.contains("'storage.s3.endpont'") && e.contains("s3.endpoint"),
            "{e}"
        );
        let e = S3Config::new("b", &opts(&[("s3.anonymous", "yes")])).expect_err("refused");
        assert!(e.contains("'storage.s3.anonymous'"), "{e}");
        let e = S3Config::new("b", &opts(&[("s3.access-key-id", "k")])).expect_err("refused");
        assert!(e.contains("go together"), "{e}");
        let e = S3Config::new("b", &opts(&[("s3.retry-timeout", "soon")])).expect_err("refused");
        assert!(e.contains("duration"), "{e}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = S3Config::new(
            "b",
            &opts(&[
                ("s3.access-key-id", "AKIDEXAMPLE"),
                ("s3.secret-access-key", "wJalrXUtnFEMI"),
                ("s3.session-token", "FwoGZXIvYXdz"),
            ]),
        )
        .expect("valid");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("wJalrXUtnFEMI") && !shown.contains("FwoGZXIvYXdz"),
            "{shown}"
        );
        assert!(shown.contains("AKIDEXAMPLE"));
    }

    #[test]
    fn vended_credentials_take_precedence() {
        let c = S3Config::new("b", &opts(&[("s3.region", "eu-west-1")])).expect("valid");
        let vended = [
            ("s3.access-key-id".to_string(), "ASIAVENDED".to_string()),
            (
                "s3.secret-access-key".to_string(),
                "vended-secret".to_string(),
            ),
            ("s3.session-token".to_string(), "vended-token".to_string()),
            ("credential".to_string(), "not-for-the-store".to_string()),
        ]
        .into_iter()
        .collect();
        let v = c.with_vended(&vended);
        assert_eq!(
            v.options.get("s3.access-key-id").map(String::as_str),
            Some("ASIAVENDED")
        );
        assert_eq!(
            v.options.get("s3.region").map(String::as_str),
            Some("eu-west-1")
        );
        assert!(!v.options.contains_key("credential"));
    }

    #[test]
    fn locations_split_into_bucket_and_key() {
        assert_eq!(
            split_s3("s3://lake/wh/t/x.parquet"),
            Some(("lake", "wh/t/x.parquet"))
        );
        assert_eq!(split_s3("s3a://lake"), Some(("lake", "")));
        assert_eq!(split_s3("s3:///x"), None);
        assert_eq!(split_s3("file:///x"), None);
    }
}
