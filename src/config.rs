//! The publisher's configuration: the JSON block a caller passes (the KrakenD plugin passes its
//! `extra_config`), with the seed Lambda's environment variables as fallbacks. Every error names the key.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::admission;
use crate::allow::AllowList;
use crate::idempotency;
use crate::request::Rules;

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
const DEFAULT_MAX_BATCH_RECORDS: u64 = 500;
const DEFAULT_STATISTICS_INTERVAL_MS: &str = "5000";

/// librdkafka looks for expired records about once a second, so it reports one up to this long after
/// `message.timeout.ms`.
const EXPIRY_SCAN: Duration = Duration::from_secs(1);
/// How long before `timeout_ms` the default `message.timeout.ms` ends: the expiry scan, and half a second
/// more so that librdkafka's verdict, which names the cause, comes before the backend's own deadline
/// answers 504 (src/deadline.rs).
const VERDICT_LEAD: Duration = Duration::from_millis(EXPIRY_SCAN.as_millis() as u64 + 500);

/// A backend's configuration: what its producer is built from (shared by every backend whose
/// [`ProducerConfig`] is equal), the AWS settings, and what stays per backend.
#[derive(Clone, PartialEq, Debug)]
pub struct Config {
    pub producer: ProducerConfig,
    pub aws: AwsConfig,
    pub backend: BackendConfig,
    /// Where the process serves its metrics and readiness (`metrics_address`); one address per process.
    pub metrics_address: Option<SocketAddr>,
}

/// librdkafka properties, `bootstrap.servers` included, with this crate's defaults filled in.
#[derive(Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    pub kafka: BTreeMap<String, String>,
    /// `sasl.mechanism: AWS_MSK_IAM` was asked for: SASL/OAUTHBEARER with tokens signed in-process.
    pub msk_iam: bool,
}

/// The AWS settings Glue and MSK IAM share.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AwsConfig {
    /// AWS region of the registry and of MSK; `None` leaves it to the AWS default chain (profile, IMDS).
    pub region: Option<String>,
    /// A role to assume on top of the AWS default credential chain, for Glue and MSK IAM alike.
    pub role_arn: Option<String>,
}

#[derive(Clone, PartialEq, Debug)]
pub struct BackendConfig {
    /// Where the topics' schemas come from.
    pub registry: RegistryConfig,
    /// The budget of each wait of a publish: the schema fetch on a cache miss, then the broker's
    /// acknowledgement.
    pub timeout: Duration,
    /// How long a fetched schema is served before it is fetched again.
    pub schema_ttl: Duration,
    /// How long "no such schema" is remembered, so a misdirected client cannot hammer Glue.
    pub schema_miss_ttl: Duration,
    /// How a topic finds its schema, for topics that say (`topics.T`).
    pub topics: HashMap<String, TopicSchema>,
    /// What the backend's requests may be.
    pub rules: Rules,
    /// How much the backend holds at once before it answers 429.
    pub admission: admission::Limits,
    /// How long and how many `Idempotency-Key`s are remembered.
    pub idempotency: idempotency::Limits,
    /// Answer 202 once a record is queued, without waiting for the broker.
    pub fire_and_forget: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RegistryConfig {
    /// An AWS Glue Schema Registry: its name, and an endpoint override (also honoured:
    /// `AWS_ENDPOINT_URL_GLUE`, `AWS_ENDPOINT_URL`).
    Glue { name: String, endpoint: Option<String> },
    /// A registry with Confluent Schema Registry's REST API.
    Confluent(ConfluentRegistry),
}

/// `confluent_registry`: a registry with Confluent Schema Registry's REST API (Confluent's, Karapace,
/// Apicurio's compatible API, Redpanda's).
#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfluentRegistry {
    /// Its base URL, `http://` or `https://`.
    pub url: String,
    /// HTTP basic authentication (Confluent Cloud: the API key and secret).
    pub username: Option<String>,
    pub password: Option<String>,
    /// A bearer token, instead of basic authentication.
    pub bearer_token: Option<String>,
    /// A PEM file of the CA certificates to trust for an `https://` URL, instead of the system's.
    pub ca_location: Option<String>,
    /// How a topic's subject is named when `topics.T.schema_name` does not name it.
    #[serde(default)]
    pub subject_name_strategy: SubjectNameStrategy,
}

impl fmt::Debug for ConfluentRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConfluentRegistry")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("bearer_token", &hidden(&self.bearer_token))
            .field("ca_location", &self.ca_location)
            .field("subject_name_strategy", &self.subject_name_strategy)
            .finish()
    }
}

/// Confluent's subject name strategies, named after their Java classes.
#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // Confluent's names
pub enum SubjectNameStrategy {
    /// `<topic>-value`
    #[default]
    TopicName,
    /// the message type's full name (`topics.T.message_type`)
    RecordName,
    /// `<topic>-<message type's full name>`
    TopicRecordName,
}

