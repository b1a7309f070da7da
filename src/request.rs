//! The seed's request envelope, validated: `{"topicName":"T","body":{..},"headers":{"k":"v"},"key":"K"}`.
//! Everything wrong here is the caller's fault: 400, with the field and the reason.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::outcome::Failure;

#[derive(Debug)]
pub struct Request<'a> {
    pub topic: String,
    /// The body exactly as the caller sent it; parsed once, by the codec, against the schema.
    pub body: &'a RawValue,
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
        body: body(envelope.body)?,
        key: match envelope.key {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(k),
            Some(_) => return Err(Failure::bad_request("key: must be a string")),
        },
        headers: headers(envelope.headers)?,
    })
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
}
