//! Step 1: the configuration as written, with types checked and unknown keys refused.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;

use super::schemas::{ConfluentRegistry, TopicSchema};
use super::store::RawStore;

/// The configuration as written: step 1, [`parse`].
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    pub(super) bootstrap_servers: Option<String>,
    pub(super) registry_name: Option<String>,
    pub(super) region: Option<String>,
    pub(super) glue_endpoint: Option<String>,
    pub(super) aws_role_arn: Option<String>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) schema_ttl_ms: Option<u64>,
    pub(super) schema_miss_ttl_ms: Option<u64>,
    pub(super) topic: Option<String>,
    pub(super) max_body_bytes: Option<u64>,
    pub(super) max_key_bytes: Option<u64>,
    pub(super) max_headers: Option<u64>,
    pub(super) max_headers_bytes: Option<u64>,
    pub(super) allowed_topics: Option<Vec<String>>,
    pub(super) propagate_trace: Option<bool>,
    pub(super) max_in_flight_records: Option<u64>,
    pub(super) max_in_flight_bytes: Option<u64>,
    pub(super) retry_after_s: Option<u64>,
    pub(super) idempotency_window_s: Option<u64>,
    pub(super) idempotency_max_keys: Option<u64>,
    pub(super) idempotency_max_bytes: Option<u64>,
    pub(super) idempotency_store: Option<RawStore>,
    pub(super) fire_and_forget: Option<bool>,
    pub(super) batch: Option<bool>,
    pub(super) max_batch_records: Option<u64>,
    pub(super) metrics_address: Option<String>,
    pub(super) confluent_registry: Option<ConfluentRegistry>,
    #[serde(default)]
    pub(super) kafka: BTreeMap<String, Value>,
    #[serde(default)]
    pub(super) topics: HashMap<String, TopicSchema>,
}

/// Step 1: the JSON as written, with types checked and unknown keys refused. Nothing, or `null` (a
/// plugin block left out), is `{}`: everything then comes from the environment.
pub(super) fn parse(json: &[u8]) -> Result<Raw, String> {
    match json.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Ok(Raw::default()),
        Some(b'n') if json.trim_ascii() == b"null" => Ok(Raw::default()),
        Some(b'{') => {
            let mut de = serde_json::Deserializer::from_slice(json);
            let raw = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    format!("config: {inner}")
                } else {
                    format!("config key {path}: {inner}")
                }
            })?;
            de.end().map_err(|e| format!("config: {e}"))?;
            Ok(raw)
        }
        Some(_) => Err("config: must be a JSON object".into()),
    }
}
