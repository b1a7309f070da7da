//! Avro and JSON Schema topics, proven by the registries' own serdes: AWS's Glue deserializer and
//! confluent-kafka's AvroDeserializer and JSONDeserializer read every value the gateway wrote, compressed
//! or not, and give back the record sent; for the same body and schema version, AWS's serializer and
//! confluent-kafka's serializers write the bytes the gateway wrote.

mod common;

use aws_sdk_glue::types::DataFormat;
use common::*;
use rdkafka::message::Message;
use serde_json::json;

/// An order with the types a body most often holds: nested records, an array, a map, an enum, a union
/// with null, a timestamp and a date, a double, a boolean.
const ORDER_AVRO: &str = r#"{"type": "record", "name": "Order", "namespace": "shop.v1", "fields": [
    {"name": "id", "type": "string"},
    {"name": "qty", "type": "long"},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["RETAIL", "WHOLESALE"]}},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
        {"name": "sku", "type": "string"}, {"name": "price", "type": "double"}]}}},
    {"name": "tags", "type": {"type": "map", "values": "string"}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "paid", "type": "boolean", "default": false},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}}
]}"#;

/// In Avro's own JSON encoding (the union's branch named), which the gateway takes as well: what AWS's
/// serializer is given through Avro's JsonDecoder.
const ORDER_BODY: &str = r#"{"id":"o-1","qty":3,"kind":"WHOLESALE","lines":[{"sku":"a-1","price":2.5},{"sku":"b-2","price":10.0}],"tags":{"colour":"red"},"note":{"string":"ring twice"},"paid":true,"at":1796637600500,"day":20794}"#;

/// The same order as a caller of the gateway writes it most plainly: the union's value bare, the
/// timestamp and the date as text; and the record's fields as Avro's toString prints them.
const ORDER_PLAIN: &str = r#"{"id":"o-1","qty":3,"kind":"WHOLESALE","lines":[{"sku":"a-1","price":2.5},{"sku":"b-2","price":10.0}],"tags":{"colour":"red"},"note":"ring twice","paid":true,"at":"2026-12-07T10:00:00.5Z","day":"2026-12-07"}"#;

const ORDER_JSON_SCHEMA: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
    "properties": {"id": {"type": "string"}, "qty": {"type": "integer", "minimum": 1},
        "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"},
            "price": {"type": "number"}}, "required": ["sku", "price"]}}},
    "required": ["id", "qty"], "additionalProperties": false}"#;

const ORDER_JSON: &str = r#"{"id":"o-1","qty":3,"lines":[{"sku":"a-1","price":2.5}]}"#;

/// Publishes `body` to `topic` keyed `key`, and returns the stored record's value, checking its key.
fn published(backend: &Backend, topic: &str, key: &str, body: &str) -> Vec<u8> {
    let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), key, "h=1", body);
    assert_eq!(status, 200, "{topic}: {answer}");
    let (partition, offset) = position(&answer);
    let record = record_at(topic, partition, offset);
    assert_eq!(record.key(), Some(key.as_bytes()));
    let headers = headers_of(&record);
    assert_eq!(headers, [("h".to_owned(), b"1".to_vec())]);
    record.payload().unwrap().to_vec()
}

