//! Through the gateway binary and the plugin, against the real broker: a backend that holds its limit of
//! records answers 429 with `Retry-After` at once and publishes nothing for it; under a broker that takes
//! less than the load offered to it, accepted requests keep their latency and none is lost; a
//! fire-and-forget backend answers 202 once the record is queued. `make test` runs these.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use common::gateway::{gateway_config, Gateway};
use common::proxy::Proxy;
use common::scrape::{free_address, Scrape};
use common::*;
use rdkafka::message::Message;
use serde_json::{json, Value};

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn past_its_in_flight_limit_a_backend_answers_429_with_retry_after_and_publishes_nothing(front) {
        let topic = topic_with_schema("flow-limit", 1, SEED_SCHEMA);
        // The broker advertises this port for its FAULTY listener; the proxy counts the records that reach it
        // (by their key), even while frozen: so the test knows when the backend holds its one record.
        let proxy = Proxy::counting(&var("KK_FAULTY_BOOTSTRAP"), var("KK_FAULTY_BROKER"), b"held");
        let metrics = free_address();
        let mut backend =
            config_value(REGISTRY, json!({"max_in_flight_records": 1, "retry_after_s": 3, "metrics_address": metrics}));
        backend["bootstrap_servers"] = json!(var("KK_FAULTY_BOOTSTRAP"));
        let gateway = front.start(gateway_config("20s", &[("/v1/event/{topic}", backend)]));
        assert_eq!(gateway.send(&topic, &[("Message-Key", "first")], &seed_body("first")).0, 200);

        proxy.freeze(true);
        let held = {
            let (address, path) = (gateway.address.clone(), format!("/v1/event/{topic}"));
            std::thread::spawn(move || {
                http_request(&address, "POST", &path, &[("Message-Key", "held")], seed_body("held").as_bytes()).unwrap()
            })
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while proxy.seen() == 0 {
            assert!(Instant::now() < deadline, "the record never reached the broker's proxy");
            std::thread::sleep(Duration::from_millis(10));
        }

        let started = Instant::now();
        let (answer, json) = gateway.answer(&topic, &[("Message-Key", "refused")], &seed_body("refused"));
        let took = started.elapsed();
        assert_eq!(answer.status, 429, "{json}");
        assert_eq!(answer.header("retry-after"), Some("3"), "{:?}", answer.headers);
        let message = json["message"].as_str().unwrap();
        assert!(message.contains("max_in_flight_records: 1") && message.contains("not stored"), "{message}");
        assert!(took < Duration::from_secs(5), "at once, not after the records in flight: {took:?}");

        proxy.freeze(false);
        let (status, answer) = held.join().unwrap();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(gateway.send(&topic, &[("Message-Key", "after")], &seed_body("after")).0, 200, "room again");
        assert_eq!(stored(&topic, "refused"), 0, "a refused request publishes nothing");
        let scrape = Scrape::take(&metrics, true);
        assert_eq!(scrape.value("krakend_kafka_backpressure_refusals_total", &[("topic", &topic)]), 1.0);
        assert_eq!(scrape.value("krakend_kafka_requests_total", &[("topic", &topic), ("status", "429")]), 1.0);
        assert_eq!((stored(&topic, "held"), stored(&topic, "after")), (1, 1));
    }
}

/// One request of the overload: its status (or the error that ended it), its key and how long it took.
struct Timed {
    status: Result<u16, ErrorKind>,
    key: String,
    took: Duration,
}

