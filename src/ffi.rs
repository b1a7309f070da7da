//! The C surface, and the only `unsafe` entry points of the library. The header
//! `include/krakend_kafka.h` is generated from this file by cbindgen.
//!
//! Conventions, as in rustls-ffi: publishers and answer queues are opaque handles, created by a `_new`
//! and released by their `_free`; bytes cross the boundary as `kk_bytes`, lent for the call unless a
//! function says otherwise; a `char *` a function returns is the caller's, released with
//! `kk_string_free` (`kk_version`'s is static). Every export runs through [`boundary`]: a panic never
//! unwinds into C, it becomes the function's documented fallback value. Calls on one publisher are safe
//! from many threads at once.

use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::outcome::{self, Failure};
use crate::pipeline::answers::{AnswerQueue, Ready};
use crate::pipeline::backend::{Backend, Input};
use crate::pipeline::request::{BodyRead, HttpParts};
use crate::telemetry::log::log;

/// Bytes lent across the boundary: `len` bytes at `data`. `data` may be NULL only when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct kk_bytes {
    pub data: *const u8,
    pub len: usize,
}

/// What a call that cannot answer through its return value reports.
pub type kk_result = u32;
/// Done as documented.
pub const KK_OK: kk_result = 0;
/// A required pointer was NULL (what the call still did is documented with it).
pub const KK_NULL_ARGUMENT: kk_result = 1;

/// How the caller's reading of an HTTP body ended (`kk_message.body_read`).
pub type kk_body_read = u32;
/// The whole body is in `body`.
pub const KK_BODY_COMPLETE: kk_body_read = 0;
/// The body is longer than `kk_publisher_body_limit`; the caller stopped reading it (or never began).
pub const KK_BODY_OVER_LIMIT: kk_body_read = 1;
/// The connection failed before the body was complete.
pub const KK_BODY_BROKEN: kk_body_read = 2;

/// The parts of an HTTP request the gateway plugin publishes.
#[repr(C)]
pub struct kk_message {
    /// The request's URL path: the topic is its last segment, unless the backend's config fixes `topic`.
    pub path: kk_bytes,
    /// The `Message-Key` header; empty: no key.
    pub key: kk_bytes,
    /// The `Message-Headers` list `k1=v1,k2=v2`, percent-encoded; empty: no headers.
    pub headers: kk_bytes,
    /// The W3C trace context headers `traceparent` and `tracestate` (repeated ones joined with `,`); empty:
    /// none.
    pub traceparent: kk_bytes,
    pub tracestate: kk_bytes,
    /// The `Idempotency-Key` header; empty: none.
    pub idempotency_key: kk_bytes,
    /// The body, a JSON object (a batch endpoint's: `{"records": [..]}`), as far as it was read.
    pub body: kk_bytes,
    /// `KK_BODY_COMPLETE`, `KK_BODY_OVER_LIMIT` or `KK_BODY_BROKEN`.
    pub body_read: kk_body_read,
    /// How long the caller will wait for the answer, in milliseconds (the gateway's deadline for the
    /// request); 0: not known. A wait shorter than the backend can take is logged, once per publisher.
    pub wait_ms: u64,
}

/// One answer: the `context` given to `kk_publish_message`, the HTTP status to answer (200, 202, 207, 400,
/// 404, 409, 413, 422, 429, 431, 500, 503 or 504), the response JSON (not NUL-terminated, valid as the
/// call that gave it says) and, when not 0, the seconds to answer as `Retry-After` (with a 429).
#[repr(C)]
pub struct kk_answer {
    pub context: usize,
    pub status: u16,
    pub retry_after_s: u32,
    pub response: kk_bytes,
}

/// A backend's publisher: its schema cache and rules over a Kafka producer shared with every publisher
/// of equal Kafka settings. One whose config was refused answers every request with that refusal; one
/// whose AWS settings cannot be resolved yet answers 503 until they can.
pub struct kk_publisher {
    backend: Arc<Backend>,
}

/// A queue of answers to `kk_publish_message`, collected by the caller with `kk_answers_wait`.
pub struct kk_answers {
    queue: Arc<AnswerQueue>,
    /// The batch the last `kk_answers_wait` handed out, kept alive until the next one.
    batch: Mutex<Vec<Ready>>,
}

