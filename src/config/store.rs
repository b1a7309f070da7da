//! `idempotency_store`: the server that holds the idempotency keys every replica shares.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// The store's prefix of every key it writes, when the config names none.
const DEFAULT_KEY_PREFIX: &str = "krakend-kafka:idempotency:";
/// The longest one call to the store may take, when the config says nothing: a healthy Redis in the same
/// region answers in about a millisecond.
const DEFAULT_TIMEOUT_MS: u64 = 500;

/// `idempotency_store` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    url: String,
    key_prefix: Option<String>,
    timeout_ms: Option<u64>,
}

/// A Redis (or Valkey) server for the idempotency keys.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyStore {
    /// `redis://` or `rediss://` (TLS), with the credentials it may hold: never printed.
    pub url: String,
    pub key_prefix: String,
    /// The longest one call to the store may take; past it the request is refused 503.
    pub timeout: Duration,
}

impl fmt::Debug for RawStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawStore").field("url", &"<redacted>").finish_non_exhaustive()
    }
}

impl fmt::Debug for IdempotencyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyStore")
            .field("url", &"<redacted>")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What the store may be, within the backend's `timeout`: a refused URL is named by its key only, never
/// quoted (it may hold a password).
pub(super) fn check(raw: Option<RawStore>, timeout: Duration) -> Result<Option<IdempotencyStore>, String> {
    let Some(RawStore { url, key_prefix, timeout_ms }) = raw else { return Ok(None) };
    let scheme_ok = url.starts_with("redis://") || url.starts_with("rediss://");
    if !scheme_ok || redis::Client::open(url.as_str()).is_err() {
        return Err("config key idempotency_store.url: a redis:// or rediss:// (TLS) URL, such as \
                    redis://[user:password@]host:6379/0"
            .into());
    }
    let key_prefix = key_prefix.unwrap_or_else(|| DEFAULT_KEY_PREFIX.into());
    if key_prefix.len() > 64 || !key_prefix.chars().all(|c| c.is_ascii_graphic()) {
        return Err("config key idempotency_store.key_prefix: up to 64 visible ASCII characters".into());
    }
    let store_timeout = Duration::from_millis(timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
    if store_timeout.is_zero() || store_timeout >= timeout {
        return Err(format!(
            "config key idempotency_store.timeout_ms: greater than 0 and less than timeout_ms ({} ms)",
            timeout.as_millis()
        ));
    }
    Ok(Some(IdempotencyStore { url, key_prefix, timeout: store_timeout }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Option<RawStore> {
        Some(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn a_store_is_checked_and_its_url_never_quoted_or_printed() {
        let ten = Duration::from_secs(10);
        let store = check(raw(r#"{"url":"rediss://u:hunter2@cache.example:6379/2"}"#), ten).unwrap().unwrap();
        assert_eq!((store.key_prefix.as_str(), store.timeout), (DEFAULT_KEY_PREFIX, Duration::from_millis(500)));
        assert!(!format!("{store:?}").contains("hunter2"), "{store:?}");
        let cases = [
            (r#"{"url":"http://u:hunter2@h:6379"}"#, "idempotency_store.url: a redis:// or rediss://"),
            (r#"{"url":"redis://u:hunter2@h:notaport"}"#, "idempotency_store.url: a redis:// or rediss://"),
            (r#"{"url":"redis://h","key_prefix":"a b"}"#, "idempotency_store.key_prefix: up to 64"),
            (r#"{"url":"redis://h","timeout_ms":0}"#, "idempotency_store.timeout_ms: greater than 0"),
            (r#"{"url":"redis://h","timeout_ms":10000}"#, "less than timeout_ms (10000 ms)"),
        ];
        for (json, expected) in cases {
            let e = check(raw(json), ten).unwrap_err();
            assert!(e.contains(expected) && !e.contains("hunter2"), "{json}: {e}");
        }
        assert!(serde_json::from_str::<RawStore>(r#"{"url":"redis://h","prefix":"x"}"#).is_err(), "unknown keys");
        assert_eq!(check(None, ten).unwrap(), None);
    }
}
