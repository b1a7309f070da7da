//! A publish request, validated. It arrives in one of three forms: the parts of an HTTP request as the
//! gateway plugin hands them over (path, `Message-Key`, `Message-Headers: k1=v1,k2=v2`, body), the same on
//! a batch endpoint, whose body holds many records (src/pipeline/batch.rs), or the seed's JSON envelope
//! `{"topicName":"T","body":{..},"headers":{"k":"v"},"key":"K"}`. Each form is only read; every rule about
//! a record's body and headers is checked once, in [`Record::new`], and about the HTTP request in
//! [`HttpParts::head`]. Everything wrong here is the caller's fault: 400 (413 for a body over the limit,
//! 431 for header fields over theirs), with the field and the reason.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::topics::check_topic;
use crate::config::Rules;
use crate::outcome::Failure;

#[derive(Debug)]
pub struct Request<'a> {
    pub topic: String,
    pub records: Records<'a>,
    /// `Idempotency-Key`: a repeat of this request with the same key is answered, not published again.
    pub idempotency_key: Option<String>,
}

/// What a request publishes.
#[derive(Debug)]
pub enum Records<'a> {
    /// One record, whose outcome is the answer.
    One(Record<'a>),
    /// A batch endpoint's records, in the caller's order, each checked alone: a record that failed its
    /// checks is its failure, which names its field path. The answer lists every record's outcome.
    Batch(Vec<Result<Record<'a>, Failure>>),
}

/// One record, checked.
#[derive(Debug)]
pub struct Record<'a> {
    pub key: Option<String>,
    /// Record headers, in the caller's order, names unique.
    pub headers: Vec<(String, String)>,
    /// The value exactly as the caller sent it; parsed once, by the codec, against the schema.
    pub body: Cow<'a, RawValue>,
}

/// Where a record sits in its request: the root of the field paths its errors name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// A request's only record: `body`, `key`, `headers`.
    Request,
    /// A batch's record `i`: `records[i].value`, `records[i].key`, `records[i].headers`.
    Batch(usize),
}

/// How reading an HTTP body ended: the reader stops at the backend's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRead {
    Complete,
    /// The body is longer than the limit (it was not read to its end, or not at all).
    OverLimit,
    /// The connection failed before the body was complete.
    Broken,
}

/// The parts of an HTTP request, as the plugin reads them.
#[derive(Debug, Clone, Copy)]
pub struct HttpParts<'a> {
    /// The request's URL path; the topic is its last segment unless the backend fixes one.
    pub path: &'a [u8],
    /// `Message-Key`; empty means no key, as for an absent header.
    pub key: &'a [u8],
    /// `Message-Headers`: `k1=v1,k2=v2`, percent-encoded; empty means no headers.
    pub headers: &'a [u8],
    /// The W3C trace context's `traceparent` and `tracestate`; empty means none.
    pub traceparent: &'a [u8],
    pub tracestate: &'a [u8],
    /// `Idempotency-Key`; empty means none.
    pub idempotency_key: &'a [u8],
    pub body: &'a [u8],
    pub body_read: BodyRead,
}

/// What an HTTP request carries beside its body's records, checked against the backend's rules.
pub(crate) struct Head<'a> {
    pub topic: String,
    pub body: &'a str,
    /// `Message-Key` and `Message-Headers`, unread: how a record takes them depends on the endpoint.
    pub key: &'a str,
    pub headers: &'a str,
    /// The record headers the W3C trace context becomes (none when `propagate_trace` is off).
    pub trace: Vec<(&'static str, &'a str)>,
    pub idempotency_key: Option<String>,
}

