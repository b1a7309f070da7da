//! The service behind KrakenD, as the official-image example deploys it (krakend/service/): the gateway
//! binary (lura's proxy, the code KrakenD CE runs) with `krakend/service/krakend.json`, whose endpoints
//! check a JWT and forward with `backend/http` to `krakend-kafka serve` with `krakend/service/service.json`.
//! Its example JWKS and token (`jwks.example.json`, `example.jwt`) are used as the README uses them; only
//! addresses and the test services' settings are the test's own. No plugin is loaded.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::gateway::Gateway;
use common::jwt::{claims, signed};
use common::*;
use rdkafka::message::Message;
use serde_json::{json, Value};

fn example_file(file: &str) -> String {
    format!("{}/krakend/service/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn example(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(example_file(file)).unwrap()).unwrap()
}

/// The example service on the test services.
fn service() -> Gateway {
    let mut config = example("service.json");
    for route in config["routes"].as_array_mut().unwrap() {
        let backend = &mut route["krakend-kafka"];
        for (key, value) in config_value(REGISTRY, json!({})).as_object().unwrap() {
            backend[key] = value.clone();
        }
    }
    Gateway::service(config)
}

/// The example gateway in front of `service`, with the example JWKS mounted where its config says.
fn gateway(service: &Gateway) -> Gateway {
    let mut config = example("krakend.json");
    for endpoint in config["endpoints"].as_array_mut().unwrap() {
        endpoint["backend"][0]["host"] = json!([format!("http://{}", service.address)]);
        endpoint["extra_config"]["auth/validator"]["jwk_local_path"] = json!(example_file("jwks.example.json"));
    }
    let mut gateway = Gateway::spawn(&var("KK_KRAKEND_BIN"), config, None);
    gateway.wait_serving();
    gateway
}

fn post(gateway: &Gateway, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (status, text) = http_request(&gateway.address, "POST", path, headers, body.as_bytes()).unwrap();
    let answer = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not the service's JSON: {text}"));
    (status, answer)
}

#[test]
#[ignore = "needs the gateway binary, Kafka and the Glue emulator: run `make test`"]
fn the_official_image_example_publishes_through_backend_http_to_the_service() {
    let topic = topic_with_schema("behind-krakend", 3, SEED_SCHEMA);
    let service = service();
    let gateway = gateway(&service);
    let bearer = format!("Bearer {}", std::fs::read_to_string(example_file("example.jwt")).unwrap().trim());
    let key = &example("jwks.example.json")["keys"][0];
    let secret = URL_SAFE_NO_PAD.decode(key["k"].as_str().unwrap()).unwrap();
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let event = format!("/v1/event/{topic}");

    let (status, text) = http_request(&gateway.address, "POST", &event, &[], seed_body("no token").as_bytes()).unwrap();
    assert_eq!(status, 401, "{text}");
    let reader = format!("Bearer {}", signed(key["kid"].as_str().unwrap(), &claims(&["reader"], 600), &secret));
    let (status, text) = http_request(&gateway.address, "POST", &event, &[("Authorization", &reader)], b"{}").unwrap();
    assert_eq!(status, 403, "{text}");
    assert_eq!(record_count(&topic), 0, "a request the gateway refused reached the service");

    let headers = [
        ("Authorization", bearer.as_str()),
        ("Message-Key", "k-1"),
        ("Message-Headers", "source=behind-krakend"),
        ("Traceparent", parent),
        ("Idempotency-Key", "behind-1"),
    ];
    let (status, first) = post(&gateway, &event, &headers, &seed_body("through lura"));
    assert_eq!(status, 200, "{first}\n{}", service.log());
    // The service answered: its answer names the record, with what the gateway forwarded.
    let record = record_at(&topic, position(&first).0, position(&first).1);
    assert_eq!(record.key(), Some(&b"k-1"[..]));
    assert_eq!(
        headers_of(&record),
        [("source".to_string(), b"behind-krakend".to_vec()), ("traceparent".to_string(), parent.as_bytes().to_vec())]
    );
    assert_eq!(
        decode(SEED_SCHEMA, "events.SampleEvent", record.payload().unwrap()),
        json!({"someMessage": "through lura"})
    );
    let (status, again) = post(&gateway, &event, &headers, &seed_body("through lura"));
    assert_eq!((status, position(&again)), (200, position(&first)), "the retry is answered with the first's place");

    let (status, bad) = post(&gateway, &event, &[("Authorization", &bearer)], r#"{"unknown":"x"}"#);
    assert_eq!(status, 400, "{bad}");
    assert!(bad["message"].as_str().unwrap().contains("unknown"), "the service's message passes through: {bad}");

    let records =
        [json!({"key": "b", "value": {"some_message": "one"}}), json!({"key": "b", "value": {"some_message": "two"}})];
    let batch = json!({ "records": records });
    let (status, answer) =
        post(&gateway, &format!("/v1/batch/{topic}"), &[("Authorization", &bearer)], &batch.to_string());
    assert_eq!(status, 200, "{answer}");
    for (record, text) in answer["records"].as_array().unwrap().iter().zip(["one", "two"]) {
        let stored = record_at(&topic, position(record).0, position(record).1);
        assert_eq!(decode(SEED_SCHEMA, "events.SampleEvent", stored.payload().unwrap()), json!({"someMessage": text}));
    }
    assert_eq!(record_count(&topic), 3, "the record once, the batch's two");
}
