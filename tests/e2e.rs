//! Through the gateway: HTTP requests to the real KrakenD binary, which loads the real plugin, which
//! publishes to the real broker with schemas from the Glue emulator. `make e2e` (or `make test`) starts
//! everything and runs these with KK_GATEWAY, KK_KRAKEND_BIN and KK_PLUGIN set.

mod common;

use std::io::Read;
use std::process::Command;

use aws_sdk_glue::types::DataFormat;
use common::gateway::{Front, Gateway};
use common::*;
use rdkafka::message::Message;
use serde_json::{json, Value};

const SCHEMA: &str = r#"syntax = "proto3";
package e2e;
message Event {
  string id = 1;
  int64 amount = 2;
  repeated string tags = 3;
  Inner inner = 4;
}
message Inner { bool ok = 1; }"#;

/// Where a case sends its requests: the gateway `make e2e` started (KK_GATEWAY), or a service of the
/// case's own with the routes of that gateway's `endpoints` (its config, KK_GATEWAY_CONFIG).
struct Target {
    address: String,
    _service: Option<Gateway>,
}

fn target(front: Front, endpoints: &[&str]) -> Target {
    match front {
        Front::Plugin => Target { address: var("KK_GATEWAY"), _service: None },
        Front::Service => {
            let mut config: Value =
                serde_json::from_str(&std::fs::read_to_string(var("KK_GATEWAY_CONFIG")).unwrap()).unwrap();
            let all = config["endpoints"].as_array_mut().unwrap();
            all.retain(|e| endpoints.contains(&e["endpoint"].as_str().unwrap()));
            assert_eq!(all.len(), endpoints.len(), "each of {endpoints:?} in the gateway's config");
            let service = front.start(config);
            Target { address: service.address.clone(), _service: Some(service) }
        }
    }
}

/// One HTTP/1.1 exchange with the front end: the status and the body.
fn post(gw: &Target, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    http_request(&gw.address, "POST", path, headers, body).unwrap()
}

fn post_json(gw: &Target, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let (status, text) = post(gw, path, headers, body.to_string().as_bytes());
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text:?}: {e}"));
    (status, json)
}

each_front! {
    #[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
    fn publishes_body_key_and_headers_and_answers_where_the_record_is(front) {
        let gw = target(front, &["/v1/event/{topic}"]);
        let topic = topic_with_schema("E2E.Case-Kept", 3, SCHEMA);
        let body = json!({"id": "a-1", "amount": "9007199254740993", "tags": ["x", "y"], "inner": {"ok": true}});
        let headers = [("Message-Key", "order-42"), ("Message-Headers", "my_key=x-y_z, a.b=1,k=hello%2C%20world")];
        let (status, answer) = post_json(&gw, &format!("/v1/event/{topic}"), &headers, &body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["statusCode"], "200");
        assert_eq!(answer["message"], "ok");

        // The plugin answered, not KrakenD's fallback client: the answer names the very record on the topic.
        let (partition, offset) = (answer["partition"].as_i64().unwrap() as i32, answer["offset"].as_i64().unwrap());
        let record = record_at(&topic, partition, offset);
        assert_eq!(decode(SCHEMA, "e2e.Event", record.payload().unwrap()), body);
        assert_eq!(record.key().unwrap(), b"order-42");
        // Record headers keep the order of the list.
        assert_eq!(
            headers_of(&record),
            vec![
                ("my_key".into(), b"x-y_z".to_vec()),
                ("a.b".into(), b"1".to_vec()),
                ("k".into(), b"hello, world".to_vec())
            ]
        );
        assert_eq!(record_count(&topic), 1);
    }
}

