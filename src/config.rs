//! The publisher's configuration: the JSON block a caller passes (the KrakenD plugin passes its
//! `extra_config`), with the seed Lambda's environment variables as fallbacks. Every error names the key.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_SCHEMA_TTL_MS: u64 = 300_000;
const DEFAULT_SCHEMA_MISS_TTL_MS: u64 = 10_000;

/// librdkafka looks for expired records about once a second, so it reports one up to this long after
/// `message.timeout.ms`.
const EXPIRY_SCAN: Duration = Duration::from_secs(1);

#[derive(Clone, PartialEq)]
pub struct Config {
    /// Glue Schema Registry holding one schema per topic (schema name = topic name).
    pub registry_name: String,
    /// AWS region of the registry; `None` leaves it to the AWS default chain (profile, IMDS).
    pub region: Option<String>,
    /// Glue endpoint override (also honoured: `AWS_ENDPOINT_URL_GLUE`, `AWS_ENDPOINT_URL`).
    pub glue_endpoint: Option<String>,
    /// A role to assume on top of the AWS default credential chain, for Glue and MSK IAM alike.
    pub aws_role_arn: Option<String>,
    /// `sasl.mechanism: AWS_MSK_IAM` was asked for: SASL/OAUTHBEARER with tokens signed in-process.
    pub msk_iam: bool,
    /// The budget of each wait of a publish: the schema fetch on a cache miss, then the broker's
    /// acknowledgement.
    pub timeout: Duration,
    /// How long a fetched schema is served before it is fetched again.
    pub schema_ttl: Duration,
    /// How long "no such schema" is remembered, so a misdirected client cannot hammer Glue.
    pub schema_miss_ttl: Duration,
    /// librdkafka properties, `bootstrap.servers` included, with this crate's defaults filled in.
    pub kafka: BTreeMap<String, String>,
    /// topic -> full name of the message type to encode (`topics.T.message_type`).
    pub message_types: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicConfig {
    /// Full name of the message type to encode; default: the schema's first top-level message.
    pub message_type: Option<String>,
}

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
    #[serde(default)]
    kafka: BTreeMap<String, Value>,
    #[serde(default)]
    topics: HashMap<String, TopicConfig>,
}

impl Config {
    /// Parses `json` (empty means `{}`), taking what it leaves out from `env`.
    pub fn parse(json: &[u8], env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let raw: Raw = match json.iter().find(|b| !b.is_ascii_whitespace()) {
            None => Raw::default(),
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
                raw
            }
            Some(_) => return Err("config: must be a JSON object".into()),
        };
        let env = |names: &[&str]| names.iter().find_map(|n| env(n).filter(|v| !v.trim().is_empty()));

        let mut kafka = BTreeMap::new();
        for (key, value) in raw.kafka {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(format!("config key kafka.{key}: must be a string, number or boolean")),
            };
            kafka.insert(key, text);
        }

        let bootstrap = match (raw.bootstrap_servers, kafka.remove("bootstrap.servers")) {
            (Some(_), Some(_)) => {
                return Err("config keys bootstrap_servers and kafka.bootstrap.servers: set only one".into())
            }
            (Some(b), None) | (None, Some(b)) => Some(b),
            // The seed spells it KAFKA_BOOSTRAP_SERVERS; both spellings work.
            (None, None) => env(&["KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOSTRAP_SERVERS"]),
        };
        let bootstrap = bootstrap.filter(|b| !b.trim().is_empty()).ok_or(
            "config key bootstrap_servers: missing (set it, or the environment variable KAFKA_BOOTSTRAP_SERVERS)",
        )?;
        kafka.insert("bootstrap.servers".into(), bootstrap);

        let registry_name = raw
            .registry_name
            .or_else(|| env(&["GLUE_REGISTRY_NAME"]))
            .filter(|r| !r.trim().is_empty())
            .ok_or("config key registry_name: missing (set it, or the environment variable GLUE_REGISTRY_NAME)")?;

        let ms = |key: &str, value: Option<u64>, default: u64| match value.unwrap_or(default) {
            0 => Err(format!("config key {key}: must be greater than 0")),
            v => Ok(Duration::from_millis(v)),
        };
        let timeout = ms("timeout_ms", raw.timeout_ms, DEFAULT_TIMEOUT_MS)?;

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
        let expiry = timeout - EXPIRY_SCAN.min(timeout / 2);
        // Every caller is answered when librdkafka gives up on its record: that deadline must exist (0
        // would be infinite), and by default its report arrives within the budget.
        let delivery_timeout = kafka.entry("message.timeout.ms".into()).or_insert(expiry.as_millis().to_string());
        if !delivery_timeout.parse::<u64>().is_ok_and(|ms| ms > 0) {
            return Err(format!("config key kafka.message.timeout.ms: not a positive number: {delivery_timeout:?}"));
        }
        // librdkafka waits 30 s before it calls a topic missing; answer 404 well inside the budget.
        let propagation = (timeout.as_millis() / 2).max(1).to_string();
        kafka.entry("topic.metadata.propagation.max.ms".into()).or_insert(propagation);
        kafka.entry("client.id".into()).or_insert_with(|| "krakend-kafka".into());
        // librdkafka's 5 ms is paid by every caller waiting for its ack; under 2 ms its broker thread wakes so
        // often to send small batches that it takes CPU from the gateway (measured: see the README).
        kafka.entry("linger.ms".into()).or_insert_with(|| "2".into());

        Ok(Config {
            registry_name,
            region: raw.region.or_else(|| env(&["REGION", "AWS_REGION"])),
            glue_endpoint: raw.glue_endpoint,
            aws_role_arn: raw.aws_role_arn,
            msk_iam,
            timeout,
            schema_ttl: ms("schema_ttl_ms", raw.schema_ttl_ms, DEFAULT_SCHEMA_TTL_MS)?,
            schema_miss_ttl: ms("schema_miss_ttl_ms", raw.schema_miss_ttl_ms, DEFAULT_SCHEMA_MISS_TTL_MS)?,
            kafka,
            message_types: raw.topics.into_iter().filter_map(|(topic, t)| Some((topic, t.message_type?))).collect(),
        })
    }
}

