//! A body read as JSON for the formats that take a parsed value (Avro, JSON Schema), as strictly as the
//! protobuf path reads it: a key given twice in one object is refused where serde_json keeps the last,
//! since a consumer that keeps the first would read another record than the one checked.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// `body` parsed, or why not: the path of the offending value below `at` and what is wrong with it.
pub fn read(body: &str, at: &str) -> Result<Value, String> {
    let mut path = Path::new();
    let mut de = serde_json::Deserializer::from_str(body);
    let mut refused = None;
    let read = Strict { path: &mut path, refused: &mut refused }.deserialize(&mut de);
    match (read.and_then(|v| de.end().map(|()| v)), refused) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(refused)) => Err(format!("{at}{refused}")),
        (Err(e), None) => Err(format!("{at}: not valid JSON: {}", without_position(&e))),
    }
}

/// serde_json appends "at line L column C" of the text it parsed (a body, a batch's record), which means
/// nothing to a caller who sent a whole request; the field path says where instead.
pub fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => text[..i].to_string(),
        _ => text,
    }
}

/// The first `chars` characters of `text` when it has more: what an answer quotes of a caller's value.
pub fn cut(text: &str, chars: usize) -> Option<&str> {
    text.char_indices().nth(chars).map(|(end, _)| &text[..end])
}

/// A key written as it is (`.a_b1`, `a_b1 is given twice`), not quoted.
fn plain(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where a value is in the body: `.field`, `[index]`.
pub struct Path(Vec<Step>);

enum Step {
    Key(String),
    Index(usize),
}

impl Path {
    pub fn new() -> Path {
        Path(Vec::new())
    }

    pub fn key(&mut self, key: &str) {
        self.0.push(Step::Key(key.to_owned()));
    }

    pub fn index(&mut self, index: usize) {
        self.0.push(Step::Index(index));
    }

    pub fn pop(&mut self) {
        self.0.pop();
    }
}

/// `.a.b[2]`, and a key that is not a plain name quoted (`["a b"]`).
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for step in &self.0 {
            match step {
                Step::Index(i) => write!(f, "[{i}]")?,
                Step::Key(k) if plain(k) => write!(f, ".{k}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

struct Strict<'a> {
    path: &'a mut Path,
    /// The path and the violation, set where the read stops: serde's error carries no path.
    refused: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_u64<E: Error>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }

    fn visit_f64<E: Error>(self, n: f64) -> Result<Value, E> {
        // serde_json reads no NaN or infinity from JSON text, so every f64 here is a number
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.path.index(items.len());
            let item = seq.next_element_seed(Strict { path: self.path, refused: self.refused })?;
            self.path.pop();
            match item {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let named = if plain(&key) { key.clone() } else { format!("{key:?}") };
                *self.refused = Some(format!("{}: {named} is given twice", self.path));
                return Err(A::Error::custom("duplicate key"));
            }
            self.path.key(&key);
            let value = map.next_value_seed(Strict { path: self.path, refused: self.refused })?;
            self.path.pop();
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_read_as_serde_json_reads_it() {
        let body = r#"{"a":[1,-2,3.5,"x",null,true],"b":{"c":{}},"big":18446744073709551615}"#;
        assert_eq!(read(body, "body").unwrap(), serde_json::from_str::<Value>(body).unwrap());
    }

    #[test]
    fn a_key_given_twice_is_refused_with_its_path() {
        assert_eq!(read(r#"{"a":1,"a":2}"#, "body").unwrap_err(), "body: a is given twice");
        assert_eq!(
            read(r#"{"a":[{},{"x y":{"k":1,"k":1}}]}"#, "records[3]").unwrap_err(),
            r#"records[3].a[1]["x y"]: k is given twice"#
        );
        assert_eq!(read(r#"{"a b":1,"a b":2}"#, "body").unwrap_err(), r#"body: "a b" is given twice"#);
    }

    #[test]
    fn what_is_not_json_says_so_without_a_position() {
        let e = read(r#"{"a":}"#, "body").unwrap_err();
        assert!(e.starts_with("body: not valid JSON: ") && !e.contains("line"), "{e}");
        assert_eq!(read(&"[".repeat(200), "body").unwrap_err(), "body: not valid JSON: recursion limit exceeded");
    }
}
