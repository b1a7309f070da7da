//! Helpers for the integration tests: they talk to the real services that `tests/services/services.sh`
//! starts (Kafka on loopback, moto as the Glue registry) and read back what was published.
#![allow(dead_code)] // each test binary uses its own subset

pub mod gateway;
pub mod jwt;
pub mod proxy;
pub mod scrape;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_glue::types::{Compatibility, DataFormat, RegistryId};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub const SEED_SCHEMA: &str = r#"syntax = "proto3"; package events; message SampleEvent { string some_message = 1; }"#;

/// A body of `SEED_SCHEMA`'s message.
pub fn seed_body(text: &str) -> String {
    serde_json::json!({ "some_message": text }).to_string()
}

/// The tests' registry. Glue (and moto) allow only a few registries, so all tests share one; the
/// schema names in it are topic names, which are unique per test.
pub const REGISTRY: &str = "krakend-kafka-tests";

pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run these tests with `make test`"))
}

pub fn bootstrap() -> String {
    var("KK_BOOTSTRAP_SERVERS")
}

/// A name no other test or earlier run has used: the broker and the registry outlive a test.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

pub fn create_topic(name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).create().unwrap();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = block_on(admin.create_topics([&topic], &AdminOptions::new())).unwrap();
    results.into_iter().for_each(|r| {
        r.unwrap();
    });
    // Creation is asynchronous: wait until the topic's partitions have leaders.
    let deadline = Instant::now() + Duration::from_secs(20);
    while record_count_or_none(name).is_none() {
        assert!(Instant::now() < deadline, "topic {name} was created but never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn glue() -> aws_sdk_glue::Client {
    let sdk =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(var("KK_GLUE_ENDPOINT")).load().await;
    aws_sdk_glue::Client::new(&sdk)
}

/// A new topic of `partitions` partitions, and its schema `text` in the tests' registry.
pub fn topic_with_schema(prefix: &str, partitions: i32, text: &str) -> String {
    let topic = unique(prefix);
    create_topic(&topic, partitions);
    register_schema(REGISTRY, &topic, DataFormat::Protobuf, text);
    topic
}

/// Creates `registry` if needed and a schema named `schema` holding `text`.
pub fn register_schema(registry: &str, schema: &str, format: DataFormat, text: &str) {
    block_on(async {
        let glue = glue().await;
        if let Err(e) = glue.create_registry().registry_name(registry).send().await {
            let e = e.into_service_error();
            assert!(e.is_already_exists_exception(), "create_registry {registry}: {e:?}");
        }
        glue.create_schema()
            .registry_id(RegistryId::builder().registry_name(registry).build())
            .schema_name(schema)
            .data_format(format)
            .compatibility(Compatibility::None)
            .schema_definition(text)
            .send()
            .await
            .unwrap();
    })
}

/// Registers `text` as the next version of schema `schema` in `registry`.
pub fn register_schema_version(registry: &str, schema: &str, text: &str) {
    block_on(async {
        let id = aws_sdk_glue::types::SchemaId::builder().registry_name(registry).schema_name(schema).build();
        glue().await.register_schema_version().schema_id(id).schema_definition(text).send().await.unwrap();
    })
}

/// Glue's id of the latest version of schema `schema` in `registry`.
pub fn glue_version_id(registry: &str, schema: &str) -> String {
    block_on(async {
        let id = aws_sdk_glue::types::SchemaId::builder().registry_name(registry).schema_name(schema).build();
        let latest = aws_sdk_glue::types::SchemaVersionNumber::builder().latest_version(true).build();
        let v = glue().await.get_schema_version().schema_id(id).schema_version_number(latest).send().await.unwrap();
        v.schema_version_id().unwrap().to_owned()
    })
}

/// A new topic of one partition, and `text` as its subject `T-value` (Confluent's default strategy) in the
/// test services' Confluent-API registry; the topic and the schema's id.
pub fn topic_with_subject(prefix: &str, text: &str) -> (String, u32) {
    let topic = unique(prefix);
    create_topic(&topic, 1);
    let id = register_subject(&format!("{topic}-value"), text, &[]);
    (topic, id)
}

/// Registers the protobuf `text` under `subject` in the test services' Confluent-API registry, referencing
/// `references` (the name it imports, subject, version); returns the schema's id.
pub fn register_subject(subject: &str, text: &str, references: &[(&str, &str, i64)]) -> u32 {
    register_subject_as("PROTOBUF", subject, text, references)
}

/// Registers `text`, a schema of `schema_type` (AVRO, JSON, PROTOBUF), as `register_subject` does.
pub fn register_subject_as(schema_type: &str, subject: &str, text: &str, references: &[(&str, &str, i64)]) -> u32 {
    let references: Vec<_> = references
        .iter()
        .map(|(name, subject, version)| serde_json::json!({"name": name, "subject": subject, "version": version}))
        .collect();
    let body = serde_json::json!({"schemaType": schema_type, "schema": text, "references": references}).to_string();
    let url = format!("{}/subjects/{subject}/versions", var("KK_CONFLUENT_URL"));
    let user = format!("{}:{}", var("KK_CONFLUENT_USER"), var("KK_CONFLUENT_PASSWORD"));
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body", "-u", &user, "-H", "Content-Type: application/vnd.schemaregistry.v1+json"])
        .args(["--data-binary", &body, &url])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "registering {subject}: {answer}");
    let id = serde_json::from_str::<serde_json::Value>(&answer).unwrap()["id"].as_u64();
    id.unwrap_or_else(|| panic!("registering {subject}: {answer}")) as u32
}

