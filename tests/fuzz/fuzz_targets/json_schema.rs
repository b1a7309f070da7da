//! JSON bodies against a JSON Schema through the codec (formats, `$ref`s, `oneOf`, patterns): whatever the
//! body, the codec answers the bytes sent or a 400 naming the part of the body at fault, and never panics
//! or runs away.

#![no_main]

use std::sync::LazyLock;

use krakend_kafka::{Codec, DataFormat};
use krakend_kafka_fuzz::assert_refused;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

const TEXT: &str = include_str!("../schemas/rich.schema.json");

static CODEC: LazyLock<Codec> =
    LazyLock::new(|| Codec::compile("rich", DataFormat::Json, TEXT, &[], None).expect("the schema compiles"));

fuzz_target!(|input: &[u8]| {
    let Ok(Ok(body)) = std::str::from_utf8(input).map(serde_json::from_str::<&RawValue>) else { return };
    match CODEC.encode(body, "body") {
        Ok(value) => assert_eq!(value, body.get().as_bytes(), "the value is the body as sent"),
        Err(failure) => assert_refused(&failure, &[400], &["body"]),
    }
});
