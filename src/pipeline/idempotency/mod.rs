//! Idempotency keys: a request repeated with the same `Idempotency-Key` (same topic, within the window)
//! is not published again. It gets the first request's answer, partition and offset included; a repeat
//! that arrives while the first is in flight waits for its outcome; a repeat of a different request is
//! refused with 422. Only a request that stored a record is remembered: after a failure a retry publishes
//! again. A batch that stored some of its records is remembered with every record's outcome, so that its
//! retry stores none twice.
//!
//! The outcome remembered is librdkafka's verdict, not what the first caller was answered: a caller
//! answered 504 at its deadline whose record was then stored gets 200 on its retry, not a second record.
//! A repeat waits at most the backend's `timeout_ms` (its caller's deadline, as for any record), and at
//! most `MAX_REPEATS_WAITING` wait on one key in a process.
//!
//! The keys live in this process ([`local`]), or in a Redis server every replica shares ([`shared`],
//! `idempotency_store`), with the same rules: the trip asks [`Idempotency::begin`] either way, and gets
//! its verdict at once from the first, later from the second.

mod entry;
pub mod local;
pub mod shared;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::{IdempotencyLimits, IdempotencyStore};
use crate::outcome::{Answer, Failure, Outcome};
use crate::pipeline::request::{Request, TRACEPARENT, TRACESTATE};

/// Repeats of one request waiting for its outcome at once in a process: a client retrying its own
/// request, not a queue; more are refused 429.
pub const MAX_REPEATS_WAITING: usize = 16;

/// What makes two requests the same, alike in every process: a SHA-256, so that no caller can make two
/// different requests collide, without a secret the replicas would have to share.
pub type Fingerprint = [u8; 32];

/// A backend's idempotency keys.
pub enum Idempotency {
    Local(Arc<local::Local>),
    Shared(Arc<shared::Shared>),
}

/// What [`Idempotency::begin`] found: at once (in this process), or once the shared store answered.
pub enum Claim<'a> {
    Now(Begun<'a>),
    Later(Pin<Box<dyn Future<Output = Begun<'static>> + Send>>),
}

/// What a request with an idempotency key is.
pub enum Begun<'a> {
    /// The first of its key: publish it, and settle the ticket with its outcome.
    First(Ticket),
    /// A repeat of a request that stored a record: answer it this outcome.
    Stored(Outcome),
    /// A repeat of a request still in flight: it waits for that one's outcome.
    InFlight(Waiting<'a>),
    /// Not published: a different request under a key in use (422), no room for another key (429), the
    /// shared store unreachable (503).
    Refused(Failure),
}

/// A repeat of a request in flight.
pub enum Waiting<'a> {
    Local(local::Waiting<'a>),
    Shared(shared::Waiting),
}

/// The first request of a key: settles the key with the record's outcome, once. Dropped unsettled (a bug
/// unwound past it), the key is forgotten and its repeats answered, never stuck.
pub enum Ticket {
    Local(local::Ticket),
    Shared(shared::Ticket),
}

impl Idempotency {
    /// The keys of a backend: in `store` when there is one, else in this process within `limits`.
    /// `timeout`: the backend's `timeout_ms`; `longest`: what a request may take from its claim to
    /// librdkafka's verdict.
    pub fn new(
        limits: IdempotencyLimits,
        store: Option<&IdempotencyStore>,
        timeout: Duration,
        longest: Duration,
        retry_after_s: u32,
    ) -> Result<Idempotency, String> {
        Ok(match store {
            None => Idempotency::Local(local::Local::new(limits, retry_after_s)),
            Some(store) => {
                Idempotency::Shared(shared::Shared::new(store, limits.window, timeout, longest, retry_after_s)?)
            }
        })
    }

    /// What the request of `key` on `topic` is: the first of its key, or a repeat.
    pub fn begin(&self, topic: &str, key: &str, fingerprint: Fingerprint) -> Claim<'_> {
        match self {
            Idempotency::Local(local) => Claim::Now(local.begin(topic, key, fingerprint)),
            Idempotency::Shared(shared) => Claim::Later(Box::pin(Arc::clone(shared).begin(topic, key, fingerprint))),
        }
    }
}