/// The library version, e.g. "0.1.0". Static: the caller must not free it.
#[no_mangle]
pub extern "C" fn kk_version() -> *const c_char {
    boundary(std::ptr::null, || concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast())
}

/// Opens a publisher from a JSON configuration (`config`, lent for the call; empty or `null` means `{}`), taking
/// what it leaves out from the seed's environment variables.
///
/// Always stores a new handle in `*out`, owned by the caller (`kk_publisher_free`). Returns NULL when
/// the publisher opened; else an error message for the log, owned by the caller (`kk_string_free`):
/// for a config that cannot work, naming the bad key, and the handle answers every request with a 500
/// that says so, so a gateway that serves it never falls back to another client; for AWS settings
/// (region, credentials) that cannot be resolved yet, the handle answers 503 and opens by itself once
/// they can. With `out` NULL, only returns the error.
///
/// # Safety
/// `config` must be valid as `kk_bytes` says; `out` must be NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn kk_publisher_new(config: kk_bytes, out: *mut *mut kk_publisher) -> *mut c_char {
    boundary(
        || string("kk_publisher_new: internal error (a bug; the log has its panic)".into()),
        || {
            if out.is_null() {
                return string("kk_publisher_new: out is NULL".into());
            }
            // SAFETY: the caller lends `config` for this call.
            let (backend, error) = match unsafe { config.read("config") } {
                Ok(json) => Backend::open(json, |name| std::env::var(name).ok()),
                Err(e) => Backend::refuse(format!("kk_publisher_new: {e}")),
            };
            // SAFETY: `out` is not NULL and the caller made it valid for a write.
            unsafe { *out = Box::into_raw(Box::new(kk_publisher { backend })) };
            error.map_or(std::ptr::null_mut(), string)
        },
    )
}

/// The largest body, in bytes, that the publisher's requests may have (`max_body_bytes`): a caller
/// reads at most one byte more and reports a longer body as `KK_BODY_OVER_LIMIT`. 0 for a NULL or
/// refused publisher, whose requests are answered without their body.
///
/// # Safety
/// `publisher` must be NULL or a live handle from `kk_publisher_new`.
#[no_mangle]
pub unsafe extern "C" fn kk_publisher_body_limit(publisher: *const kk_publisher) -> usize {
    boundary(
        || 0,
        || {
            // SAFETY: the caller passes NULL or a live handle.
            let publisher = unsafe { publisher.as_ref() };
            publisher.and_then(|p| p.backend.rules()).map_or(0, |rules| rules.max_body_bytes)
        },
    )
}

/// Publishes the seed's envelope `{"topicName":..,"body":{..},"headers":{..},"key":..}` (`request`,
/// lent for the call) and blocks until the broker acknowledged the record or it failed, within the
/// backend's `timeout_ms` per wait. The same rules as `kk_publish_message`: headers keep their order,
/// a name given twice is refused.
///
/// Always returns the response JSON, owned by the caller (`kk_string_free`):
/// `{"statusCode":"200","message":"ok","partition":P,"offset":O}`, or a non-200 `statusCode` with a
/// message naming the cause (503 for a NULL publisher: there is none to publish with).
///
/// # Safety
/// `publisher` must be NULL or a live handle from `kk_publisher_new`; `request` valid as `kk_bytes` says.
#[no_mangle]
pub unsafe extern "C" fn kk_publish(publisher: *const kk_publisher, request: kk_bytes) -> *mut c_char {
    boundary(
        || string(outcome::to_json(&Err(Failure::panicked()))),
        || {
            // SAFETY: the caller passes NULL or a live handle, and lends `request` for this call.
            let (publisher, request) = unsafe { (publisher.as_ref(), request.read("request")) };
            let outcome = backend(publisher).publish(request.map_or_else(unreadable, Input::Envelope));
            string(outcome::to_json(&outcome))
        },
    )
}

