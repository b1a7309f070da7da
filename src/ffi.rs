//! The C surface, and the only `unsafe` entry points of the library. The header
//! `include/krakend_kafka.h` is generated from this file by cbindgen.
//!
//! Conventions, as in rustls-ffi: publishers and answer queues are opaque handles; every call answers a
//! value, never unwinds (a panic becomes a 500 answer or an error string); every function says who owns
//! what. Strings returned are NUL-terminated UTF-8 owned by the caller, to be released with
//! `kk_string_free`; the answers a queue hands out stay the queue's. Calls on one publisher are safe from
//! many threads at once.

use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::answers::{AnswerQueue, Ready};
use crate::config::Config;
use crate::outcome::{self, Failure};
use crate::publisher::Publisher;
use crate::request;

/// A publisher: one Kafka producer, one Glue client and one schema cache. Handles opened with the same
/// configuration share them.
pub struct kk_publisher {
    inner: Arc<Publisher>,
}

/// The library version, e.g. "0.1.0". Static: the caller must not free it.
#[no_mangle]
pub extern "C" fn kk_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Opens a publisher from a JSON configuration (`config`, `config_len` bytes; empty or NULL means `{}`),
/// taking what it leaves out from the seed's environment variables.
///
/// On success stores a new handle in `*out` and returns NULL; the caller owns the handle and releases
/// it with `kk_publisher_free`. On failure leaves `*out` untouched and returns an error message naming
/// the bad key, owned by the caller (`kk_string_free`). `config` is only read during the call.
///
/// # Safety
/// `config` must point to `config_len` readable bytes (or be NULL), and `out` must be a valid pointer.
#[no_mangle]
pub unsafe extern "C" fn kk_publisher_new(
    config: *const u8,
    config_len: usize,
    out: *mut *mut kk_publisher,
) -> *mut c_char {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        if out.is_null() {
            return Err("kk_publisher_new: out is NULL".to_string());
        }
        let json = bytes(config, config_len);
        let config = Config::parse(json, |name| std::env::var(name).ok())?;
        Publisher::shared(config)
    }));
    match opened {
        Ok(Ok(inner)) => {
            *out = Box::into_raw(Box::new(kk_publisher { inner }));
            std::ptr::null_mut()
        }
        Ok(Err(message)) => string(message),
        Err(panic) => string(format!("kk_publisher_new: internal error: {}", panic_text(&panic))),
    }
}

/// Publishes one request: the seed's envelope `{"topicName":..,"body":{..},"headers":{..},"key":..}`
/// (`request`, `request_len` bytes, read only during the call). Blocks until the broker acknowledged the
/// record or the request timeout ran out.
///
/// Always returns a response JSON owned by the caller (`kk_string_free`):
/// `{"statusCode":"200","message":"ok","partition":P,"offset":O}`, or a non-200 `statusCode` with a
/// message naming the cause.
///
/// # Safety
/// `publisher` must be a live handle from `kk_publisher_new`; `request` must point to `request_len`
/// readable bytes (or be NULL with length 0).
#[no_mangle]
pub unsafe extern "C" fn kk_publish(
    publisher: *const kk_publisher,
    request: *const u8,
    request_len: usize,
) -> *mut c_char {
    let outcome = catch_unwind(AssertUnwindSafe(|| match publisher.as_ref() {
        Some(p) => p.inner.publish(bytes(request, request_len)),
        None => Err(Failure::internal("kk_publish: publisher is NULL")),
    }))
    .unwrap_or_else(|p| Err(panicked(&p)));
    string(outcome::to_json(&outcome))
}

/// A queue of answers to `kk_publish_message`, collected by the caller with `kk_answers_wait`.
pub struct kk_answers {
    queue: Arc<AnswerQueue>,
    /// The batch the last `kk_answers_wait` handed out, kept alive until the next one.
    batch: Mutex<Vec<Ready>>,
}

/// One answer: the `context` given to `kk_publish_message`, the HTTP status the gateway should answer
/// (200, 400, 404, 413, 500, 503 or 504), and the response JSON (as `kk_publish` returns it, not
/// NUL-terminated), owned by the queue.
#[repr(C)]
pub struct kk_answer {
    pub context: usize,
    pub status: u16,
    pub response: *const u8,
    pub response_len: usize,
}

