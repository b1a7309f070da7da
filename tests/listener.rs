//! The metrics and readiness listener (`metrics_address`) against what anyone who reaches its port can do,
//! in this process with a real producer on the real broker: a port still taken when the listener starts is
//! served once it is freed; probes are answered while hundreds of connections are held open; and after a
//! fatal producer error probes answer 503 for the failed client (none replaces it) until the producer
//! replaces it by itself. `make test` runs these.
//!
//! A process has one listener (the first backend that names an address starts it), so every test here
//! shares it and its backend, one test at a time: a fatal error hits every producer of the process.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

struct Served {
    address: String,
    backend: Backend,
}

/// The process's listener, on a port another socket held when its backend opened; and this test's turn.
fn served() -> (MutexGuard<'static, ()>, &'static Served) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    static SERVED: OnceLock<Served> = OnceLock::new();
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    (turn, SERVED.get_or_init(open_on_a_taken_port))
}

fn open_on_a_taken_port() -> Served {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = held.local_addr().unwrap().to_string();
    let kafka = json!({"statistics.interval.ms": 500, "client.id": unique("listener")});
    let backend = Backend::open(&config(REGISTRY, json!({"metrics_address": address, "kafka": kafka})));
    let _probe = TcpStream::connect(&address).unwrap();
    held.accept().expect("the port was still ours when the listener started");
    drop(held);
    answered(&address, Duration::from_secs(30));
    Served { address, backend }
}

/// Polls `GET /ready` until the listener answers it, for up to `limit`.
fn answered(address: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while let Err(e) = get(address, "/ready") {
        assert!(Instant::now() < deadline, "{address} never answered: {e}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_request(address, "GET", path, &[], b"")
}

/// Polls `GET /ready` until it answers 200, for up to 30 s.
fn ready(address: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = get(address, "/ready");
        if matches!(answer, Ok((200, _))) {
            return;
        }
        assert!(Instant::now() < deadline, "never ready: {answer:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_port_taken_when_the_listener_starts_is_served_once_it_is_freed() {
    // Before, the failed bind was logged and never tried again: nothing listened until a restart.
    let (_turn, served) = served();
    ready(&served.address);
    let (status, text) = get(&served.address, "/metrics").unwrap();
    assert!(status == 200 && text.contains("krakend_kafka_broker_up{"), "{status} {text}");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn probes_are_answered_while_hundreds_of_connections_are_held_open() {
    const HELD: usize = 200;
    let (_turn, served) = served();
    ready(&served.address);
    // Idle, half a request head then silence, or a request whose answer is never read; before, 32 of them
    // held every slot for seconds and a probe was reset on arrival.
    let stalls: [&[u8]; 3] = [b"", b"GET /ready HTTP/1.1\r\nHost: x", b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"];
    let held: Vec<TcpStream> = (0..HELD)
        .map(|i| {
            let mut connection = TcpStream::connect(&served.address).unwrap();
            let _closed_by_the_listener_already = connection.write_all(stalls[i % stalls.len()]);
            connection
        })
        .collect();
    for path in ["/ready", "/metrics"] {
        let (status, text) = get(&served.address, path).unwrap_or_else(|e| panic!("{path} with {HELD} held: {e}"));
        assert_eq!(status, 200, "{path}: {text}");
    }
    drop(held);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn after_a_fatal_producer_error_probes_answer_503_until_the_client_is_replaced_without_a_request() {
    let (_turn, served) = served();
    let topic = topic_with_schema("listener-fatal", 1, SEED_SCHEMA);
    let publish = || served.backend.publish(&format!("/v1/event/{topic}"), "", "", &seed_body("hello"));
    assert_eq!(publish().0, 200);
    ready(&served.address);

    krakend_kafka::fault_injection::raise_fatal_error("test: out of order sequence");
    // Before, a probe replaced the failed client (a new librdkafka client, its threads and connections, for
    // anyone who reaches the port) and answered for the fresh one.
    for _ in 0..3 {
        let (status, text) = get(&served.address, "/ready").unwrap();
        assert!(status == 503 && text.contains("fatal error"), "{status} {text}");
    }

    // With no request (a replica out of its Service gets none), the producer replaces the client itself
    // within 10 s, and readiness follows the fresh one.
    ready(&served.address);
    let (status, answer) = publish();
    assert_eq!(status, 200, "{answer}");
}
