//! A backend whose AWS settings cannot be resolved when it opens (as at a machine's boot, before the
//! region or the credentials are there) answers 503 and opens by itself once they can: no restart. Its
//! own test binary, because it changes the process's environment.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_backend_whose_region_cannot_be_resolved_yet_answers_503_and_opens_by_itself() {
    let topic = topic_with_schema("startup", 1, SEED_SCHEMA);
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/krakend-kafka-test");
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION", "REGION"] {
        std::env::remove_var(name);
    }
    let mut config = config_value(REGISTRY, json!({"timeout_ms": 3000}));
    config.as_object_mut().unwrap().remove("region");

    // An instance metadata service that takes connections and never answers: the gateway's start is not
    // held up by it beyond the bound, and the backend answers 503 while it is starting.
    let metadata = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std::env::set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", format!("http://{}", metadata.local_addr().unwrap()));
    let held: Vec<std::net::TcpStream> = Vec::new();
    let held = std::sync::Arc::new(std::sync::Mutex::new(held));
    let holder = std::sync::Arc::clone(&held);
    std::thread::spawn(move || metadata.incoming().flatten().for_each(|c| holder.lock().unwrap().push(c)));
    let (silent, error) = Backend::try_open(&config.to_string());
    // The SDK gives up on the metadata service after its own timeouts, or the 3 s bound ends the wait.
    let error = error.expect("no region yet");
    assert!(
        error.contains("the AWS default chain gave no region within 3 s") || error.contains("region: missing"),
        "{error}"
    );
    assert!(!held.lock().unwrap().is_empty(), "the metadata service was asked");
    let (status, answer) = silent.publish(&format!("/v1/event/{topic}"), "silent", "", r#"{"some_message":"x"}"#);
    assert_eq!(status, 503, "{answer}");
    drop(silent);

    // No region anywhere the AWS default chain looks: not in the config, not in the environment, no
    // profile, and no instance metadata.
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let (backend, error) = Backend::try_open(&config.to_string());
    let error = error.expect("the region is missing");
    assert!(error.contains("region: missing") && error.contains("tried again every 5 s"), "{error}");

    let path = format!("/v1/event/{topic}");
    let body = json!({"some_message": "x"}).to_string();
    let (status, answer) = backend.publish(&path, "early", "", &body);
    assert_eq!(status, 503, "{answer}");
    assert!(answer["message"].as_str().unwrap().starts_with("krakend-kafka is starting: config key region: missing"));

    // The region appears (as an instance's metadata would): the backend opens and publishes.
    std::env::set_var("AWS_REGION", "eu-central-1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut refused = 1;
    loop {
        let (status, answer) = backend.publish(&path, "late", "", &body);
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{answer}");
        assert!(Instant::now() < deadline, "never opened: {answer}");
        refused += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(record_count(&topic), 1, "only the record answered 200 of {} requests", refused + 1);
}
