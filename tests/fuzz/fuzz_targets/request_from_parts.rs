//! A request from the parts of an HTTP request, under rules a config may give. Whatever the parts, the
//! answer is a request that keeps every rule (topic, body, key, headers, limits), or a refusal that is the
//! caller's fault and names the part.

#![no_main]

use std::collections::HashMap;

use krakend_kafka::{BodyRead, HttpParts, Records, Request, Rules};
use krakend_kafka_fuzz::{assert_headers_within, assert_refused};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    // Read first, while the input lasts: a short input leaves the rest 0, which stands for the default
    // limits and a complete body, so that the request is not refused for its size before it is read.
    max_body_bytes: u8,
    max_key_bytes: u8,
    max_headers: u8,
    max_headers_bytes: u8,
    body_read: u8,
    topic: Option<String>,
    path: &'a [u8],
    key: &'a [u8],
    headers: &'a [u8],
    body: &'a [u8],
}

/// A limit as a config gives it (at least 1): the default for 0, else small enough for the input to reach.
fn limit(n: u8, default: usize) -> usize {
    if n == 0 {
        default
    } else {
        usize::from(n)
    }
}

/// Kafka's rule for topic names, written again here so that the target does not trust the code it checks.
fn legal_topic(name: &str) -> bool {
    let legal = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    (1..=249).contains(&name.len()) && name != "." && name != ".." && name.bytes().all(legal)
}

fn topic_in(path: &[u8]) -> &[u8] {
    let path = &path[..path.len() - path.iter().rev().take_while(|&&b| b == b'/').count()];
    path.rsplit(|&b| b == b'/').next().unwrap_or_default()
}

fuzz_target!(|input: Input| {
    let body_read = [BodyRead::Complete, BodyRead::OverLimit, BodyRead::Broken][usize::from(input.body_read % 3)];
    let parts = HttpParts { path: input.path, key: input.key, headers: input.headers, traceparent: b"", tracestate: b"", idempotency_key: b"", body: input.body, body_read };
    let rules = Rules {
        topic: input.topic.clone(),
        max_body_bytes: limit(input.max_body_bytes, 1 << 20),
        max_key_bytes: limit(input.max_key_bytes, 4096),
        max_headers: limit(input.max_headers, 64),
        max_headers_bytes: limit(input.max_headers_bytes, 16384),
        allowed: None,
        propagate_trace: false,
        batch: None,
    };
    let request = match Request::from_http(parts, &rules) {
        Ok(request) => request,
        Err(failure) => {
            let fields = ["body", "message-key", "message-headers", "headers", "topicName", "key"];
            return assert_refused(&failure, &[400, 413, 431], &fields);
        }
    };
    assert_eq!(body_read, BodyRead::Complete, "an incomplete body was accepted");
    assert!(input.body.len() <= rules.max_body_bytes, "a body over the limit was accepted");
    assert!(legal_topic(&request.topic), "illegal topic {:?}", request.topic);
    match &rules.topic {
        Some(topic) => assert_eq!(&request.topic, topic, "the backend's topic was not used"),
        None => assert_eq!(request.topic.as_bytes(), topic_in(input.path), "not the path's last segment"),
    }
    let Records::One(record) = &request.records else { panic!("a batch from a single-record endpoint") };
    let body = std::str::from_utf8(input.body).expect("a body that is not UTF-8 was accepted");
    let sent = body.trim_matches([' ', '\t', '\n', '\r']); // JSON's whitespace around the value
    assert_eq!(record.body.get(), sent, "the body is not as sent");
    // Members kept raw: JSON allows numbers no f64 holds (1e400), and those are the codec's to refuse.
    let object: HashMap<String, &RawValue> = match serde_json::from_str(record.body.get()) {
        Ok(object) => object,
        // JSON's grammar takes an escaped lone surrogate ("\ud800"), which is no Unicode: the request keeps
        // the body raw, and every codec, which decodes each string, refuses it (400; src/format/codec.rs)
        Err(e) if e.to_string().contains("surrogate") || e.to_string().contains("hex escape") => return,
        Err(e) => panic!("a body that is not a JSON object was accepted: {e}"),
    };
    assert!(!object.is_empty(), "an empty body was accepted");
    assert!(input.key.len() <= rules.max_key_bytes, "a key over the limit was accepted");
    let key = Some(input.key).filter(|k| !k.is_empty());
    assert_eq!(record.key.as_deref().map(str::as_bytes), key, "the key is not as sent");
    assert!(input.headers.len() <= rules.max_headers_bytes, "a header list over the limit was accepted");
    assert_headers_within(&record.headers, &rules);
    let (topic, headers, key) = (request.topic.clone(), record.headers.clone(), record.key.clone());
    let owned = request.into_owned();
    let Records::One(record) = owned.records else { unreachable!() };
    assert_eq!((owned.topic, record.headers, record.key, record.body.get()), (topic, headers, key, sent));
});
