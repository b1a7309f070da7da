//! The Rust core against a real Kafka broker and the moto Glue registry: what a 200 promises is read
//! back from the topic, and what is refused leaves the topic untouched.
//! Run with `make test` (it starts the services); plain `cargo test` lists these as ignored.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_sdk_glue::types::DataFormat;
use common::*;
use rdkafka::message::Message;
use serde_json::{json, Value};

/// Publishes `body` to `topic` as the plugin does, and expects a 200: where the record is.
fn stored(backend: &Backend, topic: &str, body: &Value) -> (i32, i64) {
    let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), "", "", &body.to_string());
    assert_eq!(status, 200, "{answer}");
    position(&answer)
}

/// Publishes `body` to `topic` as the plugin does, and expects a failure: its status and message.
fn refused(backend: &Backend, topic: &str, body: &Value) -> (u16, String) {
    let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), "", "", &body.to_string());
    assert_ne!(status, 200, "{answer}");
    (status, answer["message"].as_str().unwrap().to_owned())
}

/// Publishes the seed's envelope through `kk_publish`, the seed's contract for C callers.
fn publish_envelope(config: &str, request: &str) -> Value {
    use krakend_kafka::ffi::*;
    use std::ffi::CStr;
    let span = |s: &str| kk_bytes { data: s.as_ptr(), len: s.len() };
    unsafe {
        let mut handle = std::ptr::null_mut();
        let err = kk_publisher_new(span(config), &mut handle);
        assert!(err.is_null(), "{:?}", CStr::from_ptr(err));
        let answer = kk_publish(handle, span(request));
        let text = CStr::from_ptr(answer).to_str().unwrap().to_owned();
        kk_string_free(answer);
        kk_publisher_free(handle);
        serde_json::from_str(&text).unwrap()
    }
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn seed_sample_publishes_value_key_and_headers_through_the_envelope_entry() {
    let topic = topic_with_schema("seed", 3, SEED_SCHEMA);
    // written out: a serde_json map would sort the headers
    let request = format!(
        r#"{{"topicName":"{topic}","body":{{"some_message":"test value"}},"key":"messageKey",
            "headers":{{"trace-id":"x-y_z.é","my_key":"myvalue"}}}}"#
    );
    let answer = publish_envelope(&config(REGISTRY, json!({})), &request);
    assert_eq!(answer["statusCode"], "200", "{answer}");
    assert_eq!(answer["message"], "ok");
    let (partition, offset) = position(&answer);

    let record = record_at(&topic, partition, offset);
    assert_eq!((record.partition(), record.offset()), (partition, offset));
    assert_eq!(record.payload().unwrap(), b"\x0a\x0atest value", "plain protobuf, as protobuf-java writes it");
    assert_eq!(
        decode(SEED_SCHEMA, "events.SampleEvent", record.payload().unwrap()),
        json!({"someMessage": "test value"})
    );
    assert_eq!(record.key().unwrap(), b"messageKey");
    // in the envelope's order, as Message-Headers keeps the list's
    assert_eq!(
        headers_of(&record),
        vec![("trace-id".into(), "x-y_z.é".as_bytes().to_vec()), ("my_key".into(), b"myvalue".to_vec())]
    );

    // a name given twice is refused, as in Message-Headers (a JSON map would keep the last one)
    let duplicate = format!(r#"{{"topicName":"{topic}","body":{{"some_message":"x"}},"headers":{{"h":"1","h":"2"}}}}"#);
    let answer = publish_envelope(&config(REGISTRY, json!({})), &duplicate);
    assert_eq!(answer, json!({"statusCode": "400", "message": "headers: h is given twice"}));
    assert_eq!(record_count(&topic), 1);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn record_without_key_or_headers_has_neither() {
    let topic = topic_with_schema("bare", 3, SEED_SCHEMA);
    let backend = Backend::open(&config(REGISTRY, json!({})));
    let (partition, offset) = stored(&backend, &topic, &json!({"some_message": "x"}));
    let record = record_at(&topic, partition, offset);
    assert!(record.key().is_none());
    assert!(record.headers().is_none());
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn invalid_requests_answer_400_and_publish_nothing() {
    let topic = topic_with_schema("invalid", 3, SEED_SCHEMA);
    let backend = Backend::open(&config(REGISTRY, json!({})));
    let path = format!("/v1/event/{topic}");
    let cases = [
        ("", r#"{"other_key":"1"}"#, "body"),
        ("", r#"{"some_message":5}"#, "body.some_message: "),
        ("", r#"{}"#, "body: must not be an empty object"),
        ("", r#"{"some_message":"#, "body: not valid JSON"),
        ("a=1,a=2", r#"{"some_message":"x"}"#, "headers: a is given twice"),
        ("novalue", r#"{"some_message":"x"}"#, "message-headers: item 1"),
    ];
    for (headers, body, expected) in cases {
        let (status, answer) = backend.publish(&path, "k", headers, body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(expected), "{body}: {answer}");
    }
    let (status, answer) = backend.publish("/v1/event/bad$topic", "", "", r#"{"some_message":"x"}"#);
    assert!(status == 400 && answer["message"].as_str().unwrap().contains("topicName"), "{answer}");
    // the same publisher still works, and the valid record is the only one on the topic
    stored(&backend, &topic, &json!({"some_message": "ok"}));
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
    let topic = topic_with_schema("rich", 3, RICH);
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
    let backend = Backend::open(&config(REGISTRY, json!({})));
    let (partition, offset) = stored(&backend, &topic, &body);
    let record = record_at(&topic, partition, offset);
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
    let topic = topic_with_schema("override", 3, RICH);
    let extra = json!({"topics": {topic.clone(): {"message_type": "shop.v1.Unused"}}});
    let backend = Backend::open(&config(REGISTRY, extra));
    let (partition, offset) = stored(&backend, &topic, &json!({"x": 7}));
    assert_eq!(record_at(&topic, partition, offset).payload().unwrap(), b"\x08\x07");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn the_topic_fixed_by_the_config_wins_over_the_path() {
    let topic = topic_with_schema("fixed", 3, SEED_SCHEMA);
    let backend = Backend::open(&config(REGISTRY, json!({"topic": topic})));
    let (status, answer) = backend.publish("/v1/event/anything-else", "", "", r#"{"some_message":"f"}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(record_count(&topic), 1);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn schema_problems_answer_404_or_500_and_publish_nothing() {
    let registry = REGISTRY.to_string();
    let backend = Backend::open(&config(&registry, json!({})));
    let missing = unique("missing");
    create_topic(&missing, 1);
    register_schema(&registry, &unique("other"), DataFormat::Protobuf, SEED_SCHEMA);
    let (status, message) = refused(&backend, &missing, &json!({"some_message": "x"}));
    assert_eq!(status, 404, "{message}");
    assert_eq!(message, format!("no schema {missing} in the schema registry"), "the registry's name is the log's");

    let broken = unique("broken");
    create_topic(&broken, 1);
    register_schema(&registry, &broken, DataFormat::Protobuf, "syntax = \"proto3\";\nmessage A { strin x = 1; }");
    let (status, message) = refused(&backend, &broken, &json!({"x": "1"}));
    assert_eq!(status, 500, "{message}");
    assert!(!message.contains(".proto:"), "the compiler's message is the log's: {message}");

    // an Avro schema whose type the gateway does not write
    let avro = unique("avro");
    create_topic(&avro, 1);
    let duration = r#"{"type":"record","name":"A","fields":[{"name":"took","type":{"type":"fixed","name":"D","size":12,"logicalType":"duration"}}]}"#;
    register_schema(&registry, &avro, DataFormat::Avro, duration);
    let (status, message) = refused(&backend, &avro, &json!({"took": "AAAAAAAAAAAAAAAA"}));
    assert_eq!(
        (status, message.as_str()),
        (500, format!("schema {avro}: is not an Avro schema the gateway can write (the gateway's log says why); fix it in the registry").as_str())
    );

    for topic in [missing, broken, avro] {
        assert_eq!(record_count(&topic), 0);
    }
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn unreachable_registry_is_503() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap(); // bound, then closed
    let mut config = config_value("r", json!({"timeout_ms": 3000}));
    config["glue_endpoint"] = json!(format!("http://{closed}"));
    let backend = Backend::open(&config.to_string());
    let (status, message) = refused(&backend, "t", &json!({"some_message": "x"}));
    assert_eq!(status, 503, "{message}");
    // Short: what failed and its kind; the AWS SDK's own text goes to the log. (The AWS client's retries
    // after "connection refused" may outlast timeout_ms: then the core's own timer answers.)
    assert!(
        message.ends_with("t: not stored: the schema registry is unavailable (it cannot be reached)")
            || message.ends_with("t: not stored: the schema registry did not answer within 3000 ms"),
        "{message}"
    );
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn topic_missing_on_the_cluster_is_404_within_the_timeout() {
    let (topic, registry) = (unique("nocluster"), REGISTRY.to_string());
    register_schema(&registry, &topic, DataFormat::Protobuf, SEED_SCHEMA);
    let backend = Backend::open(&config(&registry, json!({"timeout_ms": 4000})));
    let started = Instant::now();
    let (status, message) = refused(&backend, &topic, &json!({"some_message": "x"}));
    assert_eq!(status, 404, "{message}");
    assert!(message.contains("does not exist on the Kafka cluster"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn unreachable_broker_is_503_with_the_reason() {
    let (topic, registry) = (unique("nobroker"), REGISTRY.to_string());
    register_schema(&registry, &topic, DataFormat::Protobuf, SEED_SCHEMA);
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut config = config_value(&registry, json!({"timeout_ms": 4000}));
    config["bootstrap_servers"] = json!(closed.to_string());
    let backend = Backend::open(&config.to_string());
    let (status, message) = refused(&backend, &topic, &json!({"some_message": "x"}));
    assert_eq!(status, 503, "{message}");
    assert!(message.ends_with("not stored: the Kafka cluster is unavailable: connection refused"), "{message}");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn broker_that_never_answers_is_503_not_stored_within_the_timeout() {
    let (topic, registry) = (unique("silent"), REGISTRY.to_string());
    register_schema(&registry, &topic, DataFormat::Protobuf, SEED_SCHEMA);
    // Accepts connections and never answers: the record is never sent, so it is certainly not stored.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = config_value(&registry, json!({"timeout_ms": 4000}));
    config["bootstrap_servers"] = json!(silent.local_addr().unwrap().to_string());
    let backend = Backend::open(&config.to_string());
    let started = Instant::now();
    let (status, message) = refused(&backend, &topic, &json!({"some_message": "x"}));
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("not stored"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    drop(silent);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn concurrent_publishes_are_each_acknowledged_and_stored_once() {
    let topic = topic_with_schema("concurrent", 3, SEED_SCHEMA);
    let backend = std::sync::Arc::new(Backend::open(&config(REGISTRY, json!({}))));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (backend, topic) = (backend.clone(), topic.clone());
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| {
                        let body = json!({"some_message": format!("{t}-{i}")}).to_string();
                        let (status, answer) =
                            backend.publish(&format!("/v1/event/{topic}"), &format!("{t}-{i}"), "n=%C3%A9,i=1", &body);
                        assert_eq!(status, 200, "{answer}");
                        position(&answer)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut positions: Vec<_> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
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
        assert_eq!(headers_of(r), vec![("n".into(), "é".as_bytes().to_vec()), ("i".into(), b"1".to_vec())]);
    }
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn backends_with_equal_kafka_settings_share_one_producer() {
    // Two backends that differ only in their own settings (timeout, topic rules, body limit) share one
    // producer: librdkafka numbers a producer's records per partition, so two records sent through one
    // producer to a one-partition topic by different backends come from one producer id.
    let topic = topic_with_schema("shared", 1, SEED_SCHEMA);
    let a = Backend::open(&config(REGISTRY, json!({"max_body_bytes": 1000, "kafka": {"client.id": topic.clone()}})));
    let b = Backend::open(&config(
        REGISTRY,
        json!({"topic": topic.clone(), "schema_ttl_ms": 1000, "kafka": {"client.id": topic.clone()}}),
    ));
    stored(&a, &topic, &json!({"some_message": "a"}));
    let (status, _) = b.publish("/ignored", "", "", r#"{"some_message":"b"}"#);
    assert_eq!(status, 200);
    assert_eq!(producer_ids(&topic), 1, "one producer id for both backends' records");

    // with other Kafka settings, another producer
    let c = Backend::open(&config(REGISTRY, json!({"kafka": {"client.id": format!("{topic}-other")}})));
    stored(&c, &topic, &json!({"some_message": "c"}));
    assert_eq!(producer_ids(&topic), 2);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn topics_may_share_a_named_schema_and_pin_a_version() {
    let shared = unique("shared-schema");
    register_schema(REGISTRY, &shared, DataFormat::Protobuf, SEED_SCHEMA);
    let v2 = r#"syntax = "proto3"; package events; message SampleEvent { string some_message = 1; int32 n = 2; }"#;
    register_schema_version(REGISTRY, &shared, v2);
    let (latest, pinned, missing) = (unique("named-latest"), unique("named-pinned"), unique("named-missing"));
    for topic in [&latest, &pinned, &missing] {
        create_topic(topic, 1);
    }
    let backend = Backend::open(&config(
        REGISTRY,
        json!({"topics": {
            latest.as_str(): {"schema_name": shared},
            pinned.as_str(): {"schema_name": shared, "schema_version": 1},
            missing.as_str(): {"schema_name": shared, "schema_version": 9},
        }}),
    ));
    let body = r#"{"some_message":"x","n":5}"#;
    let (status, answer) = backend.publish(&format!("/v1/event/{latest}"), "", "", body);
    assert_eq!(status, 200, "{answer}");
    let (p, o) = position(&answer);
    assert_eq!(record_at(&latest, p, o).payload().unwrap(), b"\x0a\x01x\x10\x05", "version 2's encoding");

    let (status, message) = refused(&backend, &pinned, &serde_json::from_str(body).unwrap());
    assert_eq!((status, message.as_str()), (400, "body: unrecognized field name 'n'"));
    let (status, answer) = backend.publish(&format!("/v1/event/{pinned}"), "", "", r#"{"some_message":"x"}"#);
    assert_eq!(status, 200, "version 1 pinned: {answer}");

    let (status, message) = refused(&backend, &missing, &json!({"some_message": "x"}));
    assert_eq!((status, message), (404, format!("no version 9 of schema {shared} in the schema registry")));
    assert_eq!((record_count(&latest), record_count(&pinned), record_count(&missing)), (1, 1, 0));
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn freeing_a_publisher_returns_once_every_record_it_took_is_acknowledged() {
    // A topic's first request waits for its schema on the runtime, which holds the publisher meanwhile:
    // freeing the handle then returned at once, and the records reached Kafka after it (or never, had
    // the process exited).
    let topics: Vec<String> = (0..3).map(|_| topic_with_schema("publish-free", 1, SEED_SCHEMA)).collect();
    let mut backend = Backend::open(&config(REGISTRY, json!({"kafka": {"client.id": unique("free")}})));
    let body = json!({"some_message": "x"}).to_string();
    // One topic's schema compiles only once the compile is let go, half a second after free was called.
    let held = krakend_kafka::fault_injection::hold_compiles(&topics[0]);
    let answers: Vec<_> = topics.iter().map(|t| backend.send(&format!("/v1/event/{t}"), "k", "", &body)).collect();
    held.wait_compiling();
    let let_go = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let releaser = {
        let let_go = std::sync::Arc::clone(&let_go);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let_go.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(held);
        })
    };
    backend.close();
    assert!(
        let_go.load(std::sync::atomic::Ordering::SeqCst),
        "kk_publisher_free returned before the held record was sent"
    );
    releaser.join().unwrap();
    for topic in &topics {
        assert_eq!(record_count(topic), 1, "{topic}: stored before kk_publisher_free returned");
    }
    for answer in answers {
        let (status, response) = answer.recv().unwrap();
        assert_eq!(status, 200, "{response}");
    }
}
