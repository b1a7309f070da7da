//! Step 2: the seed's environment variables for what the JSON leaves out, librdkafka values as text,
//! and the defaults.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::raw::Raw;
use super::schemas::{RegistryConfig, TopicSchema};
use super::settings::AwsConfig;
use super::store::RawStore;

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_SCHEMA_TTL_MS: u64 = 300_000;
const DEFAULT_SCHEMA_MISS_TTL_MS: u64 = 10_000;
const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 20;
const DEFAULT_MAX_KEY_BYTES: u64 = 4096;
const DEFAULT_MAX_HEADERS: u64 = 64;
const DEFAULT_MAX_HEADERS_BYTES: u64 = 16384;
const DEFAULT_MAX_IN_FLIGHT_RECORDS: u64 = 10_000;
const DEFAULT_MAX_IN_FLIGHT_BYTES: u64 = 64 << 20;
const DEFAULT_RETRY_AFTER_S: u64 = 1;
const DEFAULT_IDEMPOTENCY_WINDOW_S: u64 = 300;
const DEFAULT_IDEMPOTENCY_MAX_KEYS: u64 = 100_000;
const DEFAULT_IDEMPOTENCY_MAX_BYTES: u64 = 16 << 20;

/// Every setting with a value: step 2, [`resolve`].
#[derive(Debug)]
pub(super) struct Resolved {
    pub(super) kafka: BTreeMap<String, String>,
    pub(super) aws: AwsConfig,
    pub(super) registry: RegistryConfig,
    pub(super) timeout_ms: u64,
    pub(super) schema_ttl_ms: u64,
    pub(super) schema_miss_ttl_ms: u64,
    pub(super) topic: Option<String>,
    pub(super) max_body_bytes: u64,
    pub(super) max_key_bytes: u64,
    pub(super) max_headers: u64,
    pub(super) max_headers_bytes: u64,
    pub(super) allowed_topics: Option<Vec<String>>,
    pub(super) propagate_trace: bool,
    pub(super) max_in_flight_records: u64,
    pub(super) max_in_flight_bytes: u64,
    pub(super) retry_after_s: u64,
    pub(super) idempotency_window_s: u64,
    pub(super) idempotency_max_keys: u64,
    pub(super) idempotency_max_bytes: u64,
    pub(super) idempotency_store: Option<RawStore>,
    pub(super) fire_and_forget: bool,
    pub(super) batch: bool,
    pub(super) max_batch_records: Option<u64>,
    pub(super) metrics_address: Option<String>,
    pub(super) topics: HashMap<String, TopicSchema>,
}

/// Step 2: the seed's environment variables for what the JSON leaves out, librdkafka values as text,
/// and the defaults.
pub(super) fn resolve(raw: Raw, env: impl Fn(&str) -> Option<String>) -> Result<Resolved, String> {
    let env = |names: &[&str]| names.iter().find_map(|n| env(n).filter(|v| !v.trim().is_empty()));
    let mut kafka = raw
        .kafka
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            Value::Number(n) => Ok((key, n.to_string())),
            Value::Bool(b) => Ok((key, b.to_string())),
            _ => Err(format!("config key kafka.{key}: must be a string, number or boolean")),
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;

    let bootstrap = match (raw.bootstrap_servers, kafka.remove("bootstrap.servers")) {
        (Some(_), Some(_)) => {
            return Err("config keys bootstrap_servers and kafka.bootstrap.servers: set only one".into())
        }
        (Some(b), None) | (None, Some(b)) => Some(b),
        // The seed spells it KAFKA_BOOSTRAP_SERVERS; both spellings work.
        (None, None) => env(&["KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOSTRAP_SERVERS"]),
    };
    let bootstrap = bootstrap
        .filter(|b| !b.trim().is_empty())
        .ok_or("config key bootstrap_servers: missing (set it, or the environment variable KAFKA_BOOTSTRAP_SERVERS)")?;
    kafka.insert("bootstrap.servers".into(), bootstrap);

    let registry = match (raw.confluent_registry, raw.registry_name, raw.glue_endpoint) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err("config keys confluent_registry and registry_name/glue_endpoint: set only one registry".into())
        }
        (Some(confluent), None, None) => RegistryConfig::Confluent(confluent),
        (None, name, endpoint) => RegistryConfig::Glue {
            name: name.or_else(|| env(&["GLUE_REGISTRY_NAME"])).filter(|r| !r.trim().is_empty()).ok_or(
                "config key registry_name: missing (set it, or the environment variable GLUE_REGISTRY_NAME, or \
                 confluent_registry)",
            )?,
            endpoint,
        },
    };

    if raw.idempotency_store.is_some() && (raw.idempotency_max_keys.is_some() || raw.idempotency_max_bytes.is_some()) {
        return Err("config keys idempotency_max_keys and idempotency_max_bytes: they bound the in-process store; \
                    with idempotency_store the server's maxmemory bounds the keys"
            .into());
    }
    Ok(Resolved {
        kafka,
        aws: AwsConfig { region: raw.region.or_else(|| env(&["REGION", "AWS_REGION"])), role_arn: raw.aws_role_arn },
        registry,
        timeout_ms: raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        schema_ttl_ms: raw.schema_ttl_ms.unwrap_or(DEFAULT_SCHEMA_TTL_MS),
        schema_miss_ttl_ms: raw.schema_miss_ttl_ms.unwrap_or(DEFAULT_SCHEMA_MISS_TTL_MS),
        topic: raw.topic,
        max_body_bytes: raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        max_key_bytes: raw.max_key_bytes.unwrap_or(DEFAULT_MAX_KEY_BYTES),
        max_headers: raw.max_headers.unwrap_or(DEFAULT_MAX_HEADERS),
        max_headers_bytes: raw.max_headers_bytes.unwrap_or(DEFAULT_MAX_HEADERS_BYTES),
        propagate_trace: raw.propagate_trace.unwrap_or(true),
        max_in_flight_records: raw.max_in_flight_records.unwrap_or(DEFAULT_MAX_IN_FLIGHT_RECORDS),
        max_in_flight_bytes: raw.max_in_flight_bytes.unwrap_or(DEFAULT_MAX_IN_FLIGHT_BYTES),
        retry_after_s: raw.retry_after_s.unwrap_or(DEFAULT_RETRY_AFTER_S),
        idempotency_window_s: raw.idempotency_window_s.unwrap_or(DEFAULT_IDEMPOTENCY_WINDOW_S),
        idempotency_max_keys: raw.idempotency_max_keys.unwrap_or(DEFAULT_IDEMPOTENCY_MAX_KEYS),
        idempotency_max_bytes: raw.idempotency_max_bytes.unwrap_or(DEFAULT_IDEMPOTENCY_MAX_BYTES),
        idempotency_store: raw.idempotency_store,
        fire_and_forget: raw.fire_and_forget.unwrap_or(false),
        batch: raw.batch.unwrap_or(false),
        max_batch_records: raw.max_batch_records,
        metrics_address: raw.metrics_address,
        allowed_topics: raw.allowed_topics,
        topics: raw.topics,
    })
}
