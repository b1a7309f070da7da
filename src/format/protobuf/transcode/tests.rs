//! The transcoder against the established codec, its oracle: for each body either the same bytes (a map's
//! entries compared as a message, since prost-reflect writes a map in hash order), or it steps aside and
//! the established codec decides. The bodies it must take are listed apart, so that stepping aside from
//! everything cannot pass.

use prost_reflect::DynamicMessage;
use serde_json::value::RawValue;

use super::{Transcoder, WORK};
use crate::format::protobuf::Protobuf;

const PROTO3: &str = r#"syntax = "proto3"; package t;
    enum Color { NONE = 0; RED = 1; DARK = -2; }
    message Leaf { string s = 1; bytes b = 2; }
    message All {
      bool b = 1; int32 i32 = 2; sint32 s32 = 3; sfixed32 sf32 = 4; int64 i64 = 5; sint64 s64 = 6;
      sfixed64 sf64 = 7; uint32 u32 = 8; fixed32 f32 = 9; uint64 u64 = 10; fixed64 f64 = 11; float fl = 12;
      double d = 13; string s = 14; bytes by = 15; Color c = 16;
      repeated int32 ri32 = 17; repeated sint64 rs64 = 18; repeated double rd = 19; repeated bool rb = 20;
      repeated Color rc = 21; repeated fixed32 rf32 = 22; repeated string rs = 23; repeated bytes rby = 24;
      map<int32, string> m_i = 25; map<bool, int64> m_b = 26; map<uint64, Leaf> m_u = 27;
      map<string, Color> m_c = 28; map<sint32, double> m_s = 29; map<string, string> m_ss = 43;
      Leaf leaf = 30; repeated Leaf leaves = 31; optional int32 opt = 32;
      oneof choice { string one_s = 33; Leaf one_leaf = 34; }
      repeated int32 unpacked = 40 [packed = false]; All next = 41; float camel_case = 42;
    }"#;

const PROTO2: &str = r#"syntax = "proto2"; package t2;
    enum Closed { A = 1; B = 2; }
    message Inner { required string id = 1; optional int32 n = 2 [default = 7]; }
    message Legacy {
      required int32 id = 1; optional string s = 2; optional Closed e = 3; repeated Closed es = 4;
      repeated int32 r = 5; repeated int32 p = 6 [packed = true]; map<string, int32> m = 7;
      optional Inner inner = 8; repeated Inner inners = 9; optional bool b = 10; optional double d = 11;
    }"#;

fn codec(text: &str, message: &str) -> (Protobuf, Transcoder) {
    let codec = Protobuf::compile("t", text, &[], Some(message)).unwrap();
    let transcoder = Transcoder::of(codec.descriptor()).expect("a schema the transcoder takes");
    (codec, transcoder)
}

/// The transcoder's answer for `body`, held to the established codec's.
fn agreed(codec: &Protobuf, transcoder: &Transcoder, body: &str) -> Option<Vec<u8>> {
    let raw = RawValue::from_string(body.to_owned()).unwrap();
    let established = codec.established(&raw, "body");
    let bytes = transcoder.transcode(body)?;
    let Ok(expected) = established else { panic!("{body}: taken, but the established codec refuses: {established:?}") };
    if bytes != expected {
        // as JSON: a descriptor's Debug form follows a message that contains itself without end
        let decode =
            |b: &[u8]| serde_json::to_value(DynamicMessage::decode(codec.descriptor().clone(), b).unwrap()).unwrap();
        assert_eq!(decode(&bytes), decode(&expected), "{body}");
        assert_eq!(bytes.len(), expected.len(), "{body}");
    }
    Some(bytes)
}

