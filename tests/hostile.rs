//! Careless and hostile input through the real gateway and plugin: each bad input gets its status and a
//! short message naming the problem, publishes nothing, and leaves the gateway serving; no secret of the
//! configuration reaches an answer or the gateway's log.

mod common;

use common::gateway::*;
use common::proxy::Proxy;
use common::*;
use serde_json::{json, Value};

fn plugin(extra: Value) -> Value {
    serde_json::from_str(&config(REGISTRY, extra)).unwrap()
}

/// One request through `gateway`: its status and the plugin's JSON answer.
fn send(gateway: &Gateway, topic: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (status, body) =
        http_request(&gateway.address, "POST", &format!("/v1/event/{topic}"), headers, body.as_bytes()).unwrap();
    let answer: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status}: not the plugin's JSON: {body}"));
    assert_eq!(answer["statusCode"], status.to_string(), "{answer}");
    (status, answer)
}

#[test]
#[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
fn a_secret_in_a_refused_property_reaches_neither_an_answer_nor_the_log() {
    // Properties a port from a Java client brings, and a typo: librdkafka refuses each, and its error
    // would carry the value.
    for (key, value) in [
        (
            "sasl.jaas.config",
            "org.apache.kafka.common.security.scram.ScramLoginModule required password=\"hunter2-jaas\";",
        ),
        ("ssl.truststore.password", "hunter2-truststore"),
        ("sasl.pasword", "hunter2-typo"),
    ] {
        let gateway =
            Gateway::start(gateway_config("25s", &[("/v1/event/{topic}", plugin(json!({"kafka": {key: value}})))]));
        let (status, answer) = send(&gateway, "any", &[], r#"{"some_message":"x"}"#);
        let message = answer["message"].as_str().unwrap();
        assert_eq!(status, 500, "{answer}");
        assert!(message.contains(&format!("kafka.{key}")), "names the key: {message}");
        assert!(!message.contains("hunter2"), "{message}");
        let log = gateway.log();
        assert!(log.contains(&format!("kafka.{key}")), "the log names the key");
        assert!(!log.contains("hunter2"), "{log}");
    }
}

#[test]
#[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
fn keys_and_header_lists_past_their_limits_are_431_and_publish_nothing() {
    let topic = topic_with_schema("hostile-limits", 1, SEED_SCHEMA);
    let gateway = Gateway::start(gateway_config("25s", &[("/v1/event/{topic}", plugin(json!({})))]));
    let body = r#"{"some_message":"x"}"#;
    let long_key = "k".repeat(4097);
    let items_65 = "a=1,".repeat(65);
    let items_100_000 = "a=1,".repeat(100_000);
    let long_list = format!("a={}", "x".repeat(16384));
    for (headers, expected) in [
        (vec![("Message-Key", long_key.as_str())], "message-key: more than the limit of 4096 bytes"),
        (vec![("Message-Headers", items_65.as_str())], "message-headers: more than the limit of 64 items"),
        (vec![("Message-Headers", items_100_000.as_str())], "message-headers: more than the limit of 16384 bytes"),
        (vec![("Message-Headers", long_list.as_str())], "message-headers: more than the limit of 16384 bytes"),
    ] {
        let (status, answer) = send(&gateway, &topic, &headers, body);
        assert_eq!((status, answer["message"].as_str().unwrap()), (431, expected));
    }
    // At the limits, and the gateway still serving.
    let at = format!("a={}", "x".repeat(16382));
    let (status, answer) = send(&gateway, &topic, &[("Message-Key", &long_key[1..]), ("Message-Headers", &at)], body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(record_count(&topic), 1, "only the request within the limits");
}

#[test]
#[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
fn a_topic_outside_the_allow_list_is_404_without_asking_the_registry() {
    let topic = topic_with_schema("hostile-allowed", 1, SEED_SCHEMA);
    // The registry behind a proxy: passing for the allowed topic, then hanging, so that a request that
    // asked it would wait out timeout_ms instead of answering at once.
    let glue = Proxy::start("127.0.0.1:0", var("KK_GLUE_ENDPOINT").trim_start_matches("http://").to_string());
    let mut backend = plugin(json!({"allowed_topics": ["hostile-allowed-*", "exact-name"], "timeout_ms": 20000}));
    backend["glue_endpoint"] = json!(format!("http://{}", glue.address));
    let gateway = Gateway::start(gateway_config("45s", &[("/v1/event/{topic}", backend)]));
    let body = r#"{"some_message":"x"}"#;
    let (status, answer) = send(&gateway, &topic, &[], body);
    assert_eq!(status, 200, "{answer}");
    glue.freeze(true);
    for other in ["hostile-allowe", "exact-name-2", "random-topic-1", "payments"] {
        let started = std::time::Instant::now();
        let (status, answer) = send(&gateway, other, &[], body);
        assert_eq!(status, 404, "{answer}");
        assert_eq!(answer["message"], format!("topic {other}: not served by this endpoint (allowed_topics)"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "the registry was asked");
    }
    let (status, _) = send(&gateway, &topic, &[], body);
    assert_eq!(status, 200, "the allowed topic is served from its cached schema");
}

#[test]
#[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
fn a_flood_of_random_topic_names_asks_the_registry_a_bounded_number_of_times() {
    let topic = topic_with_schema("hostile-flood", 1, SEED_SCHEMA);
    let glue = Proxy::counting(
        "127.0.0.1:0",
        var("KK_GLUE_ENDPOINT").trim_start_matches("http://").to_string(),
        b"AWSGlue.GetSchemaVersion",
    );
    let mut backend = plugin(json!({}));
    backend["glue_endpoint"] = json!(format!("http://{}", glue.address));
    let gateway = Gateway::start(gateway_config("25s", &[("/v1/event/{topic}", backend)]));
    let body = r#"{"some_message":"x"}"#;
    let (status, answer) = send(&gateway, &topic, &[], body);
    assert_eq!(status, 200, "{answer}");

    let started = std::time::Instant::now();
    let sent = load(
        &gateway.address,
        16,
        3000,
        |id| (format!("/v1/event/random-{}-{id}", std::process::id()), vec![], body.to_string()),
        &Progress::default(),
    );
    let took = started.elapsed();
    let counts = tally(&sent);
    let calls = glue.seen() - 1;
    println!("3000 random topics in {took:?}: {counts:?}, {calls} registry calls");
    // 100 at once and 100 per second after (the process's budget), whatever the callers send
    assert!(calls as f64 <= 100.0 + 100.0 * took.as_secs_f64() + 5.0, "{calls} calls in {took:?}");
    assert_eq!(counts.get("404").copied().unwrap_or(0) + counts.get("503").copied().unwrap_or(0), 3000, "{counts:?}");
    let (status, answer) = send(&gateway, &topic, &[], body);
    assert_eq!(status, 200, "a topic served before is not held up by the flood: {answer}");
}
