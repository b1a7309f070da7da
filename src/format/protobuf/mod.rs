//! Protobuf: a .proto schema compiled into the message a body is read as, with the proto3 JSON mapping,
//! and written as protobuf's binary encoding. Two ways with one result: the one-pass [`transcode`]r takes
//! the bodies it reads itself, and the established codec (checked by [`strict`], read by prost-reflect,
//! written by [`encoding`]) every other, and names what is wrong with a body refused.

pub mod encoding;
pub mod strict;
mod transcode;

use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor, Value};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde_json::value::RawValue;

use crate::format::json::without_position;
use crate::format::unusable::unusable;
use crate::outcome::Failure;
use strict::Plan;
use transcode::Transcoder;

/// How deep messages may nest below the top one: protobuf-java's and C++'s decoders stop there, counting
/// a map's entries as messages (they are on the wire), and prost stops there counting messages only. A
/// deeper body would be stored, and then be unreadable to its consumers.
const MAX_NESTING: usize = 100;

#[derive(Debug)]
pub struct Protobuf {
    message: MessageDescriptor,
    /// What the strict check reads a body against.
    plan: Plan,
    /// None for a schema it leaves to the established codec.
    transcoder: Option<Transcoder>,
}

/// Resolves the schema's own file and the files it imports (a Confluent registry's references) from
/// memory; imports of Google's well-known types come from protox. The resolver must own its data, so
/// the texts are copied once per compile (a cache miss), never per message.
struct SchemaFiles(Vec<(String, String)>);

impl FileResolver for SchemaFiles {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((_, text)) => File::from_source(name, text),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

impl Protobuf {
    /// Compiles `text` (the .proto of schema `schema`, importing `imports`: file name and text) and picks
    /// the message to encode: `message_type` when given, else the first top-level message in declaration
    /// order, as the seed did.
    /// A schema that does not compile is the registry owner's fault: 500, and the compiler's message with
    /// its location in the log (it quotes the schema, which is not the caller's to read).
    pub fn compile(
        schema: &str,
        text: &str,
        imports: &[(String, String)],
        message_type: Option<&str>,
    ) -> Result<Protobuf, Failure> {
        let name = format!("{schema}.proto");
        let pool =
            compile_pool(&name, text, imports).map_err(|e| unusable(schema, "does not compile", format!("{e:?}")))?;
        let message = match message_type {
            Some(full_name) => pool.get_message_by_name(full_name).ok_or_else(|| {
                Failure::internal(format!("schema {schema}: has no message {full_name} (topics.{schema}.message_type)"))
            })?,
            None => pool
                .get_file_by_name(&name)
                .and_then(|file| file.messages().next())
                .ok_or_else(|| Failure::internal(format!("schema {schema}: defines no message")))?,
        };
        Ok(Protobuf { plan: Plan::of(&message), transcoder: Transcoder::of(&message), message })
    }

    /// The message a body is read as.
    pub fn descriptor(&self) -> &MessageDescriptor {
        &self.message
    }

    /// Parses `body` with the proto3 JSON mapping, as strictly as protobuf-java's JsonFormat (`strict`), and
    /// encodes it. Unknown fields and type mismatches answer 400 with the path of the field
    /// (`body.items[1].price: ...`, with `at` the path of the body).
    pub fn encode(&self, body: &RawValue, at: &str) -> Result<Vec<u8>, Failure> {
        match self.transcoder.as_ref().and_then(|transcoder| transcoder.transcode(body.get())) {
            Some(bytes) => Ok(bytes),
            None => self.established(body, at),
        }
    }

