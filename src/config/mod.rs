//! The publisher's configuration: the JSON block a caller passes (the KrakenD plugin passes its
//! `extra_config`), with the seed Lambda's environment variables as fallbacks. Every error names the key.
//!
//! It is read in three steps: [`raw`] (the JSON as written), [`resolve`] (environment and defaults),
//! [`policy`] (what this crate refuses, and the librdkafka values it derives), into a [`Config`]
//! ([`settings`]). The types the layers above
//! take from it live here too, so that config imports nothing above it: topic names and the allow-list
//! ([`topics`]), the per-request rules ([`rules`]), the in-flight and idempotency limits ([`limits`]),
//! the idempotency keys' shared store ([`store`]), and the registry and framing of each topic ([`schemas`]).

mod limits;
mod policy;
mod raw;
mod resolve;
mod rules;
mod schemas;
mod settings;
mod store;
pub mod topics;

pub use limits::{AdmissionLimits, IdempotencyLimits};
pub use rules::Rules;
pub use schemas::{ConfluentRegistry, GlueCompression, RegistryConfig, SubjectNameStrategy, TopicSchema, WireFormat};
pub use settings::{AwsConfig, Config, ProducerConfig};
pub use store::IdempotencyStore;

use policy::policy;
use raw::parse;
use resolve::resolve;

impl Config {
    /// Reads `json` (empty or `null` means `{}`), fills in what it leaves out from `env` and the defaults, and
    /// applies the policy. Every error names the key.
    pub fn parse(json: &[u8], env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        policy(resolve(parse(json)?, env)?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::raw::Raw;
    use super::resolve::Resolved;
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
    fn a_silent_broker_is_given_up_on_past_a_clusters_fencing_unless_set() {
        let kafka = policy(resolved(FULL)).unwrap().producer.kafka;
        assert_eq!(kafka["socket.timeout.ms"], "10000");
        let set = r#"{"bootstrap_servers":"b:9092","registry_name":"r","region":"eu-west-1","kafka":{"socket.timeout.ms":30000}}"#;
        assert_eq!(policy(resolved(set)).unwrap().producer.kafka["socket.timeout.ms"], "30000");
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
            AdmissionLimits { records: 10_000, bytes: 64 << 20, retry_after_s: 1 },
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
        assert_eq!(backend.admission, AdmissionLimits { records: 5, bytes: 1000, retry_after_s: 30 });
        assert_eq!(
            backend.idempotency,
            IdempotencyLimits { window: Duration::from_secs(60), max_keys: 7, max_bytes: 4096 }
        );
        assert!(backend.fire_and_forget);
        let store = parse(r#","idempotency_store":{"url":"redis://cache:6379/1","key_prefix":"p:","timeout_ms":200}"#);
        let store = store.unwrap().backend.idempotency_store.expect("a shared store");
        assert_eq!((store.url.as_str(), store.key_prefix.as_str()), ("redis://cache:6379/1", "p:"));
        assert_eq!((store.timeout, parse("").unwrap().backend.idempotency_store), (Duration::from_millis(200), None));
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
            (r#","idempotency_store":{"url":"redis://h","ttl":1}"#, "idempotency_store.ttl: unknown field"),
            (r#","idempotency_store":{"url":"redis://h"},"idempotency_max_keys":7"#, "with idempotency_store"),
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
