//! `krakend-kafka serve`: the plugin's HTTP interface on the service's own server, run as a process from
//! its config file, on the real broker and the Glue emulator; what it publishes is read back.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use common::*;
use rdkafka::message::Message as _;
use serde_json::json;

struct Service {
    child: Child,
    address: String,
    /// The service's log lines, as they come.
    log: mpsc::Receiver<String>,
    _dir: Dir,
}

/// A directory of the test's own, removed at the end.
struct Dir(std::path::PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Service {
    /// Starts the service with `config` on a port of its choosing, and waits for it to listen.
    fn start(config: serde_json::Value) -> Service {
        let dir = Dir(std::env::temp_dir().join(unique("krakend-kafka-service")));
        std::fs::create_dir_all(&dir.0).unwrap();
        let file = dir.0.join("service.json");
        std::fs::write(&file, config.to_string()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_krakend-kafka"))
            .args(["serve", "-c", file.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || stderr.lines().map_while(Result::ok).for_each(|line| drop(tx.send(line))));
        let mut service = Service { child, address: String::new(), log, _dir: dir };
        let line = service.wait_for("serving on http://");
        service.address = line.split("http://").nth(1).unwrap().split(' ').next().unwrap().to_owned();
        service
    }

    /// The first log line from now on that contains `text`.
    fn wait_for(&self, text: &str) -> String {
        loop {
            let line = self.log.recv_timeout(std::time::Duration::from_secs(60)).expect("the service logs it");
            if line.contains(text) {
                return line;
            }
        }
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, serde_json::Value) {
        let (status, body) = http_request(&self.address, "POST", path, headers, body.as_bytes()).unwrap();
        (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example gateway's two endpoints, as routes.
fn routes() -> serde_json::Value {
    json!({
        "listen": "127.0.0.1:0",
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
    let service = Service::start(routes());
    let headers = [("Message-Key", "messageKey"), ("Message-Headers", "trace-id=x-y_z,my_key=myvalue")];
    let (status, answer) = service.post(&format!("/v1/event/{topic}"), &headers, r#"{"some_message":"test value"}"#);
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
    let (status, answer) = service.post(&format!("/v1/batch/{topic}"), &[], &batch.to_string());
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
    let service = Service::start(routes());
    let path = format!("/v1/event/{topic}");
    let (status, answer) = service.post(&path, &[], r#"{"some_mesage":"typo"}"#);
    assert_eq!(status, 400, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("some_mesage"), "{answer}");
    let (status, answer) = service.post(&path, &[("Message-Headers", "a=1,a=2")], r#"{"some_message":"x"}"#);
    assert_eq!((status, answer["message"].as_str()), (400, Some("headers: a is given twice")));
    let (status, answer) = service.post("/v2/elsewhere/t", &[], "{}");
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
    let service = Service::start(routes());
    assert_eq!(http_request(&service.address, "GET", "/__health", &[], b"").unwrap().0, 200);
    assert_eq!(service.post(&format!("/v1/event/{topic}"), &[], r#"{"some_message":"x"}"#).0, 200);
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
    let mut service = Service::start(routes());
    let mut connection = Connection::open(&service.address).unwrap();
    assert_eq!(connection.post(&format!("/v1/event/{topic}"), &[], br#"{"some_message":"before"}"#).unwrap().0, 200);
    // SAFETY: signalling a child of this process.
    assert_eq!(unsafe { libc::kill(service.child.id() as i32, libc::SIGTERM) }, 0);
    service.wait_for("SIGTERM");
    let status = service.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    service.wait_for("stopped");
    assert!(std::net::TcpStream::connect(&service.address).is_err(), "no longer listening");
    assert_eq!(record_count(&topic), 1);
}