    /// [`Protobuf::encode`] by the established codec alone: what the transcoder is held to.
    pub(crate) fn established(&self, body: &RawValue, at: &str) -> Result<Vec<u8>, Failure> {
        self.plan.check(body.get(), at).map_err(Failure::bad_request)?;
        let mut de = serde_json::Deserializer::from_str(body.get());
        // Tracking the path costs a third of the conversion (bench: 55 against 39 us for a 4 KB order), so
        // it is paid only to name the field of a body already refused.
        let message =
            DynamicMessage::deserialize_with_options(self.message.clone(), &mut de, &DeserializeOptions::new())
                .map_err(|_| self.refusal(body, at))?;
        // prost's own encoding for what src/format/encoding.rs leaves to it (extensions, groups)
        let (bytes, nesting) =
            encoding::encode(&message).unwrap_or_else(|| Ok((message.encode_to_vec(), nesting(&message))))?;
        if nesting > MAX_NESTING {
            return Err(Failure::bad_request(format!(
                "{at}: messages nested more than {MAX_NESTING} deep (a map entry counts as one), which protobuf's decoders refuse"
            )));
        }
        Ok(bytes)
    }
}

impl Protobuf {
    /// Why the conversion refuses `body`, at the path of the field.
    fn refusal(&self, body: &RawValue, at: &str) -> Failure {
        let mut de = serde_json::Deserializer::from_str(body.get());
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
        match DynamicMessage::deserialize_with_options(self.message.clone(), tracked, &DeserializeOptions::new()) {
            Ok(_) => Failure::internal(format!("{at}: refused, then accepted when read again")),
            Err(e) => {
                let path = track.path().to_string();
                let at = if path == "." { at.to_string() } else { format!("{at}.{path}") };
                Failure::bad_request(format!("{at}: {}", without_position(&e)))
            }
        }
    }
}

/// How many levels of messages nest below `message`.
pub(crate) fn nesting(message: &DynamicMessage) -> usize {
    let values = message.fields().map(|(_, v)| v).chain(message.extensions().map(|(_, v)| v));
    values.map(levels).max().unwrap_or(0)
}

/// The levels of messages a field's value adds: each message and each map entry is one.
fn levels(value: &Value) -> usize {
    match value {
        Value::Message(message) => 1 + nesting(message),
        Value::List(items) => items.iter().map(levels).max().unwrap_or(0),
        Value::Map(entries) => entries.values().map(|v| 1 + levels(v)).max().unwrap_or(0),
        _ => 0,
    }
}

fn compile_pool(
    name: &str,
    text: &str,
    imports: &[(String, String)],
) -> Result<prost_reflect::DescriptorPool, protox::Error> {
    let mut resolver = ChainFileResolver::new();
    let files = std::iter::once((name.to_owned(), text.to_owned())).chain(imports.iter().cloned()).collect();
    resolver.add(SchemaFiles(files));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.open_file(name)?;
    Ok(compiler.descriptor_pool())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::ReflectMessage;

    const SEED: &str = r#"syntax = "proto3"; package events; message SampleEvent { string some_message = 1; }"#;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    #[test]
    fn seed_sample_encodes_as_plain_protobuf() {
        let codec = Protobuf::compile("test-topic", SEED, &[], None).unwrap();
        assert_eq!(codec.descriptor().full_name(), "events.SampleEvent");
        let bytes = codec.encode(&raw(r#"{"some_message":"test value"}"#), "body").unwrap();
        // field 1, wire type 2, length 10, then the UTF-8 text: exactly what protobuf-java writes.
        assert_eq!(bytes, b"\x0a\x0atest value");
    }

    #[test]
    fn unknown_field_and_type_mismatch_are_400_with_the_path() {
        let codec = Protobuf::compile("t", SEED, &[], None).unwrap();
        let f = codec.encode(&raw(r#"{"other_key":"1"}"#), "body").unwrap_err();
        assert_eq!(f.status, 400);
        assert!(f.message.starts_with("body") && f.message.contains("other_key"), "{}", f.message);
        assert!(!f.message.contains("line 1"), "{}", f.message);

        let nested = r#"syntax = "proto3"; package shop;
            message Order { repeated Item items = 1; }
            message Item { string name = 1; repeated int32 xs = 2; double price = 3; }"#;
        let codec = Protobuf::compile("orders", nested, &[], None).unwrap();
        let f = codec.encode(&raw(r#"{"items":[{"price":1.5},{"price":"cheap"}]}"#), "body").unwrap_err();
        assert!(f.message.starts_with("body.items[1].price: "), "{}", f.message);
        let f = codec.encode(&raw(r#"{"items":[{},{"xs":[1,"x"]}]}"#), "body").unwrap_err();
        assert!(f.message.starts_with("body.items[1].xs[1]: "), "{}", f.message);
    }

    #[test]
    fn first_top_level_message_in_declaration_order_or_the_configured_one() {
        let text = r#"syntax = "proto3"; package p;
            message Zeta { message Inner { int32 a = 1; } Inner i = 1; }
            message Alpha { int32 b = 1; }"#;
        assert_eq!(Protobuf::compile("t", text, &[], None).unwrap().descriptor().full_name(), "p.Zeta");
        assert_eq!(Protobuf::compile("t", text, &[], Some("p.Alpha")).unwrap().descriptor().full_name(), "p.Alpha");
        let f = Protobuf::compile("t", text, &[], Some("p.Missing")).unwrap_err();
        assert_eq!(f.status, 500);
        assert!(f.message.contains("has no message p.Missing"), "{}", f.message);
    }

    #[test]
    fn broken_schema_is_500_pointing_at_the_log_not_quoting_the_compiler() {
        let f = Protobuf::compile("bad", "syntax = \"proto3\";\nmessage A { strin x = 1; }", &[], None).unwrap_err();
        assert_eq!(f.status, 500);
        assert_eq!(f.message, "schema bad: does not compile (the gateway's log says why); fix it in the registry");
        let f = Protobuf::compile("empty", "syntax = \"proto3\"; enum E { Z = 0; }", &[], None).unwrap_err();
        assert!(f.message.contains("defines no message"), "{}", f.message);
        let f = Protobuf::compile("imp", "syntax = \"proto3\"; import \"other.proto\"; message A {}", &[], None)
            .unwrap_err();
        assert!(f.message.starts_with("schema imp: does not compile (the gateway's log"), "{}", f.message);
    }

    #[test]
    fn doubles_are_the_nearest_to_the_number_written() {
        let codec = Protobuf::compile("d", r#"syntax = "proto3"; message D { double d = 1; }"#, &[], None).unwrap();
        // serde_json's fast parser was a unit in the last place off for some (the first found by fuzzing).
        let long = format!("{}37", "9".repeat(131));
        for number in [&long, "9.999999999999999e129", "1e130", "1.7976931348623157e308", "2.2250738585072014e-308"] {
            let bytes = codec.encode(&raw(&format!(r#"{{"d":{number}}}"#)), "body").unwrap();
            let expected: f64 = number.parse().unwrap();
            assert_eq!(bytes, [&[0x09][..], &expected.to_le_bytes()].concat(), "{number}");
        }
    }

    #[test]
    fn bodies_nested_deeper_than_protobuf_decodes_are_400() {
        let text = r#"syntax = "proto3"; package deep; import "google/protobuf/struct.proto";
            message N { N next = 1; map<string, N> by = 2; google.protobuf.Value any = 3; }"#;
        let codec = Protobuf::compile("deep", text, &[], None).unwrap();
        let nested = |open: &str, close: &str, n| raw(&format!("{}{{}}{}", open.repeat(n), close.repeat(n)));
        let deepest = nested(r#"{"next":"#, "}", 100);
        let bytes = codec.encode(&deepest, "body").unwrap();
        assert!(DynamicMessage::decode(codec.descriptor().clone(), bytes.as_slice()).is_ok(), "100 below the top");
        // Each was encoded before: 101 messages, and 80 messages then 11 lists of google.protobuf.Value
        // (each a Value and a ListValue), whose bytes prost refused ("recursion limit reached"); 51 map
        // entries with their values, which prost reads (it does not count entries) but protobuf-java does not.
        for body in [
            nested(r#"{"next":"#, "}", 101),
            nested(r#"{"by":{"k":"#, "}}", 51),
            raw(&format!(
                r#"{}{{"any":{}{}}}{}"#,
                r#"{"next":"#.repeat(80),
                "[".repeat(11),
                "]".repeat(11),
                "}".repeat(80)
            )),
        ] {
            let f = codec.encode(&body, "body").unwrap_err();
            assert_eq!(f.status, 400);
            assert!(f.message.starts_with("body: messages nested more than 100 deep"), "{}", f.message);
        }
    }

    #[test]
    fn proto3_json_mapping_round_trips() {
        let text = r#"syntax = "proto3"; package rt;
            import "google/protobuf/timestamp.proto";
            enum Kind { KIND_UNSPECIFIED = 0; BIG = 1; }
            message Rich {
              int64 big = 1; bytes blob = 2; Kind kind = 3; map<string, int32> counts = 4;
              google.protobuf.Timestamp at = 5; oneof choice { string text = 6; int32 number = 7; }
              repeated Rich children = 8; uint64 camel_case_field = 9;
            }"#;
        let codec = Protobuf::compile("rich", text, &[], None).unwrap();
        let json = r#"{"big":"9007199254740993","blob":"AAEC/w==","kind":"BIG","counts":{"a":1},
            "at":"2026-11-22T10:00:00.5Z","number":7,"children":[{"kind":1,"big":-2}],"camelCaseField":5}"#;
        let bytes = codec.encode(&raw(json), "body").unwrap();
        let decoded = DynamicMessage::decode(codec.message.clone(), bytes.as_slice()).unwrap();
        let back: serde_json::Value = serde_json::to_value(&decoded).unwrap();
        let expected = serde_json::json!({"big":"9007199254740993","blob":"AAEC/w==","kind":"BIG","counts":{"a":1},
            "at":"2026-11-22T10:00:00.500Z","number":7,"children":[{"kind":"BIG","big":"-2"}],"camelCaseField":"5"});
        assert_eq!(back, expected);
        assert_eq!(decoded.descriptor().full_name(), "rt.Rich");
        // proto field names are accepted too
        assert!(codec.encode(&raw(r#"{"camel_case_field":1}"#), "body").is_ok());
    }
}
