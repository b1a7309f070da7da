//! What a record's value holds around the bytes of its data format: nothing (`plain`, the seed's format),
//! or the header a schema registry's deserializer reads first (`glue`, `confluent`), with a protobuf
//! message's index after it. The header depends only on the schema version and the message type, so it
//! is built once per schema, never per record.

use std::io::Write;

use prost_reflect::MessageDescriptor;

use crate::config::{GlueCompression, WireFormat};

/// The registry's id of a schema version: what a framed format names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionId {
    /// Glue's schema version id (a UUID).
    Glue([u8; 16]),
    /// A Confluent registry's schema id.
    Confluent(u32),
}

/// The default is `plain`'s: nothing around the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// Written before the value.
    header: Vec<u8>,
    /// A protobuf message's index: written after the header, compressed with the value (Glue's zlib), or
    /// before it. Avro's and JSON's frames have none.
    index: Vec<u8>,
    zlib: bool,
}

impl Frame {
    /// The frame of `format` for records of the schema version `id`, of the protobuf `message` when the
    /// schema is protobuf. An error when the registry gave no id for a format that needs one.
    pub fn new(
        format: WireFormat,
        compression: GlueCompression,
        id: Option<&VersionId>,
        message: Option<&MessageDescriptor>,
    ) -> Result<Frame, String> {
        match (format, id) {
            (WireFormat::Plain, _) => Ok(Frame::default()),
            (WireFormat::Glue, Some(VersionId::Glue(uuid))) => {
                let zlib = compression == GlueCompression::Zlib;
                // AWS's serializer: header version 3, compression 0 (none) or 5 (zlib), the version's UUID.
                let mut header = vec![3, if zlib { 5 } else { 0 }];
                header.extend_from_slice(uuid);
                Ok(Frame { header, index: message.map(glue_message_index).unwrap_or_default(), zlib })
            }
            (WireFormat::Confluent, Some(VersionId::Confluent(id))) => {
                let mut header = vec![0];
                header.extend_from_slice(&id.to_be_bytes());
                Ok(Frame { header, index: message.map(confluent_message_indexes).unwrap_or_default(), zlib: false })
            }
            (format, _) => Err(format!("the registry gave no schema id for wire format {format:?}")),
        }
    }

    /// The record's value for the bytes `message` of its data format.
    pub fn wrap(&self, message: Vec<u8>) -> Vec<u8> {
        if self.header.is_empty() {
            return message;
        }
        let mut value = Vec::with_capacity(self.header.len() + self.index.len() + message.len());
        value.extend_from_slice(&self.header);
        if self.zlib {
            let mut z = flate2::write::ZlibEncoder::new(value, flate2::Compression::default());
            // writing into a Vec cannot fail
            z.write_all(&self.index).and_then(|()| z.write_all(&message)).expect("in memory");
            return z.finish().expect("in memory");
        }
        value.extend_from_slice(&self.index);
        value.extend_from_slice(&message);
        value
    }
}

/// AWS's protobuf serializer names the message type by its position among all the messages of the
/// schema's file, nested ones included, sorted by full name (`MessageIndexFinder`), as a varint.
fn glue_message_index(message: &MessageDescriptor) -> Vec<u8> {
    let file = message.parent_file();
    let mut names: Vec<String> = Vec::new();
    let mut stack: Vec<MessageDescriptor> = file.messages().collect();
    while let Some(m) = stack.pop() {
        stack.extend(m.child_messages());
        names.push(m.full_name().to_owned());
    }
    names.sort_unstable();
    let index = names.iter().position(|n| n == message.full_name()).unwrap_or(0);
    let mut out = Vec::new();
    prost::encoding::encode_varint(index as u64, &mut out);
    out
}

