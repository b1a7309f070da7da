//! Batch endpoints through the gateway binary and the plugin, against the real broker and the Glue
//! emulator: every record of a batch is stored in order and answered with its place; one invalid record
//! refuses the whole batch by field path and stores nothing; over the limits 413; a batch librdkafka
//! takes only part of is 207 with each record's outcome, and its retry stores nothing twice; a batch not
//! acknowledged by its deadline is 504 for its records.
//! `make test` runs these.

mod common;

use common::gateway::gateway_config;
use common::proxy::Proxy;
use common::*;
use rdkafka::message::Message;
use serde_json::{json, Value};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn batch(records: &[Value]) -> String {
    json!({ "records": records }).to_string()
}

fn statuses(answer: &Value) -> Vec<String> {
    answer["records"].as_array().expect("records").iter().map(|r| r["statusCode"].as_str().unwrap().into()).collect()
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn every_record_is_stored_in_the_batchs_order_per_key_and_answered_with_its_place(front) {
        let topic = topic_with_schema("batch", 3, SEED_SCHEMA);
        let backend = config_value(REGISTRY, json!({"batch": true, "max_batch_records": 6}));
        let gateway = front.start(gateway_config("10s", &[("/v1/event/{topic}", backend)]));
        let keys = ["a", "b", "a", "c", "a", "b"];
        let records: Vec<Value> = keys
            .iter()
            .enumerate()
            .map(
                |(i, key)| {
                    json!({"key": key, "headers": {"n": i.to_string()}, "value": {"some_message": format!("m{i}")}})
                },
            )
            .collect();
        let (status, answer) = gateway.send(&topic, &[("Traceparent", TRACEPARENT)], &batch(&records));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["message"], "ok");
        assert_eq!(statuses(&answer), ["200"; 6]);

        let places: Vec<(i32, i64)> = answer["records"].as_array().unwrap().iter().map(position).collect();
        for (i, &(partition, offset)) in places.iter().enumerate() {
            let record = record_at(&topic, partition, offset);
            assert_eq!(record.key(), Some(keys[i].as_bytes()), "records[{i}] is where its answer says");
            let headers = headers_of(&record);
            assert_eq!(
                headers,
                [
                    ("n".to_string(), i.to_string().into_bytes()),
                    ("traceparent".to_string(), TRACEPARENT.as_bytes().to_vec())
                ]
            );
            let value = decode(SEED_SCHEMA, "events.SampleEvent", record.payload().unwrap());
            assert_eq!(value, json!({"someMessage": format!("m{i}")}));
        }
        for key in ["a", "b"] {
            let of_key: Vec<(i32, i64)> = (0..6).filter(|&i| keys[i] == key).map(|i| places[i]).collect();
            assert!(of_key.iter().all(|p| p.0 == of_key[0].0), "one partition per key: {of_key:?}");
            assert!(of_key.windows(2).all(|w| w[0].1 < w[1].1), "the batch's order per key: {of_key:?}");
        }
        assert_eq!(record_count(&topic), 6, "each record once");
    }
}

each_front! {
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn an_invalid_record_refuses_the_whole_batch_by_field_path_and_over_the_limits_is_413(front) {
        let topic = topic_with_schema("batch-bad", 1, SEED_SCHEMA);
        let backend = config_value(REGISTRY, json!({"batch": true, "max_batch_records": 4, "max_body_bytes": 1024}));
        let gateway = front.start(gateway_config("10s", &[("/v1/event/{topic}", backend)]));
        let good = json!({"key": "k", "value": {"some_message": "fine"}});
        let records = [
            good.clone(),
            json!({"key": "k", "value": {"some_message": "x", "other_field": 1}}),
            good.clone(),
            json!({"key": 7, "value": {"some_message": "y"}}),
        ];
        let (status, answer) = gateway.send(&topic, &[], &batch(&records));
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["message"], "2 of 4 records are invalid (see records); nothing was sent");
        assert_eq!(statuses(&answer), ["424", "400", "424", "400"]);
        let message = |i: usize| answer["records"][i]["message"].as_str().unwrap().to_owned();
        assert_eq!(message(1), "records[1].value: unrecognized field name 'other_field'");
        assert_eq!(message(3), "records[3].key: must be a string");
        assert!(message(0).starts_with("not sent: "), "{}", message(0));

        let (status, answer) = gateway.send(&topic, &[], &batch(&vec![good.clone(); 5]));
        assert_eq!(
            (status, answer["message"].as_str().unwrap()),
            (413, "records: more than the limit of 4 records per batch")
        );
        let long = json!({"value": {"some_message": "x".repeat(1000)}});
        let (status, answer) = gateway.send(&topic, &[], &batch(&[good.clone(), long]));
        assert_eq!((status, answer["message"].as_str().unwrap()), (413, "body: larger than the limit of 1024 bytes"));
        let (status, answer) = gateway.send(&topic, &[("Message-Key", "k")], &batch(&[good]));
        assert_eq!(status, 400, "{answer}");
        assert_eq!(record_count(&topic), 0, "nothing stored");
    }
}

