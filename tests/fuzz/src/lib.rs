//! What every fuzz target asserts of a request or a refusal, whatever the input was.

use std::collections::HashSet;

use krakend_kafka::{Failure, Rules};

/// Record headers as a request may carry them: within the backend's limits, names non-empty and unique.
pub fn assert_headers_within(headers: &[(String, String)], rules: &Rules) {
    assert!(headers.len() <= rules.max_headers, "{} headers, limit {}", headers.len(), rules.max_headers);
    // Decoding only shrinks the list, so the headers never hold more than the list's byte limit.
    let bytes: usize = headers.iter().map(|(name, value)| name.len() + value.len()).sum();
    assert!(bytes <= rules.max_headers_bytes, "{bytes} header bytes, limit {}", rules.max_headers_bytes);
    let mut names = HashSet::new();
    for (name, _) in headers {
        assert!(!name.is_empty(), "an empty header name: {headers:?}");
        assert!(names.insert(name), "{name:?} twice: {headers:?}");
    }
}

/// A refusal is the caller's fault (one of `statuses`) and says which part of the request is wrong:
/// `field: why`, or `field.path: why` and `field[i]: why` for a part inside it.
pub fn assert_refused(failure: &Failure, statuses: &[u16], fields: &[&str]) {
    assert!(statuses.contains(&failure.status), "status {}, not one of {statuses:?}: {failure:?}", failure.status);
    let (place, why) = failure.message.split_once(": ").unwrap_or((&failure.message, ""));
    let named = fields
        .iter()
        .any(|field| place.strip_prefix(field).is_some_and(|path| path.is_empty() || path.starts_with(['.', '['])));
    assert!(named && !why.is_empty(), "the message names none of {fields:?}, or says nothing more: {failure:?}");
}
