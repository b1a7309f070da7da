//! Value formats: a schema compiled into an encoder of JSON bodies ([`codec`], with the strict checks of
//! [`strict`] and protobuf's bytes from [`encoding`]), apart from the framing a registry's deserializers
//! expect around those bytes ([`wire`]).

pub mod codec;
pub mod encoding;
pub mod strict;
pub mod wire;