/// Sends requests from `clients` kept-alive connections for `length` (at most `cap` in all), each client
/// sending its next as soon as it has its answer: the offered load is as high as the gateway answers.
fn overload(gateway: &Gateway, topic: &str, clients: usize, length: Duration, cap: usize) -> Vec<Timed> {
    let end = Instant::now() + length;
    let sent = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                let sent = &sent;
                s.spawn(move || {
                    let mut connection = Connection::open(&gateway.address).unwrap();
                    let mut mine = Vec::new();
                    while Instant::now() < end && sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < cap {
                        let key = format!("c{c}-{}", mine.len());
                        let started = Instant::now();
                        let answer = connection.post(
                            &format!("/v1/event/{topic}"),
                            &[("Message-Key", &key)],
                            seed_body("overload").as_bytes(),
                        );
                        let status = answer.map(|(status, _)| status).map_err(|e| e.kind());
                        mine.push(Timed { status, key, took: started.elapsed() });
                        if status.is_err() {
                            connection = Connection::open(&gateway.address).unwrap();
                        }
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted.get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default()
}

/// The figures of one overload run, for docs/http.md (printed, never asserted as timings).
fn report(name: &str, length: Duration, runs: &[Timed]) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in runs {
        *counts.entry(r.status.map_or_else(|e| format!("{e:?}"), |s| s.to_string())).or_default() += 1;
    }
    let mut accepted: Vec<Duration> = runs.iter().filter(|r| r.status == Ok(200)).map(|r| r.took).collect();
    let mut refused: Vec<Duration> = runs.iter().filter(|r| r.status == Ok(429)).map(|r| r.took).collect();
    accepted.sort();
    refused.sort();
    println!(
        "overload {name}: {} requests in {:.1} s ({:.0}/s offered): {counts:?}; accepted {:.0}/s, p50 {:?} p99 {:?} \
         max {:?}; 429 p99 {:?}",
        runs.len(),
        length.as_secs_f64(),
        runs.len() as f64 / length.as_secs_f64(),
        accepted.len() as f64 / length.as_secs_f64(),
        percentile(&accepted, 0.5),
        percentile(&accepted, 0.99),
        accepted.last().copied().unwrap_or_default(),
        percentile(&refused, 0.99),
    );
    counts
}

each_front! {
    /// The broker takes a client's records at a fixed byte rate (a quota: it delays its answers to keep the
    /// rate, as a saturated cluster would), far below what 128 callers offer. With the default limits every
    /// caller's record queues behind the others' and the wait grows with the callers; with a limit below
    /// them the gateway refuses the excess at once, and accepted records keep a short wait. Every record
    /// answered 200 is stored; nothing refused is.
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn under_a_broker_slower_than_the_load_accepted_requests_stay_fast_and_none_is_lost(front) {
        let length = Duration::from_secs(5);
        for (name, limit) in [("max_in_flight_records 16", Some(16)), ("default limits", None)] {
            let topic = topic_with_schema("flow-overload", 1, SEED_SCHEMA);
            let client = unique("kk-overload");
            services("quota", &[&client, "20000"], "");
            let mut backend = config_value(REGISTRY, json!({"timeout_ms": 10000, "kafka": {"client.id": client}}));
            if let Some(limit) = limit {
                backend["max_in_flight_records"] = json!(limit);
            }
            let gateway = front.start(gateway_config("15s", &[("/v1/event/{topic}", backend)]));
            assert_eq!(gateway.send(&topic, &[("Message-Key", "warm")], &seed_body("warm")).0, 200);
            let runs = overload(&gateway, &topic, 128, length, 200_000);
            let counts = report(name, length, &runs);
            assert!(runs.iter().all(|r| r.status.is_ok()), "the gateway answers every request: {counts:?}");
            if limit.is_none() {
                continue;
            }
            assert!(counts.get("429").is_some_and(|&n| n > 0), "the load was over the limit: {counts:?}");
            let others: usize =
                counts.iter().filter(|(s, _)| !["200", "429"].contains(&s.as_str())).map(|(_, n)| n).sum();
            assert_eq!(others, 0, "only stored or refused: {counts:?}");
            let accepted: HashSet<&str> = runs.iter().filter(|r| r.status == Ok(200)).map(|r| r.key.as_str()).collect();
            let records = all_records(&topic);
            let stored: HashSet<&str> =
                records.iter().filter_map(|r| r.key()).map(|k| std::str::from_utf8(k).unwrap()).collect();
            assert_eq!(records.len(), accepted.len() + 1, "one record per 200 (and the warm-up), none per 429");
            assert!(accepted.iter().all(|k| stored.contains(k)), "every accepted record is stored");
        }
    }
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn fire_and_forget_answers_202_once_queued_and_logs_a_record_it_lost(front) {
        let topic = topic_with_schema("flow-forget", 1, SEED_SCHEMA);
        // A schema but no topic: the record is queued, then librdkafka gives up on it.
        let missing = unique("flow-forget-missing");
        register_schema(REGISTRY, &missing, aws_sdk_glue::types::DataFormat::Protobuf, SEED_SCHEMA);
        // The default timeout_ms: librdkafka calls the topic missing (404) at half of it, well before it would
        // give up on the record as timed out (503) even on a machine busy with the overload test beside it.
        let metrics = free_address();
        let backend = config_value(REGISTRY, json!({"fire_and_forget": true, "metrics_address": metrics}));
        let gateway = front.start(gateway_config("10s", &[("/v1/event/{topic}", backend)]));

        let (status, answer) = gateway.send(&topic, &[("Message-Key", "queued")], &seed_body("queued"));
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer, json!({"statusCode": "202", "message": answer["message"]}), "no partition or offset");
        assert!(answer["message"].as_str().unwrap().contains("may still be lost"), "{answer}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let record = loop {
            // answered before the broker's acknowledgement: the record is stored soon after
            if let Some(r) = all_records(&topic).into_iter().find(|r| r.key() == Some(&b"queued"[..])) {
                break r;
            }
            assert!(Instant::now() < deadline, "the record is stored");
        };
        let value = decode(SEED_SCHEMA, "events.SampleEvent", record.payload().unwrap());
        assert_eq!(value, json!({"someMessage": "queued"}));

        let (status, answer): (u16, Value) = gateway.send(&topic, &[], r#"{"no_such_field":1}"#);
        assert_eq!(status, 400, "bad input is still refused before anything is queued: {answer}");

        let (status, answer) = gateway.send(&missing, &[], &seed_body("lost"));
        assert_eq!(status, 202, "{answer}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let line = format!("topic {missing}: a fire_and_forget record failed (404)");
        while !gateway.log().contains(&line) {
            assert!(Instant::now() < deadline, "the lost record is logged: {}", gateway.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let scrape = Scrape::take(&metrics, true);
        let deliveries = |topic: &str, result: &str| {
            scrape.value("krakend_kafka_fire_and_forget_deliveries_total", &[("topic", topic), ("result", result)])
        };
        assert_eq!((deliveries(&topic, "ok"), deliveries(&missing, "failed")), (1.0, 1.0));
        assert_eq!(scrape.value("krakend_kafka_requests_total", &[("topic", &topic), ("status", "202")]), 1.0);
    }
}
