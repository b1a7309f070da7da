//! What the proto3 JSON mapping refuses and a lenient parser lets through, checked before the body is
//! converted: a key given twice (also a field's name together with its JSON name), two members of one
//! oneof, `null` in a list or a map, float strings other than "NaN", "Infinity" and "-Infinity", a number
//! out of a float's range, an integer that is not integral or out of its type's range, a number a closed
//! (proto2) enum does not list. protobuf-java's JsonFormat, which the seed used, refuses each of them;
//! prost-reflect alone takes the last duplicate, parses "inf" and saturates 1e20 into an int64.
//!
//! One pass over the body (kept as parsed, duplicates and all), alongside the message's descriptor;
//! serde_json's recursion limit bounds the nesting.

use std::collections::HashSet;
use std::fmt;

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, Syntax};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// A JSON value as written: an object keeps every key, in order, twice if it came twice.
enum Json {
    Null,
    Bool,
    Number(Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
                Ok(Json::Bool)
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Json, E> {
                Number::from_f64(n).map(Json::Number).ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Json>()? {
                    entries.push(entry);
                }
                Ok(Json::Object(entries))
            }
        }
        deserializer.deserialize_any(Any)
    }
}

/// Checks `body` (valid JSON) against `message`: `Err` names the path of the first violation from `at`,
/// as `body.items[1].price: ...`. What it does not know (a field the message lacks, a wrong type) it leaves to
/// the conversion, which names it too.
pub fn check(message: &MessageDescriptor, body: &str, at: &str) -> Result<(), String> {
    let json: Json = serde_json::from_str(body).map_err(|e| format!("{at}: not valid JSON: {e}"))?;
    let mut path = String::from(at);
    check_message(message, &json, &mut path).map_err(|e| format!("{path}: {e}"))
}

fn check_message(message: &MessageDescriptor, json: &Json, path: &mut String) -> Result<(), String> {
    let Json::Object(entries) = json else { return Ok(()) };
    if is_well_known(message) {
        return Ok(()); // their JSON forms are not objects of fields (Timestamp, Struct, wrappers...)
    }
    let mut seen: Vec<(u32, &str)> = Vec::with_capacity(entries.len());
    let mut oneofs: Vec<(String, &str)> = Vec::new();
    for (key, value) in entries {
        let Some(field) = message.get_field_by_json_name(key).or_else(|| message.get_field_by_name(key)) else {
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(number, _)| *number == field.number()) {
            return Err(if first == key {
                format!("{key} is given twice")
            } else {
                format!("{key} and {first} are the same field, given twice")
            });
        }
        seen.push((field.number(), key));
        if let Some(oneof) = field.containing_oneof().filter(|_| !matches!(value, Json::Null)) {
            if let Some((_, other)) = oneofs.iter().find(|(name, _)| name == oneof.name()) {
                return Err(format!("{other} and {key} are both set, but only one of oneof {} may be", oneof.name()));
            }
            oneofs.push((oneof.name().to_owned(), key));
        }
        let len = path.len();
        path.push('.');
        path.push_str(key);
        check_field(&field, value, path)?;
        path.truncate(len);
    }
    Ok(())
}

fn check_field(field: &FieldDescriptor, json: &Json, path: &mut String) -> Result<(), String> {
    if field.is_map() {
        let Json::Object(entries) = json else { return Ok(()) };
        let value_field = match field.kind() {
            Kind::Message(entry) => entry.map_entry_value_field(),
            _ => return Ok(()),
        };
        // a set, not a list: a map may have as many keys as the body has room for
        let mut keys: HashSet<&str> = HashSet::with_capacity(entries.len());
        for (key, value) in entries {
            if !keys.insert(key) {
                return Err(format!("map key {key:?} is given twice"));
            }
            let len = path.len();
            path.push_str(&format!("[{key:?}]"));
            element(&value_field.kind(), value, path)?;
            path.truncate(len);
        }
        Ok(())
    } else if field.is_list() {
        let Json::Array(items) = json else { return Ok(()) };
        for (i, item) in items.iter().enumerate() {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            element(&field.kind(), item, path)?;
            path.truncate(len);
        }
        Ok(())
    } else {
        value(&field.kind(), json, path)
    }
}

/// An element of a list or a value of a map: never null (protobuf has no null elements), except a
/// google.protobuf.Value, whose JSON form null is.
fn element(kind: &Kind, json: &Json, path: &mut String) -> Result<(), String> {
    match (kind, json) {
        (Kind::Message(m), Json::Null) if m.full_name() == "google.protobuf.Value" => Ok(()),
        (_, Json::Null) => Err("null is not a value of a list or a map".into()),
        _ => value(kind, json, path),
    }
}

