//! Careless and hostile input through each front end (the real gateway and plugin, and the service): each
//! bad input gets its status and a short message naming the problem, publishes nothing, and leaves the
//! front end serving; no secret of the configuration reaches an answer or the log.

mod common;

use common::gateway::*;
use common::proxy::Proxy;
use common::*;
use serde_json::{json, Value};

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_secret_in_a_refused_property_reaches_neither_an_answer_nor_the_log(front) {
        // Properties a port from a Java client brings, and a typo: librdkafka refuses each, and its error
        // would carry the value.
        for (key, value) in [
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required password=\"hunter2-jaas\";",
            ),
            ("ssl.truststore.password", "hunter2-truststore"),
            ("sasl.pasword", "hunter2-typo"),
        ] {
            let config =
                gateway_config("25s", &[("/v1/event/{topic}", config_value(REGISTRY, json!({"kafka": {key: value}})))]);
            let gateway = match front {
                // The gateway serves its other endpoints: this one answers 500 naming the key.
                Front::Plugin => {
                    let gateway = front.start(config);
                    let (status, answer) = gateway.send("any", &[], r#"{"some_message":"x"}"#);
                    let message = answer["message"].as_str().unwrap();
                    assert_eq!(status, 500, "{answer}");
                    assert!(message.contains(&format!("kafka.{key}")), "names the key: {message}");
                    assert!(!message.contains("hunter2"), "{message}");
                    gateway
                }
                // The service does not start on a config it cannot serve.
                Front::Service => {
                    let mut service = front.spawn(config);
                    let exit = service.exited_within(std::time::Duration::from_secs(30));
                    assert_eq!(exit.and_then(|e| e.code()), Some(2), "{}", service.log());
                    service
                }
            };
            let log = gateway.log();
            assert!(log.contains(&format!("kafka.{key}")), "the log names the key");
            assert!(!log.contains("hunter2"), "{log}");
        }
    }
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_cluster_that_refuses_the_gateway_is_named_in_short_and_logged_in_full_once(front) {
        let topic = topic_with_schema("hostile-cluster", 1, SEED_SCHEMA);
        let secured = |kafka: Value| {
            let mut backend = config_value(REGISTRY, json!({"timeout_ms": 3000, "kafka": kafka}));
            backend["bootstrap_servers"] = json!(var("KK_SASL_SSL_BOOTSTRAP"));
            backend
        };
        let scram = |password: &str, ca: &str| {
            json!({"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "krakend",
                   "sasl.password": password, "ssl.ca.location": var(ca)})
        };
        let gateway = front.start(gateway_config(
            "25s",
            &[
                ("/v1/password/{topic}", secured(scram("hunter2-wrong", "KK_TEST_CA"))),
                ("/v1/ca/{topic}", secured(scram("scram-secret", "KK_OTHER_CA"))),
            ],
        ));
        let port = var("KK_SASL_SSL_BOOTSTRAP").rsplit(':').next().unwrap().to_owned();
        for (endpoint, cause, detail) in [
            ("password", "authentication failed: check sasl.username and sasl.password", "invalid credentials"),
            (
                "ca",
                "TLS failed: the broker's certificate is not trusted (check ssl.ca.location)",
                "certificate verify failed",
            ),
        ] {
            for _ in 0..3 {
                let (status, body) = http_request(
                    &gateway.address,
                    "POST",
                    &format!("/v1/{endpoint}/{topic}"),
                    &[],
                    br#"{"some_message":"x"}"#,
                )
                .unwrap();
                let answer: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(status, 503, "{answer}");
                assert_eq!(
                    answer["message"].as_str().unwrap(),
                    format!("topic {topic}: not stored: the Kafka cluster is unavailable: {cause}")
                );
            }
            let log = gateway.log();
            let lines: Vec<&str> = log.lines().filter(|l| l.contains(detail)).collect();
            assert_eq!(lines.len(), 1, "librdkafka's detail, once for three requests: {log}");
            assert!(lines[0].contains(cause) && lines[0].contains(&port), "the log has the whole text: {}", lines[0]);
        }
        assert!(!gateway.log().contains("hunter2"), "{}", gateway.log());
        assert_eq!(record_count(&topic), 0);
    }
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn keys_and_header_lists_past_their_limits_are_431_and_publish_nothing(front) {
        let topic = topic_with_schema("hostile-limits", 1, SEED_SCHEMA);
        let gateway = front.start(gateway_config("25s", &[("/v1/event/{topic}", config_value(REGISTRY, json!({})))]));
        let body = r#"{"some_message":"x"}"#;
        let long_key = "k".repeat(4097);
        let items_65 = "a=1,".repeat(65);
        let items_100_000 = "a=1,".repeat(100_000);
        let long_list = format!("a={}", "x".repeat(16384));
        for (headers, expected) in [
            (vec![("Message-Key", long_key.as_str())], "message-key: more than the limit of 4096 bytes"),
            (vec![("Message-Headers", items_65.as_str())], "message-headers: more than the limit of 64 items"),
            (vec![("Message-Headers", items_100_000.as_str())], "message-headers: more than the limit of 16384 bytes"),
            (vec![("Message-Headers", long_list.as_str())], "message-headers: more than the limit of 16384 bytes"),
        ] {
            if past_the_services_head_limit(front, &headers) {
                let (status, _) =
                    http_request(&gateway.address, "POST", &format!("/v1/event/{topic}"), &headers, body.as_bytes())
                        .unwrap();
                assert_eq!(status, 431);
                continue;
            }
            let (status, answer) = gateway.send(&topic, &headers, body);
            assert_eq!((status, answer["message"].as_str().unwrap()), (431, expected));
        }
        // At the limits, and the gateway still serving.
        let at = format!("a={}", "x".repeat(16382));
        let (status, answer) = gateway.send(&topic, &[("Message-Key", &long_key[1..]), ("Message-Headers", &at)], body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(record_count(&topic), 1, "only the request within the limits");
    }
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_topic_outside_the_allow_list_is_404_without_asking_the_registry(front) {
        let topic = topic_with_schema("hostile-allowed", 1, SEED_SCHEMA);
        // The registry behind a proxy: passing for the allowed topic, then hanging, so that a request that
        // asked it would wait out timeout_ms instead of answering at once.
        let glue = Proxy::start("127.0.0.1:0", var("KK_GLUE_ENDPOINT").trim_start_matches("http://").to_string());
        let mut backend =
            config_value(REGISTRY, json!({"allowed_topics": ["hostile-allowed-*", "exact-name"], "timeout_ms": 20000}));
        backend["glue_endpoint"] = json!(format!("http://{}", glue.address));
        let gateway = front.start(gateway_config("45s", &[("/v1/event/{topic}", backend)]));
        let body = r#"{"some_message":"x"}"#;
        let (status, answer) = gateway.send(&topic, &[], body);
        assert_eq!(status, 200, "{answer}");
        glue.freeze(true);
        for other in ["hostile-allowe", "exact-name-2", "random-topic-1", "payments"] {
            let started = std::time::Instant::now();
            let (status, answer) = gateway.send(other, &[], body);
            assert_eq!(status, 404, "{answer}");
            assert_eq!(answer["message"], format!("topic {other}: not served by this endpoint (allowed_topics)"));
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "the registry was asked");
        }
        let (status, _) = gateway.send(&topic, &[], body);
        assert_eq!(status, 200, "the allowed topic is served from its cached schema");
    }
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_flood_of_random_topic_names_asks_the_registry_a_bounded_number_of_times(front) {
        let topic = topic_with_schema("hostile-flood", 1, SEED_SCHEMA);
        let glue = Proxy::counting(
            "127.0.0.1:0",
            var("KK_GLUE_ENDPOINT").trim_start_matches("http://").to_string(),
            b"AWSGlue.GetSchemaVersion",
        );
        let mut backend = config_value(REGISTRY, json!({}));
        backend["glue_endpoint"] = json!(format!("http://{}", glue.address));
        let gateway = front.start(gateway_config("25s", &[("/v1/event/{topic}", backend)]));
        let body = r#"{"some_message":"x"}"#;
        let (status, answer) = gateway.send(&topic, &[], body);
        assert_eq!(status, 200, "{answer}");

        let started = std::time::Instant::now();
        let sent = load(
            &gateway.address,
            Connections::PerRequest,
            16,
            3000,
            |id| (format!("/v1/event/random-{}-{id}", std::process::id()), vec![], body.to_string()),
            &Progress::default(),
        );
        let took = started.elapsed();
        let counts = tally(&sent);
        let calls = glue.seen() - 1;
        println!("3000 random topics in {took:?}: {counts:?}, {calls} registry calls");
        // 100 at once and 100 per second after (the process's budget), whatever the callers send
        assert!(calls as f64 <= 100.0 + 100.0 * took.as_secs_f64() + 5.0, "{calls} calls in {took:?}");
        assert_eq!(
            counts.get("404").copied().unwrap_or(0) + counts.get("503").copied().unwrap_or(0),
            3000,
            "{counts:?}"
        );
        let (status, answer) = gateway.send(&topic, &[], body);
        assert_eq!(status, 200, "a topic served before is not held up by the flood: {answer}");
    }
}

