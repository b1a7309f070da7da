//! The metrics and readiness the core serves on `metrics_address`, through the real gateway, plugin and
//! broker: a scrape parses with the Prometheus project's own parser (tests/services/prometheus_parse.py)
//! and its counters move by exactly what was published; `/ready` follows the producers' broker connections;
//! librdkafka's own warnings and asked-for debug lines reach the log.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::gateway::*;
use common::proxy::Proxy;
use common::scrape::{free_address, Scrape};
use common::*;
use rdkafka::Message;
use serde_json::json;

fn get(address: &str, path: &str, accept: &str) -> (u16, String) {
    http_request(address, "GET", path, &[("Accept", accept)], b"").unwrap()
}

/// Polls `GET /ready` until its answer satisfies `wanted`, for up to `limit`; the answers seen, in order.
fn ready_until(address: &str, limit: Duration, wanted: impl Fn(u16, &str) -> bool) -> Vec<(u16, String)> {
    let deadline = Instant::now() + limit;
    let mut seen: Vec<(u16, String)> = Vec::new();
    loop {
        let (status, body) = get(address, "/ready", "*/*");
        let done = wanted(status, &body);
        if seen.last().is_none_or(|(s, b)| (*s, b.as_str()) != (status, body.as_str())) {
            seen.push((status, body));
        }
        if done {
            return seen;
        }
        assert!(Instant::now() < deadline, "/ready never got there: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
fn a_scrape_parses_and_its_counters_move_by_exactly_what_was_published() {
    const N: usize = 7;
    let topic = topic_with_schema("metrics", 2, SEED_SCHEMA);
    let metrics = free_address();
    let backend = config_value(REGISTRY, json!({"metrics_address": metrics, "kafka": {"statistics.interval.ms": 500}}));
    let gateway = Gateway::start(gateway_config("25s", &[("/v1/event/{topic}", backend)]));
    ready_until(&metrics, Duration::from_secs(30), |status, _| status == 200);
    // A client that connects and says nothing holds no connection for long.
    let mut idle = std::net::TcpStream::connect(&metrics).unwrap();
    let idle_since = Instant::now();

    let before = Scrape::take(&metrics, true);
    for i in 0..N {
        let (status, answer) = gateway.send(&topic, &[], &format!(r#"{{"some_message":"hello {}"}}"#, "x".repeat(i)));
        assert_eq!(status, 200, "{answer}");
    }
    let (status, answer) = gateway.send(&topic, &[], r#"{"some_message":5}"#);
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = gateway.send(&topic, &[], "not json");
    assert_eq!(status, 400, "{answer}");
    let after = Scrape::take(&metrics, true);

    let moved = |name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.value(name, labels);
    let t = ("topic", topic.as_str());
    assert_eq!(moved("krakend_kafka_requests_total", &[t, ("status", "200")]), N as f64);
    assert_eq!(moved("krakend_kafka_requests_total", &[t, ("status", "400")]), 1.0);
    // A request refused before its topic was read is counted once, under no topic.
    assert_eq!(moved("krakend_kafka_requests_total", &[("topic", "_none"), ("status", "400")]), 1.0);
    assert_eq!(moved("krakend_kafka_produced_records_total", &[t]), N as f64);
    let bytes: usize = all_records(&topic).iter().map(|r| r.payload().unwrap().len()).sum();
    assert_eq!(moved("krakend_kafka_produced_bytes_total", &[t]), bytes as f64);
    assert_eq!(moved("krakend_kafka_publish_latency_seconds_count", &[]), N as f64);
    assert_eq!(after.family_type("krakend_kafka_publish_latency_seconds"), Some("histogram"));
    let bucket = |le: &str| after.value("krakend_kafka_publish_latency_seconds_bucket", &[("le", le)]);
    assert_eq!(bucket("+Inf"), after.value("krakend_kafka_publish_latency_seconds_count", &[]));
    assert!(bucket("0.0005") <= bucket("10.0"), "cumulative buckets from 0.5 ms to 10 s");
    // The topic was new: one registry call, then every request found its schema in the cache.
    assert_eq!(moved("krakend_kafka_registry_calls_total", &[("registry", "glue"), ("result", "ok")]), 1.0);
    assert_eq!(moved("krakend_kafka_schema_cache_misses_total", &[]), 1.0);
    assert_eq!(moved("krakend_kafka_schema_cache_hits_total", &[]), N as f64);

    // librdkafka's figures come with its next statistics report after the traffic.
    let deadline = Instant::now() + Duration::from_secs(10);
    let figures = loop {
        let scrape = Scrape::take(&metrics, false); // Prometheus' own text format parses too
        let up = scrape.samples("krakend_kafka_broker_up");
        let rtt = scrape.samples("krakend_kafka_broker_rtt_p99_seconds");
        if up.iter().any(|(_, v)| *v == 1.0) && rtt.iter().any(|(_, v)| *v > 0.0) {
            break scrape;
        }
        assert!(Instant::now() < deadline, "no broker up with a round-trip time: {up:?} {rtt:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let queue = figures.samples("krakend_kafka_producer_queue_messages");
    assert!(
        queue.len() == 1 && queue[0].0["client"].as_str().unwrap().starts_with("krakend-kafka#producer-"),
        "{queue:?}"
    );
    assert_eq!(figures.samples("krakend_kafka_producer_queue_bytes").len(), 1);
    assert!(!figures.samples("krakend_kafka_broker_rtt_avg_seconds").is_empty());

    let (status, body) = get(&metrics, "/metric", "*/*");
    assert_eq!((status, body.as_str()), (404, "not found: GET /metrics or /ready\n"));
    idle.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert!(matches!(idle.read(&mut [0; 64]), Ok(0) | Err(_)), "the listener closed the idle connection");
    assert!(idle_since.elapsed() < Duration::from_secs(15), "within its header read timeout");
}

#[test]
#[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
fn ready_only_while_every_producer_reaches_a_broker() {
    let topic = topic_with_schema("metrics-ready", 1, SEED_SCHEMA);
    // Nothing listens there until the proxy below does.
    let unreachable = free_address();
    let addresses = [free_address(), free_address()];
    let kafka = json!({"statistics.interval.ms": 500, "reconnect.backoff.max.ms": 500});
    let reachable = config_value(REGISTRY, json!({"metrics_address": addresses[0], "kafka": kafka}));
    let mut cut_off = config_value(REGISTRY, json!({"metrics_address": addresses[1], "kafka": kafka}));
    cut_off["bootstrap_servers"] = json!(unreachable);
    let gateway =
        Gateway::start(gateway_config("25s", &[("/v1/event/{topic}", reachable), ("/v1/cut-off/{topic}", cut_off)]));
    // The first backend opened serves; the other's address is ignored, and logged.
    let log = gateway.log();
    let served = addresses.iter().find(|a| log.contains(&format!("metrics on http://{a}/metrics"))).expect(&log);
    let other = addresses.iter().find(|a| *a != served).unwrap();
    assert!(log.contains(&format!("metrics_address: {other} ignored: this process serves its metrics on {served}")));

    let seen = ready_until(served, Duration::from_secs(30), |_, body| body.contains("broker"));
    let last = seen.last().unwrap();
    assert!(last.0 == 503 && last.1.starts_with("not ready: no Kafka broker reachable"), "{seen:?}");
    assert!(seen.iter().all(|(status, _)| *status == 503), "never ready while a producer reaches no broker: {seen:?}");
    let (status, answer) = gateway.send(&topic, &[], r#"{"some_message":"while another backend is cut off"}"#);
    assert_eq!(status, 200, "{answer}");

    let _proxy = Proxy::start(&unreachable, bootstrap());
    let seen = ready_until(served, Duration::from_secs(30), |status, _| status == 200);
    assert_eq!(seen.last().unwrap().1, "ready\n");
    let path = format!("/v1/cut-off/{topic}");
    let (status, body) = http_request(&gateway.address, "POST", &path, &[], br#"{"some_message":"reached"}"#).unwrap();
    assert_eq!(status, 200, "{body}");
}

#[test]
#[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
fn topics_that_are_not_served_take_no_label_and_leave_every_label_to_the_topics_served() {
    let topic = topic_with_schema("metrics-labels", 1, SEED_SCHEMA);
    let metrics = free_address();
    let allowed = json!([topic, "metrics-nothing-*"]);
    let backend = config_value(REGISTRY, json!({"metrics_address": metrics, "allowed_topics": allowed}));
    let gateway = Gateway::start(gateway_config("25s", &[("/v1/event/{topic}", backend)]));
    ready_until(&metrics, Duration::from_secs(30), |status, _| status == 200);
    // More made-up names than there are labels: refused by the allow-list, or allowed without a schema.
    let junk: Vec<String> =
        (0..1001).map(|i| format!("junk-{i}")).chain((0..3).map(|i| format!("metrics-nothing-{i}"))).collect();
    for name in &junk {
        let (status, answer) = gateway.send(name, &[], r#"{"some_message":"junk"}"#);
        assert_eq!(status, 404, "{name}: {answer}");
    }
    let (status, answer) = gateway.send(&topic, &[], r#"{"some_message":"served"}"#);
    assert_eq!(status, 200, "{answer}");

    let scrape = Scrape::take(&metrics, true);
    let requests = |topic: &str, status: &str| {
        scrape.value("krakend_kafka_requests_total", &[("topic", topic), ("status", status)])
    };
    assert_eq!(requests(&topic, "200"), 1.0, "the topic served has its own label");
    assert_eq!(requests("_other", "404"), junk.len() as f64, "the others are counted, under _other");
    let labelled: Vec<String> = scrape
        .samples("krakend_kafka_requests_total")
        .iter()
        .map(|(labels, _)| labels["topic"].as_str().unwrap().to_owned())
        .filter(|t| junk.contains(t))
        .collect();
    assert!(labelled.is_empty(), "{labelled:?}");
}

/// A Prometheus server (Debian's, started by the test services) scrapes the plugin's metrics listener and
/// the service's `/metrics`, as a cluster's Prometheus would; a query through its HTTP API sees, per
/// front end, the count of records each published.
#[test]
#[ignore = "needs Kafka, the Glue emulator, Prometheus and the built gateway: run `make test`"]
fn a_prometheus_server_counts_the_records_the_plugin_and_the_service_published() {
    let topic = topic_with_schema("prometheus", 1, SEED_SCHEMA);
    let plugin_metrics = free_address();
    let backend = config_value(REGISTRY, json!({"metrics_address": plugin_metrics}));
    let plugin = Front::Plugin.start(gateway_config("10s", &[("/v1/event/{topic}", backend)]));
    let service =
        Front::Service.start(gateway_config("10s", &[("/v1/event/{topic}", config_value(REGISTRY, json!({})))]));
    let targets = std::path::Path::new(&var("KK_PROMETHEUS_TARGETS")).join(format!("{}.json", unique("targets")));
    let listed = json!([
        {"targets": [plugin_metrics], "labels": {"front": "plugin"}},
        {"targets": [service.address], "labels": {"front": "service"}},
    ]);
    std::fs::write(&targets, listed.to_string()).unwrap();

    for (gateway, records) in [(&plugin, 3), (&service, 2)] {
        for i in 0..records {
            assert_eq!(gateway.send(&topic, &[], &seed_body(&format!("m{i}"))).0, 200);
        }
    }
    let query = format!("sum by (front) (krakend_kafka_produced_records_total{{topic=\"{topic}\"}})");
    let path = format!(
        "/api/v1/query?query={}",
        percent_encoding::utf8_percent_encode(&query, percent_encoding::NON_ALPHANUMERIC)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let (status, body) = http_request(&var("KK_PROMETHEUS"), "GET", &path, &[], b"").unwrap();
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut counts: Vec<(String, String)> = answer["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["metric"]["front"].as_str().unwrap().to_owned(), r["value"][1].as_str().unwrap().to_owned()))
            .collect();
        counts.sort();
        if counts.len() == 2 && counts.iter().all(|(front, n)| n == if front == "plugin" { "3" } else { "2" }) {
            break counts;
        }
        assert!(Instant::now() < deadline, "Prometheus never saw 3 and 2 records: {counts:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::fs::remove_file(&targets).unwrap();
    println!("Prometheus counted {counts:?}");
    assert_eq!(record_count(&topic), 5);
}

#[test]
#[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
fn librdkafkas_warnings_and_the_debug_lines_asked_for_reach_the_log() {
    let topic = topic_with_schema("metrics-librdkafka", 1, SEED_SCHEMA);
    // a consumer's property, which librdkafka warns a producer ignores
    let warned = config_value(REGISTRY, json!({"kafka": {"group.id": "krakend"}}));
    let traced = config_value(REGISTRY, json!({"kafka": {"debug": "eos"}}));
    let gateway =
        Gateway::start(gateway_config("25s", &[("/v1/warned/{topic}", warned), ("/v1/traced/{topic}", traced)]));
    for path in ["warned", "traced"] {
        let (status, body) =
            http_request(&gateway.address, "POST", &format!("/v1/{path}/{topic}"), &[], br#"{"some_message":"x"}"#)
                .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let log = gateway.log();
    let warning = log.lines().find(|l| l.contains("librdkafka 4 CONFWARN: "));
    assert!(warning.is_some_and(|l| l.contains("group.id")), "librdkafka's warning: {log}");
    let debug_lines = log.lines().filter(|l| l.contains("librdkafka 7 ")).collect::<Vec<_>>();
    assert!(debug_lines.iter().any(|l| l.contains("PID")), "librdkafka's idempotence traced: {log}");
}
