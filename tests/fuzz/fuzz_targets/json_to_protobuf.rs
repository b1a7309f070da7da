//! JSON to protobuf through the codec, against a rich proto3 schema, a proto2 one or a plain proto3 one that
//! the one-pass transcoder reads whole (the first byte picks). Whatever the body, the codec answers bytes
//! that decode as the message, whose JSON form the codec takes again to the same message, or a 400 naming
//! the part of the body at fault; and its answer is the established codec's (the transcoder's oracle): the
//! same message, or the same refusal.

#![no_main]

use std::sync::LazyLock;

use krakend_kafka::{Codec, DataFormat};
use krakend_kafka_fuzz::assert_refused;
use libfuzzer_sys::fuzz_target;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::value::RawValue;
use serde_json::Value;

const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");

/// The codec under test, and the message it encodes as compiled apart from it, to decode its bytes.
struct Schema {
    codec: Codec,
    message: MessageDescriptor,
}

impl Schema {
    fn compile(name: &str, message: &str) -> Schema {
        let file = format!("{name}.proto");
        let text = std::fs::read_to_string(format!("{SCHEMAS}/{file}")).expect("the schema is readable");
        let codec = Codec::compile(name, DataFormat::Protobuf, &text, &[], Some(message))
            .expect("the schema compiles in the codec");
        let mut compiler = protox::Compiler::new([SCHEMAS]).expect("the schemas' folder exists");
        compiler.open_file(&file).expect("the schema compiles in protox");
        let message = compiler.descriptor_pool().get_message_by_name(message).expect("the schema has the message");
        Schema { codec, message }
    }

    /// The canonical JSON of what `bytes` encode: they must decode as the message.
    fn json_of(&self, bytes: &[u8]) -> Value {
        let message = DynamicMessage::decode(self.message.clone(), bytes)
            .unwrap_or_else(|e| panic!("the codec's bytes do not decode: {e}: {bytes:?}"));
        serde_json::to_value(&message).unwrap_or_else(|e| panic!("the decoded message has no JSON form: {e}"))
    }
}

static RICH: LazyLock<Schema> = LazyLock::new(|| Schema::compile("rich", "fuzz.Rich"));
static LEGACY: LazyLock<Schema> = LazyLock::new(|| Schema::compile("legacy", "fuzz2.Legacy"));
static PLAIN: LazyLock<Schema> = LazyLock::new(|| Schema::compile("plain", "fuzz3.Plain"));

fuzz_target!(|input: &[u8]| {
    let [pick, body @ ..] = input else { return };
    let schema: &Schema = match pick % 3 {
        0 => &RICH,
        1 => &LEGACY,
        _ => &PLAIN,
    };
    // The request refuses a body that is not JSON before the codec is asked.
    let Ok(body) = std::str::from_utf8(body).map(serde_json::from_str::<&RawValue>) else { return };
    let Ok(body) = body else { return };
    let encoded = schema.codec.encode(body, "body");
    match (&encoded, schema.codec.encode_established(body, "body")) {
        (Ok(bytes), Ok(established)) if *bytes != established => {
            // a map's entries are written in hash order by the established codec: compared as messages
            assert_eq!(schema.json_of(bytes), schema.json_of(&established), "another message than the oracle's");
            assert_eq!(bytes.len(), established.len(), "another length than the oracle's for {}", body.get());
        }
        (Ok(_), Ok(_)) => {}
        (Err(failure), Err(established)) => assert_eq!(failure, &established, "another refusal than the oracle's"),
        (encoded, established) => panic!("{encoded:?}, the oracle {established:?}, for {}", body.get()),
    }
    match encoded {
        Ok(bytes) => {
            let json = schema.json_of(&bytes);
            let again = RawValue::from_string(json.to_string()).expect("JSON");
            let bytes = schema.codec.encode(&again, "body").unwrap_or_else(|f| panic!("{json} is refused: {f:?}"));
            assert_eq!(schema.json_of(&bytes), json, "another message the second time, from {}", body.get());
        }
        Err(failure) => assert_refused(&failure, &[400], &["body"]),
    }
});