/// Publishes the parts of an HTTP request without waiting: the gateway plugin's entry. The bytes
/// `message` points to are lent for the call. Exactly one answer, tagged with `context`, is queued on
/// `answers`: when the broker acknowledged the record, or when the request failed (bad input is answered
/// before this returns). Never blocks on the broker or the registry.
///
/// Returns `KK_OK`, or `KK_NULL_ARGUMENT` when `answers` or `publisher` is NULL. With `answers` NULL
/// nothing is published and nothing answered; with `publisher` NULL the request is answered 503 (a
/// closed publisher: nothing can publish).
///
/// # Safety
/// `publisher` must be NULL or a live handle from `kk_publisher_new`, `answers` NULL or a live queue
/// from `kk_answers_new` (either may be freed before the answer comes: the call keeps what it needs);
/// the message's bytes valid as `kk_bytes` says.
#[no_mangle]
pub unsafe extern "C" fn kk_publish_message(
    publisher: *const kk_publisher,
    message: kk_message,
    answers: *const kk_answers,
    context: usize,
) -> kk_result {
    boundary(
        || KK_OK, // the answer was taken before anything could panic, and answers 503 when dropped
        || {
            // SAFETY: the caller passes NULL or live values.
            let (publisher, answers) = unsafe { (publisher.as_ref(), answers.as_ref()) };
            let Some(answers) = answers else { return KK_NULL_ARGUMENT };
            let caller = answers.queue.slot(context).caller();
            let wait = (message.wait_ms > 0).then(|| Duration::from_millis(message.wait_ms));
            // SAFETY: the message's bytes are lent for this call.
            let parts = unsafe { message.parts() };
            let input = parts.map_or_else(unreadable, |parts| Input::Http { parts, wait });
            backend(publisher).submit(input, caller);
            if publisher.is_none() {
                return KK_NULL_ARGUMENT;
            }
            KK_OK
        },
    )
}

/// The caller of `context` stopped waiting for its answer on `answers` (the gateway's deadline passed or
/// the client went away). Returns true when the answer had not come yet: `*out` then holds the answer for
/// that caller (504: the record may still be stored; its response is static), and the request's real
/// outcome is logged when it comes, with its topic and partition and offset or its error; it is still
/// queued then, so that the collector can release what it keeps for `context`. Returns false when the
/// answer is already queued or handed out (take it from there), and when `answers` or `out` is NULL.
///
/// # Safety
/// `answers` must be NULL or a live queue from `kk_answers_new`; `out` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn kk_answers_abandon(answers: *const kk_answers, context: usize, out: *mut kk_answer) -> bool {
    static ABANDONED: OnceLock<String> = OnceLock::new();
    boundary(
        || false,
        || {
            // SAFETY: the caller passes NULL or a live queue.
            let Some(answers) = (unsafe { answers.as_ref() }) else { return false };
            if out.is_null() || !answers.queue.abandon(context) {
                return false;
            }
            let response = ABANDONED.get_or_init(|| {
                outcome::to_json(&Err(Failure::timeout(
                    "krakend-kafka: the caller stopped waiting before the outcome was known; the record may still be stored",
                )))
            });
            // SAFETY: `out` is not NULL and the caller made it valid for a write.
            let response = kk_bytes::of(response.as_bytes());
            unsafe { out.write(kk_answer { context, status: 504, retry_after_s: 0, response }) };
            true
        },
    )
}

/// Releases a handle. First waits for every request it took to have its outcome (each record's verdict
/// from librdkafka), up to the backend's `timeout_ms` plus the producer's delivery budget; their answers
/// are queued as usual. NULL is ignored.
///
/// # Safety
/// `publisher` must be NULL or a handle from `kk_publisher_new` not yet freed, in use by no other thread.
#[no_mangle]
pub unsafe extern "C" fn kk_publisher_free(publisher: *mut kk_publisher) {
    boundary(
        || (),
        || {
            // SAFETY: the caller passes NULL or a handle it owns and no longer uses.
            if let Some(publisher) = unsafe { publisher.as_ref() } {
                publisher.backend.close();
            }
            // SAFETY: as above.
            unsafe { free(publisher) }
        },
    )
}

/// A new, empty answer queue, owned by the caller (`kk_answers_free`); NULL if the system has no file
/// descriptor left for it.
#[no_mangle]
pub extern "C" fn kk_answers_new() -> *mut kk_answers {
    boundary(std::ptr::null_mut, || match AnswerQueue::new() {
        Ok(queue) => Box::into_raw(Box::new(kk_answers { queue: Arc::new(queue), batch: Mutex::default() })),
        Err(_) => std::ptr::null_mut(),
    })
}