impl<'a> Request<'a> {
    /// The request from the seed's envelope. Its `headers` keep their order; a name given twice is
    /// refused, as in `Message-Headers`.
    pub fn from_envelope(input: &'a [u8]) -> Result<Self, Failure> {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(rename = "topicName")]
            topic_name: Option<Value>,
            #[serde(borrow)]
            body: Option<&'a RawValue>,
            #[serde(borrow)]
            headers: Option<&'a RawValue>,
            key: Option<Value>,
        }
        if input.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Failure::bad_request("request: must be a JSON object"));
        }
        let envelope: Envelope =
            serde_json::from_slice(input).map_err(|e| Failure::bad_request(format!("request: not valid JSON: {e}")))?;
        let topic = match envelope.topic_name {
            None | Some(Value::Null) => return Err(Failure::bad_request("topicName: missing")),
            Some(Value::String(name)) => name,
            Some(_) => return Err(Failure::bad_request("topicName: must be a string")),
        };
        let body = envelope.body.ok_or_else(|| Failure::bad_request("body: missing"))?;
        let key = match envelope.key {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k),
            Some(_) => return Err(Failure::bad_request("key: must be a string")),
        };
        let headers = match envelope.headers {
            None => Vec::new(),
            Some(raw) => object_of_strings(raw, At::Request)?,
        };
        check_topic(&topic)?;
        let record = Record::new(body, key, headers, At::Request)?;
        Ok(Request { topic, records: Records::One(record), idempotency_key: None })
    }

    /// How many records the request publishes, and their bytes as received (bodies, keys and headers).
    pub fn size(&self) -> (usize, usize) {
        match &self.records {
            Records::One(record) => (1, record.size()),
            Records::Batch(records) => (records.len(), records.iter().flatten().map(Record::size).sum()),
        }
    }

    /// The same request, owning its records: for work that outlives the caller's buffer.
    pub fn into_owned(self) -> Request<'static> {
        let records = match self.records {
            Records::One(record) => Records::One(record.into_owned()),
            Records::Batch(records) => Records::Batch(records.into_iter().map(|r| r.map(Record::into_owned)).collect()),
        };
        Request { topic: self.topic, records, idempotency_key: self.idempotency_key }
    }
}

impl<'a> HttpParts<'a> {
    /// What every HTTP request is checked for first: the body's size, the header fields' limits (before
    /// anything reads them: a caller cannot make the work grow past the limits), the topic, the
    /// idempotency key, the trace context.
    pub(crate) fn head(self, rules: &Rules) -> Result<Head<'a>, Failure> {
        match self.body_read {
            BodyRead::Complete if self.body.len() <= rules.max_body_bytes => {}
            BodyRead::Complete | BodyRead::OverLimit => {
                return Err(Failure::new(413, format!("body: larger than the limit of {} bytes", rules.max_body_bytes)))
            }
            BodyRead::Broken => {
                return Err(Failure::bad_request("body: the connection ended before the body was complete"))
            }
        }
        let too_large = |what: &str, limit: usize, unit: &str| {
            Err(Failure::new(431, format!("{what}: more than the limit of {limit} {unit}")))
        };
        if self.key.len() > rules.max_key_bytes {
            return too_large("message-key", rules.max_key_bytes, "bytes");
        }
        if self.headers.len() > rules.max_headers_bytes {
            return too_large("message-headers", rules.max_headers_bytes, "bytes");
        }
        if self.headers.iter().filter(|&&b| b == b',').count() >= rules.max_headers {
            return too_large("message-headers", rules.max_headers, "items");
        }
        let topic = match &rules.topic {
            Some(topic) => topic.clone(),
            None => text("topicName", last_segment(self.path))?.to_owned(),
        };
        check_topic(&topic)?;
        Ok(Head {
            topic,
            body: text("body", self.body)?,
            key: text("key", self.key)?,
            headers: text("message-headers", self.headers)?,
            trace: match rules.propagate_trace {
                true => trace_context(self.traceparent, self.tracestate),
                false => Vec::new(),
            },
            idempotency_key: idempotency_key(self.idempotency_key)?,
        })
    }
}

impl<'a> Record<'a> {
    /// The checks every record goes through, wherever it came from.
    pub(crate) fn new(
        body: &'a RawValue,
        key: Option<String>,
        headers: Vec<(String, String)>,
        at: At,
    ) -> Result<Self, Failure> {
        check_body(body, at)?;
        let mut seen = HashSet::with_capacity(headers.len());
        for (name, _) in &headers {
            if name.is_empty() {
                return Err(Failure::bad_request(format!("{}: a header name must not be empty", at.headers())));
            }
            if !seen.insert(name.as_str()) {
                return Err(Failure::bad_request(format!("{}: {name} is given twice", at.headers())));
            }
        }
        Ok(Record { key, headers, body: Cow::Borrowed(body) })
    }

    /// Its bytes as received: body, key and headers.
    pub fn size(&self) -> usize {
        self.body.get().len()
            + self.key.as_ref().map_or(0, String::len)
            + self.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }

    fn into_owned(self) -> Record<'static> {
        Record { key: self.key, headers: self.headers, body: Cow::Owned(self.body.into_owned()) }
    }
}

