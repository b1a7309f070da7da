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

/// A schema whose messages nest, with map fields: the message a record names is neither the first nor
/// at the top, so the framed formats' message indexes are exercised where they differ.
const SHOP: &str = r#"syntax = "proto3"; package shop.v1;
message Zeta { string z = 1; }
message Order {
  message Line { string sku = 1; int64 qty = 2; map<string, string> tags = 3; }
  string id = 1; repeated Line lines = 2; map<string, int32> counts = 3;
}
message Alpha { int32 a = 1; }
"#;
const LINE: &str = r#"{"sku":"a-1","qty":"3","tags":{"colour":"red"}}"#;

/// Publishes `body` to `topic` and returns the stored record's value.
fn published_value(backend: &Backend, topic: &str, body: &str) -> Vec<u8> {
    let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), "k", "", body);
    assert_eq!(status, 200, "{answer}");
    let (partition, offset) = position(&answer);
    record_at(topic, partition, offset).payload().unwrap().to_vec()
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn glue_format_is_read_by_aws_own_deserializer_and_equals_aws_own_serializer() {
    let topic = topic_with_schema("glue", 1, SHOP);
    let zlib = unique("glue-zlib");
    create_topic(&zlib, 1);
    let first = unique("glue-first");
    create_topic(&first, 1);
    let line = json!({"message_type": "shop.v1.Order.Line", "schema_name": topic, "wire_format": "glue"});
    let mut compressed = line.clone();
    compressed["glue_compression"] = json!("zlib");
    let topics = json!({
        topic.clone(): line,
        zlib.clone(): compressed,
        first.clone(): {"schema_name": topic, "wire_format": "glue"},
    });
    let backend = Backend::open(&config(REGISTRY, json!({ "topics": topics })));
    let plain = published_value(&backend, &topic, LINE);
    let zipped = published_value(&backend, &zlib, LINE);
    let zeta = published_value(&backend, &first, r#"{"z":"top"}"#);

    // The header: version 3, compression, and the schema version's id as Glue gives it.
    let version = glue_version_id(REGISTRY, &topic).replace('-', "");
    assert_eq!(hex(&plain[..18]), format!("0300{version}"));
    assert_eq!(hex(&zipped[..18]), format!("0305{version}"));

    let records = [&plain, &zipped, &zeta].map(|v| hex(v) + "\n").concat();
    let read = services("glue-serde", &["deserialize"], &records);
    let line = r#"{"sku":"a-1","qty":"3","tags":{"colour":"red"}}"#;
    assert_eq!(
        read.lines().collect::<Vec<_>>(),
        [
            format!("shop.v1.Order.Line\t{line}"),
            format!("shop.v1.Order.Line\t{line}"),
            r#"shop.v1.Zeta	{"z":"top"}"#.into()
        ]
    );

    // AWS's serializer, for the same message and schema version, writes the same bytes.
    let uuid = glue_version_id(REGISTRY, &topic);
    for (message_type, body, ours) in [("shop.v1.Order.Line", LINE, &plain), ("shop.v1.Zeta", r#"{"z":"top"}"#, &zeta)]
    {
        let args = [
            "serialize",
            "--registry",
            REGISTRY,
            "--schema",
            &topic,
            "--type",
            message_type,
            "--json",
            body,
            "--uuid",
            &uuid,
        ];
        assert_eq!(services("glue-serde", &args, "").trim(), hex(ours), "{message_type}");
    }
}

#[test]
#[ignore = "needs Kafka and the Confluent-API registry: run `make test`"]
fn confluent_format_is_read_by_confluents_own_deserializer_with_references_resolved() {
    let common = unique("common");
    let common_id =
        register_subject(&common, "syntax = \"proto3\"; package common.v1; message Meta { string source = 1; }", &[]);
    let topic = unique("confluent");
    create_topic(&topic, 1);
    let orders = SHOP
        .replace("package shop.v1;", "package orders.v1; import \"common/meta.proto\";")
        .replace("map<string, int32> counts = 3;", "map<string, int32> counts = 3; common.v1.Meta meta = 4;");
    let id = register_subject(&format!("{topic}-value"), &orders, &[("common/meta.proto", &common, 1)]);
    assert_ne!(id, common_id);
    let nested = unique("confluent-nested");
    create_topic(&nested, 1);
    let topics = json!({
        topic.clone(): {"wire_format": "confluent", "message_type": "orders.v1.Order"},
        nested.clone(): {"wire_format": "confluent", "schema_name": format!("{topic}-value"), "message_type": "orders.v1.Order.Line"},
    });
    let backend = Backend::open(&confluent_config(json!({ "topics": topics })).to_string());
    let order = published_value(&backend, &topic, r#"{"id":"o-1","meta":{"source":"krakend"}}"#);
    let line = published_value(&backend, &nested, LINE);
    let zeta_topic = unique("confluent-first");
    create_topic(&zeta_topic, 1);
    let first = Backend::open(&confluent_config(json!({"topics": {zeta_topic.clone(): {"wire_format": "confluent", "schema_name": format!("{topic}-value")}}})).to_string());
    let zeta = published_value(&first, &zeta_topic, r#"{"z":"top"}"#);

    // magic byte 0 and the schema's id, then the message indexes as zigzag varints: Order is the second
    // top-level message (count 1, index 1), Order.Line the first nested in it (count 2, 1, 0), Zeta the
    // first of all (the one-byte form).
    assert_eq!(order[..7], [&[0][..], &id.to_be_bytes(), &[2, 2]].concat());
    assert_eq!(line[..8], [&[0][..], &id.to_be_bytes(), &[4, 2, 0]].concat());
    assert_eq!(zeta[..6], [&[0][..], &id.to_be_bytes(), &[0]].concat());

    let read = services("confluent-read", &[], &[&order, &line, &zeta].map(|v| hex(v) + "\n").concat());
    assert_eq!(
        read.lines().collect::<Vec<_>>(),
        [
            r#"orders.v1.Order	{"id":"o-1","meta":{"source":"krakend"}}"#,
            r#"orders.v1.Order.Line	{"qty":"3","sku":"a-1","tags":{"colour":"red"}}"#,
            r#"orders.v1.Zeta	{"z":"top"}"#,
        ]
    );
}