/// How a topic finds its schema and frames its records (`topics.T`); by default the schema named after
/// the topic, its latest version, the schema's first top-level message, as plain protobuf.
#[derive(Deserialize, Clone, Default, PartialEq, Eq, Debug)]
#[serde(deny_unknown_fields)]
pub struct TopicSchema {
    /// The schema (Glue) or subject (Confluent) in the registry, when it is not the one the topic's name
    /// gives (several topics may share one).
    pub schema_name: Option<String>,
    /// A version number to pin (fetched once, never again), or "latest".
    #[serde(default, deserialize_with = "version")]
    pub schema_version: Option<i64>,
    /// Full name of the message type to encode.
    pub message_type: Option<String>,
    /// What is written before the protobuf bytes.
    #[serde(default)]
    pub wire_format: WireFormat,
    /// With the `glue` wire format: whether the bytes after its header are compressed.
    pub glue_compression: Option<GlueCompression>,
}

/// A record's value: the protobuf bytes alone, or framed as a schema registry's deserializers expect.
#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum WireFormat {
    /// The message's bytes, as the seed wrote them.
    #[default]
    Plain,
    /// AWS Glue Schema Registry's serializer's format.
    Glue,
    /// Confluent's serializer's format.
    Confluent,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum GlueCompression {
    #[default]
    None,
    Zlib,
}

/// `schema_version`: a number from 1, or "latest" (the same as leaving it out).
fn version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) if s == "latest" => Ok(None),
        Value::Number(n) if n.as_i64().is_some_and(|n| n >= 1) => Ok(n.as_i64()),
        v => Err(serde::de::Error::custom(format!("a version number from 1 or \"latest\", not {v}"))),
    }
}

/// The configuration as written: step 1, [`parse`].
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    bootstrap_servers: Option<String>,
    registry_name: Option<String>,
    region: Option<String>,
    glue_endpoint: Option<String>,
    aws_role_arn: Option<String>,
    timeout_ms: Option<u64>,
    schema_ttl_ms: Option<u64>,
    schema_miss_ttl_ms: Option<u64>,
    topic: Option<String>,
    max_body_bytes: Option<u64>,
    max_key_bytes: Option<u64>,
    max_headers: Option<u64>,
    max_headers_bytes: Option<u64>,
    allowed_topics: Option<Vec<String>>,
    propagate_trace: Option<bool>,
    max_in_flight_records: Option<u64>,
    max_in_flight_bytes: Option<u64>,
    retry_after_s: Option<u64>,
    idempotency_window_s: Option<u64>,
    idempotency_max_keys: Option<u64>,
    idempotency_max_bytes: Option<u64>,
    fire_and_forget: Option<bool>,
    batch: Option<bool>,
    max_batch_records: Option<u64>,
    metrics_address: Option<String>,
    confluent_registry: Option<ConfluentRegistry>,
    #[serde(default)]
    kafka: BTreeMap<String, Value>,
    #[serde(default)]
    topics: HashMap<String, TopicSchema>,
}

/// Every setting with a value: step 2, [`resolve`].
#[derive(Debug)]
struct Resolved {
    kafka: BTreeMap<String, String>,
    aws: AwsConfig,
    registry: RegistryConfig,
    timeout_ms: u64,
    schema_ttl_ms: u64,
    schema_miss_ttl_ms: u64,
    topic: Option<String>,
    max_body_bytes: u64,
    max_key_bytes: u64,
    max_headers: u64,
    max_headers_bytes: u64,
    allowed_topics: Option<Vec<String>>,
    propagate_trace: bool,
    max_in_flight_records: u64,
    max_in_flight_bytes: u64,
    retry_after_s: u64,
    idempotency_window_s: u64,
    idempotency_max_keys: u64,
    idempotency_max_bytes: u64,
    fire_and_forget: bool,
    batch: bool,
    max_batch_records: Option<u64>,
    metrics_address: Option<String>,
    topics: HashMap<String, TopicSchema>,
}

impl Config {
    /// Reads `json` (empty or `null` means `{}`), fills in what it leaves out from `env` and the defaults, and
    /// applies the policy. Every error names the key.
    pub fn parse(json: &[u8], env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        policy(resolve(parse(json)?, env)?)
    }
}

/// Step 1: the JSON as written, with types checked and unknown keys refused. Nothing, or `null` (a
/// plugin block left out), is `{}`: everything then comes from the environment.
fn parse(json: &[u8]) -> Result<Raw, String> {
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

/// Step 2: the seed's environment variables for what the JSON leaves out, librdkafka values as text,
/// and the defaults.
fn resolve(raw: Raw, env: impl Fn(&str) -> Option<String>) -> Result<Resolved, String> {
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
        fire_and_forget: raw.fire_and_forget.unwrap_or(false),
        batch: raw.batch.unwrap_or(false),
        max_batch_records: raw.max_batch_records,
        metrics_address: raw.metrics_address,
        allowed_topics: raw.allowed_topics,
        topics: raw.topics,
    })
}

