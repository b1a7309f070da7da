//! Broker security through the real broker's secured listeners (`tests/services/services.sh` gives the
//! test broker SASL_SSL with SCRAM-SHA-512 and SSL listeners, with a throwaway CA) and MSK IAM failures.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_sdk_glue::types::DataFormat;
use common::*;
use krakend_kafka::{Config, Publisher};
use serde_json::{json, Value};

fn publish(config: &Value, topic: &str) -> Result<krakend_kafka::Delivery, krakend_kafka::Failure> {
    let config = Config::parse(config.to_string().as_bytes(), |_| None).unwrap();
    let p = Publisher::shared(config).unwrap();
    p.publish(json!({"topicName": topic, "body": {"some_message": "secure"}}).to_string().as_bytes())
}

fn base(topic_prefix: &str, kafka: Value) -> (String, Value) {
    let topic = unique(topic_prefix);
    create_topic(&topic, 1);
    register_schema(REGISTRY, &topic, DataFormat::Protobuf, SEED_SCHEMA);
    let mut config: Value = serde_json::from_str(&config(REGISTRY, json!({"timeout_ms": 3000}))).unwrap();
    config["kafka"] = kafka;
    (topic, config)
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn msk_iam_without_credentials_is_503_naming_the_cause_in_time() {
    // A role to assume through an STS that cannot be reached: no credentials, so no token.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    std::env::set_var("AWS_ENDPOINT_URL_STS", format!("http://{closed}"));
    let (topic, mut config) =
        base("iam-nocreds", json!({"sasl.mechanism": "AWS_MSK_IAM", "security.protocol": "SASL_PLAINTEXT"}));
    config["aws_role_arn"] = json!("arn:aws:iam::123456789012:role/krakend-kafka");
    let started = Instant::now();
    let f = publish(&config, &topic).unwrap_err();
    // Glue and the token share the credential chain; whichever needs it first names the failure.
    assert_eq!(f.status, 503, "{f:?}");
    assert!(f.message.contains("loading credentials") && f.message.contains("Connection refused"), "{f:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(record_count(&topic), 0);
}
