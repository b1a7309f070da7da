//! Value formats: a schema compiled into an encoder of JSON bodies ([`codec`]), in the schema's data
//! format ([`protobuf`], [`avro`], [`json_schema`]; a body is read strictly by [`json`] first where the
//! format takes a parsed value), apart from the framing a registry's deserializers expect around those
//! bytes ([`wire`]). A schema none of them can use is answered by [`unusable`].

pub mod avro;
pub mod codec;
pub mod json;
pub mod json_schema;
pub mod protobuf;
pub mod unusable;
pub mod wire;
