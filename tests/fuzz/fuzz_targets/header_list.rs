//! The `Message-Headers` list parser, reached as the plugin reaches it: the header of an HTTP request
//! whose other parts are valid. Whatever the list, a request carries one header per item and stays within
//! the configured count and bytes, and the list written back from its headers parses to the same headers.

#![no_main]

use krakend_kafka::{BodyRead, HttpParts, Record, Records, Request, Rules};
use krakend_kafka_fuzz::{assert_headers_within, assert_refused};
use libfuzzer_sys::fuzz_target;

const UNLIMITED: Rules = Rules {
    topic: None,
    max_body_bytes: usize::MAX,
    max_key_bytes: usize::MAX,
    max_headers: usize::MAX,
    max_headers_bytes: usize::MAX,
    allowed: None,
    propagate_trace: true,
    batch: None,
};

fn parts(headers: &[u8]) -> HttpParts<'_> {
    HttpParts { path: b"/t", key: b"", headers, traceparent: b"", tracestate: b"", idempotency_key: b"", body: b"{\"a\":1}", body_read: BodyRead::Complete }
}

/// `headers` as a list: every byte but letters and digits percent-encoded, so nothing is trimmed or split.
fn written(headers: &[(String, String)]) -> String {
    let items: Vec<String> =
        headers.iter().map(|(name, value)| format!("{}={}", encoded(name), encoded(value))).collect();
    items.join(",")
}

fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fuzz_target!(|input: &[u8]| {
    // The first two bytes pick the limits (as a config may: at least 1), so that their edges are explored
    // along with the list.
    let [items, sixty_fours, list @ ..] = input else { return };
    let rules = Rules {
        max_headers: usize::from(*items % 80) + 1,
        max_headers_bytes: (usize::from(*sixty_fours) + 1) * 64,
        ..UNLIMITED
    };
    match Request::from_http(parts(list), &rules) {
        Ok(request) => {
            let request = only(request);
            assert_headers_within(&request.headers, &rules);
            let text = std::str::from_utf8(list).expect("a list that is not UTF-8 was accepted");
            let items = if text.trim().is_empty() { 0 } else { text.split(',').count() };
            assert_eq!(request.headers.len(), items, "not one header per item: {text:?}");
            let list = written(&request.headers);
            match Request::from_http(parts(list.as_bytes()), &UNLIMITED) {
                Ok(again) => assert_eq!(only(again).headers, request.headers, "{list:?} reads otherwise"),
                Err(failure) => panic!("{list:?}, written from {text:?}, is refused: {failure:?}"),
            }
        }
        Err(failure) => assert_refused(&failure, &[400, 431], &["message-headers", "headers"]),
    }
});

fn only(request: Request<'_>) -> Record<'_> {
    match request.records {
        Records::One(record) => record,
        Records::Batch(_) => panic!("a batch from a single-record endpoint"),
    }
}
