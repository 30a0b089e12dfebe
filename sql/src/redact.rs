//! Keeping secrets out of logs, errors and `Debug` output.
//!
//! Option values whose key names a secret (passwords, tokens, keys, JAAS configs) are
//! shown as `***`, and so is the password part of a URI.

use std::collections::BTreeMap;
use std::fmt;

/// What a redacted value prints as.
pub const REDACTED: &str = "***";

/// Parts of option keys that mark the value as secret.
const SECRET_WORDS: [&str; 11] = [
    "authorization",
    "user-info",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "jaas",
    "credential",
    "private",
    "api-key",
];

/// Whether the value of option `key` must not be shown.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| k.contains(w))
        || k.ends_with("access-key")
        || k.ends_with("access_key")
        || k.ends_with("account-key")
        || k.ends_with("session-token")
}

/// `scheme://user:password@host/…` with the password replaced.
pub fn redact_uri(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://") else {
        return uri.to_string();
    };
    let rest = &uri[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:{REDACTED}{}",
            &uri[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => uri.to_string(),
    }
}

/// Shows an option map with secret values replaced.
pub struct Redacted<'a>(pub &'a BTreeMap<String, String>);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if is_secret_key(k) {
                    REDACTED.to_string()
                } else {
                    redact_uri(v)
                };
                (k, shown)
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised_and_hidden() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "sasl.jaas.config",
            "s3.secret-access-key",
            "sasl.oauthbearer.client.secret",
            "storage.adls.account-key",
            "storage.adls.sas-token",
            "storage.gcs.service-account-key",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "sasl.username",
            "bootstrap.servers",
            "s3.region",
            "storage.gcs.service-account-path",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
        assert_eq!(
            redact_uri("postgres://floe:hunter2@db:5432/cat"),
            "postgres://floe:***@db:5432/cat"
        );
        assert_eq!(redact_uri("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
