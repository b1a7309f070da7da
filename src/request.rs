//! A publish request, validated, from either of its two forms: the seed's JSON envelope
//! `{"topicName":"T","body":{..},"headers":{"k":"v"},"key":"K"}`, or the parts of an HTTP request (topic,
//! `Message-Key`, `Message-Headers: k1=v1,k2=v2`, body) as the gateway plugin hands them over.
//! Everything wrong here is the caller's fault: 400, with the field and the reason.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::outcome::Failure;

#[derive(Debug)]
pub struct Request<'a> {
    pub topic: String,
    /// The body exactly as the caller sent it; parsed once, by the codec, against the schema.
    pub body: Cow<'a, RawValue>,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "topicName")]
    topic_name: Option<Value>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
    headers: Option<Value>,
    key: Option<Value>,
}

pub fn parse(input: &[u8]) -> Result<Request<'_>, Failure> {
    let first = input.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Failure::bad_request("request: must be a JSON object"));
    }
    let envelope: Envelope =
        serde_json::from_slice(input).map_err(|e| Failure::bad_request(format!("request: not valid JSON: {e}")))?;
    Ok(Request {
        topic: topic(envelope.topic_name)?,
        body: Cow::Borrowed(body(envelope.body)?),
        key: match envelope.key {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k),
            Some(_) => return Err(Failure::bad_request("key: must be a string")),
        },
        headers: headers(envelope.headers)?,
    })
}

/// The request from the parts of an HTTP request: the topic, the key (`None`: no key), the
/// `Message-Headers` list (empty: no headers) and the body, which must be a JSON object.
pub fn from_parts<'a>(
    topic: &[u8],
    key: Option<&[u8]>,
    header_list: &[u8],
    body: &'a [u8],
) -> Result<Request<'a>, Failure> {
    fn text<'b>(field: &str, bytes: &'b [u8]) -> Result<&'b str, Failure> {
        std::str::from_utf8(bytes).map_err(|_| Failure::bad_request(format!("{field}: not valid UTF-8")))
    }
    let topic = text("topicName", topic)?;
    check_topic(topic)?;
    let body: &RawValue = serde_json::from_str(text("body", body)?)
        .map_err(|e| Failure::bad_request(format!("body: not valid JSON: {e}")))?;
    Ok(Request {
        topic: topic.to_owned(),
        body: Cow::Borrowed(self::body(Some(body))?),
        key: key.map(|k| text("key", k).map(str::to_owned)).transpose()?,
        headers: header_list_of(text("message-headers", header_list)?)
            .map_err(|e| Failure::bad_request(format!("message-headers: {e}")))?,
    })
}

impl Request<'_> {
    /// The same request, owning its body: for work that outlives the caller's buffer.
    pub fn into_owned(self) -> Request<'static> {
        Request { topic: self.topic, body: Cow::Owned(self.body.into_owned()), key: self.key, headers: self.headers }
    }
}

