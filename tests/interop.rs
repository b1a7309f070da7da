//! What other Kafka clients see of the records the plugin writes: a keyed record lands on the partition
//! Kafka's own Java client chooses for the same key, so switching a producer from Java (the seed's Lambda,
//! a Kafka Streams app) to the gateway keeps per-key order and co-partitioning.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use rdkafka::message::Message;
use serde_json::json;

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn a_keyed_record_lands_where_kafkas_java_client_puts_the_same_key() {
    let topic = topic_with_schema("murmur2", 6, SEED_SCHEMA);
    let backend = Backend::open(&config(REGISTRY, json!({})));
    let keys: Vec<String> = (0..100)
        .map(|i| format!("key-{i}"))
        .chain(["clé", "订单-42", "a b", &"x".repeat(300)].map(String::from))
        .collect();
    let mut ours = HashMap::new();
    for key in &keys {
        let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), key, "", r#"{"some_message":"gateway"}"#);
        assert_eq!(status, 200, "{answer}");
        ours.insert(key.clone(), position(&answer).0);
    }

    let mut java = Command::new(SERVICES).args(["produce", "test", &topic]).stdin(Stdio::piped()).spawn().unwrap();
    let lines: String = keys.iter().map(|k| format!("{k}\tjava\n")).collect();
    java.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    assert!(java.wait().unwrap().success());

    let mut theirs = HashMap::new();
    for record in all_records(&topic).iter().filter(|r| r.payload() == Some(b"java")) {
        theirs.insert(String::from_utf8(record.key().unwrap().to_vec()).unwrap(), record.partition());
    }
    assert_eq!(theirs.len(), keys.len(), "every key sent by the Java client");
    let differ: Vec<_> = keys.iter().filter(|k| ours[*k] != theirs[*k]).collect();
    assert!(differ.is_empty(), "{} of {} keys on another partition than Java's: {differ:?}", differ.len(), keys.len());
    assert!(ours.values().collect::<std::collections::HashSet<_>>().len() == 6, "keys spread over every partition");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn zstd_batches_are_stored_as_zstd_and_read_back() {
    let topic = topic_with_schema("zstd", 1, SEED_SCHEMA);
    let backend = Backend::open(&config(REGISTRY, json!({"kafka": {"compression.type": "zstd"}})));
    let body = json!({"some_message": "z".repeat(2000)}).to_string();
    let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), "zk", "h=1", &body);
    assert_eq!(status, 200, "{answer}");
    let (partition, offset) = position(&answer);
    let record = record_at(&topic, partition, offset);
    assert_eq!(record.key(), Some(&b"zk"[..]));
    assert_eq!(decode(SEED_SCHEMA, "events.SampleEvent", record.payload().unwrap())["someMessage"], "z".repeat(2000));

    let out = Command::new(SERVICES).args(["batches", "test", &topic, &partition.to_string()]).output().unwrap();
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(dump.contains("compresscodec: zstd"), "the broker's dump of the batch: {dump}");
}
