//! Faults on the way to the real broker and registry: a broker that cannot be reached yet, a connection that
//! goes silent while records are on it, a registry that hangs or stops, a schema version registered while
//! serving. The test broker advertises its FAULTY listener at KK_FAULTY_BOOTSTRAP, where this test puts a proxy to the
//! listener itself; freezing the proxy keeps every connection open and lets nothing through, as a network
//! that drops packets or a broker that hangs would. `make test` runs these with the services up.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::proxy::{Mode, Proxy};
use common::*;
use rdkafka::message::Message;
use serde_json::{json, Value};

fn through_the_proxy(extra: Value) -> String {
    let mut config = config_value(REGISTRY, extra);
    config["bootstrap_servers"] = json!(var("KK_FAULTY_BOOTSTRAP"));
    config.to_string()
}

fn publish(backend: &Backend, topic: &str, id: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let (status, answer) =
        backend.publish(&format!("/v1/event/{topic}"), id, "", &json!({"some_message": id}).to_string());
    (status, answer["message"].as_str().unwrap_or_default().to_owned(), started.elapsed())
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_broker_down_or_silent_gets_honest_answers_in_time_and_publishing_resumes() {
    // 0. The broker cannot be reached when the backend opens (nothing listens where it is advertised yet):
    //    requests answer 503 "not stored" within timeout_ms; once it can be reached, publishing resumes
    //    with no restart.
    let topic = topic_with_schema("faults-down", 1, SEED_SCHEMA);
    let backend = Backend::open(&through_the_proxy(json!({"timeout_ms": 3000})));
    let (status, message, took) = publish(&backend, &topic, "down");
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("not stored"), "{message}");
    assert!(took < Duration::from_millis(3500), "{took:?}");
    // The broker advertises this port for its FAULTY listener: clients that bootstrap there stay on it.
    let proxy = Proxy::start(&var("KK_FAULTY_BOOTSTRAP"), var("KK_FAULTY_BROKER"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut refused = 1;
    loop {
        let (status, message, _) = publish(&backend, &topic, "up");
        if status == 200 {
            break;
        }
        // librdkafka waits out its reconnect back-off (up to 10 s) before it tries again
        assert_eq!(status, 503, "{message}");
        assert!(Instant::now() < deadline, "publishing never resumed: {message}");
        refused += 1;
    }
    assert_eq!((stored(&topic, "down"), stored(&topic, "up")), (0, 1), "only the acknowledged record is stored");
    assert_eq!(record_count(&topic), 1, "none of the {refused} refused records");
    drop(backend);

    // 1. A record librdkafka still holds when the backend's budget runs out (its message.timeout.ms is
    //    longer, as a producer shared with a backend of a longer budget may be): the caller is answered
    //    504 within timeout_ms, not when librdkafka gives up.
    let topic = topic_with_schema("faults-silent", 1, SEED_SCHEMA);
    let backend =
        Backend::open(&through_the_proxy(json!({"timeout_ms": 3000, "kafka": {"message.timeout.ms": 20000}})));
    let (status, message, _) = publish(&backend, &topic, "before");
    assert_eq!(status, 200, "{message}");
    proxy.freeze(true);
    let (status, message, took) = publish(&backend, &topic, "in-flight");
    assert_eq!(status, 504, "{message}");
    assert!(
        message.contains("no acknowledgement from Kafka within 3000 ms") && message.contains("may still be stored"),
        "{message}"
    );
    assert!(took < Duration::from_millis(4500), "answered after {took:?}");
    proxy.freeze(false);
    // The 504 said "may be stored": once the network is back it is there once, or not at all.
    let (status, message, _) = publish(&backend, &topic, "after");
    assert_eq!(status, 200, "{message}");
    assert!(stored(&topic, "in-flight") <= 1);
    assert_eq!((stored(&topic, "before"), stored(&topic, "after")), (1, 1));
    drop(backend);

    // 2. A record sent and then given up by librdkafka (its request timed out, the retries found the
    //    connection as silent): it may be stored, so 504, never the 503 that says "not stored".
    let topic = topic_with_schema("faults-maybe", 1, SEED_SCHEMA);
    let kafka = json!({"socket.timeout.ms": 1000, "message.timeout.ms": 3000});
    let backend = Backend::open(&through_the_proxy(json!({"timeout_ms": 8000, "kafka": kafka})));
    let (status, message, _) = publish(&backend, &topic, "before");
    assert_eq!(status, 200, "{message}");
    proxy.freeze(true);
    let (status, message, took) = publish(&backend, &topic, "sent");
    assert_eq!(status, 504, "{message}");
    assert!(message.contains("was sent but not acknowledged") && message.contains("it may be stored"), "{message}");
    assert!(took < Duration::from_millis(8000), "librdkafka's verdict, before the deadline: {took:?}");
    proxy.freeze(false);
    assert!(stored(&topic, "sent") <= 1);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_hanging_or_stopped_registry_holds_up_no_topic_it_served_before() {
    let proxy = Proxy::start("127.0.0.1:0", var("KK_GLUE_ENDPOINT").trim_start_matches("http://").to_string());
    let topic = topic_with_schema("faults-glue", 1, SEED_SCHEMA);
    // Every schema is due to be fetched again 1 ms after it was.
    let mut config = config_value(REGISTRY, json!({"timeout_ms": 2000, "schema_ttl_ms": 1}));
    config["glue_endpoint"] = json!(format!("http://{}", proxy.address));
    let backend = Backend::open(&config.to_string());
    let (status, message, _) = publish(&backend, &topic, "before");
    assert_eq!(status, 200, "{message}");

    // The registry accepts connections and answers nothing: the topic served before keeps publishing
    // with its last schema, without waiting for the registry (before, each request waited for the
    // fetch, up to timeout_ms, and its answer depended on which of two 2 s timers fired first).
    proxy.freeze(true);
    for i in 0..5 {
        let (status, message, took) = publish(&backend, &topic, &format!("during-{i}"));
        assert_eq!(status, 200, "{message}");
        assert!(took < Duration::from_millis(1000), "held up by the registry for {took:?}");
    }
    // A topic never seen cannot be encoded: 503 within timeout_ms, nothing sent.
    let unseen = topic_with_schema("faults-glue-unseen", 1, SEED_SCHEMA);
    let (status, message, took) = publish(&backend, &unseen, "x");
    assert_eq!(status, 503, "{message}");
    assert!(message.contains("not stored") || message.contains("could not be read"), "{message}");
    assert!(took < Duration::from_millis(3000), "{took:?}");
    assert_eq!(record_count(&unseen), 0);

    // The registry stopped (every connection closed at once): the same.
    proxy.set(Mode::Closing);
    for i in 0..5 {
        let (status, message, took) = publish(&backend, &topic, &format!("stopped-{i}"));
        assert_eq!(status, 200, "{message}");
        assert!(took < Duration::from_millis(1000), "held up by the registry for {took:?}");
    }
    let (status, message, took) = publish(&backend, &unseen, "y");
    assert_eq!(status, 503, "{message}");
    assert!(took < Duration::from_millis(3000), "{took:?}");
    assert_eq!(record_count(&unseen), 0);

    // Once the registry answers again, a version registered meanwhile is used.
    register_schema_version(
        REGISTRY,
        &topic,
        "syntax = \"proto3\"; package events; message SampleEvent { string some_message = 1; int32 n = 2; }",
    );
    proxy.freeze(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = json!({"some_message": "new", "n": 7}).to_string();
    loop {
        let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), "new", "", &body);
        if status == 200 {
            break;
        }
        // the old version refuses the new field, and publishes nothing
        assert_eq!(status, 400, "{answer}");
        assert!(Instant::now() < deadline, "the new version is never used: {answer}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(stored(&topic, "new"), 1);
    assert_eq!(record_count(&topic), 12);
}

/// `value` as protobuf field `number`, a short string.
fn field(number: u8, value: &str) -> Vec<u8> {
    [vec![number << 3 | 2, value.len() as u8], value.as_bytes().to_vec()].concat()
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_schema_version_registered_while_serving_is_used_within_the_ttl_and_never_mixed_with_the_old() {
    // The same JSON, two encodings: version 2 numbers the fields 3 and 4 instead of 1 and 2.
    let schema = |a, b| format!("syntax = \"proto3\"; message E {{ string a = {a}; string b = {b}; }}");
    let topic = topic_with_schema("faults-version", 2, &schema(1, 2));
    let ttl = Duration::from_millis(500);
    let backend = Backend::open(&config(REGISTRY, json!({"schema_ttl_ms": ttl.as_millis() as u64})));
    let publish = |id: usize| {
        let id = format!("id-{id}");
        let (status, answer) =
            backend.publish(&format!("/v1/event/{topic}"), &id, "", &json!({"a": id, "b": id}).to_string());
        assert_eq!(status, 200, "{answer}");
        (id, Instant::now())
    };
    // 8 callers publish until every one of them has seen a record sent a TTL (and a fetch) after the
    // new version was registered.
    let registered = std::sync::OnceLock::new();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let sent: Vec<(String, Instant)> = std::thread::scope(|s| {
        let callers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if n == 100 {
                            register_schema_version(REGISTRY, &topic, &schema(3, 4));
                            registered.set(Instant::now()).unwrap();
                        }
                        let sent = publish(n);
                        let late = registered.get().is_some_and(|r| sent.1 > *r + ttl + Duration::from_secs(1));
                        mine.push(sent);
                        assert!(n < 20_000, "bounded");
                        if late {
                            return mine;
                        }
                    }
                })
            })
            .collect();
        callers.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let registered = *registered.get().unwrap();
    let records: HashMap<Vec<u8>, Vec<u8>> =
        all_records(&topic).into_iter().map(|r| (r.key().unwrap().to_vec(), r.payload().unwrap().to_vec())).collect();
    let (mut old, mut new) = (0, 0);
    for (id, answered) in &sent {
        let value = &records[id.as_bytes()];
        if *value == [field(1, id), field(2, id)].concat() {
            old += 1;
            assert!(*answered < registered + ttl + Duration::from_secs(1), "{id}: the old version after the TTL");
        } else {
            assert_eq!(*value, [field(3, id), field(4, id)].concat(), "{id}: one version or the other");
            new += 1;
        }
    }
    println!("{} records: {old} with version 1, {new} with version 2", sent.len());
    assert!(old >= 100 && new >= 8, "{old} {new}");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_fatal_producer_error_replaces_the_producer_without_a_restart() {
    let topic = topic_with_schema("faults-fatal", 1, SEED_SCHEMA);
    // Its own Kafka settings: a producer no other test shares.
    let backend = Backend::open(&config(REGISTRY, json!({"kafka": {"client.id": unique("fatal")}})));
    let (status, message, _) = publish(&backend, &topic, "before");
    assert_eq!(status, 200, "{message}");
    assert_eq!(producer_ids(&topic), 1);

    // librdkafka's fatal error, as an out-of-sequence idempotent producer raises it: before, every request
    // answered 503 from then on, until the gateway restarted.
    krakend_kafka::fault_injection::raise_fatal_error("test: out of order sequence");
    let (status, message, _) = publish(&backend, &topic, "after");
    assert_eq!(status, 200, "{message}");
    assert_eq!((stored(&topic, "before"), stored(&topic, "after")), (1, 1));
    assert_eq!(producer_ids(&topic), 2, "a fresh producer, with a producer id of its own");
}

/// The core logs from librdkafka's threads, where a panic cannot unwind and aborts the whole gateway. A
/// standard error nobody reads any more (the log collector died; SIGPIPE is ignored, as in every Rust or
/// Go program) loses the log lines, never the process: this test runs itself again with such a stderr.
#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_log_that_cannot_be_written_loses_its_lines_not_the_process() {
    const CHILD: &str = "KK_TEST_BROKEN_STDERR";
    if std::env::var_os(CHILD).is_some() {
        let topic = topic_with_schema("faults-stderr", 1, SEED_SCHEMA);
        // No broker listens there: librdkafka's error callback logs the refused connection, and the
        // record's answer waits for librdkafka's verdict on it.
        let mut config = config_value(REGISTRY, json!({"timeout_ms": 2000}));
        config["bootstrap_servers"] = json!(format!("127.0.0.1:{}", closed_port()));
        let backend = Backend::open(&config.to_string());
        let (status, message, _) = publish(&backend, &topic, "unlogged");
        println!("child answered {status}: {message}");
        return;
    }
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_log_that_cannot_be_written_loses_its_lines_not_the_process", "--include-ignored"])
        .args(["--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .stderr(writer)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "{:?}\n{stdout}", child.status);
    assert!(stdout.contains("child answered 503: topic faults-stderr"), "{stdout}");
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The core's runtime has one worker, which makes every topic's registry calls: a cold topic's schema,
/// compiling (or its first request encoding), must not hold it.
#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_schema_compiling_holds_up_no_other_topic() {
    let cold = topic_with_schema("faults-cold", 1, SEED_SCHEMA);
    let missing = unique("faults-missing");
    create_topic(&missing, 1);
    let backend = Backend::open(&config(REGISTRY, json!({})));
    let held = krakend_kafka::fault_injection::hold_compiles(&cold);
    let cold_answer = backend.send(&format!("/v1/event/{cold}"), "k", "", r#"{"some_message":"cold"}"#);
    held.wait_compiling();
    // Another topic's registry call runs and is answered while the cold topic's compile is held.
    let (status, message, _) = publish(&backend, &missing, "meanwhile");
    assert_eq!(status, 404, "{message}");
    drop(held);
    let (status, response) = cold_answer.recv().unwrap();
    assert_eq!(status, 200, "{response}");
    assert_eq!(stored(&cold, "k"), 1);
}
