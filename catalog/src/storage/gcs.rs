//! Google Cloud Storage: the catalog's `storage.gcs.*` options mapped onto `object_store`'s
//! GCS client.
//!
//! A warehouse is `gs://BUCKET/prefix`. Credentials not given as options come from
//! `object_store`'s chain: `GOOGLE_*` environment variables, application default
//! credentials, and the metadata server of a GCP machine.
//!
//! The client reads and writes through GCS's XML API. The GCS emulators that install from
//! the registries the tests reach do not accept its writes, so the tests cover options,
//! locations and failure errors here, not a round trip.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use serde::{Deserialize, Serialize};

use super::options::{check_options, client_options, retry_config, shown_options};

/// Options whose values are secrets.
const SECRET_OPTIONS: [&str; 1] = ["gcs.service-account-key"];

/// What each supported option means, for the error that lists them.
const OPTIONS: [(&str, &str); 7] = [
    (
        "gcs.service-account-path",
        "service account key file (JSON)",
    ),
    (
        "gcs.service-account-key",
        "service account key, the file's JSON content",
    ),
    (
        "gcs.application-credentials",
        "application default credentials file",
    ),
    (
        "gcs.endpoint",
        "storage API base URL, for an emulator or a private endpoint",
    ),
    (
        "gcs.max-retries",
        "retries of a failed or throttled request (default 10)",
    ),
    (
        "gcs.retry-timeout",
        "give a request up after this long, e.g. 3min",
    ),
    ("gcs.connect-timeout", "connection timeout, e.g. 5s"),
];

/// Where a GCS warehouse lives and how to reach it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcsConfig {
    /// The bucket.
    pub bucket: String,
    /// The catalog's `storage.*` options, prefix removed, already checked.
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for GcsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsConfig")
            .field("bucket", &self.bucket)
            .field("options", &shown_options(&self.options, &SECRET_OPTIONS))
            .finish()
    }
}

/// Splits `gs://bucket/key` into bucket and key.
pub fn split_gcs(location: &str) -> Option<(&str, &str)> {
    super::split_bucket(location.strip_prefix("gs://")?)
}

impl GcsConfig {
    /// Checks the options of a warehouse in `bucket`; the error names the bad option.
    pub fn new(bucket: &str, options: &BTreeMap<String, String>) -> Result<Self, String> {
        check_options(options, &OPTIONS, &[], "gcs", "a GCS warehouse")?;
        Ok(Self {
            bucket: bucket.to_string(),
            options: options.clone(),
        })
    }

    /// Builds the client, retrying transient and throttled requests with backoff.
    pub fn build(&self) -> object_store::Result<Arc<dyn ObjectStore>> {
        let mut options = client_options(&self.options, "gcs");
        if self
            .options
            .get("gcs.endpoint")
            .is_some_and(|e| e.starts_with("http://"))
        {
            options = options.with_allow_http(true);
        }
        let mut b = GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(&self.bucket)
            .with_client_options(options);
        let direct = [
            ("gcs.service-account-path", GoogleConfigKey::ServiceAccount),
            (
                "gcs.service-account-key",
                GoogleConfigKey::ServiceAccountKey,
            ),
            (
                "gcs.application-credentials",
                GoogleConfigKey::ApplicationCredentials,
            ),
            ("gcs.endpoint", GoogleConfigKey::BaseUrl),
        ];
        for (option, key) in direct {
            if let Some(v) = self.options.get(option) {
                b = b.with_config(key, v);
            }
        }
        b = b.with_retry(retry_config(&self.options, "gcs"));
        Ok(Arc::new(b.build()?))
    }

    /// The key of `location` in the bucket; None when it is in another bucket or not a
    /// `gs://` location.
    pub fn key_of<'a>(&self, location: &'a str) -> Option<&'a str> {
        let (bucket, key) = split_gcs(location)?;
        (bucket == self.bucket).then_some(key)
    }
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
    fn locations_split_into_bucket_and_key() {
        assert_eq!(split_gcs("gs://lake/wh/t"), Some(("lake", "wh/t")));
        assert_eq!(split_gcs("gs://lake"), Some(("lake", "")));
        assert_eq!(split_gcs("gs:///wh"), None);
        assert_eq!(split_gcs("s3://lake/wh"), None);
    }

    #[test]
    fn options_are_checked_and_secrets_hidden() {
        let e = GcsConfig::new("lake", &opts(&[("gcs.service-acount-path", "/k.json")]))
            .expect_err("refused");
        assert!(e.contains("'storage.gcs.service-acount-path'"), "{e}");
        assert!(e.contains("'storage.gcs.service-account-path'"), "{e}");
        let e = GcsConfig::new("lake", &opts(&[("gcs.max-retries", "many")])).expect_err("refused");
        assert!(e.contains("whole number"), "{e}");
        let c = GcsConfig::new(
            "lake",
            &opts(&[("gcs.service-account-key", r#"{"private_key":"pk-secret"}"#)]),
        )
        .expect("valid");
        assert!(!format!("{c:?}").contains("pk-secret"));
        assert_eq!(c.key_of("gs://lake/wh/x"), Some("wh/x"));
        assert_eq!(c.key_of("gs://other/wh/x"), None);
    }
}
