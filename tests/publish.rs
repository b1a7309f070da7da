//! The Rust core against a real Kafka broker and the moto Glue registry: what a 200 promises is read
//! back from the topic, and what is refused leaves the topic untouched.
//! Run with `make test` (it starts the services); plain `cargo test` lists these as ignored.

mod common;

use std::ffi::CStr;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_glue::types::DataFormat;
use common::*;
use krakend_kafka::{Config, Publisher};
use rdkafka::message::Message;
use serde_json::{json, Value};

fn publisher(config: &str) -> Arc<Publisher> {
    Publisher::shared(Config::parse(config.as_bytes(), |_| None).unwrap()).unwrap()
}

/// A topic on the broker and its schema in a fresh registry.
fn topic_with_schema(prefix: &str, schema: &str) -> (String, String) {
    let (topic, registry) = (unique(prefix), REGISTRY.to_string());
    create_topic(&topic, 3);
    register_schema(&registry, &topic, DataFormat::Protobuf, schema);
    (topic, registry)
}

/// Publishes through the C surface, as the KrakenD plugin does.
fn publish_c(config: &str, request: &Value) -> Value {
    use krakend_kafka::ffi::*;
    unsafe {
        let mut handle = std::ptr::null_mut();
        let err = kk_publisher_new(config.as_ptr(), config.len(), &mut handle);
        assert!(err.is_null(), "{:?}", CStr::from_ptr(err));
        let request = request.to_string();
        let answer = kk_publish(handle, request.as_ptr(), request.len());
        let text = CStr::from_ptr(answer).to_str().unwrap().to_owned();
        kk_string_free(answer);
        kk_publisher_free(handle);
        serde_json::from_str(&text).unwrap()
    }
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn seed_sample_publishes_value_key_and_headers_through_the_c_surface() {
    let (topic, registry) = topic_with_schema("seed", SEED_SCHEMA);
    let request = json!({"topicName": topic, "body": {"some_message": "test value"},
        "key": "messageKey", "headers": {"my_key": "myvalue", "trace-id": "x-y_z.é"}});
    let answer = publish_c(&config(&registry, json!({})), &request);
    assert_eq!(answer["statusCode"], "200", "{answer}");
    assert_eq!(answer["message"], "ok");
    let (partition, offset) = (answer["partition"].as_i64().unwrap() as i32, answer["offset"].as_i64().unwrap());

    let record = record_at(&topic, partition, offset);
    assert_eq!((record.partition(), record.offset()), (partition, offset));
    assert_eq!(record.payload().unwrap(), b"\x0a\x0atest value", "plain protobuf, as protobuf-java writes it");
    assert_eq!(
        decode(SEED_SCHEMA, "events.SampleEvent", record.payload().unwrap()),
        json!({"someMessage": "test value"})
    );
    assert_eq!(record.key().unwrap(), b"messageKey");
    assert_eq!(
        headers_of(&record),
        vec![("my_key".into(), b"myvalue".to_vec()), ("trace-id".into(), "x-y_z.é".as_bytes().to_vec())]
    );
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn record_without_key_or_headers_has_neither() {
    let (topic, registry) = topic_with_schema("bare", SEED_SCHEMA);
    let p = publisher(&config(&registry, json!({})));
    let d = p.publish(json!({"topicName": topic, "body": {"some_message": "x"}}).to_string().as_bytes()).unwrap();
    let record = record_at(&topic, d.partition, d.offset);
    assert!(record.key().is_none());
    assert!(record.headers().is_none());
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn invalid_requests_answer_400_and_publish_nothing() {
    let (topic, registry) = topic_with_schema("invalid", SEED_SCHEMA);
    let p = publisher(&config(&registry, json!({})));
    let cases = [
        (json!({"topicName": topic, "body": {"other_key": "1"}}), "body"),
        (json!({"topicName": topic, "body": {"some_message": 5}}), "body.some_message: "),
        (json!({"topicName": topic, "body": {}}), "body: must not be an empty object"),
        (json!({"topicName": topic}), "body: missing"),
        (json!({"topicName": topic, "body": {"some_message": "x"}, "headers": {"h": 1}}), "headers.h"),
        (json!({"topicName": topic, "body": {"some_message": "x"}, "key": 1}), "key: must be a string"),
        (json!({"topicName": "bad/topic", "body": {"some_message": "x"}}), "topicName"),
    ];
    for (request, expected) in cases {
        let f = p.publish(request.to_string().as_bytes()).unwrap_err();
        assert_eq!(f.status, 400, "{request}: {f:?}");
        assert!(f.message.contains(expected), "{request}: {f:?}");
    }
    // the same publisher still works, and the valid record is the only one on the topic
    p.publish(json!({"topicName": topic, "body": {"some_message": "ok"}}).to_string().as_bytes()).unwrap();
    assert_eq!(record_count(&topic), 1);
}

const RICH: &str = r#"syntax = "proto3";
package shop.v1;
import "google/protobuf/timestamp.proto";
message Order {
  enum Status { STATUS_UNSPECIFIED = 0; PAID = 1; SHIPPED = 2; }
  message Item { string sku = 1; int64 quantity = 2; double price = 3; repeated string tags = 4; }
  string id = 1;
  repeated Item items = 2;
  map<string, string> attributes = 3;
  Status status = 4;
  int64 total_cents = 5;
  bytes signature = 6;
  google.protobuf.Timestamp created_at = 7;
  oneof payment { string card = 8; string voucher = 9; }
  uint64 big_number = 10;
}
message Unused { int32 x = 1; }"#;

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn rich_schema_round_trips_exactly() {
    let (topic, registry) = topic_with_schema("rich", RICH);
    let body = json!({
        "id": "o-1",
        "items": [{"sku": "a", "quantity": "9007199254740993", "price": 1.25, "tags": ["x", "y"]},
                  {"sku": "b", "quantity": 2, "price": 0.5}],
        "attributes": {"channel": "web", "lang": "nl"},
        "status": "SHIPPED",
        "totalCents": "-42",
        "signature": "3q2+7w==",
        "createdAt": "2026-11-22T10:15:30.250Z",
        "voucher": "V-1",
        "big_number": "18446744073709551615"
    });
    let p = publisher(&config(&registry, json!({})));
    let d = p.publish(json!({"topicName": topic, "body": body}).to_string().as_bytes()).unwrap();
    let record = record_at(&topic, d.partition, d.offset);
    let back = decode(RICH, "shop.v1.Order", record.payload().unwrap());
    assert_eq!(
        back,
        json!({
            "id": "o-1",
            "items": [{"sku": "a", "quantity": "9007199254740993", "price": 1.25, "tags": ["x", "y"]},
                      {"sku": "b", "quantity": "2", "price": 0.5}],
            "attributes": {"channel": "web", "lang": "nl"},
            "status": "SHIPPED",
            "totalCents": "-42",
            "signature": "3q2+7w==",
            "createdAt": "2026-11-22T10:15:30.250Z",
            "voucher": "V-1",
            "bigNumber": "18446744073709551615"
        })
    );
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn configured_message_type_is_used_instead_of_the_first() {
    let (topic, registry) = topic_with_schema("override", RICH);
    let extra = json!({"topics": {topic.clone(): {"message_type": "shop.v1.Unused"}}});
    let p = publisher(&config(&registry, extra));
    let d = p.publish(json!({"topicName": topic, "body": {"x": 7}}).to_string().as_bytes()).unwrap();
    assert_eq!(record_at(&topic, d.partition, d.offset).payload().unwrap(), b"\x08\x07");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn schema_problems_answer_404_or_500_and_publish_nothing() {
    let registry = REGISTRY.to_string();
    let p = publisher(&config(&registry, json!({})));
    let missing = unique("missing");
    create_topic(&missing, 1);
    register_schema(&registry, &unique("other"), DataFormat::Protobuf, SEED_SCHEMA);
    let f = p.publish(json!({"topicName": missing, "body": {"some_message": "x"}}).to_string().as_bytes()).unwrap_err();
    assert_eq!(f.status, 404, "{f:?}");
    assert!(f.message.contains(&missing) && f.message.contains(&registry), "{f:?}");

    let broken = unique("broken");
    create_topic(&broken, 1);
    register_schema(&registry, &broken, DataFormat::Protobuf, "syntax = \"proto3\";\nmessage A { strin x = 1; }");
    let f = p.publish(json!({"topicName": broken, "body": {"x": "1"}}).to_string().as_bytes()).unwrap_err();
    assert_eq!(f.status, 500, "{f:?}");
    assert!(f.message.contains(&format!("{broken}.proto:2:")), "{f:?}");

    let avro = unique("avro");
    create_topic(&avro, 1);
    register_schema(&registry, &avro, DataFormat::Avro, r#"{"type":"record","name":"A","fields":[]}"#);
    let f = p.publish(json!({"topicName": avro, "body": {"x": "1"}}).to_string().as_bytes()).unwrap_err();
    assert_eq!((f.status, f.message.contains("AVRO")), (500, true), "{f:?}");

    for topic in [missing, broken, avro] {
        assert_eq!(record_count(&topic), 0);
    }
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn unreachable_registry_is_503() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // bound, then closed
    let mut config: Value = serde_json::from_str(&config("r", json!({"timeout_ms": 3000}))).unwrap();
    config["glue_endpoint"] = json!(format!("http://{closed}"));
    let p = publisher(&config.to_string());
    let f = p.publish(br#"{"topicName":"t","body":{"some_message":"x"}}"#).unwrap_err();
    assert_eq!(f.status, 503, "{f:?}");
    assert!(f.message.contains("Glue registry r could not be read"), "{f:?}");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn topic_missing_on_the_cluster_is_404_within_the_timeout() {
    let (topic, registry) = (unique("nocluster"), REGISTRY.to_string());
    register_schema(&registry, &topic, DataFormat::Protobuf, SEED_SCHEMA);
    let p = publisher(&config(&registry, json!({"timeout_ms": 4000})));
    let started = Instant::now();
    let f = p.publish(json!({"topicName": topic, "body": {"some_message": "x"}}).to_string().as_bytes()).unwrap_err();
    assert_eq!(f.status, 404, "{f:?}");
    assert!(f.message.contains("does not exist on the Kafka cluster"), "{f:?}");
    assert!(started.elapsed() < Duration::from_millis(4500), "{:?}", started.elapsed());
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn unreachable_broker_is_503_with_the_reason() {
    let (topic, registry) = (unique("nobroker"), REGISTRY.to_string());
    register_schema(&registry, &topic, DataFormat::Protobuf, SEED_SCHEMA);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config: Value = serde_json::from_str(&config(&registry, json!({"timeout_ms": 2000}))).unwrap();
    config["bootstrap_servers"] = json!(closed.to_string());
    let p = publisher(&config.to_string());
    let f = p.publish(json!({"topicName": topic, "body": {"some_message": "x"}}).to_string().as_bytes()).unwrap_err();
    assert_eq!(f.status, 503, "{f:?}");
    assert!(f.message.contains("cannot be reached") && f.message.contains("Connection refused"), "{f:?}");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn broker_that_never_answers_is_504() {
    let (topic, registry) = (unique("silent"), REGISTRY.to_string());
    register_schema(&registry, &topic, DataFormat::Protobuf, SEED_SCHEMA);
    // Accepts connections and never answers: the record can only time out.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config: Value = serde_json::from_str(&config(&registry, json!({"timeout_ms": 2000}))).unwrap();
    config["bootstrap_servers"] = json!(silent.local_addr().unwrap().to_string());
    let p = publisher(&config.to_string());
    let started = Instant::now();
    let f = p.publish(json!({"topicName": topic, "body": {"some_message": "x"}}).to_string().as_bytes()).unwrap_err();
    assert_eq!(f.status, 504, "{f:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    drop(silent);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn concurrent_publishes_are_each_acknowledged_and_stored_once() {
    let (topic, registry) = topic_with_schema("concurrent", SEED_SCHEMA);
    let p = publisher(&config(&registry, json!({})));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (p, topic) = (p.clone(), topic.clone());
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        let body = json!({"some_message": format!("{t}-{i}")});
                        let request = json!({"topicName": topic, "body": body, "key": format!("{t}-{i}")});
                        p.publish(request.to_string().as_bytes()).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut positions: Vec<_> =
        threads.into_iter().flat_map(|t| t.join().unwrap()).map(|d| (d.partition, d.offset)).collect();
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len(), 400, "every acknowledgement names its own position");

    let records = all_records(&topic);
    assert_eq!(records.len(), 400);
    let mut keys: Vec<_> = records.iter().map(|r| String::from_utf8(r.key().unwrap().to_vec()).unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 400, "each record stored exactly once");
    for r in &records {
        let value = decode(SEED_SCHEMA, "events.SampleEvent", r.payload().unwrap());
        assert_eq!(value["someMessage"].as_str().unwrap().as_bytes(), r.key().unwrap());
    }
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn message_entry_answers_each_request_once_through_the_queue() {
    use krakend_kafka::ffi::*;
    let (topic, registry) = topic_with_schema("parts", SEED_SCHEMA);
    let config = config(&registry, json!({}));
    let answers = kk_answers_new();
    let mut context = 0;
    let mut publish = |handle, topic: &str, key: Option<&str>, headers: &str, body: &str| unsafe {
        context += 1;
        let (key, key_len) = key.map_or((std::ptr::null(), 0), |k| (k.as_ptr(), k.len()));
        kk_publish_message(
            handle,
            topic.as_ptr(),
            topic.len(),
            key,
            key_len,
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            answers,
            context,
        );
    };
    let mut handle = std::ptr::null_mut();
    unsafe { assert!(kk_publisher_new(config.as_ptr(), config.len(), &mut handle).is_null()) };
    for i in 0..50 {
        let body = json!({"some_message": format!("m{i}")}).to_string();
        publish(handle, &topic, Some(&i.to_string()), "n=%C3%A9,i=1", &body);
    }
    publish(handle, &topic, None, "", r#"{"some_message":"no key, no headers"}"#);
    publish(handle, &topic, None, "broken", r#"{"some_message":"x"}"#);
    publish(handle, &topic, None, "", r#"{"some_message":"#);
    // the handle may go while requests are in flight: they keep what they need
    unsafe { kk_publisher_free(handle) };
    publish(std::ptr::null(), &topic, None, "", "{}");
    // Collected in batches, as the plugin's collector does.
    let mut collected: Vec<(usize, u16, Value)> = Vec::new();
    let mut out: Vec<kk_answer> = Vec::with_capacity(16);
    while collected.len() < 54 {
        let n = unsafe { kk_answers_wait(answers, out.as_mut_ptr(), 16, 10_000) };
        assert!(n > 0, "an answer within the timeout; {} so far", collected.len());
        unsafe { out.set_len(n) };
        for a in &out {
            let response = unsafe { std::slice::from_raw_parts(a.response, a.response_len) };
            collected.push((a.context, a.status, serde_json::from_slice(response).unwrap()));
        }
    }
    assert_eq!(unsafe { kk_answers_wait(answers, out.as_mut_ptr(), 16, 100) }, 0, "exactly one answer per call");
    unsafe { kk_answers_free(answers) };
    let mut contexts: Vec<usize> = collected.iter().map(|(c, _, _)| *c).collect();
    contexts.sort();
    assert_eq!(contexts, (1..=54).collect::<Vec<_>>());
    let answers: Vec<(u16, Value)> = collected.into_iter().map(|(_, s, a)| (s, a)).collect();
    for (status, answer) in &answers {
        assert_eq!(answer["statusCode"], status.to_string(), "{answer}");
    }
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 51);
    assert!(answers
        .iter()
        .any(|(s, a)| *s == 400 && a["message"].as_str().unwrap().starts_with("message-headers: item 1")));
    assert!(answers
        .iter()
        .any(|(s, a)| *s == 400 && a["message"].as_str().unwrap().starts_with("body: not valid JSON")));
    assert!(answers.iter().any(|(s, a)| *s == 500 && a["message"].as_str().unwrap().contains("NULL")));

    let records = all_records(&topic);
    assert_eq!(records.len(), 51);
    for r in &records {
        let value = decode(SEED_SCHEMA, "events.SampleEvent", r.payload().unwrap());
        match r.key() {
            Some(key) => {
                assert_eq!(value["someMessage"], format!("m{}", std::str::from_utf8(key).unwrap()));
                assert_eq!(headers_of(r), vec![("n".into(), "é".as_bytes().to_vec()), ("i".into(), b"1".to_vec())]);
            }
            None => {
                assert_eq!(value["someMessage"], "no key, no headers");
                assert!(r.headers().is_none());
            }
        }
    }
}