/// A publisher's configuration on the test services' Confluent-API registry (basic authentication).
pub fn confluent_config(extra: serde_json::Value) -> serde_json::Value {
    let mut config = serde_json::json!({
        "bootstrap_servers": bootstrap(),
        "confluent_registry": {
            "url": var("KK_CONFLUENT_URL"),
            "username": var("KK_CONFLUENT_USER"),
            "password": var("KK_CONFLUENT_PASSWORD"),
        },
    });
    with_keys(&mut config, extra);
    config
}

/// `config` with the keys of `extra` set, replacing what it had.
fn with_keys(config: &mut serde_json::Value, extra: serde_json::Value) {
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
}

/// Runs `services.sh COMMAND test ARGS` with `input` on its standard input; its standard output.
pub fn services(command: &str, args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(SERVICES)
        .args([command, "test"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "services.sh {command} {args:?}: {stderr}");
    stdout.into_owned()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON configuration of a publisher on the test services.
pub fn config(registry: &str, extra: serde_json::Value) -> String {
    config_value(registry, extra).to_string()
}

/// The same, as JSON to edit further, or to put in a gateway config.
pub fn config_value(registry: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut config = serde_json::json!({
        "bootstrap_servers": bootstrap(),
        "registry_name": registry,
        "region": "eu-central-1",
        "glue_endpoint": var("KK_GLUE_ENDPOINT"),
    });
    with_keys(&mut config, extra);
    config
}

/// The services' script (`tests/services/services.sh`).
pub const SERVICES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/services/services.sh");

fn consumer() -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// The record at `partition`/`offset` of `topic`.
pub fn record_at(topic: &str, partition: i32, offset: i64) -> OwnedMessage {
    let consumer = consumer();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            return m.unwrap().detach();
        }
    }
    panic!("no record at {topic}/{partition}@{offset}");
}

/// Every record of `topic`, read from the start of each partition to its end.
pub fn all_records(topic: &str) -> Vec<OwnedMessage> {
    let consumer = consumer();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut expected = 0;
    for p in metadata.topics()[0].partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).unwrap();
        expected += (high - low) as usize;
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while records.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            records.push(m.unwrap().detach());
        }
    }
    assert_eq!(records.len(), expected, "read every record of {topic}");
    records
}

/// How many records the topic holds over all partitions.
/// How many records of `topic` have key `key`.
pub fn stored(topic: &str, key: &str) -> usize {
    all_records(topic).iter().filter(|r| r.key() == Some(key.as_bytes())).count()
}

pub fn record_count(topic: &str) -> i64 {
    record_count_or_none(topic).unwrap_or_else(|| panic!("no topic {topic}"))
}

/// How many records the topic holds, or `None` when the cluster has no such topic, or not yet.
pub fn record_count_or_none(topic: &str) -> Option<i64> {
    let consumer = consumer();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let t = &metadata.topics()[0];
    if t.error().is_some() || t.partitions().is_empty() || t.partitions().iter().any(|p| p.leader() < 0) {
        return None;
    }
    // A partition whose leader is still being elected answers with an error: not ready yet.
    t.partitions()
        .iter()
        .map(|p| consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).ok().map(|(low, high)| high - low))
        .sum()
}

pub fn headers_of(m: &OwnedMessage) -> Vec<(String, Vec<u8>)> {
    m.headers()
        .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
        .unwrap_or_default()
}

