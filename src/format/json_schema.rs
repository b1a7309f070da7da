//! JSON Schema: a body checked against the topic's schema (drafts 4, 6, 7, 2019-09 and 2020-12, by its
//! `$schema`, 2020-12 when it names none, as the `jsonschema` crate implements them), and written as it
//! was sent: the bytes the caller sent are the bytes a consumer reads, numbers and all, with nothing
//! re-serialized.

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::format::json;
use crate::format::unusable::unusable;
use crate::outcome::Failure;

/// How much of the validator's words an answer carries: they may quote the caller's value, which can be
/// as large as the body.
const MAX_REASON_CHARS: usize = 200;

#[derive(Debug)]
pub struct JsonSchema {
    validator: Validator,
}

/// Serves a Confluent registry's references (`$ref` to the name each was registered under) and nothing
/// else: the gateway fetches no schema from the network on a reader's behalf.
struct Imports(Vec<(String, Value)>);

impl Retrieve for Imports {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let found = self
            .0
            .iter()
            .find(|(name, _)| uri == name || uri.strip_suffix(name.as_str()).is_some_and(|s| s.ends_with('/')));
        found
            .map(|(_, schema)| schema.clone())
            .ok_or_else(|| format!("{uri} is not among the schema's references").into())
    }
}

impl JsonSchema {
    /// Compiles `text`, the JSON Schema of schema `schema`, whose `$ref`s may name `imports`.
    pub fn compile(schema: &str, text: &str, imports: &[(String, String)]) -> Result<JsonSchema, Failure> {
        let refuse = |why: String| unusable(schema, "is not a JSON Schema the gateway can use", why);
        let parse =
            |name: &str, text: &str| serde_json::from_str::<Value>(text).map_err(|e| refuse(format!("{name}: {e}")));
        let definition = parse(schema, text)?;
        let imports = imports
            .iter()
            .map(|(name, text)| Ok((name.clone(), parse(name, text)?)))
            .collect::<Result<_, Failure>>()?;
        let validator = jsonschema::options()
            .with_retriever(Imports(imports))
            .build(&definition)
            .map_err(|e| refuse(e.to_string()))?;
        Ok(JsonSchema { validator })
    }

    /// `body` as sent, once the schema accepts it; else 400 naming the first failing path and keyword.
    pub fn encode(&self, body: &RawValue, at: &str) -> Result<Vec<u8>, Failure> {
        let value = json::read(body.get(), at).map_err(Failure::bad_request)?;
        if let Some(error) = self.validator.iter_errors(&value).next() {
            let mut reason = error.to_string();
            if let Some(start) = json::cut(&reason, MAX_REASON_CHARS) {
                reason = format!("{start}...");
            }
            let path = pointer_to_path(error.instance_path().as_str(), &value);
            return Err(Failure::bad_request(format!("{at}{path}: fails \"{}\": {reason}", error.kind().keyword())));
        }
        Ok(body.get().as_bytes().to_vec())
    }
}

/// A JSON pointer into `value` (`/items/1/price`) as the gateway writes paths (`.items[1].price`): a step
/// into an array is an index, into an object a key.
fn pointer_to_path(pointer: &str, mut value: &Value) -> String {
    let mut path = json::Path::new();
    for step in pointer.split('/').skip(1) {
        let step = step.replace("~1", "/").replace("~0", "~");
        match value {
            Value::Array(items) => {
                let index = step.parse::<usize>().unwrap_or(usize::MAX);
                path.index(index);
                value = items.get(index).unwrap_or(&Value::Null);
            }
            _ => {
                value = value.get(&step).unwrap_or(&Value::Null);
                path.key(&step);
            }
        }
    }
    path.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {"id": {"type": "string"}, "lines": {"type": "array", "items": {"type": "object",
        "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
        "required": ["sku"], "additionalProperties": false}}}, "required": ["id"]}"#;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn an_accepted_body_is_written_as_sent() {
        let codec = JsonSchema::compile("orders", ORDER, &[]).unwrap();
        let body = r#"{"id": "o-1",  "lines":[{"sku":"a","qty":1.0e0}]}"#;
        assert_eq!(codec.encode(&raw(body), "body").unwrap(), body.as_bytes());
    }

    #[test]
    fn a_refused_body_names_the_first_failing_path_and_keyword() {
        let codec = JsonSchema::compile("orders", ORDER, &[]).unwrap();
        for (body, expected) in [
            (r#"{"lines":[]}"#, r#"body: fails "required": "id" is a required property"#),
            (
                r#"{"id":"o","lines":[{"sku":"a"},{"sku":"b","qty":0}]}"#,
                "body.lines[1].qty: fails \"minimum\": 0 is less than the minimum of 1",
            ),
            (r#"{"id":"o","lines":[{"sku":"a","colour":"red"}]}"#, "body.lines[0]: fails \"additionalProperties\""),
            (r#"{"id":7}"#, "body.id: fails \"type\": 7 is not of type \"string\""),
            (r#"{"id":"o","id":"p"}"#, "body: id is given twice"),
        ] {
            let f = codec.encode(&raw(body), "body").unwrap_err();
            assert_eq!(f.status, 400);
            assert!(f.message.starts_with(expected), "{body}: {}", f.message);
        }
        let huge = format!(r#"{{"id":["{}"]}}"#, "x".repeat(10_000));
        let f = codec.encode(&raw(&huge), "body").unwrap_err();
        assert!(f.message.len() < 300, "{}", f.message);
    }

    #[test]
    fn references_are_the_registrys_and_nothing_is_fetched() {
        let main = r#"{"type": "object", "properties": {"meta": {"$ref": "meta.json"}}}"#;
        let meta = r#"{"type": "object", "properties": {"source": {"type": "string"}}, "required": ["source"]}"#;
        let codec = JsonSchema::compile("m", main, &[("meta.json".into(), meta.into())]).unwrap();
        assert!(codec.encode(&raw(r#"{"meta":{"source":"k"}}"#), "body").is_ok());
        let f = codec.encode(&raw(r#"{"meta":{}}"#), "body").unwrap_err();
        assert!(f.message.starts_with("body.meta: fails \"required\""), "{}", f.message);

        let remote = r#"{"$ref": "https://example.com/schema.json"}"#;
        let f = JsonSchema::compile("r", remote, &[]).unwrap_err();
        assert_eq!(f.status, 500);
        assert!(f.message.starts_with("schema r: is not a JSON Schema the gateway can use"), "{}", f.message);
        assert!(JsonSchema::compile("x", "{not json", &[]).is_err());
    }

    #[test]
    fn every_draft_the_crate_knows_is_taken_from_the_schema() {
        // exclusiveMinimum: a boolean beside minimum in draft 4, a number of its own from draft 6 on
        let draft4 =
            r#"{"$schema": "http://json-schema.org/draft-04/schema#", "minimum": 1, "exclusiveMinimum": true}"#;
        let codec = JsonSchema::compile("d4", draft4, &[]).unwrap();
        assert!(codec.encode(&raw("1"), "body").is_err() && codec.encode(&raw("2"), "body").is_ok());
        for draft in ["draft-06/schema#", "draft-07/schema#", "draft/2019-09/schema", "draft/2020-12/schema"] {
            let schema = format!(r#"{{"$schema": "https://json-schema.org/{draft}", "exclusiveMinimum": 1}}"#)
                .replace("https://json-schema.org/draft-0", "http://json-schema.org/draft-0");
            let codec = JsonSchema::compile("d", &schema, &[]).unwrap();
            assert!(codec.encode(&raw("1"), "body").is_err() && codec.encode(&raw("2"), "body").is_ok(), "{draft}");
        }
    }
}