impl Records<'_> {
    /// Every record, checked or refused, in order.
    pub fn iter(&self) -> impl Iterator<Item = Result<&Record<'_>, &Failure>> {
        let (one, batch) = match self {
            Records::One(record) => (Some(Ok(record)), None),
            Records::Batch(records) => (None, Some(records.iter().map(Result::as_ref))),
        };
        one.into_iter().chain(batch.into_iter().flatten())
    }
}

impl At {
    /// The path of the record's value (`body` for a request's only record).
    pub fn value(self) -> Cow<'static, str> {
        self.field("body", "value")
    }

    pub fn key(self) -> Cow<'static, str> {
        self.field("key", "key")
    }

    pub fn headers(self) -> Cow<'static, str> {
        self.field("headers", "headers")
    }

    fn field(self, alone: &'static str, in_batch: &str) -> Cow<'static, str> {
        match self {
            At::Request => Cow::Borrowed(alone),
            At::Batch(i) => Cow::Owned(format!("records[{i}].{in_batch}")),
        }
    }
}

/// Adds the trace context's record headers, unless the caller gave headers of those names: a trace context
/// put in the record's own headers is the caller's choice.
pub(crate) fn with_trace(headers: &mut Vec<(String, String)>, trace: &[(&str, &str)]) {
    for (name, value) in trace {
        if !headers.iter().any(|(n, _)| n == name) {
            headers.push((name.to_string(), value.to_string()));
        }
    }
}

/// The record headers a W3C trace context becomes.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` carried: W3C's 32 list members of at most 256 bytes each could be far longer,
/// but its propagators may cut it at 512, and a record header is paid for by every consumer.
const MAX_TRACESTATE: usize = 512;

/// The record headers a W3C trace context becomes, so a consumer can continue the trace: `traceparent`
/// when it is valid (W3C's rules: version, trace id and parent id in lowercase hex, neither id all
/// zeros, version ff refused), and with it `tracestate` when it is printable and at most 512 bytes. A
/// version above 00 may carry more fields after the four of 00 (W3C: parse the first four, the 56th
/// character a `-`): the four are kept, the rest dropped. An invalid context is dropped, as W3C asks of a
/// propagator, not refused: tracing never fails a publish.
fn trace_context<'b>(traceparent: &'b [u8], tracestate: &'b [u8]) -> Vec<(&'static str, &'b str)> {
    const FOUR_FIELDS: usize = 55;
    let Ok(parent) = std::str::from_utf8(traceparent.trim_ascii()) else { return Vec::new() };
    let parent = match parent.get(FOUR_FIELDS..) {
        Some(more) if !parent.starts_with("00") && more.starts_with('-') => &parent[..FOUR_FIELDS],
        _ => parent,
    };
    let mut fields = parent.split('-');
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let valid = match [fields.next(), fields.next(), fields.next(), fields.next(), fields.next()] {
        [Some(version), Some(trace), Some(parent), Some(flags), None] => {
            hex(version, 2)
                && version != "ff"
                && hex(trace, 32)
                && hex(parent, 16)
                && hex(flags, 2)
                && trace.bytes().any(|b| b != b'0')
                && parent.bytes().any(|b| b != b'0')
        }
        _ => false,
    };
    if !valid {
        return Vec::new();
    }
    let mut context = vec![(TRACEPARENT, parent)];
    let state = tracestate.trim_ascii();
    if !state.is_empty() && state.len() <= MAX_TRACESTATE && state.iter().all(|b| (0x20..0x7f).contains(b)) {
        context.push((TRACESTATE, std::str::from_utf8(state).expect("ASCII")));
    }
    context
}

/// The longest `Idempotency-Key`: a UUID is 36, and a key is kept in memory for the whole window.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// `Idempotency-Key`: 1 to 255 visible ASCII characters. The IETF draft sends it as a structured-field
/// string (`"8e03978e-..."`); its quotes are taken off, so both forms name the same key.
fn idempotency_key(header: &[u8]) -> Result<Option<String>, Failure> {
    let key = header.trim_ascii();
    let key = key.strip_prefix(b"\"").and_then(|k| k.strip_suffix(b"\"")).unwrap_or(key);
    if header.is_empty() {
        return Ok(None);
    }
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.iter().all(u8::is_ascii_graphic) {
        return Err(Failure::bad_request(format!(
            "idempotency-key: must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (a UUID, say)"
        )));
    }
    Ok(Some(std::str::from_utf8(key).expect("ASCII").to_owned()))
}