/// A descriptor that turns readable when answers arrive on an empty queue, for callers with an event
/// loop: wait for it, read its 8 bytes, then call `kk_answers_wait` with timeout 0 until it returns 0.
/// Owned by the queue: do not close it; it is closed by `kk_answers_free`. -1 if `answers` is NULL.
///
/// # Safety
/// `answers` must be NULL or a live queue from `kk_answers_new`.
#[no_mangle]
pub unsafe extern "C" fn kk_answers_fd(answers: *const kk_answers) -> i32 {
    // SAFETY: the caller passes NULL or a live queue.
    boundary(|| -1, || unsafe { answers.as_ref() }.map_or(-1, |a| a.queue.wake_fd()))
}

/// Waits up to `timeout_ms` for answers and copies up to `cap` of them into `out`, returning how many
/// (0 when `answers` or `out` is NULL). Their responses stay valid until the next `kk_answers_wait` or
/// `kk_answers_free` on this queue. Meant for one collecting thread; any number of threads may publish
/// to the queue meanwhile.
///
/// # Safety
/// `answers` must be NULL or a live queue from `kk_answers_new`; `out` NULL or valid for `cap` writes.
#[no_mangle]
pub unsafe extern "C" fn kk_answers_wait(
    answers: *const kk_answers,
    out: *mut kk_answer,
    cap: usize,
    timeout_ms: u32,
) -> usize {
    boundary(
        || 0,
        || {
            // SAFETY: the caller passes NULL or a live queue.
            let Some(answers) = (unsafe { answers.as_ref() }) else { return 0 };
            if out.is_null() {
                return 0;
            }
            let mut batch = answers.batch.lock().unwrap_or_else(PoisonError::into_inner);
            answers.queue.take(&mut batch, cap, Duration::from_millis(timeout_ms.into()));
            for (i, ready) in batch.iter().enumerate() {
                let answer = kk_answer {
                    context: ready.context,
                    status: ready.status,
                    retry_after_s: ready.retry_after_s,
                    response: kk_bytes::of(ready.response.as_bytes()),
                };
                // SAFETY: `take` handed out at most `cap` answers, and `out` has room for `cap`.
                unsafe { out.add(i).write(answer) };
            }
            batch.len()
        },
    )
}

/// Releases a queue. Answers still to come for it are dropped; their records are published all the same.
///
/// # Safety
/// `answers` must be NULL or a queue from `kk_answers_new` not yet freed, in use by no other thread.
#[no_mangle]
pub unsafe extern "C" fn kk_answers_free(answers: *mut kk_answers) {
    // SAFETY: the caller passes NULL or a queue it owns and no longer uses.
    boundary(|| (), || unsafe { free(answers) })
}

/// Releases a string returned by this library. NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a string returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn kk_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from `CString::into_raw` in `string` and is released once.
        boundary(|| (), || drop(unsafe { CString::from_raw(s) }))
    }
}

/// The one boundary every export runs through: a panic is logged and becomes `on_panic()`, never an
/// unwind into C (which aborts the process).
fn boundary<T>(on_panic: impl FnOnce() -> T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
        let text = panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str));
        log(format_args!("internal error (a bug): panic: {}", text.unwrap_or("with no message")));
        on_panic()
    })
}

impl kk_bytes {
    #[cfg(test)]
    const EMPTY: kk_bytes = kk_bytes { data: std::ptr::null(), len: 0 };

    fn of(bytes: &[u8]) -> kk_bytes {
        kk_bytes { data: bytes.as_ptr(), len: bytes.len() }
    }

    /// The bytes; `None` for a NULL `data` with a non-zero `len`, the caller's bug, refused rather than
    /// read as empty.
    ///
    /// # Safety
    /// `data` must point to `len` readable bytes that stay valid and unchanged for `'a` (or be NULL).
    unsafe fn as_slice<'a>(self) -> Option<&'a [u8]> {
        match (self.data.is_null(), self.len) {
            (_, 0) => Some(&[]),
            (true, _) => None,
            // SAFETY: not NULL, and the caller vouches for `len` bytes living for 'a.
            (false, len) => Some(unsafe { std::slice::from_raw_parts(self.data, len) }),
        }
    }

    /// `as_slice`, or why not, naming the argument `what`.
    ///
    /// # Safety
    /// As `as_slice`.
    unsafe fn read<'a>(self, what: &str) -> Result<&'a [u8], String> {
        // SAFETY: as the caller vouches.
        unsafe { self.as_slice() }.ok_or_else(|| format!("{what}: NULL data with a length of {}", self.len))
    }
}