impl Waiting<'_> {
    /// `answer` gets the outcome of the request in flight when it comes.
    pub fn join(self, answer: Answer) {
        match self {
            Waiting::Local(waiting) => waiting.join(answer),
            Waiting::Shared(waiting) => waiting.join(answer),
        }
    }
}

impl Ticket {
    /// Remembers a request that stored a record for the window, forgets one that stored none; the repeats
    /// that waited get the same outcome.
    pub fn settle(self, outcome: &Outcome) {
        match self {
            Ticket::Local(ticket) => ticket.settle(outcome),
            Ticket::Shared(ticket) => ticket.settle(outcome),
        }
    }
}

/// A key used within the window for a different request.
fn reused(topic: &str, key: &str, window: Duration) -> Failure {
    Failure::new(
        422,
        format!(
            "idempotency-key {key}: already used on topic {topic} for a different request (key, headers or body) \
             within the last {} s; use a new key for a new request",
            window.as_secs()
        ),
    )
}

/// A repeat refused because `MAX_REPEATS_WAITING` others wait on its key already.
fn too_many_waiting(topic: &str, key: &str, retry_after_s: u32) -> Failure {
    overloaded(
        format!(
            "topic {topic}: not stored: {MAX_REPEATS_WAITING} repeats of idempotency-key {key} already wait for the \
             first request's outcome"
        ),
        retry_after_s,
    )
}

fn overloaded(why: String, retry_after_s: u32) -> Failure {
    Failure::overloaded(format!("{why}; retry after {retry_after_s} s"), retry_after_s)
}

/// What makes two requests the same: each record's key, headers and body as received (an invalid
/// record's failure). Not the trace context: a retry is a new span of the caller's trace, with a
/// traceparent of its own. Every part is written with its length, so that no two requests write the same
/// bytes.
pub fn fingerprint(request: &Request<'_>) -> Fingerprint {
    let mut hash = Sha256::new();
    let mut part = |tag: u8, bytes: &[u8]| {
        hash.update([tag]);
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    for record in request.records.iter() {
        match record {
            Ok(record) => {
                match &record.key {
                    Some(key) => part(b'k', key.as_bytes()),
                    None => part(b'n', b""),
                }
                for (name, value) in
                    record.headers.iter().filter(|(name, _)| ![TRACEPARENT, TRACESTATE].contains(&&**name))
                {
                    part(b'h', name.as_bytes());
                    part(b'v', value.as_bytes());
                }
                part(b'b', record.body.get().as_bytes());
            }
            Err(failure) => part(b'e', failure.message.as_bytes()),
        }
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rules;
    use crate::pipeline::request::{BodyRead, HttpParts};

    #[test]
    fn the_fingerprint_covers_key_headers_and_body_but_not_the_trace_context() {
        let rules = Rules {
            topic: None,
            max_body_bytes: 1 << 20,
            max_key_bytes: 64,
            max_headers: 8,
            max_headers_bytes: 1024,
            allowed: None,
            propagate_trace: true,
            batch: None,
        };
        let of = |key: &str, headers: &str, traceparent: &str, body: &[u8]| {
            let parts = HttpParts {
                path: b"/t",
                key: key.as_bytes(),
                headers: headers.as_bytes(),
                traceparent: traceparent.as_bytes(),
                tracestate: b"",
                idempotency_key: b"k",
                body,
                body_read: BodyRead::Complete,
            };
            fingerprint(&Request::from_http(parts, &rules).unwrap())
        };
        let first = of("a", "x=1", "", b"{\"v\":1}");
        assert_eq!(first, of("a", "x=1", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", b"{\"v\":1}"));
        for other in
            [of("b", "x=1", "", b"{\"v\":1}"), of("a", "x=2", "", b"{\"v\":1}"), of("a", "x=1", "", b"{\"v\":2}")]
        {
            assert_ne!(first, other);
        }
        // The parts' lengths are written: a header's name and value that move a byte between them differ.
        assert_ne!(of("a", "xy=1", "", b"{\"v\":1}"), of("a", "x=y1", "", b"{\"v\":1}"));
    }
}
