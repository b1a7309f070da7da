//! Protobuf's binary encoding of a converted body, each message measured once.
//!
//! prost writes a nested message's length before the message and asks the message for it, so a message n
//! levels down is measured again for every level above it: on the bench's 4 KB order most of the encoding's
//! time. Here a first pass measures every length-delimited part once, children before their parents, and
//! notes the lengths in the order the second pass writes them; the first pass also counts how deep the
//! messages nest. The bytes are prost-reflect's own (the unit tests compare them).

use prost::encoding::{self as wire, encode_key, encode_varint, encoded_len_varint, key_len, WireType};
use prost_reflect::{DynamicMessage, Kind, MapKey, Value};

use crate::outcome::Failure;
use crate::telemetry::log;

/// The bytes of `message` and how many levels of messages nest below it (a map entry counts as one). None
/// for a message this encoder leaves to prost: one with extensions, unknown fields or proto2 groups.
pub fn encode(message: &DynamicMessage) -> Option<Result<(Vec<u8>, usize), Failure>> {
    let mut noted = Vec::new();
    let (len, nesting) = measure(message, &mut noted)?;
    let mut bytes = Vec::with_capacity(len);
    let mut lengths = Lengths { noted: noted.into_iter(), short: false };
    write(message, &mut lengths, &mut bytes);
    Some(agreed(bytes, len, lengths).map(|bytes| (bytes, nesting)))
}

/// The lengths `measure` noted, as `write` takes them; `short` when it asked for more.
struct Lengths {
    noted: std::vec::IntoIter<usize>,
    short: bool,
}

impl Lengths {
    fn next(&mut self) -> usize {
        self.noted.next().unwrap_or_else(|| {
            self.short = true;
            0
        })
    }
}

/// `bytes`, when the second pass wrote exactly what the first measured. They agree by construction; if
/// a change ever broke that, the bytes would be corrupt, so the record is refused, never published.
fn agreed(bytes: Vec<u8>, len: usize, lengths: Lengths) -> Result<Vec<u8>, Failure> {
    if bytes.len() == len && !lengths.short && lengths.noted.len() == 0 {
        return Ok(bytes);
    }
    let cause = "protobuf encoding: the measuring and writing passes disagree";
    log::once(
        cause,
        format_args!("{cause} ({} bytes written, {len} measured): a bug; the record was refused", bytes.len()),
    );
    Err(Failure::internal("krakend-kafka: internal error while encoding the record; nothing was sent"))
}

/// The encoded length of `message` and its nesting; pushes the length of every length-delimited part below
/// it in the order `write` meets them.
fn measure(message: &DynamicMessage, lengths: &mut Vec<usize>) -> Option<(usize, usize)> {
    if message.extensions().next().is_some() || message.unknown_fields().next().is_some() {
        return None;
    }
    let (mut len, mut nesting) = (0, 0);
    for (field, value) in message.fields() {
        if field.is_group() {
            return None;
        }
        let (number, kind) = (field.number(), field.kind());
        let (field_len, field_nesting) = match value {
            Value::List(items) if field.is_packed() => {
                let payload = items.iter().map(|item| packed(&kind, item, None)).sum::<Option<usize>>()?;
                lengths.push(payload);
                (key_len(number) + encoded_len_varint(payload as u64) + payload, 0)
            }
            Value::List(items) => items.iter().try_fold((0, 0), |(len, nesting), item| {
                let (l, n) = measure_value(number, &kind, item, lengths)?;
                Some((len + l, nesting.max(n)))
            })?,
            Value::Map(entries) => {
                let entry = Entry::of(&kind)?;
                let (mut len, mut nesting) = (0, 0);
                for (k, v) in entries {
                    let slot = lengths.len();
                    lengths.push(0);
                    let key_part = if entry.writes_key(k) { map_key(&entry.key, k, None)? } else { 0 };
                    let (value_len, value_nesting) =
                        if entry.writes_value(v) { measure_value(2, &entry.value, v, lengths)? } else { (0, 0) };
                    let entry_len = key_part + value_len;
                    lengths[slot] = entry_len;
                    len += key_len(number) + encoded_len_varint(entry_len as u64) + entry_len;
                    nesting = nesting.max(1 + value_nesting);
                }
                (len, nesting)
            }
            value => measure_value(number, &kind, value, lengths)?,
        };
        len += field_len;
        nesting = nesting.max(field_nesting);
    }
    Some((len, nesting))
}