/// Parses `k1=v1,k2=v2`. Names and values are trimmed at the ends and percent-decoded, so they may hold
/// any UTF-8, `,` and `=` (as %2C and %3D); `+` stays a plus. An empty list means no headers.
fn header_list_of(list: &str) -> Result<Vec<(String, String)>, String> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for (i, item) in list.split(',').enumerate() {
        let n = i + 1;
        let (name, value) =
            item.split_once('=').ok_or_else(|| format!("item {n} ({:?}) is not name=value", item.trim()))?;
        let name = percent_decoded(name).map_err(|e| format!("item {n}: name: {e}"))?;
        if name.is_empty() {
            return Err(format!("item {n} has an empty name"));
        }
        let value = percent_decoded(value).map_err(|e| format!("item {n} ({name}): value: {e}"))?;
        if headers.iter().any(|(known, _)| *known == name) {
            return Err(format!("header {name} is given twice"));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

fn percent_decoded(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (bytes, mut out) = (text.as_bytes(), Vec::with_capacity(text.len()));
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(byte.ok_or_else(|| format!("bad percent-encoding in {text:?}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

/// Kafka's own rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn check_topic(name: &str) -> Result<(), Failure> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() {
        Err(Failure::bad_request("topicName: must not be empty"))
    } else if name.len() > 249 {
        Err(Failure::bad_request("topicName: longer than Kafka's limit of 249 characters"))
    } else if name == "." || name == ".." || !name.chars().all(legal) {
        Err(Failure::bad_request(format!(
            "topicName: {name:?} is not a legal Kafka topic name (letters, digits, '.', '_' and '-' only)"
        )))
    } else {
        Ok(())
    }
}

fn topic(value: Option<Value>) -> Result<String, Failure> {
    match value {
        None | Some(Value::Null) => Err(Failure::bad_request("topicName: missing")),
        Some(Value::String(name)) => check_topic(&name).map(|()| name),
        Some(_) => Err(Failure::bad_request("topicName: must be a string")),
    }
}

fn body(raw: Option<&RawValue>) -> Result<&RawValue, Failure> {
    let raw = raw.ok_or_else(|| Failure::bad_request("body: missing"))?;
    let text = raw.get();
    if !text.starts_with('{') {
        return Err(Failure::bad_request("body: must be a JSON object"));
    }
    // RawValue is valid JSON, so an object whose inside is blank is `{}`: the seed refuses it.
    if text[1..text.len() - 1].trim().is_empty() {
        return Err(Failure::bad_request("body: must not be an empty object"));
    }
    Ok(raw)
}

fn headers(value: Option<Value>) -> Result<Vec<(String, String)>, Failure> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(Failure::bad_request("headers: must be an object of strings")),
    };
    map.into_iter()
        .map(|(name, value)| match value {
            _ if name.is_empty() => Err(Failure::bad_request("headers: a header name must not be empty")),
            Value::String(v) => Ok((name, v)),
            _ => Err(Failure::bad_request(format!("headers.{name}: must be a string"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(input: &str) -> String {
        let f = parse(input.as_bytes()).expect_err(input);
        assert_eq!(f.status, 400, "{input}");
        f.message
    }

    #[test]
    fn accepts_the_seed_example() {
        let r = parse(br#"{"body":{"sample_message":"hello world"},"headers":{"my_key":"myvalue","my_other_key":"42"},"topicName":"MyTopic","key":"messageKey"}"#).unwrap();
        assert_eq!(r.topic, "MyTopic");
        assert_eq!(r.body.get(), r#"{"sample_message":"hello world"}"#);
        assert_eq!(r.key.as_deref(), Some("messageKey"));
        assert_eq!(r.headers, vec![("my_key".into(), "myvalue".into()), ("my_other_key".into(), "42".into())]);
    }

    #[test]
    fn headers_and_key_are_optional() {
        let r = parse(br#" {"topicName":"a.b_c-D","body":{"x":1},"headers":null}"#).unwrap();
        assert!(r.headers.is_empty() && r.key.is_none());
    }

    #[test]
    fn refuses_each_invalid_field_with_its_name() {
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
            (r#"{"topicName":"t","body":{"a":1},"headers":{"n":1}}"#, "headers.n: must be a string"),
            (r#"{"topicName":"t","body":{"a":1},"headers":{"":"v"}}"#, "header name must not be empty"),
            (r#"{"topicName":"t","body":{"a":1},"key":5}"#, "key: must be a string"),
        ];
        for (input, expected) in cases {
            let message = bad(input);
            assert!(message.contains(expected), "{input}: {message:?} should contain {expected:?}");
        }
        assert!(bad(&format!(r#"{{"topicName":"{}","body":{{"a":1}}}}"#, "t".repeat(250))).contains("249"));
    }

    fn headers(list: &str) -> Result<Vec<(String, String)>, String> {
        header_list_of(list)
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
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
            assert_eq!(headers(list), Ok(pairs(expected)), "{list:?}");
        }
    }

    #[test]
    fn malformed_header_lists_are_refused_naming_the_item() {
        let cases = [
            ("novalue", "item 1 (\"novalue\") is not name=value"),
            ("a=1,", "item 2"),
            ("=v", "item 1 has an empty name"),
            ("a=%zz", "bad percent-encoding"),
            ("a=%+f", "bad percent-encoding"),
            ("a=%4", "bad percent-encoding"),
            ("a=%ff", "not UTF-8"),
            ("a=1,a=2", "header a is given twice"),
            ("a=1,,b=2", "item 2"),
        ];
        for (list, expected) in cases {
            let e = headers(list).unwrap_err();
            assert!(e.contains(expected), "{list:?}: {e:?} should contain {expected:?}");
        }
    }

    #[test]
    fn parts_of_an_http_request() {
        let r = from_parts(b"MyTopic", Some(b"key \"1\""), b"my_key=x-y_z, a.b=1", br#"{"some_message":"x"}"#).unwrap();
        assert_eq!((r.topic.as_str(), r.key.as_deref()), ("MyTopic", Some("key \"1\"")));
        assert_eq!(r.headers, pairs(&[("my_key", "x-y_z"), ("a.b", "1")]));
        assert_eq!(r.body.get(), r#"{"some_message":"x"}"#);
        let r = from_parts(b"t", None, b"", b" {\"a\":1} ").unwrap().into_owned();
        assert!(r.key.is_none() && r.headers.is_empty());

        let cases: [(&[u8], &[u8], &[u8], &str); 8] = [
            (b"t", b"", b"{\"a\":", "body: not valid JSON"),
            (b"t", b"", b"", "body: not valid JSON"),
            (b"t", b"", b"{}", "body: must not be an empty object"),
            (b"t", b"", b"[1,2]", "body: must be a JSON object"),
            (b"t", b"", b"{\"a\":\"\xff\"}", "body: not valid UTF-8"),
            (b"bad$name", b"", b"{\"a\":1}", "not a legal Kafka topic name"),
            (b"t", b"novalue", b"{\"a\":1}", "message-headers: item 1"),
            (b"t", b"a=%zz", b"{\"a\":1}", "message-headers: item 1 (a): value: bad percent-encoding"),
        ];
        for (topic, list, body, expected) in cases {
            let f = from_parts(topic, None, list, body).unwrap_err();
            assert!(f.status == 400 && f.message.contains(expected), "{f:?} should contain {expected:?}");
        }
        let f = from_parts(b"t", Some(b"\xff"), b"", b"{\"a\":1}").unwrap_err();
        assert_eq!(f.message, "key: not valid UTF-8");
    }
}
