//! `Idempotency-Key` shared by two gateway processes through one Redis (`idempotency_store`), as replicas
//! behind a load balancer: A is the rig's gateway loading the plugin, B is `krakend-kafka serve`, both
//! against the real broker and the test services' Redis. A retry that reaches the other process is
//! replayed; concurrent attempts on both store one record; a different request under the key is 422 on
//! either; a key is new again after its window; a store that hangs or is down refuses with 503 within the
//! deadline and publishes nothing, and requests pass again once it is back.
//! `make test` runs these.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::gateway::{gateway_config, Front, Gateway};
use common::proxy::{Mode, Proxy};
use common::*;
use rdkafka::message::Message;
use serde_json::{json, Value};

/// A GET command as it passes from a client to Redis: how a proxy counts a waiting repeat's reads.
const GET: &[u8] = b"$3\r\nGET\r\n";

fn redis() -> String {
    var("KK_REDIS")
}

/// The backend block of a gateway with the shared store at `store` (host:port) under `prefix`.
fn backend(store: &str, prefix: &str, extra: Value) -> Value {
    let mut extra = extra;
    extra["idempotency_store"] = json!({"url": format!("redis://{store}/0"), "key_prefix": prefix, "timeout_ms": 300});
    config_value(REGISTRY, extra)
}

/// The value Redis holds under `key`, read with a GET of its own.
fn redis_get(key: &str) -> Option<String> {
    let mut connection = TcpStream::connect(redis()).unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(connection, "*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).unwrap();
    let mut reply = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        let n = connection.read(&mut buffer).unwrap();
        reply.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.starts_with("$-1\r\n") {
            return None;
        }
        if let Some((length, rest)) = text.strip_prefix('$').and_then(|t| t.split_once("\r\n")) {
            let length: usize = length.parse().unwrap();
            if rest.len() >= length + 2 {
                return Some(rest[..length].to_owned());
            }
        }
        assert!(n > 0, "Redis closed the connection: {text}");
    }
}