impl kk_message {
    /// # Safety
    /// Every `kk_bytes` of the message must be valid for `'a`.
    unsafe fn parts<'a>(&self) -> Result<HttpParts<'a>, String> {
        let body_read = match self.body_read {
            KK_BODY_COMPLETE => BodyRead::Complete,
            KK_BODY_OVER_LIMIT => BodyRead::OverLimit,
            _ => BodyRead::Broken,
        };
        // SAFETY: the caller vouches for every span.
        unsafe {
            Ok(HttpParts {
                path: self.path.read("path")?,
                key: self.key.read("key")?,
                headers: self.headers.read("headers")?,
                traceparent: self.traceparent.read("traceparent")?,
                tracestate: self.tracestate.read("tracestate")?,
                idempotency_key: self.idempotency_key.read("idempotency_key")?,
                body: self.body.read("body")?,
                body_read,
            })
        }
    }
}

/// The input of arguments that cannot be read: answered 500, for the caller's bug is not its client's.
fn unreadable<'a>(why: String) -> Input<'a> {
    Input::Unreadable(Failure::internal(format!("krakend-kafka: internal error: {why}; nothing was sent")))
}

/// The backend of `publisher`; a NULL one's answers 503 (a closed publisher: nothing can publish).
fn backend(publisher: Option<&kk_publisher>) -> &Backend {
    publisher.map_or(Backend::closed(), |p| &p.backend)
}

/// Releases what `Box::into_raw` handed to C; NULL is ignored.
///
/// # Safety
/// `handle` must be NULL or come from `Box::into_raw` for this `T`, and be released only once.
unsafe fn free<T>(handle: *mut T) {
    if !handle.is_null() {
        // SAFETY: as the caller vouches.
        drop(unsafe { Box::from_raw(handle) });
    }
}