#[test]
fn what_it_takes_is_written_as_the_established_codec_writes_it() {
    let (codec, transcoder) = codec(PROTO3, "t.All");
    for body in [
        "{}",
        " { } ",
        r#"{"b":true,"i32":-1,"s32":-5,"sf32":-7,"i64":"-9000000000","s64":"-3","sf64":"-1","u32":4294967295,
            "f32":7,"u64":"18446744073709551615","f64":"1","fl":1.5,"d":-2.25,"s":"h\u00e9llo","by":"AAEC",
            "c":"DARK"}"#,
        r#"{"i32":0,"s":"","b":false,"opt":0,"c":"NONE","one_s":"","fl":0,"d":0.0,"by":""}"#,
        r#"{"i64":9007199254740993,"u64":18446744073709551615,"i32":"-2147483648","sf64":-9223372036854775808}"#,
        r#"{"ri32":[1,-1,300],"rs64":[-1,2],"rd":[1.5,"NaN","-Infinity",1e300],"rb":[true,false],
            "rc":["RED",5,"DARK"],"rf32":[1,2],"rs":["a","","\"q\""],"rby":["","AQ==","-_8","+/8"],
            "unpacked":[1,0,-2],"leaves":[{},{"s":"x"}]}"#,
        r#"{"m_i":{"0":"","5":"x","-3":"y"},"m_b":{"true":0,"false":7},"m_u":{"0":{},"3":{"s":"x"}},
            "m_c":{"a":"NONE","b":"RED"},"m_s":{"-1":0.5,"0":0},"m_ss":{"":"","k":"v"}}"#,
        r#"{"leaf":{"s":"x","b":"AQ"},"one_leaf":{"s":"y"},"next":{"next":{"i32":3},"s":"deep"}}"#,
        r#"{"c":"DARK","s":"z","i32":4,"b":true,"next":{"d":1,"b":true},"camelCase":2.5}"#,
        r#"{"camel_case":3.4028234663852886e38,"fl":"1e-3","d":"-2E10","rd":["1.5","Infinity"]}"#,
        r#"{"s":"tab\tnew\nline \ud83d\ude00 \/ \\","rs":["\u0000"],"i64":null,"leaf":null,"rs64":null,"m_i":null}"#,
        r#"{"fl":16777217,"d":123456789012345678,"rd":[0.1,-0.0001,5e-324]}"#,
    ] {
        assert!(agreed(&codec, &transcoder, body).is_some(), "stepped aside from {body}");
    }
}

#[test]
fn what_it_does_not_take_the_established_codec_decides() {
    let (codec, transcoder) = codec(PROTO3, "t.All");
    for body in [
        // refused by both
        r#"{"unknown":1}"#,
        r#"{"s":"a","s":"b"}"#,
        r#"{"camel_case":1,"camelCase":2}"#,
        r#"{"one_s":"a","one_leaf":{}}"#,
        r#"{"m_ss":{"k":"a","k":"b"}}"#,
        r#"{"rs":["a",null]}"#,
        r#"{"i32":2147483648}"#,
        r#"{"u32":-1}"#,
        r#"{"i32":1.5}"#,
        r#"{"fl":1e39}"#,
        r#"{"fl":"inf"}"#,
        r#"{"c":"PURPLE"}"#,
        r#"{"b":"true"}"#,
        r#"{"by":"not base64!"}"#,
        r#"{"m_i":{"x":"y"}}"#,
        r#"{"s":1}"#,
        r#"{"leaf":[]}"#,
        "[]",
        // taken by the established codec, read by the transcoder only in other forms
        r#"{"i32":1e2}"#,
        r#"{"i32":"+5"}"#,
        r#"{"i32":"007"}"#,
        r#"{"i32":-0}"#,
        r#"{"m_i":{"01":"x"}}"#,
        r#"{"m_i":{"1":"x","01":"y"}}"#,
        r#"{"s\u0073":"x"}"#,
        r#"{"by":"A\u0051=="}"#,
        r#"{"d":1e-400}"#,
        // 2^60 + 2^36 + 1: as a float directly it rounds up, through a double it rounds down
        r#"{"fl":1152921573326323713}"#,
    ] {
        let raw = RawValue::from_string(body.to_owned()).unwrap();
        assert!(agreed(&codec, &transcoder, body).is_none(), "{body}: taken as {:?}", codec.established(&raw, "body"));
    }
}

#[test]
fn proto2_required_fields_closed_enums_and_written_defaults() {
    let (codec, transcoder) = codec(PROTO2, "t2.Legacy");
    for body in [
        r#"{"id":0}"#,
        r#"{"id":1,"s":"","e":"A","es":[1,"B"],"r":[0,1],"p":[0,2],"m":{"":0},"b":false,"d":0}"#,
        r#"{"id":2,"inner":{"id":""},"inners":[{"id":"a","n":7},{"id":"b"}]}"#,
    ] {
        assert!(agreed(&codec, &transcoder, body).is_some(), "stepped aside from {body}");
    }
    for body in [r#"{}"#, r#"{"id":null}"#, r#"{"id":1,"e":3}"#, r#"{"id":1,"es":[0]}"#, r#"{"id":1,"inner":{}}"#] {
        assert!(agreed(&codec, &transcoder, body).is_none(), "{body}");
    }
}