/// How long Redis keeps `key` still, from a PTTL of its own.
fn redis_pttl(key: &str) -> Duration {
    let mut connection = TcpStream::connect(redis()).unwrap();
    connection.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(connection, "*2\r\n$4\r\nPTTL\r\n${}\r\n{key}\r\n", key.len()).unwrap();
    let mut reply = [0u8; 64];
    let n = connection.read(&mut reply).unwrap();
    let text = String::from_utf8_lossy(&reply[..n]);
    let ms: i64 = text.trim().strip_prefix(':').and_then(|ms| ms.parse().ok()).unwrap_or_else(|| panic!("{text}"));
    Duration::from_millis(ms.max(0) as u64)
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn post(gateway: &Gateway, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (status, text) = http_request(&gateway.address, "POST", path, headers, body.as_bytes()).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not the plugin's JSON: {text}"));
    (status, json)
}

#[test]
#[ignore = "needs Kafka, the Glue emulator, Redis and the built gateway: run `make test`"]
fn a_retry_on_the_other_replica_is_replayed_a_different_request_is_422_a_batch_too_and_the_key_expires() {
    let topic = topic_with_schema("shared-idem", 3, SEED_SCHEMA);
    let prefix = format!("{}:", unique("kk-test-idem"));
    let endpoints = [
        ("/v1/event/{topic}", backend(&redis(), &prefix, json!({"idempotency_window_s": 600}))),
        ("/v1/batch/{topic}", backend(&redis(), &prefix, json!({"idempotency_window_s": 600, "batch": true}))),
        ("/v1/short/{topic}", backend(&redis(), &prefix, json!({"idempotency_window_s": 1}))),
    ];
    let config = gateway_config("10s", &endpoints);
    let (a, b) = (Front::Plugin.start(config.clone()), Front::Service.start(config));
    let headers = [("Message-Key", "order-17"), ("Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324")];

    let (status, first) = a.send(&topic, &headers, &seed_body("a"));
    assert_eq!(status, 200, "{first}");
    let (status, again) = b.send(&topic, &headers, &seed_body("a"));
    assert_eq!((status, &again), (200, &first), "B replays A's answer, partition and offset included");
    assert_eq!(a.send(&topic, &headers, &seed_body("a")), (200, first.clone()), "and A its own");
    assert_eq!(record_count(&topic), 1, "published once");
    let (partition, offset) = position(&first);
    let record = record_at(&topic, partition, offset);
    assert_eq!(record.key(), Some(&b"order-17"[..]));
    assert_eq!(decode(SEED_SCHEMA, "events.SampleEvent", record.payload().unwrap()), json!({"someMessage": "a"}));
    let stored = redis_get(&format!("{prefix}{topic}:8e03978e-40d5-43e8-bc93-6894a57f9324")).expect("in the store");
    assert!(stored.starts_with("S1 ") && stored.ends_with(&format!("{{\"s\":[{partition},{offset}]}}")), "{stored}");

    let (status, answer) = b.send(&topic, &headers, &seed_body("b"));
    assert_eq!(status, 422, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("already used on topic"), "{answer}");
    let (status, answer) = a.send(&topic, &[("Message-Key", "other"), headers[1]], &seed_body("a"));
    assert_eq!(status, 422, "the record key is part of the request: {answer}");
    assert_eq!(record_count(&topic), 1, "nothing published for a reused key");

    // A batch stored through B is replayed by A with every record's place.
    let batch = json!({"records": [
        {"key": "x", "value": {"some_message": "b0"}},
        {"key": "y", "value": {"some_message": "b1"}},
    ]})
    .to_string();
    let path = format!("/v1/batch/{topic}");
    let batch_key = [("Idempotency-Key", "batch-1")];
    let (status, stored_batch) = post(&b, &path, &batch_key, &batch);
    assert_eq!(status, 200, "{stored_batch}");
    assert_eq!(post(&a, &path, &batch_key, &batch), (200, stored_batch.clone()), "each record's outcome replayed");
    assert_eq!(record_count(&topic), 3, "the batch's two records, once");
    for (i, place) in stored_batch["records"].as_array().unwrap().iter().enumerate() {
        let (partition, offset) = position(place);
        let value = decode(SEED_SCHEMA, "events.SampleEvent", record_at(&topic, partition, offset).payload().unwrap());
        assert_eq!(value, json!({"someMessage": format!("b{i}")}));
    }

    // Past its window a key is new again, on either replica.
    let path = format!("/v1/short/{topic}");
    let short_key = [("Idempotency-Key", "short-1")];
    let (status, short) = post(&a, &path, &short_key, &seed_body("s"));
    assert_eq!(status, 200, "{short}");
    let stored_as = format!("{prefix}{topic}:short-1");
    wait_until("the key's window ends", Duration::from_secs(10), || redis_get(&stored_as).is_none());
    let (status, later) = post(&b, &path, &short_key, &seed_body("s"));
    assert_eq!(status, 200, "{later}");
    assert_ne!(position(&later), position(&short), "published again");
    assert_eq!(record_count(&topic), 5);
}

#[test]
#[ignore = "needs Kafka, the Glue emulator, Redis and the built gateway: run `make test`"]
fn concurrent_attempts_on_both_replicas_store_one_record_and_get_the_same_answer() {
    let topic = topic_with_schema("shared-idem-race", 1, SEED_SCHEMA);
    let prefix = format!("{}:", unique("kk-test-idem"));
    // The broker advertises this port for its FAULTY listener; the proxy holds A's record on its way.
    let kafka = Proxy::counting(&var("KK_FAULTY_BOOTSTRAP"), var("KK_FAULTY_BROKER"), b"raced");
    // B reaches the store through a proxy that counts its reads: a waiting repeat's.
    let store = Proxy::counting("127.0.0.1:0", redis(), GET);
    let config = |store: &str| {
        let mut backend = backend(store, &prefix, json!({"timeout_ms": 8000}));
        backend["bootstrap_servers"] = json!(var("KK_FAULTY_BOOTSTRAP"));
        gateway_config("20s", &[("/v1/event/{topic}", backend)])
    };
    let (a, b) = (Front::Plugin.start(config(&redis())), Front::Service.start(config(&store.address)));
    for gateway in [&a, &b] {
        assert_eq!(gateway.send(&topic, &[("Message-Key", "warm")], &seed_body("warm")).0, 200);
    }

    let headers = [("Message-Key", "raced"), ("Idempotency-Key", "race-1")];
    let send = |gateway: &Gateway| {
        let (address, path) = (gateway.address.clone(), format!("/v1/event/{topic}"));
        std::thread::spawn(move || http_request(&address, "POST", &path, &headers, seed_body("r").as_bytes()).unwrap())
    };
    kafka.freeze(true);
    let on_a = send(&a);
    wait_until("A's record is on its way to the broker", Duration::from_secs(10), || kafka.seen() == 1);
    let reads = store.seen();
    let on_b = send(&b);
    wait_until("B waits for A's outcome, reading the store", Duration::from_secs(10), || store.seen() > reads + 1);
    kafka.freeze(false);
    let (a_answer, b_answer) = (on_a.join().unwrap(), on_b.join().unwrap());
    assert_eq!(a_answer.0, 200, "{a_answer:?}");
    assert_eq!(a_answer, b_answer, "both get the first's answer");
    let answer: Value = serde_json::from_str(&a_answer.1).unwrap();
    let records = all_records(&topic);
    let raced: Vec<_> = records.iter().filter(|r| r.key() == Some(&b"raced"[..])).collect();
    assert_eq!(raced.len(), 1, "stored once");
    assert_eq!((raced[0].partition(), raced[0].offset()), position(&answer));
    assert_eq!(kafka.seen(), 1, "sent once");
}

each_front! {
    /// The store hangs (a frozen network), then is down (every connection closed): a request with a key
    /// is refused 503 within its deadline and publishes nothing; one without a key still publishes; once
    /// the store is back, keys work again.
    #[ignore = "needs Kafka, the Glue emulator, Redis and the built gateway: run `make test`"]
    fn an_unreachable_store_answers_503_within_the_deadline_publishes_nothing_and_recovers(front) {
        let topic = topic_with_schema("shared-idem-down", 1, SEED_SCHEMA);
        let prefix = format!("{}:", unique("kk-test-idem"));
        let store = Proxy::start("127.0.0.1:0", redis());
        let gateway = front.start(gateway_config("5s", &[("/v1/event/{topic}", backend(&store.address, &prefix, json!({"timeout_ms": 2000})))]));
        let keyed = |key: &str| gateway.send(&topic, &[("Idempotency-Key", key)], &seed_body(key));
        assert_eq!(keyed("before").0, 200);

        for (mode, key) in [(Mode::Frozen, "hang"), (Mode::Closing, "down")] {
            store.set(mode);
            let started = Instant::now();
            let (status, answer) = keyed(key);
            println!("store {key}: answered {status} in {} ms", started.elapsed().as_millis());
            assert_eq!(status, 503, "{answer}");
            assert_eq!(answer["message"], format!("topic {topic}: not stored: the idempotency store is unreachable"));
            assert_eq!(gateway.send(&topic, &[], &seed_body("no key")).0, 200, "a request without a key publishes");
        }
        assert_eq!(record_count(&topic), 3, "nothing of the refused requests");
        let log = gateway.log();
        assert_eq!(log.matches("the idempotency store is unreachable (").count(), 1, "logged once: {log}");

        store.set(Mode::Passing);
        let (status, answer) = keyed("after");
        assert_eq!(status, 200, "{answer}");
        assert_eq!(keyed("after"), (200, answer), "replayed");
        assert_eq!(record_count(&topic), 4);
        assert!(gateway.log().contains("the idempotency store answers again"), "{}", gateway.log());
    }
}

#[test]
#[ignore = "needs Kafka, the Glue emulator, Redis and the built gateway: run `make test`"]
fn a_replica_that_dies_with_a_request_in_flight_holds_its_key_only_until_its_mark_expires() {
    let topic = topic_with_schema("shared-idem-dead", 1, SEED_SCHEMA);
    let prefix = format!("{}:", unique("kk-test-idem"));
    let kafka = Proxy::counting(&var("KK_FAULTY_BOOTSTRAP"), var("KK_FAULTY_BROKER"), b"orphan");
    let mut on_a = backend(&redis(), &prefix, json!({"timeout_ms": 2000}));
    on_a["bootstrap_servers"] = json!(var("KK_FAULTY_BOOTSTRAP"));
    let a = Front::Plugin.start(gateway_config("10s", &[("/v1/event/{topic}", on_a)]));
    let b = Front::Service.start(gateway_config(
        "10s",
        &[("/v1/event/{topic}", backend(&redis(), &prefix, json!({"timeout_ms": 2000})))],
    ));
    assert_eq!(a.send(&topic, &[("Message-Key", "warm")], &seed_body("warm")).0, 200);

    let headers = [("Message-Key", "orphan"), ("Idempotency-Key", "orphan-1")];
    kafka.freeze(true);
    let sent = {
        let (address, path) = (a.address.clone(), format!("/v1/event/{topic}"));
        std::thread::spawn(move || http_request(&address, "POST", &path, &headers, seed_body("o").as_bytes()))
    };
    wait_until("A's record is on its way to the broker", Duration::from_secs(10), || kafka.seen() == 1);
    let stored_as = format!("{prefix}{topic}:orphan-1");
    assert!(redis_get(&stored_as).is_some_and(|v| v.starts_with("I1 ")), "A holds the key");
    let lifetime = redis_pttl(&stored_as);
    println!("the mark of A's request expires in {} ms", lifetime.as_millis());
    // timeout_ms, then librdkafka's budget: message.timeout.ms (timeout_ms less half of it) and a second.
    assert!(
        lifetime <= Duration::from_millis(2000 + 1000 + 1000),
        "a mark lives what a request may take: {lifetime:?}"
    );
    drop(a); // SIGKILL, with its record in flight and nothing settled
    drop(sent.join());
    drop(kafka);

    let (status, answer) = b.send(&topic, &headers, &seed_body("o"));
    assert_eq!(status, 504, "A's request may be stored: B's repeat waits, then says so: {answer}");
    let started = Instant::now();
    wait_until("A's mark expires", lifetime + Duration::from_secs(5), || redis_get(&stored_as).is_none());
    println!("the mark of a dead replica's request lived {} ms more", started.elapsed().as_millis());
    let (status, answer) = b.send(&topic, &headers, &seed_body("o"));
    assert_eq!(status, 200, "the key is free again: {answer}");
}
