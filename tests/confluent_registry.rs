//! Schemas from a registry with Confluent Schema Registry's API (Apicurio Registry, started by
//! tests/services/services.sh): subjects by strategy, latest and pinned versions, authentication and TLS,
//! and the answers when the registry says no.

mod common;

use common::*;
use rdkafka::message::Message;
use serde_json::json;

const V1: &str = r#"syntax = "proto3"; package reg.v1; message Thing { int32 a = 1; }"#;
const V2: &str = r#"syntax = "proto3"; package reg.v1; message Thing { int32 a = 1; int32 b = 2; }"#;

fn publish(backend: &Backend, topic: &str, body: &str) -> (u16, String) {
    let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), "", "", body);
    (status, answer["message"].as_str().unwrap_or_default().to_owned())
}

#[test]
#[ignore = "needs Kafka and the Confluent-API registry: run `make test`"]
fn the_topics_subject_latest_or_pinned_version_is_used() {
    let (topic, _) = topic_with_subject("sr-versions", V1);
    register_subject(&format!("{topic}-value"), V2, &[]);
    let pinned = unique("sr-pinned");
    create_topic(&pinned, 1);
    let topics = json!({ pinned.clone(): {"schema_name": format!("{topic}-value"), "schema_version": 1} });
    let backend = Backend::open(&confluent_config(json!({ "topics": topics })).to_string());

    assert_eq!(publish(&backend, &topic, r#"{"a":1,"b":2}"#).0, 200, "latest: version 2");
    let (status, message) = publish(&backend, &pinned, r#"{"a":1,"b":2}"#);
    assert_eq!(status, 400, "version 1 has no b: {message}");
    assert!(message.starts_with("body"), "{message}");
    assert_eq!(publish(&backend, &pinned, r#"{"a":1}"#).0, 200);
    assert_eq!(record_count(&topic) + record_count(&pinned), 2, "what was refused was not published");
}

#[test]
#[ignore = "needs Kafka and the Confluent-API registry: run `make test`"]
fn record_name_strategies_name_the_subject_after_the_message_type() {
    let (by_record, by_topic_record, unnamed) = (unique("sr-record"), unique("sr-topic-record"), unique("sr-unnamed"));
    for topic in [&by_record, &by_topic_record, &unnamed] {
        create_topic(topic, 1);
    }
    // the record name strategy's subject is the message's full name, one per registry: make it unique
    let package = unique("rec").replace('-', "_");
    let text = V1.replace("reg.v1", &package);
    register_subject(&format!("{package}.Thing"), &text, &[]);
    register_subject(&format!("{by_topic_record}-{package}.Thing"), &text, &[]);
    let topics = |strategy| {
        json!({
            "confluent_registry": {"url": var("KK_CONFLUENT_URL"), "username": var("KK_CONFLUENT_USER"),
                "password": var("KK_CONFLUENT_PASSWORD"), "subject_name_strategy": strategy},
            "topics": {
                by_record.clone(): {"message_type": format!("{package}.Thing")},
                by_topic_record.clone(): {"message_type": format!("{package}.Thing")},
            }
        })
    };
    let record = Backend::open(&confluent_config(topics("record_name")).to_string());
    let topic_record = Backend::open(&confluent_config(topics("topic_record_name")).to_string());
    assert_eq!(publish(&record, &by_record, r#"{"a":1}"#).0, 200);
    assert_eq!(publish(&topic_record, &by_topic_record, r#"{"a":1}"#).0, 200);
    assert_eq!(
        publish(&record, &unnamed, r#"{"a":1}"#),
        (500, format!("topic {unnamed}: the record-name subject_name_strategy needs topics.{unnamed}.message_type"))
    );
}

#[test]
#[ignore = "needs Kafka and the Confluent-API registry: run `make test`"]
fn missing_subjects_and_versions_are_404_and_a_refused_login_503() {
    let topic = unique("sr-missing");
    create_topic(&topic, 1);
    let pinned = unique("sr-missing-version");
    create_topic(&pinned, 1);
    register_subject(&format!("{pinned}-value"), V1, &[]);
    let topics = json!({ pinned.clone(): {"schema_version": 9} });
    let backend = Backend::open(&confluent_config(json!({ "topics": topics })).to_string());
    assert_eq!(
        publish(&backend, &topic, r#"{"a":1}"#),
        (404, format!("no subject {topic}-value in the schema registry"))
    );
    assert_eq!(
        publish(&backend, &pinned, r#"{"a":1}"#),
        (404, format!("no version 9 of subject {pinned}-value in the schema registry"))
    );

    let mut wrong = confluent_config(json!({}));
    wrong["confluent_registry"]["password"] = json!("not-the-password");
    let backend = Backend::open(&wrong.to_string());
    let (status, message) = publish(&backend, &pinned, r#"{"a":1}"#);
    assert_eq!(
        (status, message.as_str()),
        (
            503,
            format!("topic {pinned}: not stored: the schema registry is unavailable (authentication failed)").as_str()
        )
    );
    assert!(!message.contains("not-the-password"));
    assert_eq!(record_count(&topic) + record_count(&pinned), 0);
}

#[test]
#[ignore = "needs Kafka and the Confluent-API registry: run `make test`"]
fn https_is_trusted_with_the_configured_ca_only() {
    let (topic, _) = topic_with_subject("sr-tls", V1);
    let with_ca = |ca: String| {
        let mut config = confluent_config(json!({}));
        config["confluent_registry"]["url"] = json!(var("KK_CONFLUENT_TLS_URL"));
        config["confluent_registry"]["ca_location"] = json!(ca);
        Backend::open(&config.to_string())
    };
    assert_eq!(publish(&with_ca(var("KK_TEST_CA")), &topic, r#"{"a":1}"#).0, 200);
    assert_eq!(
        publish(&with_ca(var("KK_OTHER_CA")), &topic, r#"{"a":1}"#),
        (
            503,
            format!(
                "topic {topic}: not stored: the schema registry is unavailable (TLS failed: its certificate is not \
                 trusted (check ca_location))"
            )
        )
    );
    assert_eq!(record_count(&topic), 1);
}

/// Through the gateway binary and the plugin: a topic framed for Confluent's deserializers, whose schema
/// is served from the cache while the registry hangs, as with Glue.
#[test]
#[ignore = "needs Kafka, the Confluent-API registry and the built gateway: run `make test`"]
fn through_the_gateway_a_confluent_topic_keeps_its_schema_while_the_registry_hangs() {
    use common::gateway::{gateway_config, Gateway};
    use common::proxy::Proxy;

    let (topic, id) = topic_with_subject("sr-gateway", V1);
    let registry = var("KK_CONFLUENT_URL");
    let (host, path) = registry.trim_start_matches("http://").split_once('/').unwrap();
    let proxy = Proxy::counting("127.0.0.1:0", host.to_string(), b"GET /");
    let mut backend = confluent_config(json!({
        "schema_ttl_ms": 300, "timeout_ms": 2000, "topics": {topic.clone(): {"wire_format": "confluent"}}
    }));
    backend["confluent_registry"]["url"] = json!(format!("http://{}/{path}", proxy.address));
    let gateway = Gateway::start(gateway_config("10s", &[("/v1/event/{topic}", backend)]));
    let send = |topic: &str| gateway.send(topic, &[], r#"{"a":7}"#);
    let (status, answer) = send(&topic);
    assert_eq!(status, 200, "{answer}");
    let (partition, offset) = position(&answer);
    let value = record_at(&topic, partition, offset).payload().unwrap().to_vec();
    assert_eq!(value, [&[0][..], &id.to_be_bytes(), &[0, 8, 7]].concat(), "magic, id, indexes [0], a = 7");

    // The registry hangs: once the schema is due (schema_ttl_ms), a request starts its refresh in the
    // background, and every request meanwhile is served with the schema at hand.
    proxy.freeze(true);
    let asked = proxy.seen();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while proxy.seen() == asked {
        assert!(std::time::Instant::now() < deadline, "no refresh was tried");
        let (status, answer) = send(&topic);
        assert_eq!(status, 200, "served from the cache while the registry hangs: {answer}");
    }
    let (status, answer) = send(&unique("sr-gateway-new"));
    assert_eq!(status, 503, "a topic never served has no schema to fall back on: {answer}");
    while !gateway.log().contains(&format!("kept the last version for topic {topic}")) {
        assert!(std::time::Instant::now() < deadline, "{}", gateway.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(send(&topic).0, 200);
}

#[test]
#[ignore = "needs Kafka and the Confluent-API registry: run `make test`"]
fn a_schema_with_more_imports_than_the_gateway_follows_is_500_not_404() {
    let package = unique("many").replace('-', "_");
    let imports: Vec<(String, String)> =
        (0..101).map(|i| (format!("{package}/dep{i}.proto"), unique("sr-dep"))).collect();
    for (i, (_, subject)) in imports.iter().enumerate() {
        register_subject(subject, &format!("syntax = \"proto3\"; package {package}.d{i}; message M {{}}"), &[]);
    }
    let text = imports.iter().map(|(name, _)| format!("import \"{name}\";\n")).collect::<String>()
        + &format!("syntax = \"proto3\"; package {package}; message Top {{ int32 a = 1; }}");
    let text = format!("syntax = \"proto3\";\n{}", text.replace("syntax = \"proto3\"; package", "package"));
    let references: Vec<_> = imports.iter().map(|(name, subject)| (name.as_str(), subject.as_str(), 1)).collect();
    let topic = unique("sr-many");
    create_topic(&topic, 1);
    register_subject(&format!("{topic}-value"), &text, &references);
    let backend = Backend::open(&confluent_config(json!({})).to_string());
    assert_eq!(
        publish(&backend, &topic, r#"{"a":1}"#),
        (500, format!("subject {topic}-value: imports more than 100 schemas, more than the gateway follows"))
    );
    assert_eq!(record_count(&topic), 0);
}
