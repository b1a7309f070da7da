//! JSON to Avro through the codec, against a schema with every type of the JSON mapping: whatever the
//! body, the codec answers a datum that apache-avro reads back whole as the schema, or a 400 naming the
//! part of the body at fault.

#![no_main]

use std::sync::LazyLock;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::Schema;
use krakend_kafka::{Codec, DataFormat};
use krakend_kafka_fuzz::assert_refused;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

const TEXT: &str = include_str!("../schemas/rich.avsc");

static CODEC: LazyLock<Codec> =
    LazyLock::new(|| Codec::compile("rich", DataFormat::Avro, TEXT, &[], None).expect("the schema compiles"));
static SCHEMA: LazyLock<Schema> = LazyLock::new(|| Schema::parse_str(TEXT).expect("apache-avro parses the schema"));

fuzz_target!(|input: &[u8]| {
    let Ok(Ok(body)) = std::str::from_utf8(input).map(serde_json::from_str::<&RawValue>) else { return };
    match CODEC.encode(body, "body") {
        Ok(datum) => {
            let reader = GenericDatumReader::builder(&SCHEMA).build().expect("a reader of the schema");
            let mut rest = datum.as_slice();
            reader.read_value(&mut rest).unwrap_or_else(|e| panic!("the datum does not read: {e}: {datum:?}"));
            assert!(rest.is_empty(), "{} bytes after the datum, from {}", rest.len(), body.get());
        }
        Err(failure) => assert_refused(&failure, &[400], &["body"]),
    }
});