fn text<'b>(field: &str, bytes: &'b [u8]) -> Result<&'b str, Failure> {
    std::str::from_utf8(bytes).map_err(|_| Failure::bad_request(format!("{field}: not valid UTF-8")))
}

fn last_segment(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let path = &path[..end];
    path.iter().rposition(|&b| b == b'/').map_or(path, |i| &path[i + 1..])
}

fn check_body(raw: &RawValue, at: At) -> Result<(), Failure> {
    let text = raw.get();
    if !text.starts_with('{') {
        return Err(Failure::bad_request(format!("{}: must be a JSON object", at.value())));
    }
    // RawValue is valid JSON, so an object whose inside is blank is `{}`: the seed refuses it.
    if text[1..text.len() - 1].trim().is_empty() {
        return Err(Failure::bad_request(format!("{}: must not be an empty object", at.value())));
    }
    Ok(())
}

/// Parses `k1=v1,k2=v2`. Names and values are trimmed at the ends and percent-decoded, so they may hold
/// any UTF-8, `,` and `=` (as %2C and %3D); `+` stays a plus. An empty list means no headers.
pub(crate) fn header_list(list: &str) -> Result<Vec<(String, String)>, String> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .enumerate()
        .map(|(i, item)| {
            let n = i + 1;
            let (name, value) =
                item.split_once('=').ok_or_else(|| format!("item {n} ({:?}) is not name=value", item.trim()))?;
            let name = percent_decoded(name).map_err(|e| format!("item {n}: name: {e}"))?;
            if name.is_empty() {
                return Err(format!("item {n} has an empty name"));
            }
            let value = percent_decoded(value).map_err(|e| format!("item {n} ({name}): value: {e}"))?;
            Ok((name, value))
        })
        .collect()
}