/// Whether a librdkafka property holds a secret that must never be printed.
fn is_secret(key: &str) -> bool {
    ["password", "secret", "sasl.jaas", "key.pem", "oauthbearer.config", "token"].iter().any(|s| key.contains(s))
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kafka: BTreeMap<_, _> =
            self.kafka.iter().map(|(k, v)| (k, if is_secret(k) { "<redacted>" } else { v.as_str() })).collect();
        f.debug_struct("Config")
            .field("registry_name", &self.registry_name)
            .field("region", &self.region)
            .field("glue_endpoint", &self.glue_endpoint)
            .field("aws_role_arn", &self.aws_role_arn)
            .field("msk_iam", &self.msk_iam)
            .field("timeout", &self.timeout)
            .field("schema_ttl", &self.schema_ttl)
            .field("schema_miss_ttl", &self.schema_miss_ttl)
            .field("kafka", &kafka)
            .field("message_types", &self.message_types)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    const FULL: &str = r#"{"bootstrap_servers":"b:9092","registry_name":"r","region":"eu-west-1"}"#;

    #[test]
    fn reads_the_seed_environment_with_its_spelling() {
        let env = env_of(&[
            ("KAFKA_BOOSTRAP_SERVERS", "seed:9092"),
            ("GLUE_REGISTRY_NAME", "reg"),
            ("REGION", "eu-central-1"),
        ]);
        let c = Config::parse(b"", env).unwrap();
        assert_eq!(c.kafka["bootstrap.servers"], "seed:9092");
        assert_eq!(c.registry_name, "reg");
        assert_eq!(c.region.as_deref(), Some("eu-central-1"));
    }

    #[test]
    fn config_wins_over_environment_and_correct_spelling_wins_over_seed() {
        let env = env_of(&[
            ("KAFKA_BOOSTRAP_SERVERS", "seed:1"),
            ("KAFKA_BOOTSTRAP_SERVERS", "right:2"),
            ("GLUE_REGISTRY_NAME", "env"),
            ("AWS_REGION", "us-east-1"),
        ]);
        let c = Config::parse(b"{}", &env).unwrap();
        assert_eq!(c.kafka["bootstrap.servers"], "right:2");
        assert_eq!(c.region.as_deref(), Some("us-east-1"));
        let c = Config::parse(FULL.as_bytes(), &env).unwrap();
        assert_eq!((c.kafka["bootstrap.servers"].as_str(), c.registry_name.as_str()), ("b:9092", "r"));
    }

    #[test]
    fn defaults() {
        let c = Config::parse(FULL.as_bytes(), |_| None).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.schema_ttl, Duration::from_secs(300));
        assert_eq!(c.kafka["enable.idempotence"], "true");
        assert_eq!(c.kafka["message.timeout.ms"], "9000");
        let short = r#"{"bootstrap_servers":"b","registry_name":"r","timeout_ms":1000}"#;
        assert_eq!(Config::parse(short.as_bytes(), |_| None).unwrap().kafka["message.timeout.ms"], "500");
        assert_eq!(c.kafka["topic.metadata.propagation.max.ms"], "5000");
        assert_eq!(c.kafka["linger.ms"], "2");
        assert!(c.message_types.is_empty());
    }

    #[test]
    fn passes_librdkafka_properties_through_as_text() {
        let json = r#"{"bootstrap_servers":"b","registry_name":"r","timeout_ms":3000,
            "kafka":{"linger.ms":0,"compression.type":"lz4","enable.ssl.certificate.verification":false,"message.timeout.ms":"2000"},
            "topics":{"orders":{"message_type":"shop.Order"}}}"#;
        let c = Config::parse(json.as_bytes(), |_| None).unwrap();
        assert_eq!(c.kafka["linger.ms"], "0");
        assert_eq!(c.kafka["compression.type"], "lz4");
        assert_eq!(c.kafka["enable.ssl.certificate.verification"], "false");
        assert_eq!(c.kafka["message.timeout.ms"], "2000");
        assert_eq!(c.kafka["topic.metadata.propagation.max.ms"], "1500");
        assert_eq!(c.message_types["orders"], "shop.Order");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (r#"{"registy_name":"r"}"#, "registy_name"),
            (r#"{"timeout_ms":"soon"}"#, "config key timeout_ms: invalid type"),
            (r#"{"timeout_ms":0,"bootstrap_servers":"b","registry_name":"r"}"#, "timeout_ms: must be greater than 0"),
            (r#"{"kafka":{"linger.ms":[1]}}"#, "kafka.linger.ms: must be a string"),
            (r#"{"topics":{"t":{"message_typ":"x"}}}"#, "config key topics.t.message_typ: unknown field `message_typ`"),
            (r#"{"registry_name":"r"}"#, "bootstrap_servers: missing"),
            (r#"{"bootstrap_servers":"b"}"#, "registry_name: missing"),
            (r#"{"bootstrap_servers":"b","kafka":{"bootstrap.servers":"c"}}"#, "set only one"),
            (r#"{"bootstrap_servers":"b","registry_name":"r","kafka":{"acks":"1"}}"#, "kafka.acks: must be all"),
            (
                r#"{"bootstrap_servers":"b","registry_name":"r","kafka":{"enable.idempotence":false}}"#,
                "kafka.enable.idempotence",
            ),
            (
                r#"{"bootstrap_servers":"b","registry_name":"r","kafka":{"message.timeout.ms":"5s"}}"#,
                "kafka.message.timeout.ms: not a positive number",
            ),
            (
                r#"{"bootstrap_servers":"b","registry_name":"r","kafka":{"message.timeout.ms":0}}"#,
                "kafka.message.timeout.ms: not a positive number",
            ),
            (r#"[1]"#, "config: must be a JSON object"),
            (r#"{"region":"x"} trailing"#, "config: trailing characters"),
        ];
        for (json, expected) in cases {
            let err = Config::parse(json.as_bytes(), |_| None).unwrap_err();
            assert!(err.contains(expected), "{json}: {err:?} should contain {expected:?}");
        }
    }

    #[test]
    fn aws_msk_iam_is_oauthbearer_over_sasl_ssl() {
        let json = r#"{"bootstrap_servers":"b","registry_name":"r","kafka":{"sasl.mechanism":"AWS_MSK_IAM"}}"#;
        let c = Config::parse(json.as_bytes(), |_| None).unwrap();
        assert!(c.msk_iam);
        assert_eq!(
            (c.kafka["sasl.mechanism"].as_str(), c.kafka["security.protocol"].as_str()),
            ("OAUTHBEARER", "SASL_SSL")
        );
        let json = r#"{"bootstrap_servers":"b","registry_name":"r","kafka":{"sasl.mechanism":"SCRAM-SHA-512"}}"#;
        assert!(!Config::parse(json.as_bytes(), |_| None).unwrap().msk_iam);
    }

    #[test]
    fn debug_redacts_secrets() {
        let json = r#"{"bootstrap_servers":"b","registry_name":"r","kafka":{"sasl.password":"hunter2","ssl.key.password":"k","sasl.username":"u"}}"#;
        let dump = format!("{:?}", Config::parse(json.as_bytes(), |_| None).unwrap());
        assert!(!dump.contains("hunter2") && !dump.contains("\"k\""), "{dump}");
        assert!(dump.contains("sasl.username") && dump.contains("\"u\""), "{dump}");
    }
}