/// The service's HTTP server answers a head past 64 KiB with its own bare 431, before the pipeline sees
/// it; KrakenD's (Go's) takes heads up to 1 MB, and the plugin answers them.
const SERVICE_HEAD_LIMIT: usize = 64 * 1024;

fn past_the_services_head_limit(front: Front, headers: &[(&str, &str)]) -> bool {
    front == Front::Service && headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() > SERVICE_HEAD_LIMIT
}

const RICH: &str = r#"syntax = "proto3"; package t;
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
message E {
  string some_message = 1; float f = 2; double d = 3; int32 i32 = 4; int64 i64 = 5; uint32 u32 = 6;
  uint64 u64 = 7; bool flag = 8; bytes data = 9; Color color = 10; repeated string tags = 11;
  map<string, int32> counts = 12; repeated Item items = 13; oneof choice { string a = 14; string b = 15; }
  google.protobuf.Timestamp at = 16; google.protobuf.Duration took = 17;
}
enum Color { COLOR_UNSPECIFIED = 0; RED = 1; }
message Item { string sku = 1; double price = 2; }"#;

/// A request as raw bytes: `POST path` with `headers` (any bytes) and `body`.
fn raw(gateway: &Gateway, path: &str, headers: &[u8], body: &[u8], chunked: bool) -> (u16, String) {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n").into_bytes();
    head.extend_from_slice(headers);
    let body = if chunked {
        head.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        [format!("{:x}\r\n", body.len()).as_bytes(), body, b"\r\n0\r\n\r\n"].concat()
    } else {
        head.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        body.to_vec()
    };
    http_exchange(&gateway.address, &head, &body).unwrap()
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn every_bad_input_gets_its_status_and_a_message_naming_it_and_publishes_nothing(front) {
        let topic = topic_with_schema("hostile-bad", 1, RICH);
        let no_message = topic_with_schema("hostile-nomessage", 1, r#"syntax = "proto3"; enum Only { A = 0; }"#);
        let broken = unique("hostile-broken");
        create_topic(&broken, 1);
        register_schema(REGISTRY, &broken, aws_sdk_glue::types::DataFormat::Protobuf, "syntax = \"proto3\"; message {");
        let without_schema = unique("hostile-noschema");
        create_topic(&without_schema, 1);
        let gateway = front.start(gateway_config(
            "25s",
            &[
                ("/v1/event/{topic}", config_value(REGISTRY, json!({"max_body_bytes": 65536}))),
                ("/v1/allowed/{topic}", config_value(REGISTRY, json!({"allowed_topics": ["only-this"]}))),
            ],
        ));
        let path = format!("/v1/event/{topic}");
        let deep = format!(r#"{{"tags":{}{}}}"#, "[".repeat(30_000), "]".repeat(30_000));
        let over = format!(r#"{{"some_message":"{}"}}"#, "x".repeat(70_000));
        let long_topic = "t".repeat(250);

        // body: (body, expected status, start of the message)
        let bodies: Vec<(&str, u16, &str)> = vec![
            ("not json", 400, "body: not valid JSON"),
            (r#"{"some_message":"x"} trailing"#, 400, "body: not valid JSON"),
            ("[]", 400, "body: must be a JSON object"),
            (r#""text""#, 400, "body: must be a JSON object"),
            ("42", 400, "body: must be a JSON object"),
            ("null", 400, "body: must be a JSON object"),
            ("", 400, "body: not valid JSON"),
            ("{}", 400, "body: must not be an empty object"),
            (&deep, 400, "body: not valid JSON: recursion limit exceeded"),
            (r#"{"some_message":"a","some_message":"b"}"#, 400, "body: some_message is given twice"),
            (r#"{"some_message":"a","someMessage":"b"}"#, 400, "body: someMessage and some_message are the same field"),
            (r#"{"tags":["a"],"tags":["b"]}"#, 400, "body: tags is given twice"),
            (r#"{"f":"inf"}"#, 400, "body.f: \"inf\" is not a number"),
            (r#"{"f":"INF"}"#, 400, "body.f: \"INF\" is not a number"),
            (r#"{"d":"nan"}"#, 400, "body.d: \"nan\" is not a number"),
            (r#"{"d":"infinity"}"#, 400, "body.d: \"infinity\" is not a number"),
            (r#"{"f":1e39}"#, 400, "body.f: 1e39 is out of the range of a float"),
            (r#"{"f":"1e39"}"#, 400, "body.f: 1e39 is out of the range of a float"),
            (r#"{"d":1e400}"#, 400, "body: not valid JSON"),
            (r#"{"i32":2147483648}"#, 400, "body.i32: 2147483648 is out of the range"),
            (r#"{"i32":-2147483649}"#, 400, "body.i32: -2147483649 is out of the range"),
            (r#"{"i32":1.5}"#, 400, "body.i32: 1.5 is not an integer"),
            (r#"{"i32":"x"}"#, 400, "body.i32: \"x\" is not an integer"),
            (r#"{"i64":"9223372036854775808"}"#, 400, "body.i64: 9223372036854775808 is out of the range"),
            (r#"{"i64":1e20}"#, 400, "body.i64: 100000000000000000000 is out of the range"),
            (r#"{"u32":-1}"#, 400, "body.u32: -1 is out of the range"),
            (r#"{"u32":4294967296}"#, 400, "body.u32: 4294967296 is out of the range"),
            (r#"{"u64":"-1"}"#, 400, "body.u64: -1 is out of the range"),
            (r#"{"flag":"yes"}"#, 400, "body.flag: "),
            (r#"{"data":"!!!"}"#, 400, "body.data: "),
            (r#"{"color":"PURPLE"}"#, 400, "body.color: "),
            (r#"{"at":"not-a-time"}"#, 400, "body.at: "),
            (r#"{"at":"2024-13-01T00:00:00Z"}"#, 400, "body.at: "),
            (r#"{"took":"5"}"#, 400, "body.took: "),
            (r#"{"a":"x","b":"y"}"#, 400, "body: a and b are both set"),
            (r#"{"tags":["a",null]}"#, 400, "body.tags[1]: null is not a value of a list or a map"),
            (r#"{"counts":{"a":null}}"#, 400, "body.counts[\"a\"]: null is not a value"),
            (r#"{"counts":{"a":"x"}}"#, 400, "body.counts[\"a\"]: \"x\" is not an integer"),
            (r#"{"counts":{"a":1,"a":2}}"#, 400, "body.counts: map key \"a\" is given twice"),
            (r#"{"items":[{"sku":1}]}"#, 400, "body.items[0].sku: "),
            (r#"{"items":[{"sku":"a"},{"price":1,"price":2}]}"#, 400, "body.items[1]: price is given twice"),
            (r#"{"nope":1}"#, 400, "body: unrecognized field name 'nope'"),
            (r#"{"some_message":5}"#, 400, "body.some_message: "),
            (r#"{"tags":"a"}"#, 400, "body.tags: "),
            (r#"{"items":{"sku":"a"}}"#, 400, "body.items: "),
            (&over, 413, "body: larger than the limit of 65536 bytes"),
        ];
        let mut cases = 0;
        for (body, status, message) in &bodies {
            let (got, answer) = gateway.send(&topic, &[], body);
            assert_eq!(got, *status, "{body:.80}: {answer}");
            assert!(answer["message"].as_str().unwrap().starts_with(message), "{body:.80}: {answer}, want {message:?}");
            cases += 1;
        }

        // A closed (proto2) enum takes only the numbers it lists; an open one (proto3, above) any.
        let closed = topic_with_schema(
            "hostile-closed",
            1,
            r#"syntax = "proto2"; package t; enum Closed { A = 1; B = 2; } message M { optional Closed e = 1; }"#,
        );
        for (body, message) in [
            (r#"{"e":7}"#, "body.e: 7 is not a value of the closed enum t.Closed"),
            (r#"{"e":"C"}"#, "body.e: unrecognized enum value 'C'"),
        ] {
            let (got, answer) = gateway.send(&closed, &[], body);
            assert_eq!((got, answer["message"].as_str().unwrap()), (400, message), "{body}");
            cases += 1;
        }
        assert_eq!(record_count(&closed), 0);

        // A proto2 message without a field it requires is unreadable to protobuf-java (parseFrom refuses it)
        // and to every reader that checks: refused at any depth, null counting as absent, as JsonFormat does.
        let required = topic_with_schema(
            "hostile-required",
            1,
            r#"syntax = "proto2"; package t;
               message M { required string id = 1; optional Item item = 2; repeated Item items = 3; }
               message Item { required int32 n = 1; }"#,
        );
        for (body, message) in [
            (r#"{"item":{"n":1}}"#, "body: required field id is missing"),
            (r#"{"id":null}"#, "body: required field id is missing"),
            (r#"{"id":"a","item":{}}"#, "body.item: required field n is missing"),
            (r#"{"id":"a","items":[{"n":1},{"n":null}]}"#, "body.items[1]: required field n is missing"),
        ] {
            let (got, answer) = gateway.send(&required, &[], body);
            assert_eq!((got, answer["message"].as_str().unwrap()), (400, message), "{body}");
            cases += 1;
        }
        let (got, answer) = gateway.send(&required, &[], r#"{"id":"a","item":{"n":1},"items":[{"n":2}]}"#);
        assert_eq!(got, 200, "{answer}");
        assert_eq!(record_count(&required), 1, "only the complete message is stored");

        // Over the limit without a Content-Length (chunked): read to one byte past it, then 413.
        let (status, answer) = raw(&gateway, &path, b"", over.as_bytes(), true);
        assert_eq!(status, 413, "{answer}");
        cases += 1;
        let (status, answer) = raw(&gateway, &path, b"", b"{\"some_message\":\"\xff\"}", false);
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains("body: not valid UTF-8"), "{answer}");
        cases += 1;

        // headers and key: (raw header lines, expected status, start of the message)
        let headers: Vec<(Vec<u8>, u16, &str)> = vec![
            (b"Message-Key: \xff\xfe\r\n".to_vec(), 400, "key: not valid UTF-8"),
            (b"Message-Headers: a=\xff\r\n".to_vec(), 400, "message-headers: not valid UTF-8"),
            (b"Message-Headers: a=%ff\r\n".to_vec(), 400, "message-headers: item 1 (a): value: \"%ff\" is not UTF-8"),
            (b"Message-Headers: novalue\r\n".to_vec(), 400, "message-headers: item 1 (\"novalue\") is not name=value"),
            (b"Message-Headers: =v\r\n".to_vec(), 400, "message-headers: item 1 has an empty name"),
            (b"Message-Headers: a=1,a=2\r\n".to_vec(), 400, "headers: a is given twice"),
            (b"Message-Headers: a=%zz\r\n".to_vec(), 400, "message-headers: item 1 (a): value: bad percent-encoding"),
            (b"Message-Headers: a=1,,b=2\r\n".to_vec(), 400, "message-headers: item 2"),
            (format!("Message-Key: {}\r\n", "k".repeat(100_000)).into_bytes(), 431, "message-key: more than the limit"),
            (
                format!("Message-Headers: {}\r\n", "a=1,".repeat(65)).into_bytes(),
                431,
                "message-headers: more than the limit of 64 items",
            ),
            (
                format!("Message-Headers: {}\r\n", "a=1,".repeat(100_000)).into_bytes(),
                431,
                "message-headers: more than the limit of 16384 bytes",
            ),
        ];
        for (lines, status, message) in &headers {
            let (got, body) = raw(&gateway, &path, lines, br#"{"some_message":"x"}"#, false);
            if front == Front::Service && lines.len() > SERVICE_HEAD_LIMIT {
                assert_eq!(got, *status);
                cases += 1;
                continue;
            }
            let answer: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{got}: {body}"));
            assert_eq!(got, *status, "{:.80}: {answer}", String::from_utf8_lossy(lines));
            assert!(answer["message"].as_str().unwrap().starts_with(message), "{answer}, want {message:?}");
            cases += 1;
        }
        assert_eq!(record_count(&topic), 0, "no bad input published anything");

        // topics: (topic in the path, expected status, start of the message)
        let topics: Vec<(String, u16, String)> = vec![
            ("a%20b".into(), 400, "topicName: \"a b\" is not a legal Kafka topic name".into()),
            // KrakenD's router has no route for a decoded slash; nor has the service.
            ("a%2Fb".into(), 404, match front {
                Front::Plugin => "404 page not found".into(),
                Front::Service => "no route for /v1/event/a%2Fb".into(),
            }),
            ("%2E%2E".into(), 400, "topicName: \"..\" is not a legal Kafka topic name".into()),
            ("t%C3%A9".into(), 400, "topicName: \"té\" is not a legal Kafka topic name".into()),
            (long_topic, 400, "topicName: longer than Kafka's limit of 249 characters".into()),
            (without_schema.clone(), 404, format!("no schema {without_schema} in the schema registry")),
            (broken.clone(), 500, format!("schema {broken}: does not compile (the gateway's log says why); fix it in the registry")),
            (no_message.clone(), 500, format!("schema {no_message}: defines no message")),
        ];
        for (name, status, message) in &topics {
            let (got, body) =
                http_request(&gateway.address, "POST", &format!("/v1/event/{name}"), &[], br#"{"some_message":"x"}"#)
                    .unwrap();
            assert_eq!(got, *status, "{name:.80}: {body}");
            // the router's own answer has no JSON: a decoded slash leaves no route to the plugin
            let said =
                serde_json::from_str::<Value>(&body).map_or(body.clone(), |a| a["message"].as_str().unwrap().into());
            assert!(said.starts_with(message.as_str()), "{name:.80}: {body}, want {message:?}");
            cases += 1;
        }
        let (status, body) =
            http_request(&gateway.address, "POST", "/v1/allowed/other", &[], br#"{"some_message":"x"}"#).unwrap();
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("topic other: not served by this endpoint (allowed_topics)"), "{body}");
        cases += 1;
        // What the answers leave out is the operator's, in the log: the compiler's message, the registry.
        let log = gateway.log();
        assert!(log.contains(&format!("schema {broken}: does not compile: ")), "{log}");
        assert!(log.contains(&format!("Glue registry {REGISTRY}: no schema ")), "{log}");
        for t in [&without_schema, &broken, &no_message] {
            assert_eq!(record_count(t), 0, "{t}");
        }

        // The gateway still serves, and a good request publishes exactly one record.
        let good = r#"{"some_message":"ok","f":"NaN","i64":"9223372036854775807","counts":{"a":1},"at":"2024-01-01T00:00:00Z"}"#;
        let (status, answer) = gateway.send(&topic, &[("Message-Key", "k")], good);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(record_count(&topic), 1);
        println!("{cases} bad inputs answered with their status and message, none published");
        assert!(cases >= 60, "{cases}");
    }
}

/// Avro: every type whose JSON a hostile body can get wrong, a record that contains itself.
const HOSTILE_AVRO: &str = r#"{"type": "record", "name": "Node", "namespace": "h", "fields": [
    {"name": "n", "type": "long", "default": 0},
    {"name": "i", "type": "int", "default": 0},
    {"name": "f", "type": "float", "default": 0},
    {"name": "xs", "type": {"type": "array", "items": "int"}, "default": []},
    {"name": "by", "type": {"type": "map", "values": "string"}, "default": {}},
    {"name": "blob", "type": "bytes", "default": ""},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}, "default": "\u0000"},
    {"name": "next", "type": ["null", "Node"], "default": null}
]}"#;

/// JSON Schema: a pattern, unique items, nested references.
const HOSTILE_JSON: &str = r##"{"type": "object", "properties": {
    "id": {"type": "string", "pattern": "^(a+)+$"},
    "xs": {"type": "array", "items": {"type": "integer"}, "uniqueItems": true},
    "next": {"$ref": "#"}}, "additionalProperties": false}"##;

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn hostile_bodies_for_avro_and_json_schema_topics_are_400_and_publish_nothing(front) {
        let avro = unique("hostile-avro");
        create_topic(&avro, 1);
        register_schema(REGISTRY, &avro, aws_sdk_glue::types::DataFormat::Avro, HOSTILE_AVRO);
        let json_topic = unique("hostile-json");
        create_topic(&json_topic, 1);
        register_schema(REGISTRY, &json_topic, aws_sdk_glue::types::DataFormat::Json, HOSTILE_JSON);
        let gateway = front.start(gateway_config("25s", &[("/v1/event/{topic}", config_value(REGISTRY, json!({})))]));

        let nested = |n: usize, leaf: &str| format!("{}{leaf}{}", r#"{"next":"#.repeat(n), "}".repeat(n));
        let many = |item: &str, n: usize| format!(r#"{{"xs":[{}]}}"#, vec![item; n].join(","));
        let unique_many = format!(r#"{{"xs":[{}]}}"#, (0..100_000).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        let twice_at_the_end = format!(r#"{{"xs":[{},7]}}"#, (0..100_000).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        let late_string = format!(r#"{{"xs":[{},"x"]}}"#, vec!["1"; 100_000].join(","));
        let backtracking = format!(r#"{{"id":"{}b"}}"#, "a".repeat(50_000));
        let cases: Vec<(&str, String, u16, String)> = vec![
            (&avro, nested(200, "{}"), 400, "body: not valid JSON: recursion limit exceeded".into()),
            (&avro, nested(100, "{\"n\":\"x\"}"), 400, format!("body{}.n: expected an integer (long), got a string", ".next".repeat(100))),
            (&avro, r#"{"n":123456789012345678901234567890}"#.into(), 400, "body.n: 1.2345678901234568e+29 is out of the range of long".into()),
            (&avro, r#"{"n":-9223372036854775809}"#.into(), 400, "body.n: -9.223372036854776e+18 is out of the range of long".into()),
            (&avro, r#"{"i":2147483648}"#.into(), 400, "body.i: 2147483648 is out of the range of int (32 bits)".into()),
            (&avro, r#"{"f":3.5e38}"#.into(), 400, "body.f: 3.5e+38 is out of the range of a float".into()),
            (&avro, r#"{"n":1e400}"#.into(), 400, "body: not valid JSON".into()),
            (&avro, late_string, 400, "body.xs[100000]: expected an integer (int), got a string".into()),
            (&avro, r#"{"by":{"k":"a","k":"b"}}"#.into(), 400, "body.by: k is given twice".into()),
            (&avro, r#"{"blob":"%%%"}"#.into(), 400, "body.blob: \"%%%\" is not base64".into()),
            (&avro, format!(r#"{{"price":"{}"}}"#, "9".repeat(100_000)), 400, format!("body.price: \"{}\"... has more than 9 digits", "9".repeat(40))),
            (&avro, r#"{"next":{"Node":{}}}"#.into(), 400, r#"body.next: fits no branch of the union ["null", "h.Node"]"#.into()),
            (&json_topic, nested(200, "{}"), 400, "body: not valid JSON: recursion limit exceeded".into()),
            (&json_topic, backtracking, 400, "body.id: fails \"pattern\"".into()),
            (&json_topic, twice_at_the_end, 400, "body.xs: fails \"uniqueItems\"".into()),
            (&json_topic, r#"{"xs":[1.5]}"#.into(), 400, "body.xs[0]: fails \"type\"".into()),
            (&json_topic, r#"{"next":{"next":{"other":1}}}"#.into(), 400, "body.next.next: fails \"additionalProperties\"".into()),
            (&json_topic, r#"{"xs":[1],"xs":[2]}"#.into(), 400, "body: xs is given twice".into()),
        ];
        for (topic, body, status, message) in &cases {
            let (got, answer) = gateway.send(topic, &[], body);
            assert_eq!(got, *status, "{body:.80}: {answer}");
            let said = answer["message"].as_str().unwrap();
            assert!(said.starts_with(message.as_str()), "{body:.80}: {said:.300}, want {message:.300}");
            assert!(said.len() < 600, "a short answer: {said:.300}...");
        }
        let (status, answer) = raw(&gateway, &format!("/v1/event/{avro}"), b"", b"{\"blob\":\"\xff\"}", false);
        assert_eq!(status, 400, "{answer}");
        assert!(answer.contains("body: not valid UTF-8"), "{answer}");
        assert_eq!(record_count(&avro) + record_count(&json_topic), 0, "no bad input published anything");

        // What is well formed, however large or deep, is stored.
        for (topic, body) in [(&avro, many("1", 100_000)), (&avro, nested(120, "{}")), (&json_topic, unique_many), (&json_topic, nested(120, "{}"))] {
            let (status, answer) = gateway.send(topic, &[], &body);
            assert_eq!(status, 200, "{body:.80}: {answer}");
        }
        assert_eq!(record_count(&avro) + record_count(&json_topic), 4);
    }
}