each_front! {
    #[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
    fn a_w3c_trace_context_is_carried_into_the_records_headers(front) {
        let gw = target(front, &["/v1/event/{topic}"]);
        let topic = topic_with_schema("e2e-trace", 1, SCHEMA);
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let traced = [
            ("Message-Headers", "source=web"),
            ("Traceparent", parent),
            ("Tracestate", "rojo=00f067aa0ba902b7"),
            ("Tracestate", "congo=t61rcWkgMzE"),
        ];
        let invalid =
            [("Traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"), ("Tracestate", "a=1")];
        // A later version with a field of its own: W3C says to read its first four.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let extended = format!("{later}-future");
        let newer = [("Traceparent", extended.as_str())];
        let mut records = Vec::new();
        for headers in [&traced[..], &invalid[..], &newer[..]] {
            let (status, answer) = post_json(&gw, &format!("/v1/event/{topic}"), headers, &json!({"id": "t"}));
            assert_eq!(status, 200, "{answer}");
            records.push(record_at(&topic, 0, answer["offset"].as_i64().unwrap()));
        }
        assert_eq!(
            headers_of(&records[0]),
            vec![
                ("source".into(), b"web".to_vec()),
                ("traceparent".into(), parent.as_bytes().to_vec()),
                ("tracestate".into(), b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".to_vec()),
            ]
        );
        assert!(headers_of(&records[1]).is_empty(), "an invalid trace context is dropped, the record published");
        assert_eq!(headers_of(&records[2]), vec![("traceparent".into(), later.as_bytes().to_vec())]);
    }
}

each_front! {
    #[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
    fn invalid_requests_answer_400_and_publish_nothing(front) {
        let gw = target(front, &["/v1/event/{topic}"]);
        let topic = topic_with_schema("e2e-invalid", 3, SCHEMA);
        let path = format!("/v1/event/{topic}");
        let cases: Vec<(Vec<(&str, &str)>, Vec<u8>, &str)> = vec![
            (vec![("Message-Headers", "novalue")], br#"{"id":"1"}"#.to_vec(), "message-headers: item 1"),
            (vec![("Message-Headers", "a=%zz")], br#"{"id":"1"}"#.to_vec(), "bad percent-encoding"),
            (vec![], br#"{"id":"#.to_vec(), "body: not valid JSON"),
            (vec![], br#"{}"#.to_vec(), "body: must not be an empty object"),
            (vec![], br#"[1,2]"#.to_vec(), "body: must be a JSON object"),
            (vec![], br#"{"unknown":"1"}"#.to_vec(), "unknown"),
            (vec![], br#"{"amount":"lots"}"#.to_vec(), "body.amount: "),
        ];
        for (headers, body, expected) in cases {
            let (status, text) = post(&gw, &path, &headers, &body);
            assert_eq!(status, 400, "{text}");
            let answer: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(answer["statusCode"], "400");
            assert!(answer["message"].as_str().unwrap().contains(expected), "{text} should say {expected:?}");
        }
        let (status, answer) = post_json(&gw, "/v1/event/bad$name", &[], &json!({"id": "1"}));
        assert_eq!(status, 400, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains("not a legal Kafka topic name"), "{answer}");
        assert_eq!(record_count(&topic), 0);
    }
}

each_front! {
    #[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
    fn topic_without_schema_is_404_and_publishes_nothing(front) {
        let gw = target(front, &["/v1/event/{topic}"]);
        let topic = unique("e2e-noschema");
        create_topic(&topic, 1);
        let (status, answer) = post_json(&gw, &format!("/v1/event/{topic}"), &[], &json!({"id": "1"}));
        assert_eq!(status, 404, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(&format!("no schema {topic} in the schema registry")));
        assert_eq!(record_count(&topic), 0);
    }
}

each_front! {
    #[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
    fn bodies_over_the_limit_are_413_and_publish_nothing(front) {
        let gw = target(front, &["/v1/event/{topic}", "/v1/fixed"]);
        let topic = topic_with_schema("e2e-large", 3, SCHEMA);
        let large = format!(r#"{{"id":"{}"}}"#, "x".repeat(1 << 20));
        let (status, text) = post(&gw, &format!("/v1/event/{topic}"), &[], large.as_bytes());
        assert_eq!(status, 413, "{text}");
        assert!(text.contains("larger than the limit of 1048576 bytes"), "{text}");
        assert_eq!(record_count(&topic), 0);

        // /v1/fixed publishes to the topic fixed in its config, with a 64-byte limit
        let (status, text) = post(&gw, "/v1/fixed", &[], format!(r#"{{"id":"{}"}}"#, "x".repeat(64)).as_bytes());
        assert_eq!(status, 413, "{text}");
        assert!(text.contains("limit of 64 bytes"), "{text}");
    }
}

each_front! {
    #[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
    fn topic_fixed_in_the_config_wins_over_the_path(front) {
        let gw = target(front, &["/v1/fixed"]);
        let topic = "e2e-fixed"; // tests/e2e/krakend.json
        {
            // The topic outlives the run and both front ends' cases make it: once.
            static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _once = MADE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if record_count_or_none(topic).is_none() {
                create_topic(topic, 1);
                register_schema(REGISTRY, topic, DataFormat::Protobuf, SCHEMA);
            }
        }
        let id = unique("fixed");
        let (status, answer) = post_json(&gw, "/v1/fixed", &[], &json!({ "id": id }));
        assert_eq!(status, 200, "{answer}");
        let record = record_at(topic, 0, answer["offset"].as_i64().unwrap());
        assert_eq!(decode(SCHEMA, "e2e.Event", record.payload().unwrap()), json!({ "id": id }));
    }
}

#[test]
#[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
fn misconfigured_plugin_answers_500_naming_the_key_instead_of_falling_back() {
    let gw = target(Front::Plugin, &[]);
    let (status, answer) = post_json(&gw, "/v1/misconfigured/anything", &[], &json!({"id": "1"}));
    assert_eq!(status, 500, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("krakend-kafka is misconfigured") && message.contains("timeout_ms"), "{message}");
}

each_front! {
    #[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
    fn two_hundred_concurrent_requests_are_each_stored_once(front) {
        let gw = target(front, &["/v1/event/{topic}"]);
        let topic = topic_with_schema("e2e-concurrent", 3, SCHEMA);
        let path = format!("/v1/event/{topic}");
        std::thread::scope(|scope| {
            for t in 0..20 {
                let (gw, path) = (&gw, &path);
                scope.spawn(move || {
                    for i in 0..10 {
                        let key = format!("{t}-{i}");
                        let (status, answer) = post_json(gw, path, &[("Message-Key", &key)], &json!({"id": key}));
                        assert_eq!(status, 200, "{answer}");
                    }
                });
            }
        });
        let records = all_records(&topic);
        let mut keys: Vec<_> = records.iter().map(|r| r.key().unwrap().to_vec()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!((records.len(), keys.len()), (200, 200));
        for r in &records {
            assert_eq!(
                decode(SCHEMA, "e2e.Event", r.payload().unwrap())["id"].as_str().unwrap().as_bytes(),
                r.key().unwrap()
            );
        }
    }
}

#[test]
#[ignore = "needs the gateway binary and the plugin: run `make e2e`"]
fn krakend_checks_the_example_config_and_loads_the_plugin() {
    let krakend = var("KK_KRAKEND_BIN");
    let root = env!("CARGO_MANIFEST_DIR");
    for config in ["krakend.json", "krakend-container.json"] {
        let check = Command::new(&krakend).args(["check", "-c", &format!("{root}/krakend/{config}")]).output().unwrap();
        assert!(check.status.success(), "{config}: {check:?}");
    }
    let test = Command::new(&krakend).args(["test-plugin", "-c", &var("KK_PLUGIN")]).output().unwrap();
    assert!(test.status.success(), "{test:?}");
    assert!(String::from_utf8_lossy(&test.stdout).starts_with("[OK] CLIENT"), "{test:?}");
    // and a file that is not a plugin is refused
    let bad = Command::new(&krakend).args(["test-plugin", "-c", &format!("{root}/Cargo.toml")]).output().unwrap();
    assert!(!bad.status.success(), "{bad:?}");

    // Every extra_config namespace the gateway does not implement is refused, at each level KrakenD reads
    // extra_config, naming it and where it is: lura would ignore it and serve less than the config asks.
    let example: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/krakend/krakend.json")).unwrap()).unwrap();
    let cases = [
        ("", "security/cors", json!({"allow_origins": ["*"]}), "service: security/cors"),
        (
            "/endpoints/0",
            "qos/ratelimit/router",
            json!({"max_rate": 10}),
            "endpoint /v1/event/{topic}: qos/ratelimit/router",
        ),
        (
            "/endpoints/0/backend/0",
            "qos/circuit-breaker",
            json!({"interval": 60, "timeout": 10, "max_errors": 1}),
            "endpoint /v1/event/{topic}: backend 0: qos/circuit-breaker",
        ),
    ];
    for (at, namespace, settings, expected) in cases {
        let mut config = example.clone();
        let extra = config.pointer_mut(at).unwrap().as_object_mut().unwrap().entry("extra_config").or_insert(json!({}));
        extra.as_object_mut().unwrap().insert(namespace.into(), settings);
        let path = std::env::temp_dir().join(unique("unimplemented")).with_extension("json");
        std::fs::write(&path, config.to_string()).unwrap();
        let refused = Command::new(&krakend).args(["check", "-c", path.to_str().unwrap()]).output().unwrap();
        assert!(!refused.status.success(), "{refused:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(&format!("{expected} is not implemented by this gateway")), "{stderr}");
        // and `run` refuses to start with it
        let mut run = Command::new(&krakend)
            .args(["run", "-c", path.to_str().unwrap(), "-p", "1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(status) = run.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                run.kill().unwrap();
                panic!("`krakend run` started with {namespace} in {at}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut stderr = String::new();
        run.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert!(!status.success() && stderr.contains(expected), "{status}: {stderr}");
        std::fs::remove_file(&path).unwrap();
    }
    // JWT validation (krakend-jose) is implemented: a config asking for it is accepted
    let mut jwt = example.clone();
    jwt["endpoints"][0]["extra_config"] =
        json!({"auth/validator": {"alg": "RS256", "jwk_url": "https://idp.example/jwks"}});
    let path = std::env::temp_dir().join(unique("jwt")).with_extension("json");
    std::fs::write(&path, jwt.to_string()).unwrap();
    let accepted = Command::new(&krakend).args(["check", "-c", path.to_str().unwrap()]).output().unwrap();
    assert!(accepted.status.success(), "{accepted:?}");
    std::fs::remove_file(&path).unwrap();
}

each_front! {
    #[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
    fn scram_over_tls_publishes_and_each_broken_security_config_is_a_clear_503(front) {
        let gw = target(
            front,
            &[
                "/v1/scram/{topic}",
                "/v1/scram-wrong-password/{topic}",
                "/v1/scram-untrusted-ca/{topic}",
                "/v1/scram-wrong-mechanism/{topic}",
            ],
        );
        let topic = topic_with_schema("e2e-scram", 3, SCHEMA);
        let (status, answer) =
            post_json(&gw, &format!("/v1/scram/{topic}"), &[("Message-Key", "s")], &json!({"id": "s"}));
        assert_eq!(status, 200, "{answer}");
        let (partition, offset) = (answer["partition"].as_i64().unwrap() as i32, answer["offset"].as_i64().unwrap());
        let record = record_at(&topic, partition, offset);
        assert_eq!(decode(SCHEMA, "e2e.Event", record.payload().unwrap()), json!({"id": "s"}));

        for (endpoint, cause) in [
            ("scram-wrong-password", "check sasl.username and sasl.password"),
            ("scram-untrusted-ca", "certificate is not trusted"),
            ("scram-wrong-mechanism", "configured sasl.mechanism"),
        ] {
            let (status, answer) = post_json(&gw, &format!("/v1/{endpoint}/{topic}"), &[], &json!({"id": "w"}));
            assert_eq!(status, 503, "{endpoint}: {answer}");
            let message = answer["message"].as_str().unwrap();
            assert!(message.contains(cause) && !message.contains("secret"), "{endpoint}: {message}");
        }
        assert_eq!(record_count(&topic), 1, "only the authenticated record");
    }
}

each_front! {
    #[ignore = "needs the gateway, Kafka and the Glue emulator: run `make e2e`"]
    fn msk_iam_publishes_through_a_broker_that_checks_the_signature(front) {
        let gw = target(front, &["/v1/iam/{topic}"]);
        let topic = topic_with_schema("e2e-iam", 3, SCHEMA);
        let (status, answer) = post_json(&gw, &format!("/v1/iam/{topic}"), &[], &json!({"id": "iam"}));
        assert_eq!(status, 200, "{answer}");
        let (partition, offset) = (answer["partition"].as_i64().unwrap() as i32, answer["offset"].as_i64().unwrap());
        let record = record_at(&topic, partition, offset);
        assert_eq!(decode(SCHEMA, "e2e.Event", record.payload().unwrap()), json!({"id": "iam"}));
    }
}