/// A new, empty answer queue, owned by the caller (`kk_answers_free`); NULL if the system has no file
/// descriptor left for it.
#[no_mangle]
pub extern "C" fn kk_answers_new() -> *mut kk_answers {
    match catch_unwind(AnswerQueue::new) {
        Ok(Ok(queue)) => Box::into_raw(Box::new(kk_answers { queue: Arc::new(queue), batch: Mutex::default() })),
        _ => std::ptr::null_mut(),
    }
}

/// A descriptor that turns readable when answers arrive on an empty queue, for callers with an event
/// loop: wait for it, read its 8 bytes, then call `kk_answers_wait` with timeout 0 until it returns 0.
/// Owned by the queue: do not close it; it is closed by `kk_answers_free`. -1 if `answers` is NULL.
///
/// # Safety
/// `answers` must be NULL or a live queue from `kk_answers_new`.
#[no_mangle]
pub unsafe extern "C" fn kk_answers_fd(answers: *const kk_answers) -> i32 {
    answers.as_ref().map_or(-1, |a| a.queue.wake_fd())
}

/// Waits up to `timeout_ms` for answers and copies up to `cap` of them into `out`, returning how many.
/// Their response bytes stay valid until the next `kk_answers_wait` or `kk_answers_free` on this queue.
/// Meant for one collecting thread; any number of threads may publish to the queue meanwhile.
///
/// # Safety
/// `answers` must be a live queue from `kk_answers_new`; `out` must have room for `cap` answers.
#[no_mangle]
pub unsafe extern "C" fn kk_answers_wait(
    answers: *const kk_answers,
    out: *mut kk_answer,
    cap: usize,
    timeout_ms: u32,
) -> usize {
    catch_unwind(AssertUnwindSafe(|| {
        let (Some(answers), false) = (answers.as_ref(), out.is_null()) else { return 0 };
        let mut batch = answers.batch.lock().unwrap_or_else(PoisonError::into_inner);
        answers.queue.take(&mut batch, cap, Duration::from_millis(timeout_ms.into()));
        for (i, ready) in batch.iter().enumerate() {
            let response = ready.response.as_bytes();
            *out.add(i) = kk_answer {
                context: ready.context,
                status: ready.status,
                response: response.as_ptr(),
                response_len: response.len(),
            };
        }
        batch.len()
    }))
    .unwrap_or(0)
}

/// Releases a queue. Answers still to come for it are dropped; their records are published all the same.
///
/// # Safety
/// `answers` must be NULL or a queue from `kk_answers_new` not yet freed, in use by no other thread.
#[no_mangle]
pub unsafe extern "C" fn kk_answers_free(answers: *mut kk_answers) {
    if !answers.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(answers))));
    }
}

/// Publishes the parts of an HTTP request without waiting, the gateway plugin's entry point: `topic`,
/// `key` (NULL: no key), `headers` (the `Message-Headers` list `k1=v1,k2=v2`, percent-encoded; empty or
/// NULL: none) and `body` (a JSON object), each given as pointer and length and read only during the
/// call. Its answer, tagged with `context`, is queued on `answers` once the broker acknowledged the
/// record or the request failed (bad input is answered before this returns). Skips the envelope's JSON
/// round trip of `kk_publish`, and never blocks the caller on the broker.
///
/// # Safety
/// `publisher` must be a live handle from `kk_publisher_new`, `answers` a live queue from
/// `kk_answers_new` (either may be freed before the answer comes: the call keeps what it needs); each
/// other pointer must be NULL or point to its length of readable bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)] // pointer and length pairs, as C callers pass them
pub unsafe extern "C" fn kk_publish_message(
    publisher: *const kk_publisher,
    topic: *const u8,
    topic_len: usize,
    key: *const u8,
    key_len: usize,
    headers: *const u8,
    headers_len: usize,
    body: *const u8,
    body_len: usize,
    answers: *const kk_answers,
    context: usize,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let Some(answers) = answers.as_ref() else { return };
        // Should a panic unwind past the answer, dropping it still answers (503): never no answer.
        let answer = answers.queue.answer(context);
        let Some(publisher) = publisher.as_ref() else {
            return answer.send(Err(Failure::internal("kk_publish_message: publisher is NULL")));
        };
        let key = (!key.is_null()).then(|| bytes(key, key_len));
        match request::from_parts(bytes(topic, topic_len), key, bytes(headers, headers_len), bytes(body, body_len)) {
            Ok(request) => publisher.inner.submit(request, answer),
            Err(f) => answer.send(Err(f)),
        }
    }));
}

