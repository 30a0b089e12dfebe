//! Azure Blob Storage and ADLS Gen2: the catalog's `storage.adls.*` options mapped onto
//! `object_store`'s Azure client.
//!
//! A warehouse is `abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/prefix` (as Spark and
//! PyIceberg write it), `wasbs://CONTAINER@ACCOUNT.blob.core.windows.net/prefix`, or
//! `az://CONTAINER/prefix` with the account in `storage.adls.account-name`. Credentials
//! not given as options come from `object_store`'s chain: `AZURE_*` environment
//! variables, workload identity and managed identity.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use serde::{Deserialize, Serialize};

use super::options::{check_options, client_options, retry_config, shown_options};

/// Options whose values are secrets.
const SECRET_OPTIONS: [&str; 3] = ["adls.account-key", "adls.sas-token", "adls.client-secret"];

/// What each supported option means, for the error that lists them.
const OPTIONS: [(&str, &str); 11] = [
    (
        "adls.account-name",
        "storage account (else taken from the location)",
    ),
    ("adls.account-key", "shared key"),
    ("adls.sas-token", "shared access signature"),
    ("adls.tenant-id", "Entra ID tenant of a service principal"),
    ("adls.client-id", "service principal's client id"),
    ("adls.client-secret", "service principal's secret"),
    (
        "adls.endpoint",
        "account URL, for Azurite or a private endpoint",
    ),
    (
        "adls.anonymous",
        "true: unsigned requests to a public container",
    ),
    (
        "adls.max-retries",
        "retries of a failed or throttled request (default 10)",
    ),
    (
        "adls.retry-timeout",
        "give a request up after this long, e.g. 3min",
    ),
    ("adls.connect-timeout", "connection timeout, e.g. 5s"),
];

/// Where an Azure warehouse lives and how to reach it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AzureConfig {
    /// The location prefix every file of the warehouse starts with, up to the container
    /// (`abfss://c@a.dfs.core.windows.net`).
    pub root: String,
    /// The storage account.
    pub account: String,
    /// The container.
    pub container: String,
    /// The catalog's `storage.*` options, prefix removed, already checked.
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureConfig")
            .field("root", &self.root)
            .field("options", &shown_options(&self.options, &SECRET_OPTIONS))
            .finish()
    }
}

/// Splits an Azure location into (root, account, container, key); `account` fills in for
/// `az://` locations, which do not name one.
pub fn split_azure<'a>(
    location: &'a str,
    account: Option<&str>,
) -> Option<(String, String, String, &'a str)> {
    let (scheme, rest) = location.split_once("://")?;
    let (authority, key) = rest.split_once('/').unwrap_or((rest, ""));
    match scheme {
        "abfss" | "abfs" | "wasbs" | "wasb" => {
            let (container, host) = authority.split_once('@')?;
            let account = host.split('.').next()?;
            (!container.is_empty() && !account.is_empty()).then(|| {
                (
                    format!("{scheme}://{authority}"),
                    account.to_string(),
                    container.to_string(),
                    key,
                )
            })
        }
        "az" | "azure" => {
            let account = account?;
            (!authority.is_empty()).then(|| {
                (
                    format!("{scheme}://{authority}"),
                    account.to_string(),
                    authority.to_string(),
                    key,
                )
            })
        }
        _ => None,
    }
}

impl AzureConfig {
    /// Checks the options of a warehouse at `location`; the error names the bad option.
    pub fn new(location: &str, options: &BTreeMap<String, String>) -> Result<Self, String> {
        check_options(
            options,
            &OPTIONS,
            &["adls.anonymous"],
            "adls",
            "an Azure warehouse",
        )?;
        let (root, account, container, _) =
            split_azure(location, options.get("adls.account-name").map(String::as_str))
                .ok_or_else(|| {
                    format!(
                        "warehouse '{location}' is not an Azure location: use \
                         abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH, or az://CONTAINER/PATH \
                         with 'storage.adls.account-name'"
                    )
                })?;
        Ok(Self {
            root,
            account,
            container,
            options: options.clone(),
        })
    }

    /// Builds the client, retrying transient and throttled requests with backoff.
    pub fn build(&self) -> object_store::Result<Arc<dyn ObjectStore>> {
        let mut b = MicrosoftAzureBuilder::from_env()
            .with_account(&self.account)
            .with_container_name(&self.container)
            // First: the settings below change these client options.
            .with_client_options(client_options(&self.options, "adls"));
        let direct = [
            ("adls.account-key", AzureConfigKey::AccessKey),
            ("adls.sas-token", AzureConfigKey::SasKey),
            ("adls.tenant-id", AzureConfigKey::AuthorityId),
            ("adls.client-id", AzureConfigKey::ClientId),
            ("adls.client-secret", AzureConfigKey::ClientSecret),
            ("adls.endpoint", AzureConfigKey::Endpoint),
        ];
        for (option, key) in direct {
            if let Some(v) = self.options.get(option) {
                b = b.with_config(key, v);
            }
        }
        if self
            .options
            .get("adls.endpoint")
            .is_some_and(|e| e.starts_with("http://"))
        {
            b = b.with_allow_http(true);
        }
        if self
            .options
            .get("adls.anonymous")
            .is_some_and(|v| v == "true")
        {
            b = b.with_skip_signature(true);
        }
        b = b.with_retry(retry_config(&self.options, "adls"));
        Ok(Arc::new(b.build()?))
    }

    /// The key of `location` in the container; None when it is outside the warehouse's
    /// account and container.
    pub fn key_of<'a>(&self, location: &'a str) -> Option<&'a str> {
        let (_, account, container, key) = split_azure(location, Some(&self.account))?;
        (account == self.account && container == self.container).then_some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_of_every_form_split() {
        let (root, account, container, key) =
            split_azure("abfss://lake@acme.dfs.core.windows.net/wh/t", None).expect("abfss");
        assert_eq!(root, "abfss://lake@acme.dfs.core.windows.net");
        assert_eq!(
            (account.as_str(), container.as_str(), key),
            ("acme", "lake", "wh/t")
        );
        let (_, account, container, key) = split_azure("az://lake/wh/t", Some("acme")).expect("az");
        assert_eq!(
            (account.as_str(), container.as_str(), key),
            ("acme", "lake", "wh/t")
        );
        assert!(split_azure("az://lake/wh", None).is_none());
        assert!(split_azure("s3://lake/wh", Some("acme")).is_none());
    }

    #[test]
    fn options_are_checked_and_secrets_hidden() {
        let opts = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let e = AzureConfig::new("az://c/wh", &opts(&[("adls.acount-name", "a")]))
            .expect_err("refused");
        assert!(e.contains("'storage.adls.acount-name'"), "{e}");
        let e = AzureConfig::new("az://c/wh", &opts(&[])).expect_err("refused");
        assert!(e.contains("adls.account-name"), "{e}");
        let c = AzureConfig::new(
            "abfss://c@acct.dfs.core.windows.net/wh",
            &opts(&[("adls.account-key", "c2VjcmV0LWtleQ==")]),
        )
        .expect("valid");
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
        assert_eq!(
            c.key_of("abfss://c@acct.dfs.core.windows.net/wh/x"),
            Some("wh/x")
        );
        assert_eq!(
            c.key_of("abfss://other@acct.dfs.core.windows.net/wh/x"),
            None
        );
    }
}