#[test]
fn fields_named_out_of_number_order_are_written_in_it() {
    let (codec, transcoder) = codec(PROTO3, "t.All");
    let body = r#"{"next":{"s":"x","i32":1},"s":"last","leaves":[{"b":"AQ==","s":"y"}],"b":true,"m_c":{"k":"RED"},
        "ri32":[3],"i32":9,"camelCase":1}"#;
    let bytes = agreed(&codec, &transcoder, body).expect("taken");
    let raw = RawValue::from_string(body.to_owned()).unwrap();
    assert_eq!(bytes, codec.established(&raw, "body").unwrap(), "byte for byte: one map entry only");
}

#[test]
fn nesting_deeper_than_it_reads_is_left_to_the_established_codec() {
    let (codec, transcoder) = codec(PROTO3, "t.All");
    let nested = |n| format!("{}{{}}{}", r#"{"next":"#.repeat(n), "}".repeat(n));
    assert!(agreed(&codec, &transcoder, &nested(100)).is_some(), "100 messages below the top");
    for n in [101, 150] {
        assert!(agreed(&codec, &transcoder, &nested(n)).is_none(), "{n}");
        let raw = RawValue::from_string(nested(n)).unwrap();
        let refused = codec.established(&raw, "body").unwrap_err();
        assert_eq!(refused.status, 400, "{n}");
    }
}

#[test]
fn schemas_with_well_known_types_or_groups_stay_with_the_established_codec() {
    for (text, message) in [
        (
            r#"syntax = "proto3"; import "google/protobuf/timestamp.proto";
                message M { google.protobuf.Timestamp t = 1; }"#,
            "M",
        ),
        (
            r#"syntax = "proto3"; import "google/protobuf/struct.proto";
                message M { google.protobuf.NullValue n = 1; }"#,
            "M",
        ),
        (r#"syntax = "proto2"; message M { optional group G = 1 { optional int32 x = 2; } }"#, "M"),
    ] {
        let codec = Protobuf::compile("t", text, &[], Some(message)).unwrap();
        assert!(Transcoder::of(codec.descriptor()).is_none(), "{text}");
    }
}

/// The work the transcoder does for `body`: bytes scanned, pieces written and laid out, words of bits.
fn work(transcoder: &Transcoder, body: &str) -> usize {
    WORK.with(|work| work.set(0));
    transcoder.transcode(body).expect("taken");
    WORK.with(|work| work.get())
}

/// Doubling the body's size, its depth or its number of fields at most doubles the work (plus a constant
/// for the message around it).
#[test]
fn the_work_grows_with_the_body_no_faster() {
    let (_, transcoder) = codec(PROTO3, "t.All");
    let items = |n: usize| format!(r#"{{"leaves":[{}]}}"#, vec![r#"{"s":"abc","b":"AQ=="}"#; n].join(","));
    let deep = |n: usize| format!("{}{{}}{}", r#"{"s":"x","next":"#.repeat(n), "}".repeat(n));
    let map = |n: usize| {
        format!(r#"{{"m_ss":{{{}}}}}"#, (0..n).map(|i| format!(r#""k{i:05}":"v""#)).collect::<Vec<_>>().join(","))
    };
    let long = |n: usize| format!(r#"{{"s":"{}"}}"#, "x".repeat(n));
    // a wide message: n fields, named against their number order
    let wide_schema = |n: usize| {
        let fields: String = (1..=n).map(|i| format!("int32 f{i:04} = {i}; ")).collect();
        format!("syntax = \"proto3\"; message W {{ {fields} }}")
    };
    let wide_body =
        |n: usize| format!("{{{}}}", (1..=n).rev().map(|i| format!(r#""f{i:04}":1"#)).collect::<Vec<_>>().join(","));
    for (what, small, large) in [
        ("size", work(&transcoder, &items(1_000)), work(&transcoder, &items(2_000))),
        ("depth", work(&transcoder, &deep(45)), work(&transcoder, &deep(90))),
        ("map entries", work(&transcoder, &map(1_000)), work(&transcoder, &map(2_000))),
        ("string length", work(&transcoder, &long(100_000)), work(&transcoder, &long(200_000))),
        (
            "fields",
            {
                let (_, w) = codec(&wide_schema(500), "W");
                work(&w, &wide_body(500))
            },
            {
                let (_, w) = codec(&wide_schema(1_000), "W");
                work(&w, &wide_body(1_000))
            },
        ),
    ] {
        assert!(small > 0, "{what}: no work counted");
        assert!(large <= 2 * small + 64, "{what}: {small} units, then {large} for twice as much");
    }
}
