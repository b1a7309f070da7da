//! Step 3: what this crate refuses, and the librdkafka values it derives.

use std::net::SocketAddr;
use std::time::Duration;

use super::limits::{AdmissionLimits, IdempotencyLimits};
use super::resolve::Resolved;
use super::rules::Rules;
use super::schemas::{RegistryConfig, TopicSchema, WireFormat};
use super::settings::{BackendConfig, Config, ProducerConfig, EXPIRY_SCAN};
use super::store;
use super::topics::{check_topic, AllowList};

const DEFAULT_MAX_BATCH_RECORDS: u64 = 500;
const DEFAULT_STATISTICS_INTERVAL_MS: &str = "5000";

/// How long before `timeout_ms` the default `message.timeout.ms` ends: the expiry scan, and half a second
/// more so that librdkafka's verdict, which names the cause, comes before the backend's own deadline
/// answers 504 (src/pipeline/deadline.rs).
const VERDICT_LEAD: Duration = Duration::from_millis(EXPIRY_SCAN.as_millis() as u64 + 500);

/// Step 3: what this crate refuses, and the librdkafka values it derives.
pub(super) fn policy(resolved: Resolved) -> Result<Config, String> {
    let Resolved { mut kafka, .. } = resolved;
    let positive = |key: &str, ms: u64| match ms {
        0 => Err(format!("config key {key}: must be greater than 0")),
        ms => Ok(Duration::from_millis(ms)),
    };
    let timeout = positive("timeout_ms", resolved.timeout_ms)?;
    if let Some(topic) = &resolved.topic {
        check_topic(topic).map_err(|f| format!("config key topic: {}", f.message))?;
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
    // A broker gone silent (host or network lost, no reset) holds the requests in flight to it, and their
    // partitions' move to a new leader, until this timeout: 60 s by default, past any budget; 10 s is past
    // KRaft's fencing of a dead broker (broker.session.timeout.ms, 9 s), so the retry finds the new leader.
    kafka.entry("socket.timeout.ms".into()).or_insert_with(|| "10000".into());
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
            admission: AdmissionLimits {
                records: limit("max_in_flight_records", resolved.max_in_flight_records)?,
                bytes: limit("max_in_flight_bytes", resolved.max_in_flight_bytes)?,
                retry_after_s: match resolved.retry_after_s {
                    s @ 1..=3600 => s as u32,
                    _ => return Err("config key retry_after_s: from 1 to 3600".into()),
                },
            },
            idempotency: IdempotencyLimits {
                window: Duration::from_secs(match resolved.idempotency_window_s {
                    s @ 1..=86_400 => s,
                    _ => return Err("config key idempotency_window_s: from 1 to 86400 (a day)".into()),
                }),
                max_keys: limit("idempotency_max_keys", resolved.idempotency_max_keys)?,
                max_bytes: limit("idempotency_max_bytes", resolved.idempotency_max_bytes)?,
            },
            idempotency_store: store::check(resolved.idempotency_store, timeout)?,
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