/// Step 3: what this crate refuses, and the librdkafka values it derives.
fn policy(resolved: Resolved) -> Result<Config, String> {
    let Resolved { mut kafka, .. } = resolved;
    let positive = |key: &str, ms: u64| match ms {
        0 => Err(format!("config key {key}: must be greater than 0")),
        ms => Ok(Duration::from_millis(ms)),
    };
    let timeout = positive("timeout_ms", resolved.timeout_ms)?;
    if let Some(topic) = &resolved.topic {
        crate::request::check_topic(topic).map_err(|f| format!("config key topic: {}", f.message))?;
    }
    let limit = |key: &str, n: u64| match n {
        0 => Err(format!("config key {key}: must be greater than 0")),
        n => usize::try_from(n).map_err(|_| format!("config key {key}: too large for this machine")),
    };
    let max_body_bytes = limit("max_body_bytes", resolved.max_body_bytes)?;
    let batch = match (resolved.batch, resolved.max_batch_records) {
        (false, None) => None,
        (false, Some(_)) => return Err("config key max_batch_records: only for a batch endpoint (batch: true)".into()),
        // A batch's answer lists every record's verdict: it waits for them.
        (true, _) if resolved.fire_and_forget => {
            return Err(
                "config keys batch and fire_and_forget: not both (a batch's answer lists each record's verdict)".into(),
            )
        }
        (true, n) => Some(limit("max_batch_records", n.unwrap_or(DEFAULT_MAX_BATCH_RECORDS))?),
    };
    let metrics_address = match &resolved.metrics_address {
        None => None,
        Some(a) => Some(a.parse::<SocketAddr>().map_err(|_| {
            format!("config key metrics_address: an IP address and port such as 127.0.0.1:9091, not {a:?}")
        })?),
    };
    check_registry(&resolved.registry)?;
    for (topic, schema) in &resolved.topics {
        check_topic_schema(topic, schema, &resolved.registry)?;
    }

    // A 200 promises that every in-sync replica has the record, exactly once: these two stay on.
    match kafka.get("enable.idempotence").map(String::as_str) {
        None | Some("true") => {}
        Some(v) => return Err(format!("config key kafka.enable.idempotence: must be true, not {v:?}")),
    }
    match kafka.get("acks").or(kafka.get("request.required.acks")).map(String::as_str) {
        None | Some("all") | Some("-1") => {}
        Some(v) => return Err(format!("config key kafka.acks: must be all, not {v:?}")),
    }
    kafka.insert("enable.idempotence".into(), "true".into());
    // The seed's name for MSK IAM; librdkafka knows it as OAUTHBEARER with a token callback.
    let msk_iam = kafka.get("sasl.mechanism").map(String::as_str) == Some("AWS_MSK_IAM");
    if msk_iam {
        kafka.insert("sasl.mechanism".into(), "OAUTHBEARER".into());
        kafka.entry("security.protocol".into()).or_insert_with(|| "SASL_SSL".into());
    }
    let expiry = timeout - VERDICT_LEAD.min(timeout / 2);
    // librdkafka gives up on every record at this deadline: it must exist (0 would be infinite), and by
    // default its report arrives within the budget.
    let delivery_timeout = kafka.entry("message.timeout.ms".into()).or_insert(expiry.as_millis().to_string());
    if !delivery_timeout.parse::<u64>().is_ok_and(|ms| ms > 0) {
        return Err(format!("config key kafka.message.timeout.ms: not a positive number: {delivery_timeout:?}"));
    }
    // librdkafka waits 30 s before it calls a topic missing; answer 404 well inside the budget.
    let propagation = (timeout.as_millis() / 2).max(1).to_string();
    kafka.entry("topic.metadata.propagation.max.ms".into()).or_insert(propagation);
    kafka.entry("client.id".into()).or_insert_with(|| "krakend-kafka".into());
    // Kafka's Java client puts a key on murmur2(key) % partitions, librdkafka's default on a CRC32 of it:
    // the Java placement keeps per-key order and co-partitioning for teams moving from a Java producer.
    kafka.entry("partitioner".into()).or_insert_with(|| "murmur2_random".into());
    // librdkafka's 5 ms is paid by every caller waiting for its ack. 1 ms answered 8% more requests than 2
    // with 4% less gateway CPU each; 0.5 ms makes the broker thread wake for batches too small to pay
    // (measured: docs/performance.md).
    kafka.entry("linger.ms".into()).or_insert_with(|| "1".into());
    // The metrics' librdkafka figures and readiness's broker state come from its statistics, off by default.
    kafka.entry("statistics.interval.ms".into()).or_insert_with(|| DEFAULT_STATISTICS_INTERVAL_MS.into());

    Ok(Config {
        producer: ProducerConfig { kafka, msk_iam },
        aws: resolved.aws,
        metrics_address,
        backend: BackendConfig {
            registry: resolved.registry,
            timeout,
            schema_ttl: positive("schema_ttl_ms", resolved.schema_ttl_ms)?,
            schema_miss_ttl: positive("schema_miss_ttl_ms", resolved.schema_miss_ttl_ms)?,
            topics: resolved.topics,
            rules: Rules {
                topic: resolved.topic,
                max_body_bytes,
                max_key_bytes: limit("max_key_bytes", resolved.max_key_bytes)?,
                max_headers: limit("max_headers", resolved.max_headers)?,
                max_headers_bytes: limit("max_headers_bytes", resolved.max_headers_bytes)?,
                allowed: resolved.allowed_topics.map(AllowList::new).transpose()?,
                propagate_trace: resolved.propagate_trace,
                batch,
            },
            admission: admission::Limits {
                records: limit("max_in_flight_records", resolved.max_in_flight_records)?,
                bytes: limit("max_in_flight_bytes", resolved.max_in_flight_bytes)?,
                retry_after_s: match resolved.retry_after_s {
                    s @ 1..=3600 => s as u32,
                    _ => return Err("config key retry_after_s: from 1 to 3600".into()),
                },
            },
            idempotency: idempotency::Limits {
                window: Duration::from_secs(match resolved.idempotency_window_s {
                    s @ 1..=86_400 => s,
                    _ => return Err("config key idempotency_window_s: from 1 to 86400 (a day)".into()),
                }),
                max_keys: limit("idempotency_max_keys", resolved.idempotency_max_keys)?,
                max_bytes: limit("idempotency_max_bytes", resolved.idempotency_max_bytes)?,
            },
            fire_and_forget: resolved.fire_and_forget,
        },
    })
}