fn value(kind: &Kind, json: &Json, path: &mut String) -> Result<(), String> {
    match (kind, json) {
        (Kind::Message(m), _) => check_message(m, json, path),
        (Kind::Float | Kind::Double, Json::String(s)) => match s.as_str() {
            "NaN" | "Infinity" | "-Infinity" => Ok(()),
            _ => match s.parse::<f64>() {
                // a number in a string, as JSON would write it: the same rules as a number
                Ok(n) if looks_like_a_number(s) => float(kind, n),
                _ => Err(format!("{s:?} is not a number (special values: \"NaN\", \"Infinity\", \"-Infinity\")")),
            },
        },
        (Kind::Float | Kind::Double, Json::Number(n)) => float(kind, n.as_f64().unwrap_or(f64::INFINITY)),
        (Kind::Int32 | Kind::Sint32 | Kind::Sfixed32, _) => integer(json, i32::MIN.into(), i32::MAX.into()),
        (Kind::Int64 | Kind::Sint64 | Kind::Sfixed64, _) => integer(json, i64::MIN.into(), i64::MAX.into()),
        (Kind::Uint32 | Kind::Fixed32, _) => integer(json, 0, u32::MAX.into()),
        (Kind::Uint64 | Kind::Fixed64, _) => integer(json, 0, u64::MAX.into()),
        (Kind::Enum(e), Json::Number(n)) if is_closed(e) => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok_and(|i| e.get_value(i).is_some()) => Ok(()),
            _ => Err(format!("{n} is not a value of the closed enum {}", e.full_name())),
        },
        _ => Ok(()),
    }
}

/// A proto2 enum is closed: protobuf-java refuses a number it does not list, where a proto3 (open) enum
/// keeps it.
fn is_closed(e: &EnumDescriptor) -> bool {
    e.parent_file().syntax() == Syntax::Proto2
}

fn looks_like_a_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

fn float(kind: &Kind, n: f64) -> Result<(), String> {
    let limit = if matches!(kind, Kind::Float) { f64::from(f32::MAX) } else { f64::MAX };
    if n.is_finite() && n.abs() <= limit {
        Ok(())
    } else {
        Err(format!("{n:e} is out of the range of a {}", if matches!(kind, Kind::Float) { "float" } else { "double" }))
    }
}

/// An integer field's value: a number or a string of one, integral and within [min, max].
fn integer(json: &Json, min: i128, max: i128) -> Result<(), String> {
    let exact = match json {
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Some(i128::from(i)),
            (_, Some(u), _) => Some(i128::from(u)),
            // 1e2 is 100 (and 1e20 an integer out of every type's range); 1.5 is not an integer
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e38 => Some(f as i128),
            _ => None,
        },
        Json::String(s) => s.parse::<i128>().ok(),
        _ => return Ok(()), // a wrong type: the conversion names it
    };
    match exact {
        Some(i) if (min..=max).contains(&i) => Ok(()),
        Some(i) => Err(format!("{i} is out of the range of the field's type ({min} to {max})")),
        None => Err(format!("{} is not an integer", describe(json))),
    }
}

fn describe(json: &Json) -> String {
    match json {
        Json::Number(n) => n.to_string(),
        Json::String(s) => format!("{s:?}"),
        _ => "the value".into(),
    }
}

