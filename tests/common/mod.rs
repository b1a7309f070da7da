//! Helpers for the integration tests: they talk to the real services that `tests/services/services.sh`
//! starts (Kafka on loopback, moto as the Glue registry) and read back what was published.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_glue::types::{Compatibility, DataFormat, RegistryId};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub const SEED_SCHEMA: &str = r#"syntax = "proto3"; package events; message SampleEvent { string some_message = 1; }"#;

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

/// The JSON configuration of a publisher on the test services.
pub fn config(registry: &str, extra: serde_json::Value) -> String {
    let mut config = serde_json::json!({
        "bootstrap_servers": bootstrap(),
        "registry_name": registry,
        "region": "eu-central-1",
        "glue_endpoint": var("KK_GLUE_ENDPOINT"),
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config.to_string()
}

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