/// A topic of one partition whose Glue schema, named after it, is `text` in `format`.
fn glue_topic(prefix: &str, format: DataFormat, text: &str) -> String {
    let topic = unique(prefix);
    create_topic(&topic, 1);
    register_schema(REGISTRY, &topic, format, text);
    topic
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn glue_avro_and_json_are_read_by_aws_own_deserializer_and_equal_aws_own_serializer() {
    let avro = glue_topic("glue-avro", DataFormat::Avro, ORDER_AVRO);
    let json_topic = glue_topic("glue-json", DataFormat::Json, ORDER_JSON_SCHEMA);
    let (avro_zlib, json_zlib) = (unique("glue-avro-zlib"), unique("glue-json-zlib"));
    create_topic(&avro_zlib, 1);
    create_topic(&json_zlib, 1);
    let topics = json!({
        avro.clone(): {"wire_format": "glue"},
        json_topic.clone(): {"wire_format": "glue"},
        avro_zlib.clone(): {"wire_format": "glue", "glue_compression": "zlib", "schema_name": avro},
        json_zlib.clone(): {"wire_format": "glue", "glue_compression": "zlib", "schema_name": json_topic},
    });
    let backend = Backend::open(&config(REGISTRY, json!({ "topics": topics })));
    let values = [
        published(&backend, &avro, "k1", ORDER_BODY),
        published(&backend, &avro, "k2", ORDER_PLAIN),
        published(&backend, &avro_zlib, "k3", ORDER_PLAIN),
        published(&backend, &json_topic, "k4", ORDER_JSON),
        published(&backend, &json_zlib, "k5", ORDER_JSON),
    ];
    // header version 3, compression none (0) or zlib (5), the schema version's id; no message index
    let (avro_id, json_id) = (glue_version_id(REGISTRY, &avro), glue_version_id(REGISTRY, &json_topic));
    for (value, compression, id) in [(0, "00", &avro_id), (2, "05", &avro_id), (3, "00", &json_id), (4, "05", &json_id)]
    {
        assert_eq!(hex(&values[value][..18]), format!("03{compression}{}", id.replace('-', "")));
    }
    assert_eq!(values[0], values[1], "the plain spelling is the same record");
    assert_eq!(&values[3][18..], ORDER_JSON.as_bytes());

    let read = services("glue-serde", &["deserialize"], &values.iter().map(|v| hex(v) + "\n").collect::<String>());
    let order = r#"{"id": "o-1", "qty": 3, "kind": "WHOLESALE", "lines": [{"sku": "a-1", "price": 2.5}, {"sku": "b-2", "price": 10.0}], "tags": {"colour": "red"}, "note": "ring twice", "paid": true, "at": 1796637600500, "day": 20794}"#;
    let avro_line = format!("avro\t{order}");
    let json_line = format!("json\t{ORDER_JSON}");
    assert_eq!(read.lines().collect::<Vec<_>>(), [&avro_line, &avro_line, &avro_line, &json_line, &json_line]);

    for (format, schema, body, uuid, ours) in
        [("avro", &avro, ORDER_BODY, &avro_id, &values[0]), ("json", &json_topic, ORDER_JSON, &json_id, &values[3])]
    {
        let args = [
            "serialize",
            "--format",
            format,
            "--registry",
            REGISTRY,
            "--schema",
            schema,
            "--json",
            body,
            "--uuid",
            uuid,
        ];
        assert_eq!(services("glue-serde", &args, "").trim(), hex(ours), "{format}");
    }
}

const META_AVRO: &str =
    r#"{"type": "record", "name": "Meta", "namespace": "common.v1", "fields": [{"name": "source", "type": "string"}]}"#;

#[test]
#[ignore = "needs Kafka and the Confluent-API registry: run `make test`"]
fn confluent_avro_and_json_are_read_by_confluents_own_deserializers_and_equal_their_serializers() {
    // An Avro schema with a named type from another subject, as Confluent's references give it.
    let meta = unique("meta");
    register_subject_as("AVRO", &meta, META_AVRO, &[]);
    let with_meta = ORDER_AVRO.replace(
        r#"{"name": "note""#,
        r#"{"name": "meta", "type": ["null", "common.v1.Meta"], "default": null}, {"name": "note""#,
    );
    let avro = unique("confluent-avro");
    create_topic(&avro, 1);
    let avro_id = register_subject_as("AVRO", &format!("{avro}-value"), &with_meta, &[("common.v1.Meta", &meta, 1)]);
    let json_topic = unique("confluent-json");
    create_topic(&json_topic, 1);
    let json_id = register_subject_as("JSON", &format!("{json_topic}-value"), ORDER_JSON_SCHEMA, &[]);
    let topics = json!({avro.clone(): {"wire_format": "confluent"}, json_topic.clone(): {"wire_format": "confluent"}});
    let backend = Backend::open(&confluent_config(json!({ "topics": topics })).to_string());

    let with_source = ORDER_PLAIN.replace(r#""note":"#, r#""meta":{"source":"krakend"},"note":"#);
    let values = [
        published(&backend, &avro, "k1", ORDER_PLAIN),
        published(&backend, &avro, "k2", &with_source),
        published(&backend, &json_topic, "k3", ORDER_JSON),
    ];
    // magic byte 0 and the schema's id, then the datum: no message index
    assert_eq!(values[0][..5], [&[0][..], &avro_id.to_be_bytes()].concat());
    assert_eq!(values[2], [&[0][..], &json_id.to_be_bytes(), ORDER_JSON.as_bytes()].concat());

    let read = services("confluent-read", &[], &values.iter().map(|v| hex(v) + "\n").collect::<String>());
    // fastavro reads the timestamp as a datetime and the date as a date, printed in ISO form
    let order = r#"{"at":"2026-12-07 10:00:00.500000+00:00","day":"2026-12-07","id":"o-1","kind":"WHOLESALE","lines":[{"price":2.5,"sku":"a-1"},{"price":10.0,"sku":"b-2"}],"meta":null,"note":"ring twice","paid":true,"qty":3,"tags":{"colour":"red"}}"#;
    let sourced = order.replace(r#""meta":null"#, r#""meta":{"source":"krakend"}"#);
    assert_eq!(
        read.lines().collect::<Vec<_>>(),
        [
            format!("avro\t{order}"),
            format!("avro\t{sourced}"),
            r#"json	{"id":"o-1","lines":[{"price":2.5,"sku":"a-1"}],"qty":3}"#.to_owned()
        ]
    );

    // confluent-kafka's serializers, given the same values as Python objects, write the same bytes.
    let as_python = r#"{"id":"o-1","qty":3,"kind":"WHOLESALE","lines":[{"sku":"a-1","price":2.5},{"sku":"b-2","price":10.0}],"tags":{"colour":"red"},"meta":null,"note":"ring twice","paid":true,"at":1796637600500,"day":20794}"#;
    assert_eq!(services("confluent-write", &[&avro], &format!("{as_python}\n")).trim(), hex(&values[0]));
    assert_eq!(services("confluent-write", &[&json_topic], &format!("{ORDER_JSON}\n")).trim(), hex(&values[2]));
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn what_an_avro_or_json_schema_refuses_is_400_and_nothing_is_published() {
    let avro = glue_topic("refuse-avro", DataFormat::Avro, ORDER_AVRO);
    let json_topic = glue_topic("refuse-json", DataFormat::Json, ORDER_JSON_SCHEMA);
    let misnamed = unique("refuse-message-type");
    create_topic(&misnamed, 1);
    let topics = json!({misnamed.clone(): {"schema_name": avro, "message_type": "shop.v1.Order"}});
    let backend = Backend::open(&config(REGISTRY, json!({ "topics": topics })));
    let publish = |topic: &str, body: &str| {
        let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), "", "", body);
        (status, answer["message"].as_str().unwrap_or_default().to_owned())
    };
    let order = |field: &str| ORDER_PLAIN.replacen("\"qty\":3", field, 1);
    for (topic, body, expected) in [
        (&avro, order(r#""qty":"3""#), "body.qty: expected an integer (long), got a string"),
        (&avro, order(r#""qty":3,"colour":"red""#), "body.colour: record shop.v1.Order has no such field"),
        (
            &avro,
            order(r#""qty":9223372036854775808"#),
            "body.qty: 9223372036854775808 is out of the range of long (64 bits)",
        ),
        (&avro, ORDER_PLAIN.replace("WHOLESALE", "HUGE"), r#"body.kind: "HUGE" is not a symbol of enum shop.v1.Kind"#),
        (&avro, order(r#""qty":3,"qty":4"#), "body: qty is given twice"),
        (&json_topic, r#"{"id":"o-1","qty":0}"#.into(), "body.qty: fails \"minimum\": 0 is less than the minimum of 1"),
        (&json_topic, r#"{"id":"o-1"}"#.into(), "body: fails \"required\": \"qty\" is a required property"),
    ] {
        assert_eq!(publish(topic, &body), (400, expected.to_owned()), "{body}");
    }
    assert_eq!(
        publish(&misnamed, ORDER_PLAIN),
        (500, format!("schema {avro}: is Avro, whose records have no message type: drop topics.<topic>.message_type"))
    );
    assert_eq!(record_count(&avro) + record_count(&json_topic) + record_count(&misnamed), 0);
}