fn check_registry(registry: &RegistryConfig) -> Result<(), String> {
    let RegistryConfig::Confluent(c) = registry else { return Ok(()) };
    if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
        return Err(format!("config key confluent_registry.url: an http:// or https:// URL, not {:?}", c.url));
    }
    if c.bearer_token.is_some() && (c.username.is_some() || c.password.is_some()) {
        return Err("config key confluent_registry.bearer_token: set it or username and password, not both".into());
    }
    if c.username.is_some() != c.password.is_some() {
        return Err("config keys confluent_registry.username and password: set both or neither".into());
    }
    Ok(())
}

/// A framed format names the registry's id of the schema: it must be the registry the backend reads.
fn check_topic_schema(topic: &str, schema: &TopicSchema, registry: &RegistryConfig) -> Result<(), String> {
    let key = format!("config key topics.{topic}");
    match (schema.wire_format, registry) {
        (WireFormat::Glue, RegistryConfig::Confluent(_)) => {
            return Err(format!(
                "{key}.wire_format: glue needs a Glue registry (registry_name), not confluent_registry"
            ))
        }
        (WireFormat::Confluent, RegistryConfig::Glue { .. }) => {
            return Err(format!("{key}.wire_format: confluent needs confluent_registry"))
        }
        _ => {}
    }
    if schema.glue_compression.is_some() && schema.wire_format != WireFormat::Glue {
        return Err(format!("{key}.glue_compression: only with wire_format glue"));
    }
    Ok(())
}

/// Whether a librdkafka property holds a secret that must never be printed.
fn is_secret(key: &str) -> bool {
    ["password", "secret", "sasl.jaas", "key.pem", "oauthbearer.config", "token"].iter().any(|s| key.contains(s))
}

