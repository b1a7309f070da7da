//! `Idempotency-Key` through the gateway binary and the plugin, against the real broker: a repeat is
//! answered with the first request's partition and offset and publishes nothing; a different request
//! with the same key is 422; a retry after a 504 gets the record that was stored after all.
//! `make test` runs these.

mod common;

use std::time::{Duration, Instant};

use common::gateway::gateway_config;
use common::proxy::Proxy;
use common::scrape::{free_address, Scrape};
use common::*;
use rdkafka::message::Message;
use serde_json::json;

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_repeat_gets_the_first_answer_and_publishes_nothing_and_a_different_request_with_the_key_is_422(front) {
        let topic = topic_with_schema("idem", 2, SEED_SCHEMA);
        let other = topic_with_schema("idem-other", 1, SEED_SCHEMA);
        let metrics = free_address();
        let backend = config_value(REGISTRY, json!({"idempotency_window_s": 600, "metrics_address": metrics}));
        let gateway = front.start(gateway_config("10s", &[("/v1/event/{topic}", backend)]));
        let send = |topic: &str, key: &str, record_key: &str, text: &str| {
            let mut headers = vec![("Message-Key", record_key)];
            if !key.is_empty() {
                headers.push(("Idempotency-Key", key));
            }
            gateway.send(topic, &headers, &seed_body(text))
        };

        let (status, first) = send(&topic, "8e03978e-40d5-43e8-bc93-6894a57f9324", "k", "a");
        assert_eq!(status, 200, "{first}");
        for key in ["8e03978e-40d5-43e8-bc93-6894a57f9324", "\"8e03978e-40d5-43e8-bc93-6894a57f9324\""] {
            let (status, again) = send(&topic, key, "k", "a");
            assert_eq!((status, &again), (200, &first), "the first answer, partition and offset included");
        }
        // A retry is a new span of the caller's trace: another traceparent, the same request.
        let traced = [
            ("Message-Key", "k"),
            ("Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
            ("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ];
        assert_eq!(gateway.send(&topic, &traced, &seed_body("a")), (200, first.clone()));
        assert_eq!(record_count(&topic), 1, "published once");

        let (status, answer) = send(&topic, "8e03978e-40d5-43e8-bc93-6894a57f9324", "k", "b");
        assert_eq!(status, 422, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains("different request"), "{answer}");
        let (status, answer) = send(&topic, "8e03978e-40d5-43e8-bc93-6894a57f9324", "other-key", "a");
        assert_eq!(status, 422, "the record key is part of the request: {answer}");

        // Keys are per topic; another key is another request; no key, no memory.
        assert_eq!(send(&other, "8e03978e-40d5-43e8-bc93-6894a57f9324", "k", "a").0, 200);
        let (status, second) = send(&topic, "second", "k", "a");
        assert_eq!(status, 200);
        assert_ne!(position(&second), position(&first));
        let (_, plain1) = send(&topic, "", "k", "a");
        let (_, plain2) = send(&topic, "", "k", "a");
        assert_ne!(position(&plain1), position(&plain2));
        assert_eq!((record_count(&topic), record_count(&other)), (4, 1));

        let (status, answer) = send(&topic, &"x".repeat(256), "k", "a");
        assert_eq!(status, 400, "{answer}");
        assert!(answer["message"].as_str().unwrap().starts_with("idempotency-key: "), "{answer}");
        assert_eq!(record_count(&topic), 4, "nothing published for bad input");
        let scrape = Scrape::take(&metrics, true);
        assert_eq!(scrape.value("krakend_kafka_idempotency_replays_total", &[("topic", &topic)]), 3.0);
        assert_eq!(scrape.value("krakend_kafka_requests_total", &[("topic", &topic), ("status", "422")]), 2.0);
    }
}

each_front! {
    /// The network to the broker goes silent while a record is on it: its caller gets the 504 that says "may
    /// be stored". The retry with the same key is sent before the network is back (it waits for the first's
    /// outcome, or finds it); once the record is stored, the retry and every later one get its partition and
    /// offset, and the record is stored and sent once.
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_retry_after_a_504_gets_the_record_stored_after_all_not_a_second_one(front) {
        let topic = topic_with_schema("idem-504", 1, SEED_SCHEMA);
        // The broker advertises this port for its FAULTY listener; the proxy counts the records that reach
        // it (by their key), even while frozen.
        let proxy = Proxy::counting(&var("KK_FAULTY_BOOTSTRAP"), var("KK_FAULTY_BROKER"), b"retried");
        // librdkafka holds the record longer than the backend's budget, as a producer shared with a backend
        // of a longer budget would.
        let mut backend = config_value(REGISTRY, json!({"timeout_ms": 2000, "kafka": {"message.timeout.ms": 30000}}));
        backend["bootstrap_servers"] = json!(var("KK_FAULTY_BOOTSTRAP"));
        let gateway = front.start(gateway_config("20s", &[("/v1/event/{topic}", backend)]));
        assert_eq!(gateway.send(&topic, &[("Message-Key", "warm")], &seed_body("warm")).0, 200);

        let headers = [("Message-Key", "retried"), ("Idempotency-Key", "order-17")];
        proxy.freeze(true);
        let (status, answer) = gateway.send(&topic, &headers, &seed_body("x"));
        assert_eq!(status, 504, "{answer}");
        assert_eq!(proxy.seen(), 1, "the record is on its way to the broker");
        // A repeat while librdkafka still holds the first waits no longer than a record of its own would:
        // 504 at timeout_ms, not librdkafka's verdict at message.timeout.ms (past the gateway's own 20 s).
        let (status, answer) = gateway.send(&topic, &headers, &seed_body("x"));
        assert_eq!(status, 504, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains("may still be stored"), "{answer}");

        let retry = {
            let (address, path) = (gateway.address.clone(), format!("/v1/event/{topic}"));
            std::thread::spawn(move || {
                http_request(&address, "POST", &path, &headers, seed_body("x").as_bytes()).unwrap()
            })
        };
        proxy.freeze(false);
        let (status, answer) = retry.join().unwrap();
        assert_eq!(status, 200, "{answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let (status, again) = gateway.send(&topic, &headers, &seed_body("x"));
        assert_eq!((status, &again), (200, &answer));

        let deadline = Instant::now() + Duration::from_secs(20);
        while record_count(&topic) < 2 {
            assert!(Instant::now() < deadline, "the record is stored");
        }
        let records = all_records(&topic);
        let retried: Vec<_> = records.iter().filter(|r| r.key() == Some(&b"retried"[..])).collect();
        assert_eq!(retried.len(), 1, "stored once");
        assert_eq!((retried[0].partition(), retried[0].offset()), position(&answer));
        assert_eq!(proxy.seen(), 1, "sent once");
    }
}