/// A field's single value (or one item of a list) under `number`, with its key.
fn measure_value(number: u32, kind: &Kind, value: &Value, lengths: &mut Vec<usize>) -> Option<(usize, usize)> {
    match value {
        Value::Message(message) => {
            let slot = lengths.len();
            lengths.push(0);
            let (len, nesting) = measure(message, lengths)?;
            lengths[slot] = len;
            Some((key_len(number) + encoded_len_varint(len as u64) + len, 1 + nesting))
        }
        value => Some((scalar(number, kind, value, None)?, 0)),
    }
}

/// A map field's entry: the kinds of its key and value, and which of them an entry writes, one rule for
/// both passes.
struct Entry {
    key: Kind,
    value: Kind,
    key_presence: bool,
    value_presence: bool,
}

impl Entry {
    fn of(kind: &Kind) -> Option<Entry> {
        let Kind::Message(entry) = kind else { return None };
        let (key, value) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        // a proto2 map's entry fields are optional: their defaults are written too
        Some(Entry {
            key: key.kind(),
            value: value.kind(),
            key_presence: key.supports_presence(),
            value_presence: value.supports_presence(),
        })
    }

    fn writes_key(&self, key: &MapKey) -> bool {
        self.key_presence || !key.is_default(&self.key)
    }

    fn writes_value(&self, value: &Value) -> bool {
        self.value_presence || !value.is_default(&self.value)
    }
}

/// Writes what `measure` measured, taking the lengths it noted in the same order.
fn write(message: &DynamicMessage, lengths: &mut Lengths, buf: &mut Vec<u8>) {
    for (field, value) in message.fields() {
        let (number, kind) = (field.number(), field.kind());
        match value {
            Value::List(items) if field.is_packed() => {
                delimited(number, lengths, buf);
                for item in items {
                    packed(&kind, item, Some(buf));
                }
            }
            Value::List(items) => {
                for item in items {
                    write_value(number, &kind, item, lengths, buf);
                }
            }
            Value::Map(entries) => {
                let Some(entry) = Entry::of(&kind) else { continue };
                for (k, v) in entries {
                    delimited(number, lengths, buf);
                    if entry.writes_key(k) {
                        map_key(&entry.key, k, Some(buf));
                    }
                    if entry.writes_value(v) {
                        write_value(2, &entry.value, v, lengths, buf);
                    }
                }
            }
            value => write_value(number, &kind, value, lengths, buf),
        }
    }
}

fn write_value(number: u32, kind: &Kind, value: &Value, lengths: &mut Lengths, buf: &mut Vec<u8>) {
    match value {
        Value::Message(message) => {
            delimited(number, lengths, buf);
            write(message, lengths, buf);
        }
        value => {
            scalar(number, kind, value, Some(buf));
        }
    }
}

/// The key and length of the next length-delimited part.
fn delimited(number: u32, lengths: &mut Lengths, buf: &mut Vec<u8>) {
    encode_key(number, WireType::LengthDelimited, buf);
    encode_varint(lengths.next() as u64, buf);
}

/// Encodes (when `buf` is given) a scalar field's value with its key, as prost does; its length. None for a
/// value that does not fit its kind (which the conversion never makes).
fn scalar(number: u32, kind: &Kind, value: &Value, buf: Option<&mut Vec<u8>>) -> Option<usize> {
    macro_rules! as_prost {
        ($module:ident, $value:expr) => {{
            if let Some(buf) = buf {
                wire::$module::encode(number, $value, buf);
            }
            wire::$module::encoded_len(number, $value)
        }};
    }
    Some(match (value, kind) {
        (Value::Bool(v), Kind::Bool) => as_prost!(bool, v),
        (Value::I32(v), Kind::Int32) => as_prost!(int32, v),
        (Value::I32(v), Kind::Sint32) => as_prost!(sint32, v),
        (Value::I32(v), Kind::Sfixed32) => as_prost!(sfixed32, v),
        (Value::I64(v), Kind::Int64) => as_prost!(int64, v),
        (Value::I64(v), Kind::Sint64) => as_prost!(sint64, v),
        (Value::I64(v), Kind::Sfixed64) => as_prost!(sfixed64, v),
        (Value::U32(v), Kind::Uint32) => as_prost!(uint32, v),
        (Value::U32(v), Kind::Fixed32) => as_prost!(fixed32, v),
        (Value::U64(v), Kind::Uint64) => as_prost!(uint64, v),
        (Value::U64(v), Kind::Fixed64) => as_prost!(fixed64, v),
        (Value::F32(v), Kind::Float) => as_prost!(float, v),
        (Value::F64(v), Kind::Double) => as_prost!(double, v),
        (Value::String(v), Kind::String) => as_prost!(string, v),
        (Value::Bytes(v), Kind::Bytes) => as_prost!(bytes, v),
        (Value::EnumNumber(v), Kind::Enum(_)) => as_prost!(int32, v),
        _ => return None,
    })
}