each_front! {
    /// librdkafka's queue holds 3 records: a batch of 5 is refused from its fourth record on, and those after
    /// the refusal are not sent either, so that the batch's order per key holds. Its retry with the same
    /// idempotency key gets the same answer and stores nothing.
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_batch_librdkafka_takes_only_part_of_is_207_with_each_outcome_and_its_retry_stores_nothing_twice(front) {
        let topic = topic_with_schema("batch-part", 1, SEED_SCHEMA);
        let backend = config_value(
            REGISTRY,
            json!({"batch": true, "retry_after_s": 2, "kafka": {"queue.buffering.max.messages": 3}}),
        );
        let gateway = front.start(gateway_config("10s", &[("/v1/event/{topic}", backend)]));
        let records: Vec<Value> =
            (0..5).map(|i| json!({"key": "same", "value": {"some_message": format!("m{i}")}})).collect();
        let key = [("Idempotency-Key", "batch-17")];
        let (answer, json) = gateway.answer(&topic, &key, &batch(&records));
        assert_eq!(answer.status, 207, "{json}");
        assert_eq!(statuses(&json), ["200", "200", "200", "429", "429"]);
        assert_eq!(answer.header("retry-after"), Some("2"));
        assert!(json["records"][4]["message"].as_str().unwrap().starts_with("not sent: an earlier record"), "{json}");
        let stored: Vec<String> = all_records(&topic)
            .iter()
            .map(|r| {
                decode(SEED_SCHEMA, "events.SampleEvent", r.payload().unwrap())["someMessage"].as_str().unwrap().into()
            })
            .collect();
        assert_eq!(stored, ["m0", "m1", "m2"], "the batch's first records, in order");

        let (again, replayed) = gateway.answer(&topic, &key, &batch(&records));
        assert_eq!((again.status, &replayed), (207, &json), "the first answer");
        assert_eq!(record_count(&topic), 3, "nothing stored twice");
    }
}

each_front! {
    /// A broker that goes silent while a batch is on its way: 504 at the deadline, and the answer speaks of
    /// the batch's records, any of which may be stored.
    #[ignore = "needs Kafka, the Glue emulator and the built gateway: run `make test`"]
    fn a_batch_not_acknowledged_by_its_deadline_is_504_for_its_records(front) {
        let topic = topic_with_schema("batch-504", 1, SEED_SCHEMA);
        // The broker advertises this port for its FAULTY listener: the gateway talks to it only through
        // the proxy.
        let proxy = Proxy::start(&var("KK_FAULTY_BOOTSTRAP"), var("KK_FAULTY_BROKER"));
        let mut backend =
            config_value(REGISTRY, json!({"batch": true, "timeout_ms": 2000, "kafka": {"message.timeout.ms": 30000}}));
        backend["bootstrap_servers"] = json!(var("KK_FAULTY_BOOTSTRAP"));
        let gateway = front.start(gateway_config("20s", &[("/v1/event/{topic}", backend)]));
        let warm = [json!({"key": "warm", "value": {"some_message": "warm"}})];
        assert_eq!(gateway.answer(&topic, &[], &batch(&warm)).0.status, 200);

        proxy.freeze(true);
        let records: Vec<Value> =
            (0..3).map(|i| json!({"key": "k", "value": {"some_message": format!("m{i}")}})).collect();
        let (answer, json) = gateway.answer(&topic, &[], &batch(&records));
        assert_eq!(answer.status, 504, "{json}");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains("within 2000 ms") && message.contains("the records may still be stored"), "{message}");
        assert!(!message.contains("the record "), "{message}");
        proxy.freeze(false);
    }
}