/// Releases a handle. When it is the last handle on its producer, first waits (up to the request timeout)
/// for records still in flight. NULL is ignored. The handle must not be used again, nor be in use by
/// another thread.
///
/// # Safety
/// `publisher` must be NULL or a handle from `kk_publisher_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn kk_publisher_free(publisher: *mut kk_publisher) {
    if !publisher.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(publisher))));
    }
}

/// Releases a string returned by this library. NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a string returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn kk_string_free(s: *mut c_char) {
    if !s.is_null() {
        drop(CString::from_raw(s));
    }
}

unsafe fn bytes<'a>(data: *const u8, len: usize) -> &'a [u8] {
    if data.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(data, len)
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

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// A panic caught at the boundary, as the 500 the caller gets instead of an abort.
fn panicked(panic: &Box<dyn std::any::Any + Send>) -> Failure {
    Failure::internal(format!("internal error: {}", panic_text(panic)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    /// The committed header is the generated one. `KK_UPDATE_HEADER=1 cargo test header` rewrites it.
    #[test]
    fn header_is_current() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/krakend_kafka.h"));
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/krakend_kafka.h");
        if std::env::var_os("KK_UPDATE_HEADER").is_some() {
            std::fs::write(path, generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(committed == generated, "include/krakend_kafka.h is stale: run `make header`");
    }

    unsafe fn take(s: *mut c_char) -> String {
        let text = CStr::from_ptr(s).to_str().unwrap().to_owned();
        kk_string_free(s);
        text
    }

    #[test]
    fn bad_config_is_an_error_value_naming_the_key() {
        let mut handle = std::ptr::null_mut();
        let json = br#"{"bootstrap_servers":"127.0.0.1:1","registry_name":"r","region":"eu-west-1","timeout_ms":"x"}"#;
        let err = unsafe { take(kk_publisher_new(json.as_ptr(), json.len(), &mut handle)) };
        assert!(err.contains("timeout_ms"), "{err}");
        assert!(handle.is_null());

        let json = br#"{"bootstrap_servers":"127.0.0.1:1","registry_name":"r","region":"eu-west-1","kafka":{"no.such.property":"1"}}"#;
        let err = unsafe { take(kk_publisher_new(json.as_ptr(), json.len(), &mut handle)) };
        assert!(err.contains("no.such.property"), "{err}");
        assert!(handle.is_null());
    }

    #[test]
    fn invalid_requests_answer_400_without_a_broker_and_null_is_not_a_crash() {
        let json = br#"{"bootstrap_servers":"127.0.0.1:1","registry_name":"r","region":"eu-west-1"}"#;
        let mut handle = std::ptr::null_mut();
        unsafe {
            assert!(kk_publisher_new(json.as_ptr(), json.len(), &mut handle).is_null());
            let answer = take(kk_publish(handle, b"{}".as_ptr(), 2));
            assert_eq!(answer, r#"{"statusCode":"400","message":"topicName: missing"}"#);
            let answer = take(kk_publish(handle, std::ptr::null(), 0));
            assert_eq!(answer, r#"{"statusCode":"400","message":"request: must be a JSON object"}"#);
            let answer = take(kk_publish(std::ptr::null(), b"{}".as_ptr(), 2));
            assert!(answer.contains(r#""statusCode":"500""#), "{answer}");
            kk_publisher_free(handle);
            kk_publisher_free(std::ptr::null_mut());
            kk_string_free(std::ptr::null_mut());
            assert_eq!(CStr::from_ptr(kk_version()).to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        }
    }
}
