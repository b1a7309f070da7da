//! The in-process scenarios of `make bench`, against the test services. Prints one `SCENARIO` line per
//! scenario for tests/bench/run.sh to tabulate. Timings are measured here and never asserted.

#[path = "../common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use krakend_kafka::{Backend, BodyRead, Codec, DataFormat, HttpParts, Input};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0
}

fn report(name: &str, mut latencies: Vec<Duration>, elapsed: Duration) {
    latencies.sort();
    println!(
        "SCENARIO {name} requests={} throughput={:.1} p50_ms={:.3} p99_ms={:.3}",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
}

/// JSON -> protobuf of `body` with `codec`, timed over `rounds` after a tenth as many to warm up.
fn codec_scenario(name: &str, codec: &Codec, body: &str, rounds: u32) {
    let body = serde_json::value::RawValue::from_string(body.into()).unwrap();
    for _ in 0..rounds / 10 {
        std::hint::black_box(codec.encode(&body, "body").unwrap());
    }
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(codec.encode(&body, "body").unwrap());
    }
    println!("SCENARIO {name} ns_per_message={:.0}", started.elapsed().as_nanos() as f64 / f64::from(rounds));
}

fn main() {
    let seed = Codec::compile("seed", DataFormat::Protobuf, SEED_SCHEMA, &[], None).unwrap();
    codec_scenario("codec", &seed, r#"{"some_message":"test value"}"#, 200_000);
    // The 4 KB order of the HTTP scenario plugin_4k (tests/bench/bodies.py wrote it).
    let orders = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bench/orders.proto")).unwrap();
    let orders = Codec::compile("orders", DataFormat::Protobuf, &orders, &[], Some("bench.v1.Order")).unwrap();
    let order = std::fs::read_to_string(format!("{}/order.json", var("KK_BENCH_BODIES"))).unwrap();
    codec_scenario("codec_4k", &orders, &order, 5_000);
    // The same two bodies against the same shapes in Avro and in JSON Schema (the Avro order's
    // timestamp is a number, as Avro's long is).
    let schema =
        |file: &str| std::fs::read_to_string(format!("{}/tests/bench/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let seed_avro =
        r#"{"type": "record", "name": "SampleEvent", "fields": [{"name": "some_message", "type": "string"}]}"#;
    let seed_json =
        r#"{"type": "object", "properties": {"some_message": {"type": "string"}}, "required": ["some_message"]}"#;
    for (format, name, seed_text, order_text, order_body) in [
        (
            DataFormat::Avro,
            "avro",
            seed_avro.to_owned(),
            schema("orders.avsc"),
            order.replace(r#""createdMs":"1764000000000""#, r#""createdMs":1764000000000"#),
        ),
        (DataFormat::Json, "json", seed_json.to_owned(), schema("orders.schema.json"), order.clone()),
    ] {
        let seed = Codec::compile("seed", format, &seed_text, &[], None).unwrap();
        codec_scenario(&format!("codec_{name}"), &seed, r#"{"some_message":"test value"}"#, 200_000);
        let orders = Codec::compile("orders", format, &order_text, &[], None).unwrap();
        codec_scenario(&format!("codec_{name}_4k"), &orders, &order_body, 5_000);
    }

    let topic = topic_with_schema("bench", 3, SEED_SCHEMA);
    let path = format!("/v1/event/{topic}");
    let body = json!({"some_message": "benchmark payload"}).to_string();
    // What the plugin hands the core for the bench's HTTP request (tests/bench/post.lua).
    let parts = HttpParts {
        path: path.as_bytes(),
        key: b"bench",
        headers: b"source=bench,trace-id=abc-123",
        traceparent: b"",
        tracestate: b"",
        idempotency_key: b"",
        body: body.as_bytes(),
        body_read: BodyRead::Complete,
    };
    let open = |config: String| {
        let (backend, error) = Backend::open(config.as_bytes(), |_| None);
        assert_eq!(error, None);
        backend
    };
    let publish = |backend: &Arc<Backend>| {
        backend.publish(Input::Http { parts, wait: None }).unwrap();
    };

    // Our producer alone, in-process: 64 callers at once, as 64 gateway connections would be.
    let publisher = open(config(REGISTRY, json!({})));
    for _ in 0..200 {
        publish(&publisher);
    }
    let (callers, each) = (64, 300);
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..callers)
            .map(|_| {
                scope.spawn(|| {
                    (0..each)
                        .map(|_| {
                            let t = Instant::now();
                            publish(&publisher);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    report("producer_alone", latencies, started.elapsed());

    // The seed's pattern: per message a new producer and a fresh schema fetch (a publisher with a config
    // of its own has a new producer and an empty schema cache), then flush and close.
    let mut latencies = Vec::new();
    let started = Instant::now();
    for i in 0..20 {
        let t = Instant::now();
        let p = open(config(REGISTRY, json!({"kafka": {"client.id": format!("seed-pattern-{i}")}})));
        publish(&p);
        drop(p);
        latencies.push(t.elapsed());
    }
    report("seed_pattern", latencies, started.elapsed());
}