/// Confluent's message indexes: the message's position in its file, then in each enclosing message,
/// from the top (declaration order); as zigzag varints after their count, with `[0]` (the first
/// top-level message, the common case) as the single byte 0.
fn confluent_message_indexes(message: &MessageDescriptor) -> Vec<u8> {
    // A message's path in its file's descriptor: [4, i] for the i-th top-level message, then [3, j] for
    // the j-th message nested in it, and so on.
    let indexes: Vec<i32> = message.path().iter().skip(1).step_by(2).copied().collect();
    let mut out = Vec::new();
    if indexes == [0] {
        out.push(0);
        return out;
    }
    let zigzag = |n: i64, out: &mut Vec<u8>| prost::encoding::encode_varint(((n << 1) ^ (n >> 63)) as u64, out);
    zigzag(indexes.len() as i64, &mut out);
    for i in indexes {
        zigzag(i64::from(i), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::protobuf::Protobuf;

    const NESTED: &str = r#"syntax = "proto3"; package p;
        message Zeta { message Inner { message Deep { int32 d = 1; } int32 a = 1; } Inner i = 1; }
        message Alpha { int32 b = 1; }"#;

    fn message(name: &str) -> MessageDescriptor {
        Protobuf::compile("t", NESTED, &[], Some(name)).unwrap().descriptor().clone()
    }

    #[test]
    fn confluent_indexes_follow_declaration_order_with_the_short_form_for_the_first() {
        assert_eq!(confluent_message_indexes(&message("p.Zeta")), [0]);
        assert_eq!(confluent_message_indexes(&message("p.Alpha")), [2, 2]);
        assert_eq!(confluent_message_indexes(&message("p.Zeta.Inner")), [4, 0, 0]);
        assert_eq!(confluent_message_indexes(&message("p.Zeta.Inner.Deep")), [6, 0, 0, 0]);
    }

    #[test]
    fn glue_index_is_the_position_by_full_name_among_all_messages() {
        // p.Alpha, p.Zeta, p.Zeta.Inner, p.Zeta.Inner.Deep
        let index = |name| glue_message_index(&message(name));
        assert_eq!(
            [index("p.Alpha"), index("p.Zeta"), index("p.Zeta.Inner"), index("p.Zeta.Inner.Deep")],
            [[0], [1], [2], [3]]
        );
    }

    #[test]
    fn frames_put_header_index_and_message_in_order() {
        let uuid = [0xab; 16];
        let zeta = message("p.Zeta");
        let glue =
            Frame::new(WireFormat::Glue, GlueCompression::None, Some(&VersionId::Glue(uuid)), Some(&zeta)).unwrap();
        assert_eq!(glue.wrap(vec![8, 1]), [&[3, 0][..], &uuid, &[1], &[8, 1]].concat());
        let confluent =
            Frame::new(WireFormat::Confluent, GlueCompression::None, Some(&VersionId::Confluent(258)), Some(&zeta))
                .unwrap();
        assert_eq!(confluent.wrap(vec![8, 1]), [0, 0, 0, 1, 2, 0, 8, 1]);
        let plain = Frame::new(WireFormat::Plain, GlueCompression::None, None, Some(&zeta)).unwrap();
        assert_eq!(plain.wrap(vec![8, 1]), [8, 1]);
        let missing =
            Frame::new(WireFormat::Confluent, GlueCompression::None, Some(&VersionId::Glue(uuid)), Some(&zeta));
        assert!(missing.is_err());
    }

    #[test]
    fn avro_and_json_frames_have_no_message_index() {
        let uuid = [0xcd; 16];
        let glue = Frame::new(WireFormat::Glue, GlueCompression::None, Some(&VersionId::Glue(uuid)), None).unwrap();
        assert_eq!(glue.wrap(vec![2, 0x61]), [&[3, 0][..], &uuid, &[2, 0x61]].concat());
        let confluent =
            Frame::new(WireFormat::Confluent, GlueCompression::None, Some(&VersionId::Confluent(7)), None).unwrap();
        assert_eq!(confluent.wrap(b"{}".to_vec()), [0, 0, 0, 0, 7, b'{', b'}']);
        let zlib = Frame::new(WireFormat::Glue, GlueCompression::Zlib, Some(&VersionId::Glue(uuid)), None).unwrap();
        let value = zlib.wrap(b"{}".to_vec());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&value[18..]), &mut plain).unwrap();
        assert_eq!(plain, b"{}");
    }

    #[test]
    fn glue_zlib_compresses_index_and_message_after_the_header() {
        let uuid = [7; 16];
        let frame = Frame::new(
            WireFormat::Glue,
            GlueCompression::Zlib,
            Some(&VersionId::Glue(uuid)),
            Some(&message("p.Alpha")),
        )
        .unwrap();
        let value = frame.wrap(b"\x08\x2a".to_vec());
        assert_eq!(value[..18], [&[3, 5][..], &uuid].concat());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&value[18..]), &mut plain).unwrap();
        assert_eq!(plain, [0, 8, 0x2a]);
    }
}