fn string(text: String) -> *mut c_char {
    // JSON escapes NUL, and our messages carry none; a stray one is cut rather than failing the call.
    let text = match text.find('\0') {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    CString::new(text).expect("NUL removed above").into_raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    /// The committed header is the generated one; `make header` copies it there, this never writes it.
    #[test]
    fn header_is_current() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/krakend_kafka.h"));
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/krakend_kafka.h");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(committed == generated, "include/krakend_kafka.h is stale: run `make header`");
    }

    unsafe fn take(s: *mut c_char) -> String {
        let text = CStr::from_ptr(s).to_str().unwrap().to_owned();
        kk_string_free(s);
        text
    }

    fn bytes(b: &[u8]) -> kk_bytes {
        kk_bytes::of(b)
    }

    /// A complete request to `/v1/t` with `body` and nothing else.
    fn posted(body: kk_bytes) -> kk_message {
        kk_message {
            path: bytes(b"/v1/t"),
            key: kk_bytes::EMPTY,
            headers: kk_bytes::EMPTY,
            traceparent: kk_bytes::EMPTY,
            tracestate: kk_bytes::EMPTY,
            idempotency_key: kk_bytes::EMPTY,
            body,
            body_read: KK_BODY_COMPLETE,
            wait_ms: 0,
        }
    }

    const GOOD: &[u8] =
        br#"{"bootstrap_servers":"127.0.0.1:1","registry_name":"r","region":"eu-west-1","max_body_bytes":64}"#;

    /// Collects exactly `n` answers from `answers`, then checks that no other comes.
    unsafe fn collect(answers: *const kk_answers, n: usize) -> Vec<(usize, u16, String)> {
        let mut out: Vec<kk_answer> = Vec::with_capacity(n + 1);
        let mut got = Vec::new();
        while got.len() < n {
            let k = kk_answers_wait(answers, out.as_mut_ptr(), n + 1, 10_000);
            assert!(k > 0, "answer {} of {n} within 10 s", got.len() + 1);
            out.set_len(k);
            for a in &out {
                got.push((a.context, a.status, String::from_utf8(a.response.as_slice().unwrap().to_vec()).unwrap()));
            }
        }
        assert_eq!(kk_answers_wait(answers, out.as_mut_ptr(), 1, 50), 0, "exactly {n} answers");
        got
    }

    #[test]
    fn a_refused_config_is_an_error_naming_the_key_and_a_handle_that_answers_500() {
        let json = br#"{"bootstrap_servers":"127.0.0.1:1","registry_name":"r","region":"eu-west-1","timeout_ms":"x"}"#;
        let mut handle = std::ptr::null_mut();
        unsafe {
            let err = take(kk_publisher_new(bytes(json), &mut handle));
            assert!(err.contains("timeout_ms"), "{err}");
            assert!(!handle.is_null());
            assert_eq!(kk_publisher_body_limit(handle), 0);
            let answer = take(kk_publish(handle, bytes(br#"{"topicName":"t","body":{"a":1}}"#)));
            let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(
                answer,
                serde_json::json!({"statusCode": "500", "message": format!("krakend-kafka is misconfigured: {err}")})
            );
            kk_publisher_free(handle);

            let json = br#"{"bootstrap_servers":"127.0.0.1:1","registry_name":"r","region":"eu-west-1","kafka":{"no.such.property":"1"}}"#;
            assert!(take(kk_publisher_new(bytes(json), &mut handle)).contains("no.such.property"));
            kk_publisher_free(handle);
            assert!(take(kk_publisher_new(bytes(GOOD), std::ptr::null_mut())).contains("out is NULL"));
        }
    }

    #[test]
    fn null_data_with_a_length_is_refused_not_read_as_empty() {
        let null = kk_bytes { data: std::ptr::null(), len: 3 };
        let mut handle = std::ptr::null_mut();
        unsafe {
            let err = take(kk_publisher_new(null, &mut handle));
            assert_eq!(err, "kk_publisher_new: config: NULL data with a length of 3");
            kk_publisher_free(handle);
            assert!(kk_publisher_new(bytes(GOOD), &mut handle).is_null());
            let answer = take(kk_publish(handle, null));
            assert_eq!(
                answer,
                r#"{"statusCode":"500","message":"krakend-kafka: internal error: request: NULL data with a length of 3; nothing was sent"}"#
            );
            let answers = kk_answers_new();
            assert_eq!(kk_publish_message(handle, posted(null), answers, 9), KK_OK);
            let got = collect(answers, 1);
            assert_eq!((got[0].0, got[0].1), (9, 500));
            assert!(got[0].2.contains("body: NULL data with a length of 3"), "{}", got[0].2);
            kk_answers_free(answers);
            kk_publisher_free(handle);
        }
    }

    #[test]
    fn the_envelope_entry_answers_bad_input_400_without_a_broker_and_null_503() {
        let mut handle = std::ptr::null_mut();
        unsafe {
            assert!(kk_publisher_new(bytes(GOOD), &mut handle).is_null());
            assert_eq!(kk_publisher_body_limit(handle), 64);
            let answer = take(kk_publish(handle, bytes(b"{}")));
            assert_eq!(answer, r#"{"statusCode":"400","message":"topicName: missing"}"#);
            let answer = take(kk_publish(handle, kk_bytes::EMPTY));
            assert_eq!(answer, r#"{"statusCode":"400","message":"request: must be a JSON object"}"#);
            let dup = br#"{"topicName":"t","body":{"a":1},"headers":{"h":"1","h":"2"}}"#;
            assert_eq!(
                take(kk_publish(handle, bytes(dup))),
                r#"{"statusCode":"400","message":"headers: h is given twice"}"#
            );
            let answer = take(kk_publish(std::ptr::null(), bytes(b"{}")));
            assert_eq!(answer, r#"{"statusCode":"503","message":"krakend-kafka: the publisher is closed"}"#);
            kk_publisher_free(handle);
            kk_publisher_free(std::ptr::null_mut());
            kk_string_free(std::ptr::null_mut());
            assert_eq!(CStr::from_ptr(kk_version()).to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        }
    }

    #[test]
    fn the_message_entry_answers_once_per_call_even_for_null_and_bad_input() {
        let mut handle = std::ptr::null_mut();
        unsafe {
            assert!(kk_publisher_new(bytes(GOOD), &mut handle).is_null());
            let answers = kk_answers_new();
            let message = |path: &'static [u8], body: &'static [u8], body_read| kk_message {
                path: bytes(path),
                key: kk_bytes::EMPTY,
                headers: bytes(b"a=1,a=2"),
                traceparent: kk_bytes::EMPTY,
                tracestate: kk_bytes::EMPTY,
                idempotency_key: kk_bytes::EMPTY,
                body: bytes(body),
                body_read,
                wait_ms: 0,
            };
            let dup = || message(b"/v1/t", br#"{"a":1}"#, KK_BODY_COMPLETE);
            assert_eq!(kk_publish_message(handle, dup(), answers, 1), KK_OK);
            let large = message(b"/v1/t", b"", KK_BODY_OVER_LIMIT);
            assert_eq!(kk_publish_message(handle, large, answers, 2), KK_OK);
            let broken = message(b"/v1/t", b"{", KK_BODY_BROKEN);
            assert_eq!(kk_publish_message(handle, broken, answers, 3), KK_OK);
            assert_eq!(kk_publish_message(std::ptr::null(), dup(), answers, 4), KK_NULL_ARGUMENT);
            assert_eq!(kk_publish_message(handle, dup(), std::ptr::null(), 5), KK_NULL_ARGUMENT);
            let mut got = collect(answers, 4);
            got.sort();
            assert_eq!(
                got,
                [
                    (1, 400, r#"{"statusCode":"400","message":"headers: a is given twice"}"#.into()),
                    (2, 413, r#"{"statusCode":"413","message":"body: larger than the limit of 64 bytes"}"#.into()),
                    (
                        3,
                        400,
                        r#"{"statusCode":"400","message":"body: the connection ended before the body was complete"}"#
                            .into()
                    ),
                    (4, 503, r#"{"statusCode":"503","message":"krakend-kafka: the publisher is closed"}"#.into()),
                ]
            );
            assert_eq!(kk_answers_fd(std::ptr::null()), -1);
            assert!(kk_answers_fd(answers) >= 0);
            assert_eq!(kk_answers_wait(std::ptr::null(), std::ptr::null_mut(), 1, 0), 0);
            kk_answers_free(answers);
            kk_answers_free(std::ptr::null_mut());
            kk_publisher_free(handle);
        }
    }

    #[test]
    fn an_abandoned_request_is_a_504_that_says_the_record_may_be_stored_until_its_answer_came() {
        let mut handle = std::ptr::null_mut();
        unsafe {
            // A registry that refuses connections: the schema fetch fails, after the caller gave up.
            let config = br#"{"bootstrap_servers":"127.0.0.1:1","registry_name":"r","region":"eu-west-1","glue_endpoint":"http://127.0.0.1:1","timeout_ms":3000}"#;
            assert!(kk_publisher_new(bytes(config), &mut handle).is_null());
            let answers = kk_answers_new();
            let mut a = kk_answer { context: 0, status: 0, retry_after_s: 0, response: kk_bytes::EMPTY };
            let message = |body: &'static [u8]| posted(bytes(body));
            assert_eq!(kk_publish_message(handle, message(br#"{"a":1}"#), answers, 7), KK_OK);
            assert!(kk_answers_abandon(answers, 7, &mut a));
            let response = std::str::from_utf8(a.response.as_slice().unwrap()).unwrap();
            assert_eq!((a.context, a.status), (7, 504));
            let json: serde_json::Value = serde_json::from_str(response).unwrap();
            assert_eq!(json["statusCode"], "504");
            assert!(json["message"].as_str().unwrap().contains("may still be stored"), "{response}");
            assert!(!kk_answers_abandon(answers, 7, &mut a), "once");

            // Answered at once (bad input): nothing to abandon, the answer is on the queue.
            assert_eq!(kk_publish_message(handle, message(b"[]"), answers, 8), KK_OK);
            assert!(!kk_answers_abandon(answers, 8, &mut a));
            assert!(!kk_answers_abandon(std::ptr::null(), 8, &mut a));
            assert!(!kk_answers_abandon(answers, 8, std::ptr::null_mut()));
            let mut got = collect(answers, 2);
            got.sort();
            assert_eq!((got[0].0, got[1].0, got[1].1), (7, 8, 400), "{got:?}");
            // The abandoned request's real outcome still comes, for the caller's log: not stored, 503.
            let outcome: serde_json::Value = serde_json::from_str(&got[0].2).unwrap();
            assert_eq!((got[0].1, &outcome["statusCode"]), (503, &serde_json::json!("503")), "{got:?}");
            assert!(outcome["message"].as_str().unwrap().starts_with("topic t: not stored: "), "{got:?}");
            kk_publisher_free(handle);
            kk_answers_free(answers);
        }
    }

    #[test]
    fn a_panic_becomes_the_fallback_value() {
        assert_eq!(boundary(|| "fallback", || panic!("boom")), "fallback");
        assert_eq!(boundary(|| 0, || 1), 1);
    }
}
