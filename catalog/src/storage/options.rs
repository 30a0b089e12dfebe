//! Storage options shared by the cloud stores: checking their names and values, and the
//! retry and timeout settings (`PREFIX.max-retries`, `PREFIX.retry-timeout`,
//! `PREFIX.connect-timeout`).

use std::collections::BTreeMap;
use std::time::Duration;

use object_store::{BackoffConfig, ClientOptions, RetryConfig};

/// `options` for `Debug` output, with the values of `secrets` replaced.
pub(crate) fn shown_options<'a>(
    options: &'a BTreeMap<String, String>,
    secrets: &[&str],
) -> BTreeMap<&'a str, &'a str> {
    options
        .iter()
        .map(|(k, v)| {
            let secret = secrets.contains(&k.as_str());
            (k.as_str(), if secret { "<redacted>" } else { v.as_str() })
        })
        .collect()
}

/// Checks `options` against `known` (name, meaning) and the values of the `bools` and of
/// the retry options under `prefix`; the error names the option. `what` names the
/// warehouse kind.
pub(crate) fn check_options(
    options: &BTreeMap<String, String>,
    known: &[(&str, &str)],
    bools: &[&str],
    prefix: &str,
    what: &str,
) -> Result<(), String> {
    for (k, v) in options {
        if !known.iter().any(|(name, _)| name == k) {
            let listed: Vec<String> = known
                .iter()
                .map(|(n, meaning)| format!("'storage.{n}' ({meaning})"))
                .collect();
            return Err(format!(
                "unknown storage option 'storage.{k}' for {what}; known options: {}",
                listed.join(", ")
            ));
        }
        if bools.contains(&k.as_str()) && !matches!(v.as_str(), "true" | "false") {
            return Err(format!(
                "storage option 'storage.{k}' must be 'true' or 'false', not '{v}'"
            ));
        }
    }
    check_retry_options(options, prefix)
}

/// Checks the values of the retry options under `prefix`.
fn check_retry_options(options: &BTreeMap<String, String>, prefix: &str) -> Result<(), String> {
    for (k, v) in options {
        let Some(name) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        match name {
            "max-retries" if v.parse::<usize>().is_err() => {
                return Err(format!(
                    "storage option 'storage.{k}' must be a whole number, not '{v}'"
                ));
            }
            "retry-timeout" | "connect-timeout" if parse_duration(v).is_none() => {
                return Err(format!(
                    "storage option 'storage.{k}' must be a duration such as 500ms, 30s or 3min, not '{v}'"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Exponential backoff on transient failures and throttling (HTTP 429, 503 SlowDown,
/// other 5xx, timeouts): 10 retries within 3 minutes unless the options say otherwise.
pub(crate) fn retry_config(options: &BTreeMap<String, String>, prefix: &str) -> RetryConfig {
    let get = |name: &str| options.get(&format!("{prefix}.{name}"));
    RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: get("max-retries")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
        retry_timeout: get("retry-timeout")
            .and_then(|v| parse_duration(v))
            .unwrap_or(Duration::from_secs(180)),
    }
}

/// Client options: the connect timeout, when given.
pub(crate) fn client_options(options: &BTreeMap<String, String>, prefix: &str) -> ClientOptions {
    let mut c = ClientOptions::new();
    if let Some(d) = options
        .get(&format!("{prefix}.connect-timeout"))
        .and_then(|v| parse_duration(v))
    {
        c = c.with_connect_timeout(d);
    }
    c
}

/// `500ms`, `30s`, `3min`, `1h`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "min" | "m" => Some(Duration::from_secs(n * 60)),
        "h" => Some(Duration::from_secs(n * 3600)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_retry_options() {
        assert_eq!(parse_duration("3min"), Some(Duration::from_secs(180)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
        let opts: BTreeMap<String, String> =
            [("s3.max-retries".to_string(), "2".to_string())].into();
        assert_eq!(retry_config(&opts, "s3").max_retries, 2);
        let bad: BTreeMap<String, String> =
            [("s3.retry-timeout".to_string(), "soon".to_string())].into();
        assert!(check_retry_options(&bad, "s3").is_err());
    }
}