fn is_well_known(message: &MessageDescriptor) -> bool {
    message.full_name().starts_with("google.protobuf.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;

    const RICH: &str = r#"syntax = "proto3"; package t;
        import "google/protobuf/struct.proto";
        message Item { string sku = 1; double price = 2; }
        message E {
          string some_message = 1; float f = 2; double d = 3; int32 i32 = 4; int64 i64 = 5; uint32 u32 = 6;
          uint64 u64 = 7; repeated string tags = 8; map<string, int32> counts = 9; repeated Item items = 10;
          oneof choice { string a = 11; string b = 12; }
          google.protobuf.Value any = 13; repeated google.protobuf.Value anys = 14;
        }"#;

    fn check_rich(body: &str) -> Result<(), String> {
        check(&Codec::compile("t", RICH, &[], Some("t.E")).unwrap().descriptor(), body, "body")
    }

    #[test]
    fn what_protobuf_java_accepts_passes() {
        for body in [
            r#"{"some_message":"x","f":1.5,"d":"NaN","i32":-5,"i64":"9223372036854775807","u32":4294967295}"#,
            r#"{"someMessage":"x","f":"Infinity","d":"-Infinity","i64":1e2,"u64":"18446744073709551615"}"#,
            r#"{"f":"1.5","d":"-2e10","tags":["a","b"],"counts":{"a":1,"b":2},"items":[{"sku":"s","price":1}]}"#,
            r#"{"a":"x","b":null,"any":null,"anys":[null,1,"x",{"k":[1]}]}"#,
            r#"{"unknown":1,"i32":true}"#, // left to the conversion, which names them
        ] {
            assert_eq!(check_rich(body), Ok(()), "{body}");
        }
    }

    #[test]
    fn what_protobuf_java_refuses_is_named_with_its_path() {
        let cases = [
            (r#"{"some_message":"a","some_message":"b"}"#, "body: some_message is given twice"),
            (
                r#"{"some_message":"a","someMessage":"b"}"#,
                "body: someMessage and some_message are the same field, given twice",
            ),
            (r#"{"tags":["a"],"tags":["b"]}"#, "body: tags is given twice"),
            (r#"{"a":"x","b":"y"}"#, "body: a and b are both set, but only one of oneof choice may be"),
            (r#"{"counts":{"a":1,"a":2}}"#, "body.counts: map key \"a\" is given twice"),
            (r#"{"tags":["a",null]}"#, "body.tags[1]: null is not a value of a list or a map"),
            (r#"{"counts":{"a":null}}"#, "body.counts[\"a\"]: null is not a value"),
            (r#"{"f":"inf"}"#, "body.f: \"inf\" is not a number"),
            (r#"{"d":"nan"}"#, "body.d: \"nan\" is not a number"),
            (r#"{"d":"infinity"}"#, "body.d: \"infinity\" is not a number"),
            (r#"{"f":1e39}"#, "body.f: 1e39 is out of the range of a float"),
            (r#"{"f":"1e39"}"#, "body.f: 1e39 is out of the range of a float"),
            (r#"{"i64":1e20}"#, "body.i64: 100000000000000000000 is out of the range"),
            (r#"{"i64":1e300}"#, "body.i64: 1e+300 is not an integer"),
            (r#"{"i32":"x"}"#, "body.i32: \"x\" is not an integer"),
            (r#"{"i64":9.3e18}"#, "body.i64: 9300000000000000000 is out of the range"),
            (r#"{"i64":"9223372036854775808"}"#, "body.i64: 9223372036854775808 is out of the range"),
            (r#"{"i32":2147483648}"#, "body.i32: 2147483648 is out of the range"),
            (r#"{"i32":1.5}"#, "body.i32: 1.5 is not an integer"),
            (r#"{"u32":-1}"#, "body.u32: -1 is out of the range"),
            (r#"{"u64":"-1"}"#, "body.u64: -1 is out of the range"),
            (r#"{"items":[{"sku":"a"},{"price":1,"price":2}]}"#, "body.items[1]: price is given twice"),
        ];
        for (body, expected) in cases {
            let err = check_rich(body).unwrap_err();
            assert!(err.starts_with(expected), "{body}: {err:?} should start with {expected:?}");
        }
    }

    #[test]
    fn a_closed_enum_takes_only_its_numbers_and_an_open_one_any() {
        let closed = r#"syntax = "proto2"; package t;
            enum Closed { A = 1; B = 2; }
            message M { optional Closed e = 1; repeated Closed es = 2; map<string, Closed> em = 3; }"#;
        let closed = Codec::compile("t", closed, &[], Some("t.M")).unwrap().descriptor();
        assert_eq!(check(&closed, r#"{"e":1,"es":["A",2],"em":{"k":"B"}}"#, "body"), Ok(()));
        for (body, expected) in [
            (r#"{"e":7}"#, "body.e: 7 is not a value of the closed enum t.Closed"),
            (r#"{"es":[1,0]}"#, "body.es[1]: 0 is not a value of the closed enum t.Closed"),
            (r#"{"em":{"k":3}}"#, "body.em[\"k\"]: 3 is not a value of the closed enum t.Closed"),
        ] {
            assert_eq!(check(&closed, body, "body"), Err(expected.to_owned()), "{body}");
        }
        let open = r#"syntax = "proto3"; package t; enum Open { Z = 0; } message M { Open e = 1; }"#;
        let open = Codec::compile("t", open, &[], Some("t.M")).unwrap().descriptor();
        assert_eq!(check(&open, r#"{"e":7}"#, "body"), Ok(()), "proto3 keeps unknown numbers, as protobuf-java does");
    }

    #[test]
    fn a_map_key_given_twice_is_found_among_many() {
        let mut counts: String = (0..100_000).map(|i| format!("\"k{i}\":1,")).collect();
        counts.push_str("\"k99999\":2");
        let err = check_rich(&format!(r#"{{"counts":{{{counts}}}}}"#)).unwrap_err();
        assert_eq!(err, "body.counts: map key \"k99999\" is given twice");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = check_rich(&format!(r#"{{"any":{deep}}}"#)).unwrap_err();
        assert!(err.contains("recursion limit"), "{err}");
    }
}