/// A map's key under field number 1, as a scalar of its kind.
fn map_key(kind: &Kind, key: &MapKey, buf: Option<&mut Vec<u8>>) -> Option<usize> {
    let value = match key {
        MapKey::String(v) => {
            if let Some(buf) = buf {
                wire::string::encode(1, v, buf);
            }
            return Some(wire::string::encoded_len(1, v));
        }
        MapKey::Bool(v) => Value::Bool(*v),
        MapKey::I32(v) => Value::I32(*v),
        MapKey::I64(v) => Value::I64(*v),
        MapKey::U32(v) => Value::U32(*v),
        MapKey::U64(v) => Value::U64(*v),
    };
    scalar(1, kind, &value, buf)
}

/// One item of a packed list, without a key; its length.
fn packed(kind: &Kind, value: &Value, buf: Option<&mut Vec<u8>>) -> Option<usize> {
    let varint = |v: u64, buf: Option<&mut Vec<u8>>| {
        if let Some(buf) = buf {
            encode_varint(v, buf);
        }
        encoded_len_varint(v)
    };
    let fixed = |bytes: &[u8], buf: Option<&mut Vec<u8>>| {
        if let Some(buf) = buf {
            buf.extend_from_slice(bytes);
        }
        bytes.len()
    };
    Some(match (value, kind) {
        (Value::Bool(v), Kind::Bool) => varint(u64::from(*v), buf),
        (Value::I32(v), Kind::Int32) | (Value::EnumNumber(v), Kind::Enum(_)) => varint(*v as u64, buf),
        (Value::I32(v), Kind::Sint32) => varint(u64::from(((v << 1) ^ (v >> 31)) as u32), buf),
        (Value::I32(v), Kind::Sfixed32) => fixed(&v.to_le_bytes(), buf),
        (Value::I64(v), Kind::Int64) => varint(*v as u64, buf),
        (Value::I64(v), Kind::Sint64) => varint(((v << 1) ^ (v >> 63)) as u64, buf),
        (Value::I64(v), Kind::Sfixed64) => fixed(&v.to_le_bytes(), buf),
        (Value::U32(v), Kind::Uint32) => varint(u64::from(*v), buf),
        (Value::U32(v), Kind::Fixed32) => fixed(&v.to_le_bytes(), buf),
        (Value::U64(v), Kind::Uint64) => varint(*v, buf),
        (Value::U64(v), Kind::Fixed64) => fixed(&v.to_le_bytes(), buf),
        (Value::F32(v), Kind::Float) => fixed(&v.to_le_bytes(), buf),
        (Value::F64(v), Kind::Double) => fixed(&v.to_le_bytes(), buf),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::protobuf::{nesting, Protobuf};
    use prost::Message;

    fn message(schema: &str, name: &str, body: &str) -> DynamicMessage {
        let codec = Protobuf::compile("enc", schema, &[], Some(name)).unwrap();
        DynamicMessage::deserialize(codec.descriptor().clone(), &mut serde_json::Deserializer::from_str(body)).unwrap()
    }

    const ALL: &str = r#"syntax = "proto3"; package enc;
        import "google/protobuf/struct.proto"; import "google/protobuf/timestamp.proto";
        import "google/protobuf/wrappers.proto";
        enum Color { NONE = 0; RED = 1; DARK = -2; }
        message Leaf { string s = 1; bytes b = 2; }
        message Mid { Leaf leaf = 1; repeated Leaf leaves = 2; map<string, Leaf> by_name = 3; }
        message All {
          bool b = 1; int32 i32 = 2; sint32 s32 = 3; sfixed32 sf32 = 4; int64 i64 = 5; sint64 s64 = 6;
          sfixed64 sf64 = 7; uint32 u32 = 8; fixed32 f32 = 9; uint64 u64 = 10; fixed64 f64 = 11; float fl = 12;
          double d = 13; string s = 14; bytes by = 15; Color c = 16;
          repeated int32 ri32 = 17; repeated sint64 rs64 = 18; repeated double rd = 19; repeated bool rb = 20;
          repeated Color rc = 21; repeated fixed32 rf32 = 22; repeated string rs = 23; repeated bytes rby = 24;
          map<int32, string> m_i = 25; map<bool, int64> m_b = 26; map<uint64, Mid> m_u = 27;
          map<string, Color> m_c = 28; map<sint32, double> m_s = 29;
          Mid mid = 30; repeated Mid mids = 31; optional int32 opt = 32;
          oneof choice { string one_s = 33; Leaf one_leaf = 34; }
          google.protobuf.Struct st = 35; google.protobuf.Value v = 36; google.protobuf.Timestamp ts = 37;
          google.protobuf.Int32Value w = 38; google.protobuf.ListValue lv = 39;
          repeated int32 unpacked = 40 [packed = false]; repeated Leaf leaves = 41; repeated sint32 rs32 = 42;
        }
        message Node { Node next = 1; map<string, Node> by = 2; repeated Node items = 3; string s = 4; }"#;

    #[test]
    fn the_bytes_and_the_nesting_are_prost_reflects() {
        for body in [
            "{}",
            r#"{"b":true,"i32":-1,"s32":-5,"sf32":-7,"i64":"-9000000000","s64":"-3","sf64":"-1","u32":4294967295,
                "f32":7,"u64":"18446744073709551615","f64":"1","fl":1.5,"d":-2.25,"s":"h\u00e9llo","by":"AAEC","c":"DARK"}"#,
            r#"{"i32":0,"s":"","b":false,"opt":0,"c":"NONE","one_s":""}"#,
            r#"{"ri32":[1,-1,300],"rs64":[-1,2],"rd":[1.5,"NaN"],"rb":[true,false],"rc":["RED",5,"DARK"],
                "rf32":[1,2],"rs":["a",""],"rby":["","AQ=="],"unpacked":[1,0,-2],"leaves":[{},{"s":"x"}],"rs32":[0]}"#,
            r#"{"m_i":{"0":"","5":"x"},"m_b":{"true":0,"false":7},"m_u":{"0":{},"3":{"leaf":{"s":"x"}}},
                "m_c":{"a":"NONE","b":"RED"},"m_s":{"-1":0.5,"0":0}}"#,
            r#"{"mid":{"leaf":{"s":"x"},"leaves":[{},{"b":"AQ=="}],"by_name":{"k":{"s":""},"":{}}},
                "mids":[{},{"by_name":{"":{"b":"AQ=="}}}],"one_leaf":{"s":"y"}}"#,
            r#"{"st":{"a":[1,{"b":null}],"c":{}},"v":[1,"x",{"y":true}],"ts":"2024-01-02T03:04:05.123Z","w":0,
                "lv":[null,1,[[]]]}"#,
        ] {
            let m = message(ALL, "enc.All", body);
            assert_eq!(encode(&m), Some(Ok((m.encode_to_vec(), nesting(&m)))), "{body}");
        }
    }

    #[test]
    fn deep_messages_are_measured_once_each() {
        let level = (r#"{"s":"x","items":[{},{"by":{"k":{"next":"#, "}}}]}");
        let deep = format!(r#"{}{{"s":"end"}}{}"#, level.0.repeat(20), level.1.repeat(20));
        let m = message(ALL, "enc.Node", &deep);
        let (bytes, levels) = encode(&m).unwrap().unwrap();
        assert_eq!((bytes, levels), (m.encode_to_vec(), nesting(&m)));
        assert_eq!(levels, 80, "a list item, a map entry, its value and the next message per level");
    }

    #[test]
    fn extensions_and_groups_are_left_to_prost() {
        let proto2 = r#"syntax = "proto2"; package enc2;
            message M {
              optional int32 a = 1; extensions 100 to 199; optional group G = 2 { optional int32 x = 3; }
              map<int32, int32> m = 4; repeated int32 r = 5;
            }
            extend M { optional int32 ext = 100; }"#;
        let plain = message(proto2, "enc2.M", r#"{"a":0,"m":{"0":0},"r":[0,1]}"#);
        assert_eq!(encode(&plain), Some(Ok((plain.encode_to_vec(), nesting(&plain)))), "proto2: defaults are written");
        assert_eq!(encode(&message(proto2, "enc2.M", r#"{"a":1,"[enc2.ext]":5}"#)), None);
        assert_eq!(encode(&message(proto2, "enc2.M", r#"{"g":{"x":1}}"#)), None);
    }

    #[test]
    fn passes_that_disagree_refuse_the_record() {
        let lengths = |noted: Vec<usize>, short| Lengths { noted: noted.into_iter(), short };
        assert_eq!(agreed(vec![1, 2], 2, lengths(vec![], false)), Ok(vec![1, 2]));
        for (len, noted, short) in [(3, vec![], false), (2, vec![], true), (2, vec![7], false)] {
            let refused = agreed(vec![1, 2], len, lengths(noted, short)).unwrap_err();
            assert_eq!(refused.status, 500, "{refused:?}");
        }
    }
}