impl ProducerConfig {
    /// How often librdkafka reports its statistics (`statistics.interval.ms`, which the policy sets unless
    /// the config does); `None` when the config turned them off.
    pub fn statistics_interval(&self) -> Option<Duration> {
        let ms = self.kafka.get("statistics.interval.ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(Duration::from_millis(ms)).filter(|d| !d.is_zero())
    }

    /// How long librdkafka may hold a record before it answers it: `message.timeout.ms` (which the policy
    /// always sets) and its expiry scan.
    pub fn drain(&self) -> Duration {
        let ms = self.kafka.get("message.timeout.ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        Duration::from_millis(ms) + EXPIRY_SCAN
    }
}

impl fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kafka: BTreeMap<_, _> =
            self.kafka.iter().map(|(k, v)| (k, if is_secret(k) { "<redacted>" } else { v.as_str() })).collect();
        f.debug_struct("ProducerConfig").field("kafka", &kafka).field("msk_iam", &self.msk_iam).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    const FULL: &str = r#"{"bootstrap_servers":"b:9092","registry_name":"r","region":"eu-west-1"}"#;

    fn resolved(json: &str) -> Resolved {
        resolve(parse(json.as_bytes()).unwrap(), |_| None).unwrap()
    }

    #[test]
    fn parse_checks_types_and_names_unknown_keys() {
        let cases = [
            (r#"{"registy_name":"r"}"#, "registy_name"),
            (r#"{"timeout_ms":"soon"}"#, "config key timeout_ms: invalid type"),
            (r#"{"max_body_bytes":1.5}"#, "config key max_body_bytes: invalid type"),
            (r#"{"max_body_bytes":"1"}"#, "config key max_body_bytes: invalid type"),
            (r#"{"max_body_bytes":-1}"#, "config key max_body_bytes: invalid value"),
            (r#"{"topic":5}"#, "config key topic: invalid type"),
            (r#"{"topics":{"t":{"message_typ":"x"}}}"#, "config key topics.t.message_typ: unknown field `message_typ`"),
            (r#"{"topics":{"t":{"schema_version":0}}}"#, "config key topics.t.schema_version: a version number from 1"),
            (
                r#"{"topics":{"t":{"schema_version":"1"}}}"#,
                "config key topics.t.schema_version: a version number from 1",
            ),
            (r#"[1]"#, "config: must be a JSON object"),
            (r#"{"region":"x"} trailing"#, "config: trailing characters"),
        ];
        for (json, expected) in cases {
            let err = parse(json.as_bytes()).err().unwrap_or_else(|| panic!("{json}: parsed"));
            assert!(err.contains(expected), "{json}: {err:?} should contain {expected:?}");
        }
        let raw = parse(br#"{"topic":"t","max_body_bytes":2048,"kafka":{"linger.ms":1}}"#).unwrap();
        assert_eq!(
            (raw.topic.as_deref(), raw.max_body_bytes, raw.kafka["linger.ms"].as_u64()),
            (Some("t"), Some(2048), Some(1))
        );
        assert!(parse(b"  ").unwrap().kafka.is_empty());
        assert!(parse(b" null ").unwrap().bootstrap_servers.is_none());
    }

    #[test]
    fn resolve_reads_the_seed_environment_with_its_spelling() {
        let env = env_of(&[
            ("KAFKA_BOOSTRAP_SERVERS", "seed:9092"),
            ("GLUE_REGISTRY_NAME", "reg"),
            ("REGION", "eu-central-1"),
        ]);
        let r = resolve(Raw::default(), env).unwrap();
        assert_eq!(r.kafka["bootstrap.servers"], "seed:9092");
        assert_eq!(r.registry, RegistryConfig::Glue { name: "reg".into(), endpoint: None });
        assert_eq!(r.aws.region.as_deref(), Some("eu-central-1"));
    }

    #[test]
    fn resolve_lets_the_config_win_over_the_environment_and_the_right_spelling_over_the_seeds() {
        let env = env_of(&[
            ("KAFKA_BOOSTRAP_SERVERS", "seed:1"),
            ("KAFKA_BOOTSTRAP_SERVERS", "right:2"),
            ("GLUE_REGISTRY_NAME", "env"),
            ("AWS_REGION", "us-east-1"),
        ]);
        let r = resolve(Raw::default(), &env).unwrap();
        assert_eq!(r.kafka["bootstrap.servers"], "right:2");
        assert_eq!(r.aws.region.as_deref(), Some("us-east-1"));
        let r = resolve(parse(FULL.as_bytes()).unwrap(), &env).unwrap();
        assert_eq!(r.kafka["bootstrap.servers"], "b:9092");
        assert_eq!(r.registry, RegistryConfig::Glue { name: "r".into(), endpoint: None });
    }

    #[test]
    fn resolve_fills_in_defaults_and_passes_librdkafka_properties_through_as_text() {
        let r = resolved(FULL);
        assert_eq!(
            (r.timeout_ms, r.schema_ttl_ms, r.schema_miss_ttl_ms, r.max_body_bytes),
            (10_000, 300_000, 10_000, 1 << 20)
        );
        assert!(r.topic.is_none() && r.topics.is_empty());
        let r = resolved(
            r#"{"bootstrap_servers":"b","registry_name":"r",
            "kafka":{"linger.ms":0,"compression.type":"lz4","enable.ssl.certificate.verification":false},
            "topics":{"orders":{"message_type":"shop.Order"},"plain":{},
                      "audit":{"schema_name":"shared-events","schema_version":3},"new":{"schema_version":"latest"}}}"#,
        );
        assert_eq!(r.kafka["linger.ms"], "0");
        assert_eq!(r.kafka["compression.type"], "lz4");
        assert_eq!(r.kafka["enable.ssl.certificate.verification"], "false");
        let orders = TopicSchema { message_type: Some("shop.Order".into()), ..TopicSchema::default() };
        let audit = TopicSchema {
            schema_name: Some("shared-events".into()),
            schema_version: Some(3),
            ..TopicSchema::default()
        };
        assert_eq!(r.topics["orders"], orders);
        assert_eq!(r.topics["audit"], audit);
        assert_eq!(
            (r.topics["plain"].clone(), r.topics["new"].clone()),
            (TopicSchema::default(), TopicSchema::default())
        );
    }

    #[test]
    fn resolve_names_what_is_missing_or_doubled() {
        let cases = [
            (r#"{"registry_name":"r"}"#, "bootstrap_servers: missing"),
            (r#"{"bootstrap_servers":" "}"#, "bootstrap_servers: missing"),
            (r#"{"bootstrap_servers":"b"}"#, "registry_name: missing"),
            (r#"{"bootstrap_servers":"b","kafka":{"bootstrap.servers":"c"}}"#, "set only one"),
            (r#"{"kafka":{"linger.ms":[1]}}"#, "kafka.linger.ms: must be a string"),
        ];
        for (json, expected) in cases {
            let err = resolve(parse(json.as_bytes()).unwrap(), |_| None).unwrap_err();
            assert!(err.contains(expected), "{json}: {err:?} should contain {expected:?}");
        }
    }

    #[test]
    fn policy_keeps_acks_all_and_idempotence_and_derives_the_deadlines() {
        let c = policy(resolved(FULL)).unwrap();
        let kafka = &c.producer.kafka;
        assert_eq!(kafka["enable.idempotence"], "true");
        assert_eq!(kafka["message.timeout.ms"], "8500");
        assert_eq!(kafka["topic.metadata.propagation.max.ms"], "5000");
        assert_eq!(kafka["linger.ms"], "1");
        assert_eq!(kafka["client.id"], "krakend-kafka");
        assert_eq!(kafka["partitioner"], "murmur2_random");
        assert_eq!(kafka["statistics.interval.ms"], "5000");
        assert_eq!(c.producer.statistics_interval(), Some(Duration::from_secs(5)));
        assert_eq!(c.metrics_address, None);
        assert_eq!(c.producer.drain(), Duration::from_millis(9500));
        assert_eq!(c.backend.timeout, Duration::from_secs(10));
        assert_eq!(c.backend.schema_ttl, Duration::from_secs(300));
        assert_eq!(
            c.backend.rules,
            Rules {
                topic: None,
                max_body_bytes: 1 << 20,
                max_key_bytes: 4096,
                max_headers: 64,
                max_headers_bytes: 16384,
                allowed: None,
                propagate_trace: true,
                batch: None,
            }
        );

        let mut short = resolved(FULL);
        short.timeout_ms = 1000;
        assert_eq!(policy(short).unwrap().producer.kafka["message.timeout.ms"], "500");
        let mut explicit = resolved(FULL);
        explicit.timeout_ms = 3000;
        explicit.kafka.insert("message.timeout.ms".into(), "2000".into());
        explicit.kafka.insert("partitioner".into(), "consistent_random".into());
        let kafka = policy(explicit).unwrap().producer.kafka;
        assert_eq!(
            (kafka["message.timeout.ms"].as_str(), kafka["topic.metadata.propagation.max.ms"].as_str()),
            ("2000", "1500")
        );
        assert_eq!(kafka["partitioner"], "consistent_random", "a partitioner the config names is kept");
    }

    #[test]
    fn metrics_address_is_an_ip_address_and_port_and_statistics_may_be_set_or_turned_off() {
        let with = |extra: &str| {
            Config::parse(format!(r#"{{"bootstrap_servers":"b","registry_name":"r"{extra}}}"#).as_bytes(), |_| None)
        };
        let c = with(r#","metrics_address":"0.0.0.0:9091","kafka":{"statistics.interval.ms":500}"#).unwrap();
        assert_eq!(c.metrics_address, Some("0.0.0.0:9091".parse().unwrap()));
        assert_eq!(c.producer.statistics_interval(), Some(Duration::from_millis(500)));
        assert_eq!(
            with(r#","metrics_address":"[::1]:9091""#).unwrap().metrics_address,
            Some("[::1]:9091".parse().unwrap())
        );
        assert_eq!(with(r#","kafka":{"statistics.interval.ms":0}"#).unwrap().producer.statistics_interval(), None);
        for (extra, expected) in [
            (r#","metrics_address":"localhost:9091""#, "config key metrics_address: an IP address and port such as"),
            (r#","metrics_address":"127.0.0.1""#, "config key metrics_address: an IP address and port such as"),
            (r#","metrics_address":9091"#, "config key metrics_address: invalid type"),
        ] {
            let err = with(extra).unwrap_err();
            assert!(err.contains(expected), "{extra}: {err:?} should contain {expected:?}");
        }
    }

    #[test]
    fn allowed_topics_are_checked_when_the_config_is_read() {
        let mut r = resolved(FULL);
        r.allowed_topics = Some(vec!["orders".into(), "events-*".into()]);
        let allowed = policy(r).unwrap().backend.rules.allowed.unwrap();
        assert!(allowed.allows("events-eu") && !allowed.allows("payments"));
        let mut r = resolved(FULL);
        r.allowed_topics = Some(vec!["a/b".into()]);
        assert!(policy(r).unwrap_err().starts_with("config key allowed_topics: \"a/b\""));
        let err = parse(br#"{"allowed_topics":"orders"}"#).err().unwrap();
        assert!(err.contains("config key allowed_topics: invalid type"), "{err}");
    }

    #[test]
    fn policy_refuses_what_would_break_a_promise() {
        let with = |edit: &dyn Fn(&mut Resolved)| {
            let mut r = resolved(FULL);
            edit(&mut r);
            policy(r).unwrap_err()
        };
        let kafka = |k: &'static str, v: &'static str| move |r: &mut Resolved| drop(r.kafka.insert(k.into(), v.into()));
        let cases: [(String, &str); 11] = [
            (with(&|r| r.timeout_ms = 0), "config key timeout_ms: must be greater than 0"),
            (with(&|r| r.schema_ttl_ms = 0), "config key schema_ttl_ms: must be greater than 0"),
            (with(&|r| r.schema_miss_ttl_ms = 0), "config key schema_miss_ttl_ms: must be greater than 0"),
            (with(&|r| r.max_body_bytes = 0), "config key max_body_bytes: must be greater than 0"),
            (with(&|r| r.max_headers = 0), "config key max_headers: must be greater than 0"),
            (with(&|r| r.topic = Some("a/b".into())), "config key topic: topicName: \"a/b\" is not a legal"),
            (with(&|r| r.topic = Some(String::new())), "config key topic: topicName: must not be empty"),
            (with(&kafka("acks", "1")), "kafka.acks: must be all"),
            (with(&kafka("enable.idempotence", "false")), "kafka.enable.idempotence: must be true"),
            (with(&kafka("message.timeout.ms", "5s")), "kafka.message.timeout.ms: not a positive number"),
            (with(&kafka("message.timeout.ms", "0")), "kafka.message.timeout.ms: not a positive number"),
        ];
        for (err, expected) in cases {
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
    }

    #[test]
    fn policy_turns_aws_msk_iam_into_oauthbearer_over_sasl_ssl() {
        let mut r = resolved(FULL);
        r.kafka.insert("sasl.mechanism".into(), "AWS_MSK_IAM".into());
        let c = policy(r).unwrap();
        assert!(c.producer.msk_iam);
        let kafka = &c.producer.kafka;
        assert_eq!(
            (kafka["sasl.mechanism"].as_str(), kafka["security.protocol"].as_str()),
            ("OAUTHBEARER", "SASL_SSL")
        );
        let mut r = resolved(FULL);
        r.kafka.insert("sasl.mechanism".into(), "SCRAM-SHA-512".into());
        assert!(!policy(r).unwrap().producer.msk_iam);
    }

    #[test]
    fn flow_control_keys_have_defaults_and_refuse_what_cannot_work() {
        let parse = |rest: &str| {
            Config::parse(format!(r#"{{"bootstrap_servers":"b","registry_name":"r"{rest}}}"#).as_bytes(), |_| None)
        };
        let backend = parse("").unwrap().backend;
        assert_eq!(
            backend.admission,
            admission::Limits { records: 10_000, bytes: 64 << 20, retry_after_s: 1 },
            "bounded by default"
        );
        assert_eq!(backend.idempotency.window, Duration::from_secs(300));
        assert!(!backend.fire_and_forget);
        let backend = parse(
            r#","max_in_flight_records":5,"max_in_flight_bytes":1000,"retry_after_s":30,"idempotency_window_s":60,
            "idempotency_max_keys":7,"idempotency_max_bytes":4096,"fire_and_forget":true"#,
        )
        .unwrap()
        .backend;
        assert_eq!(backend.admission, admission::Limits { records: 5, bytes: 1000, retry_after_s: 30 });
        assert_eq!(
            backend.idempotency,
            idempotency::Limits { window: Duration::from_secs(60), max_keys: 7, max_bytes: 4096 }
        );
        assert!(backend.fire_and_forget);
        assert_eq!(parse(r#","batch":true"#).unwrap().backend.rules.batch, Some(500));
        assert_eq!(parse(r#","batch":true,"max_batch_records":20"#).unwrap().backend.rules.batch, Some(20));
        for (rest, says) in [
            (r#","max_batch_records":20"#, "max_batch_records: only for a batch endpoint (batch: true)"),
            (r#","batch":true,"max_batch_records":0"#, "max_batch_records: must be greater than 0"),
            (r#","batch":true,"fire_and_forget":true"#, "batch and fire_and_forget: not both"),
            (r#","max_in_flight_records":0"#, "max_in_flight_records: must be greater than 0"),
            (r#","retry_after_s":0"#, "retry_after_s: from 1 to 3600"),
            (r#","idempotency_window_s":100000"#, "idempotency_window_s: from 1 to 86400"),
            (r#","idempotency_max_keys":0"#, "idempotency_max_keys: must be greater than 0"),
            (r#","fire_and_forget":"yes""#, "fire_and_forget: invalid type"),
        ] {
            let error = parse(rest).unwrap_err();
            assert!(error.contains(says), "{rest}: {error}");
        }
    }

    #[test]
    fn backends_differing_only_in_their_own_settings_have_equal_producer_configs() {
        let a =
            Config::parse(br#"{"bootstrap_servers":"b","registry_name":"r","topic":"x","max_body_bytes":10}"#, |_| {
                None
            });
        let b = Config::parse(
            br#"{"bootstrap_servers":"b","registry_name":"s","schema_ttl_ms":5,"topics":{"t":{}}}"#,
            |_| None,
        );
        assert_eq!(a.unwrap().producer, b.unwrap().producer);
    }

    #[test]
    fn a_confluent_registry_replaces_glue_and_frames_only_its_own_format() {
        let confluent = |rest: &str| {
            Config::parse(
                format!(r#"{{"bootstrap_servers":"b","confluent_registry":{{"url":"https://sr:8081"}}{rest}}}"#)
                    .as_bytes(),
                |_| None,
            )
        };
        let c = confluent(r#","topics":{"t":{"wire_format":"confluent"}}"#).unwrap();
        let RegistryConfig::Confluent(registry) = &c.backend.registry else { panic!("{:?}", c.backend.registry) };
        assert_eq!(
            (registry.url.as_str(), registry.subject_name_strategy),
            ("https://sr:8081", SubjectNameStrategy::TopicName)
        );
        assert_eq!(c.backend.topics["t"].wire_format, WireFormat::Confluent);
        let glue = Config::parse(
            br#"{"bootstrap_servers":"b","registry_name":"r","topics":{"t":{"wire_format":"glue","glue_compression":"zlib"}}}"#,
            |_| None,
        )
        .unwrap();
        assert_eq!(glue.backend.topics["t"].glue_compression, Some(GlueCompression::Zlib));

        let cases = [
            (confluent(r#","registry_name":"r""#), "set only one registry"),
            (confluent(r#","topics":{"t":{"wire_format":"glue"}}"#), "topics.t.wire_format: glue needs a Glue registry"),
            (confluent(r#","topics":{"t":{"glue_compression":"zlib"}}"#), "topics.t.glue_compression: only with wire_format glue"),
            (confluent(r#","topics":{"t":{"wire_format":"avro"}}"#), "topics.t.wire_format: unknown variant `avro`"),
            (
                Config::parse(br#"{"bootstrap_servers":"b","registry_name":"r","topics":{"t":{"wire_format":"confluent"}}}"#, |_| None),
                "topics.t.wire_format: confluent needs confluent_registry",
            ),
            (
                Config::parse(br#"{"bootstrap_servers":"b","confluent_registry":{"url":"sr:8081"}}"#, |_| None),
                "confluent_registry.url: an http:// or https:// URL",
            ),
            (
                Config::parse(br#"{"bootstrap_servers":"b","confluent_registry":{"url":"http://sr","username":"u"}}"#, |_| None),
                "username and password: set both or neither",
            ),
            (
                Config::parse(
                    br#"{"bootstrap_servers":"b","confluent_registry":{"url":"http://sr","username":"u","password":"p","bearer_token":"t"}}"#,
                    |_| None,
                ),
                "bearer_token: set it or username and password, not both",
            ),
        ];
        for (result, expected) in cases {
            let err = result.unwrap_err();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let json = r#"{"bootstrap_servers":"b","registry_name":"r","kafka":{"sasl.password":"hunter2","ssl.key.password":"k","sasl.username":"u"}}"#;
        let dump = format!("{:?}", Config::parse(json.as_bytes(), |_| None).unwrap());
        assert!(!dump.contains("hunter2") && !dump.contains("\"k\""), "{dump}");
        assert!(dump.contains("sasl.username") && dump.contains("\"u\""), "{dump}");
        let json =
            r#"{"bootstrap_servers":"b","confluent_registry":{"url":"http://sr","username":"u","password":"hunter2"}}"#;
        let dump = format!("{:?}", Config::parse(json.as_bytes(), |_| None).unwrap());
        assert!(!dump.contains("hunter2") && dump.contains("<redacted>"), "{dump}");
        let json = r#"{"bootstrap_servers":"b","confluent_registry":{"url":"http://sr","bearer_token":"hunter2"}}"#;
        assert!(!format!("{:?}", Config::parse(json.as_bytes(), |_| None).unwrap()).contains("hunter2"));
    }
}