/// `bytes` decoded with message `message` of the .proto text `schema`, as proto3 JSON.
pub fn decode(schema: &str, message: &str, bytes: &[u8]) -> serde_json::Value {
    let dir = std::env::temp_dir().join(unique("proto"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("schema.proto"), schema).unwrap();
    let files = protox::compile(["schema.proto"], [&dir]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let pool = prost_reflect::DescriptorPool::from_file_descriptor_set(files).unwrap();
    let message = prost_reflect::DynamicMessage::decode(pool.get_message_by_name(message).unwrap(), bytes).unwrap();
    serde_json::to_value(message).unwrap()
}

/// The calls waiting for an answer, by context: where the collector sends each.
type Waiting =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<usize, std::sync::mpsc::Sender<(u16, String)>>>>;

/// A backend driven as the gateway plugin drives it, through the C surface: a publisher handle, an
/// answer queue, and one thread that collects the answers and hands each to the call that waits for it.
pub struct Backend {
    handle: *mut krakend_kafka::ffi::kk_publisher,
    answers: *mut krakend_kafka::ffi::kk_answers,
    waiting: Waiting,
    next: AtomicUsize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    collector: Option<std::thread::JoinHandle<()>>,
}

// SAFETY: the core's handles and queues may be used from any thread; the queue is read by the collector only.
unsafe impl Send for Backend {}
unsafe impl Sync for Backend {}

struct Queue(*mut krakend_kafka::ffi::kk_answers);
// SAFETY: as above.
unsafe impl Send for Queue {}

impl Backend {
    /// Opens a publisher with `config`; panics if it did not open at once.
    pub fn open(config: &str) -> Backend {
        let (backend, error) = Backend::try_open(config);
        assert!(error.is_none(), "{error:?}");
        backend
    }

    /// Opens a publisher with `config`, and the error the core gives for the log, if any: the handle
    /// answers all the same (500 for a config that cannot work, 503 while it is still opening).
    pub fn try_open(config: &str) -> (Backend, Option<String>) {
        use krakend_kafka::ffi::*;
        let mut handle = std::ptr::null_mut();
        let config = kk_bytes { data: config.as_ptr(), len: config.len() };
        let error = unsafe { kk_publisher_new(config, &mut handle) };
        let error = (!error.is_null()).then(|| unsafe {
            let text = std::ffi::CStr::from_ptr(error).to_string_lossy().into_owned();
            kk_string_free(error);
            text
        });
        let answers = kk_answers_new();
        let waiting = Waiting::default();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (queue, routes, stopped) = (Queue(answers), waiting.clone(), stop.clone());
        let collector = std::thread::spawn(move || {
            let queue = queue;
            let mut out: Vec<kk_answer> = Vec::with_capacity(64);
            while !stopped.load(Ordering::SeqCst) {
                let n = unsafe { kk_answers_wait(queue.0, out.as_mut_ptr(), 64, 100) };
                unsafe { out.set_len(n) };
                for a in &out {
                    let response = unsafe { std::slice::from_raw_parts(a.response.data, a.response.len) };
                    let tx = routes.lock().unwrap().remove(&a.context).expect("an answer for a waiting call, once");
                    tx.send((a.status, String::from_utf8(response.to_vec()).unwrap())).unwrap();
                }
            }
        });
        (Backend { handle, answers, waiting, next: AtomicUsize::new(1), stop, collector: Some(collector) }, error)
    }

    /// Publishes as the plugin does for `POST path` with `Message-Key: key` and `Message-Headers:
    /// headers` ("" for none) and `body`; returns the core's status and response JSON.
    pub fn publish(&self, path: &str, key: &str, headers: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, response) =
            self.send(path, key, headers, body).recv_timeout(Duration::from_secs(60)).expect("an answer within 60 s");
        let json: serde_json::Value = serde_json::from_str(&response).unwrap();
        assert_eq!(json["statusCode"], status.to_string(), "{json}");
        (status, json)
    }

    /// `publish`, without waiting: the answer comes on the receiver.
    pub fn send(&self, path: &str, key: &str, headers: &str, body: &str) -> std::sync::mpsc::Receiver<(u16, String)> {
        use krakend_kafka::ffi::*;
        let context = self.next.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = std::sync::mpsc::channel();
        self.waiting.lock().unwrap().insert(context, tx);
        let span = |s: &str| kk_bytes { data: s.as_ptr(), len: s.len() };
        let message = kk_message {
            path: span(path),
            key: span(key),
            headers: span(headers),
            traceparent: span(""),
            tracestate: span(""),
            idempotency_key: span(""),
            body: span(body),
            body_read: KK_BODY_COMPLETE,
            wait_ms: 0,
        };
        assert_eq!(unsafe { kk_publish_message(self.handle, message, self.answers, context) }, KK_OK);
        rx
    }

    /// Frees the publisher (`kk_publisher_free`), as the gateway does at shutdown; its answer queue stays.
    pub fn close(&mut self) {
        unsafe { krakend_kafka::ffi::kk_publisher_free(std::mem::replace(&mut self.handle, std::ptr::null_mut())) };
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        unsafe { krakend_kafka::ffi::kk_publisher_free(self.handle) };
        self.stop.store(true, Ordering::SeqCst);
        if let Some(collector) = self.collector.take() {
            let _ = collector.join();
        }
        unsafe { krakend_kafka::ffi::kk_answers_free(self.answers) };
    }
}

/// Where a 200 says the record is.
pub fn position(answer: &serde_json::Value) -> (i32, i64) {
    (answer["partition"].as_i64().expect("a partition") as i32, answer["offset"].as_i64().expect("an offset"))
}

/// How many producers the broker holds state for on partition 0 of `topic` (Kafka's own admin tool,
/// DescribeProducers): an idempotent producer registers its producer id with every partition it writes.
pub fn producer_ids(topic: &str) -> usize {
    let out = std::process::Command::new(SERVICES).args(["producers", "test", topic, "0"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // a header line, then one line per producer
    let rows: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(rows.first().is_some_and(|h| h.contains("ProducerId")), "{text}");
    rows.len() - 1
}

/// One HTTP/1.1 exchange with the server at `address`: the status and the body. Like curl, it reads the
/// answer as soon as it is complete (by its Content-Length), not until the connection closes: a gateway
/// that refuses a request answers without reading its body, and the connection is reset once it closes.
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    http_answer(address, method, path, headers, body).map(|a| (a.status, a.body))
}

/// An HTTP answer with its headers.
pub struct HttpAnswer {
    pub status: u16,
    /// Names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// `http_request`, with the answer's headers.
pub fn http_answer(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpAnswer> {
    exchange(address, head(method, path, headers, body.len(), true).as_bytes(), body)
}

/// The request line and headers of a JSON request with a body of `length` bytes; `close`: the server closes
/// the connection after its answer.
fn head(method: &str, path: &str, headers: &[(&str, &str)], length: usize, close: bool) -> String {
    let connection = if close { "Connection: close\r\n" } else { "" };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: gateway\r\n{connection}Content-Type: application/json\r\nContent-Length: {length}\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends `head` (the request line and headers, as bytes, any bytes) and `body` to `address`, and reads
/// the answer as `http_request` does.
pub fn http_exchange(address: &str, head: &[u8], body: &[u8]) -> std::io::Result<(u16, String)> {
    exchange(address, head, body).map(|a| (a.status, a.body))
}

fn exchange(address: &str, head: &[u8], body: &[u8]) -> std::io::Result<HttpAnswer> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.write_all(head)?;
    let _refused_bodies_are_not_read = stream.write_all(body);
    read_answer(&mut std::io::BufReader::new(stream))
}

/// One HTTP/1.1 connection kept alive across requests, for loads too long for a connection each (a
/// connection per request would run the machine out of ephemeral ports).
pub struct Connection(std::io::BufReader<std::net::TcpStream>);

impl Connection {
    pub fn open(address: &str) -> std::io::Result<Connection> {
        Ok(Connection(std::io::BufReader::new(std::net::TcpStream::connect(address)?)))
    }

    /// POSTs `body` to `path` with `headers`: the status and the body of the answer.
    pub fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<(u16, String)> {
        use std::io::Write;
        let mut request = head("POST", path, headers, body.len(), false).into_bytes();
        request.extend_from_slice(body);
        self.0.get_mut().write_all(&request)?;
        read_answer(&mut self.0).map(|a| (a.status, a.body))
    }
}

/// Reads one answer: by its Content-Length, its chunks, or to the end of the connection.
fn read_answer(reader: &mut impl std::io::BufRead) -> std::io::Result<HttpAnswer> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line.is_empty() {
        // closed without an answer (a gateway stopping under load)
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {line:?}"));
    let (mut length, mut chunked, mut headers) = (None, false, Vec::new());
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse().unwrap());
            }
            chunked |= name.eq_ignore_ascii_case("transfer-encoding") && value.trim() == "chunked";
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        None if chunked => loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).unwrap_or_else(|_| panic!("a chunk size: {line:?}"));
            let start = body.len();
            body.resize(start + size + 2, 0); // the chunk and its CRLF
            reader.read_exact(&mut body[start..])?;
            body.truncate(start + size);
            if size == 0 {
                break;
            }
        },
        // neither: the body ends with the connection (Connection: close)
        None => drop(reader.read_to_end(&mut body)?),
    }
    Ok(HttpAnswer { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}
