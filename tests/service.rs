//! `krakend-kafka serve`: what only the service has (its config file, its probes, its own server's
//! limits and shutdown), run as a process from its config file on the real broker and the Glue emulator;
//! what it publishes is read back. The cases it shares with the plugin run through both
//! (`each_front!`).

mod common;

use std::io::{BufRead, BufReader, Write};

use common::gateway::Gateway;
use common::*;
use rdkafka::message::Message as _;
use serde_json::json;

fn post(service: &Gateway, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, serde_json::Value) {
    let (status, body) = http_request(&service.address, "POST", path, headers, body.as_bytes()).unwrap();
    (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")))
}

/// The example gateway's two endpoints, as routes.
fn routes() -> serde_json::Value {
    json!({
        "routes": [
            {"prefix": "/v1/event/", "krakend-kafka": config_value(REGISTRY, json!({}))},
            {"prefix": "/v1/batch/", "krakend-kafka": config_value(REGISTRY, json!({"batch": true, "max_body_bytes": 4096}))},
        ]
    })
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_request_is_published_with_its_key_and_headers_and_answered_with_its_place() {
    let topic = topic_with_schema("service", 3, SEED_SCHEMA);
    let service = Gateway::service(routes());
    let headers = [("Message-Key", "messageKey"), ("Message-Headers", "trace-id=x-y_z,my_key=myvalue")];
    let (status, answer) = post(&service, &format!("/v1/event/{topic}"), &headers, r#"{"some_message":"test value"}"#);
    assert_eq!((status, &answer["statusCode"], &answer["message"]), (200, &json!("200"), &json!("ok")), "{answer}");
    let (partition, offset) = position(&answer);
    let record = record_at(&topic, partition, offset);
    assert_eq!(record.payload().unwrap(), b"\x0a\x0atest value");
    assert_eq!(record.key().unwrap(), b"messageKey");
    assert_eq!(
        headers_of(&record),
        vec![("trace-id".into(), b"x-y_z".to_vec()), ("my_key".into(), b"myvalue".to_vec())]
    );

    // The batch route: each record's place.
    let batch = json!({"records": [{"key": "a", "value": {"some_message": "1"}}, {"key": "b", "value": {"some_message": "2"}}]});
    let (status, answer) = post(&service, &format!("/v1/batch/{topic}"), &[], &batch.to_string());
    assert_eq!(status, 200, "{answer}");
    for (i, record) in answer["records"].as_array().unwrap().iter().enumerate() {
        let (partition, offset) = position(record);
        assert_eq!(record_at(&topic, partition, offset).key().unwrap(), [b"a", b"b"][i]);
    }
    assert_eq!(record_count(&topic), 3);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn bad_requests_are_answered_as_the_plugin_answers_them_and_publish_nothing() {
    let topic = topic_with_schema("service-bad", 1, SEED_SCHEMA);
    let service = Gateway::service(routes());
    let path = format!("/v1/event/{topic}");
    let (status, answer) = post(&service, &path, &[], r#"{"some_mesage":"typo"}"#);
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("some_mesage"), "{answer}");
    let (status, answer) = post(&service, &path, &[("Message-Headers", "a=1,a=2")], r#"{"some_message":"x"}"#);
    assert_eq!((status, answer["message"].as_str()), (400, Some("headers: a is given twice")));
    let (status, answer) = post(&service, "/v2/elsewhere/t", &[], "{}");
    assert_eq!(status, 404, "{answer}");
    assert!(answer["message"].as_str().unwrap().starts_with("no route for /v2/elsewhere/t"), "{answer}");
    let (status, _) = http_request(&service.address, "GET", &path, &[], b"").unwrap();
    assert_eq!(status, 405);

    // A body past the batch route's 4096 bytes is refused by its Content-Length, before it is sent.
    let mut stream = std::net::TcpStream::connect(&service.address).unwrap();
    let head = format!("POST /v1/batch/{topic} HTTP/1.1\r\nHost: s\r\nContent-Length: 1000000\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(record_count(&topic), 0);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn health_readiness_and_metrics_are_served_beside_the_routes() {
    let topic = topic_with_schema("service-probes", 1, SEED_SCHEMA);
    let service = Gateway::service(routes());
    assert_eq!(http_request(&service.address, "GET", "/__health", &[], b"").unwrap().0, 200);
    assert_eq!(post(&service, &format!("/v1/event/{topic}"), &[], r#"{"some_message":"x"}"#).0, 200);
    // Ready once librdkafka reported a broker up (its first statistics).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, text) = http_request(&service.address, "GET", "/ready", &[], b"").unwrap();
        if status == 200 {
            break;
        }
        assert!(status == 503 && std::time::Instant::now() < deadline, "{status} {text}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, text) = http_request(&service.address, "GET", "/metrics", &[], b"").unwrap();
    assert!(status == 200 && text.contains(&format!("topic=\"{topic}\"")), "{status} {text}");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn sigterm_answers_the_requests_taken_then_exits_0() {
    let topic = topic_with_schema("service-term", 1, SEED_SCHEMA);
    let mut service = Gateway::service(routes());
    let mut connection = Connection::open(&service.address).unwrap();
    assert_eq!(connection.post(&format!("/v1/event/{topic}"), &[], br#"{"some_message":"before"}"#).unwrap().0, 200);
    service.signal(libc::SIGTERM);
    let status = service.exited_within(std::time::Duration::from_secs(60)).expect("the service exits");
    assert_eq!(status.code(), Some(0), "{status}");
    let log = service.log();
    assert!(log.contains("SIGTERM: no more connections") && log.contains("[krakend-kafka] stopped"), "{log}");
    assert!(std::net::TcpStream::connect(&service.address).is_err(), "no longer listening");
    assert_eq!(record_count(&topic), 1);
}