fn percent_decoded(text: &str) -> Result<String, String> {
    let text = text.trim();
    // percent_decode keeps a malformed escape as it is; a header list with one is refused instead.
    let escape = |at: usize| text.get(at + 1..at + 3).is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !text.match_indices('%').all(|(at, _)| escape(at)) {
        return Err(format!("bad percent-encoding in {text:?}"));
    }
    let decoded = percent_encoding::percent_decode_str(text).decode_utf8();
    decoded.map(Cow::into_owned).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// A `headers` object (the envelope's, a batch record's) as name/value pairs in the order written: a JSON
/// map would sort them and keep only the last of two equal names.
pub(crate) fn object_of_strings(raw: &RawValue, at: At) -> Result<Vec<(String, String)>, Failure> {
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, Value)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of strings")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(pair) = map.next_entry()? {
                pairs.push(pair);
            }
            Ok(pairs)
        }
    }
    let pairs = serde_json::Deserializer::from_str(raw.get())
        .deserialize_any(Pairs)
        .map_err(|_| Failure::bad_request(format!("{}: must be an object of strings", at.headers())))?;
    pairs
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(v) => Ok((name, v)),
            _ => Err(Failure::bad_request(format!("{}.{name}: must be a string", at.headers()))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(input: &str) -> String {
        let f = Request::from_envelope(input.as_bytes()).expect_err(input);
        assert_eq!(f.status, 400, "{input}");
        f.message
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const RULES: Rules = Rules {
        topic: None,
        max_body_bytes: 1 << 20,
        max_key_bytes: 4096,
        max_headers: 64,
        max_headers_bytes: 16384,
        allowed: None,
        propagate_trace: true,
        batch: None,
    };

    impl<'a> Request<'a> {
        fn only(&self) -> &Record<'a> {
            match &self.records {
                Records::One(record) => record,
                Records::Batch(_) => panic!("one record"),
            }
        }
    }

    fn http<'a>(path: &'a str, key: &'a str, headers: &'a str, body: &'a [u8]) -> HttpParts<'a> {
        let (path, key, headers) = (path.as_bytes(), key.as_bytes(), headers.as_bytes());
        HttpParts {
            path,
            key,
            headers,
            traceparent: b"",
            tracestate: b"",
            idempotency_key: b"",
            body,
            body_read: BodyRead::Complete,
        }
    }

    #[test]
    fn accepts_the_seed_example() {
        let r = Request::from_envelope(br#"{"body":{"sample_message":"hello world"},"headers":{"my_key":"myvalue","my_other_key":"42"},"topicName":"MyTopic","key":"messageKey"}"#).unwrap();
        assert_eq!(r.topic, "MyTopic");
        assert_eq!(r.only().body.get(), r#"{"sample_message":"hello world"}"#);
        assert_eq!(r.only().key.as_deref(), Some("messageKey"));
        assert_eq!(r.only().headers, pairs(&[("my_key", "myvalue"), ("my_other_key", "42")]));
    }

    #[test]
    fn envelope_headers_keep_their_order_and_key_and_headers_are_optional() {
        let r =
            Request::from_envelope(br#"{"topicName":"t","body":{"x":1},"headers":{"z":"1","a":"2","m":"3"}}"#).unwrap();
        assert_eq!(r.only().headers, pairs(&[("z", "1"), ("a", "2"), ("m", "3")]));
        let r = Request::from_envelope(br#" {"topicName":"a.b_c-D","body":{"x":1},"headers":null}"#).unwrap();
        assert!(r.only().headers.is_empty() && r.only().key.is_none());
        let r = Request::from_envelope(br#"{"topicName":"t","body":{"x":1},"headers":{}}"#).unwrap();
        assert!(r.only().headers.is_empty());
    }

    #[test]
    fn refuses_each_invalid_envelope_field_with_its_name() {
        let cases = [
            ("[1]", "request: must be a JSON object"),
            ("", "request: must be a JSON object"),
            ("{\"topicName\":", "request: not valid JSON"),
            (r#"{"topicName":"t","body":{"a":1}} x"#, "request: not valid JSON"),
            (r#"{"body":{"a":1}}"#, "topicName: missing"),
            (r#"{"topicName":"","body":{"a":1}}"#, "topicName: must not be empty"),
            (r#"{"topicName":7,"body":{"a":1}}"#, "topicName: must be a string"),
            (r#"{"topicName":"a/b","body":{"a":1}}"#, "is not a legal Kafka topic name"),
            (r#"{"topicName":"..","body":{"a":1}}"#, "is not a legal Kafka topic name"),
            (r#"{"topicName":"t"}"#, "body: missing"),
            (r#"{"topicName":"t","body":null}"#, "body: missing"),
            (r#"{"topicName":"t","body":[1]}"#, "body: must be a JSON object"),
            (r#"{"topicName":"t","body":"{}"}"#, "body: must be a JSON object"),
            (r#"{"topicName":"t","body":{ }}"#, "body: must not be an empty object"),
            (r#"{"topicName":"t","body":{"a":1},"headers":["a"]}"#, "headers: must be an object of strings"),
            (r#"{"topicName":"t","body":{"a":1},"headers":"a=1"}"#, "headers: must be an object of strings"),
            (r#"{"topicName":"t","body":{"a":1},"headers":{"n":1}}"#, "headers.n: must be a string"),
            (r#"{"topicName":"t","body":{"a":1},"headers":{"":"v"}}"#, "header name must not be empty"),
            (r#"{"topicName":"t","body":{"a":1},"headers":{"a":"1","a":"2"}}"#, "headers: a is given twice"),
            (r#"{"topicName":"t","body":{"a":1},"key":5}"#, "key: must be a string"),
        ];
        for (input, expected) in cases {
            let message = bad(input);
            assert!(message.contains(expected), "{input}: {message:?} should contain {expected:?}");
        }
        assert!(bad(&format!(r#"{{"topicName":"{}","body":{{"a":1}}}}"#, "t".repeat(250))).contains("249"));
    }

    #[test]
    fn header_lists_keep_what_the_seed_lua_dropped() {
        let cases: [(&str, &[(&str, &str)]); 10] = [
            ("", &[]),
            ("  ", &[]),
            ("my_key=x-y_z", &[("my_key", "x-y_z")]),
            ("a.b=1", &[("a.b", "1")]),
            ("k=hello%2C%20world", &[("k", "hello, world")]),
            (" spaced key = spaced value ,x=1", &[("spaced key", "spaced value"), ("x", "1")]),
            ("eq%3Dname=a%3Db,utf=%C3%A9t%C3%A9", &[("eq=name", "a=b"), ("utf", "été")]),
            ("empty=", &[("empty", "")]),
            ("plus=a+b", &[("plus", "a+b")]),
            ("trace-id=4bf92f3577b34da6,ver=1.2.3", &[("trace-id", "4bf92f3577b34da6"), ("ver", "1.2.3")]),
        ];
        for (list, expected) in cases {
            let r = Request::from_http(http("/t", "", list, b"{\"a\":1}"), &RULES).unwrap();
            assert_eq!(r.only().headers, pairs(expected), "{list:?}");
        }
    }

    #[test]
    fn keys_and_header_lists_over_their_limits_are_431_before_anything_reads_them() {
        let rules = Rules { max_key_bytes: 8, max_headers: 3, max_headers_bytes: 32, ..RULES };
        let publish =
            |key: &str, headers: &str| Request::from_http(http("/t", key, headers, b"{\"a\":1}"), &rules).map(drop);
        assert!(publish("12345678", "a=1,b=2,c=3").is_ok(), "at the limits");
        let refused = [
            (publish("123456789", ""), "message-key: more than the limit of 8 bytes"),
            (publish("", "a=1,b=2,c=3,d=4"), "message-headers: more than the limit of 3 items"),
            (publish("", &format!("a={}", "x".repeat(31))), "message-headers: more than the limit of 32 bytes"),
        ];
        for (result, expected) in refused {
            let f = result.unwrap_err();
            assert_eq!((f.status, f.message.as_str()), (431, expected));
        }
        // 100,000 items under the default limits: refused by counting, in one pass.
        let many = "a=1,".repeat(100_000);
        let rules = Rules { max_headers_bytes: 1 << 20, ..RULES };
        let f = Request::from_http(http("/t", "", &many, b"{\"a\":1}"), &rules).map(drop);
        assert_eq!(f.unwrap_err().message, "message-headers: more than the limit of 64 items");
    }

    #[test]
    fn malformed_header_lists_are_refused_naming_the_item() {
        let cases = [
            ("novalue", "message-headers: item 1 (\"novalue\") is not name=value"),
            ("a=1,", "message-headers: item 2"),
            ("=v", "message-headers: item 1 has an empty name"),
            ("a=%zz", "message-headers: item 1 (a): value: bad percent-encoding"),
            ("a=%+f", "bad percent-encoding"),
            ("a=%4", "bad percent-encoding"),
            ("a=%ff", "not UTF-8"),
            ("a=1,a=2", "headers: a is given twice"),
            ("a=1,,b=2", "item 2"),
        ];
        for (list, expected) in cases {
            let f = Request::from_http(http("/t", "", list, b"{\"a\":1}"), &RULES).unwrap_err();
            assert!(f.status == 400 && f.message.contains(expected), "{list:?}: {f:?} should contain {expected:?}");
        }
    }

    #[test]
    fn parts_of_an_http_request() {
        let parts = http("/v1/event/MyTopic", "key \"1\"", "my_key=x-y_z, a.b=1", br#"{"some_message":"x"}"#);
        let r = Request::from_http(parts, &RULES).unwrap();
        assert_eq!((r.topic.as_str(), r.only().key.as_deref()), ("MyTopic", Some("key \"1\"")));
        assert_eq!(r.only().headers, pairs(&[("my_key", "x-y_z"), ("a.b", "1")]));
        assert_eq!(r.only().body.get(), r#"{"some_message":"x"}"#);
        let r = Request::from_http(http("t/", "", "", b" {\"a\":1} "), &RULES).unwrap().into_owned();
        assert!(r.topic == "t" && r.only().key.is_none() && r.only().headers.is_empty());

        let cases: [(&str, &[u8], &str); 7] = [
            ("/t", b"{\"a\":", "body: not valid JSON"),
            ("/t", b"", "body: not valid JSON"),
            ("/t", b"{}", "body: must not be an empty object"),
            ("/t", b"[1,2]", "body: must be a JSON object"),
            ("/t", b"{\"a\":\"\xff\"}", "body: not valid UTF-8"),
            ("/bad$name", b"{\"a\":1}", "not a legal Kafka topic name"),
            ("/", b"{\"a\":1}", "topicName: must not be empty"),
        ];
        for (path, body, expected) in cases {
            let f = Request::from_http(http(path, "", "", body), &RULES).unwrap_err();
            assert!(f.status == 400 && f.message.contains(expected), "{f:?} should contain {expected:?}");
        }
        let f = Request::from_http(HttpParts { key: b"\xff", ..http("/t", "", "", b"{\"a\":1}") }, &RULES);
        assert_eq!(f.unwrap_err().message, "key: not valid UTF-8");
    }

    #[test]
    fn the_topic_fixed_by_the_backend_wins_over_the_path() {
        let rules = Rules { topic: Some("fixed".into()), ..RULES };
        let r = Request::from_http(http("/v1/ignored", "", "", b"{\"a\":1}"), &rules).unwrap();
        assert_eq!(r.topic, "fixed");
    }

    #[test]
    fn bodies_over_the_limit_are_413_and_broken_bodies_400() {
        let rules = Rules { max_body_bytes: 10, ..RULES };
        let over = |body: &'static [u8], body_read| {
            Request::from_http(HttpParts { body_read, ..http("/t", "", "", body) }, &rules).unwrap_err()
        };
        for f in [over(b"{\"a\":\"12345\"}", BodyRead::Complete), over(b"", BodyRead::OverLimit)] {
            assert_eq!((f.status, f.message.as_str()), (413, "body: larger than the limit of 10 bytes"));
        }
        assert!(Request::from_http(http("/t", "", "", b"{\"a\":\"1\"}"), &rules).is_ok(), "9 bytes");
        let f = over(b"{\"a\"", BodyRead::Broken);
        assert_eq!((f.status, f.message.as_str()), (400, "body: the connection ended before the body was complete"));
    }

    #[test]
    fn an_idempotency_key_is_visible_ascii_up_to_255_bytes_with_or_without_its_quotes() {
        let key = |header: &str| {
            let parts = HttpParts { idempotency_key: header.as_bytes(), ..http("/t", "", "", b"{\"a\":1}") };
            Request::from_http(parts, &RULES).map(|r| r.idempotency_key)
        };
        assert_eq!(key(""), Ok(None));
        assert_eq!(key("8e03978e-40d5"), Ok(Some("8e03978e-40d5".into())));
        assert_eq!(key(" \"8e03978e-40d5\" "), Ok(Some("8e03978e-40d5".into())), "a structured-field string");
        assert_eq!(key(&"k".repeat(255)).unwrap().unwrap().len(), 255);
        for bad in ["k".repeat(256), "a b".into(), "\"\"".into(), "é".into(), " ".into()] {
            let refused = key(&bad).unwrap_err();
            assert!(refused.status == 400 && refused.message.starts_with("idempotency-key: "), "{bad:?}: {refused:?}");
        }
    }

    #[test]
    fn a_valid_trace_context_becomes_record_headers_and_an_invalid_one_is_dropped() {
        const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        fn with(traceparent: &str, tracestate: &str, rules: &Rules) -> Vec<(String, String)> {
            let parts = HttpParts {
                traceparent: traceparent.as_bytes(),
                tracestate: tracestate.as_bytes(),
                ..http("/t", "", "source=web", b"{\"a\":1}")
            };
            Request::from_http(parts, rules).unwrap().only().headers.clone()
        }
        assert_eq!(
            with(PARENT, " rojo=00f067aa0ba902b7,congo=t61rcWkgMzE ", &RULES),
            pairs(&[
                ("source", "web"),
                ("traceparent", PARENT),
                ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
            ])
        );
        assert_eq!(with(PARENT, "", &RULES), pairs(&[("source", "web"), ("traceparent", PARENT)]));
        // a later version's extra fields are dropped, its four fields kept
        const LATER: &str = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        for later in [LATER.to_owned(), format!("{LATER}-what-comes-next"), format!("{LATER}-")] {
            assert_eq!(with(&later, "", &RULES), pairs(&[("source", "web"), ("traceparent", LATER)]), "{later}");
        }
        assert_eq!(with(PARENT, &"k=v,".repeat(129), &RULES), pairs(&[("source", "web"), ("traceparent", PARENT)]));
        for invalid in [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // uppercase
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // trace id all zeros
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // parent id all zeros
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",    // no flags
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // version 00 has four fields
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", // the 56th character not a '-'
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",  // shorter than four fields
        ] {
            assert_eq!(with(invalid, "rojo=1", &RULES), pairs(&[("source", "web")]), "{invalid:?}");
        }
        let off = Rules { propagate_trace: false, ..RULES };
        assert_eq!(with(PARENT, "rojo=1", &off), pairs(&[("source", "web")]));
        // the caller's own traceparent in Message-Headers stays, once
        let parts = HttpParts { traceparent: PARENT.as_bytes(), ..http("/t", "", "traceparent=mine", b"{\"a\":1}") };
        assert_eq!(
            Request::from_http(parts, &RULES).unwrap().only().headers.clone(),
            pairs(&[("traceparent", "mine")])
        );
    }
}
