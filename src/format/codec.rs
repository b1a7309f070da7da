//! Turns a topic's schema into an encoder, and a JSON body into the bytes written to Kafka: the value in
//! the schema's own data format ([`Values`]), framed as the topic's wire format says (src/format/wire.rs).
//! `Codec` is the one place that decides the bytes.

use serde_json::value::RawValue;

use crate::config::{GlueCompression, WireFormat};
use crate::format::avro::Avro;
use crate::format::json_schema::JsonSchema;
use crate::format::protobuf::Protobuf;
use crate::format::wire::{Frame, VersionId};
use crate::outcome::Failure;

/// A schema's data format, as both registries name it (Glue's `DataFormat`, Confluent's `schemaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    Avro,
    Json,
    Protobuf,
}

impl DataFormat {
    /// The format a registry names, or `None` for one the gateway cannot write.
    pub fn named(name: &str) -> Option<DataFormat> {
        match name {
            "AVRO" => Some(DataFormat::Avro),
            "JSON" => Some(DataFormat::Json),
            "PROTOBUF" => Some(DataFormat::Protobuf),
            _ => None,
        }
    }
}

/// How a body becomes a record's value, by the schema's data format.
#[derive(Debug)]
enum Values {
    Avro(Avro),
    Json(JsonSchema),
    Protobuf(Protobuf),
}

#[derive(Debug)]
pub struct Codec {
    values: Values,
    frame: Frame,
}

impl Codec {
    /// Compiles `text`, schema `schema`'s definition in `format`, with `imports` (a Confluent registry's
    /// references: the name each is imported by, and its text). `message_type` picks a protobuf schema's
    /// message; it names nothing in the other formats, whose schema is the record's. The records are
    /// written unframed until [`Codec::framed`].
    /// A schema that does not compile is the registry owner's fault: 500, and why in the log (it quotes
    /// the schema, which is not the caller's to read).
    pub fn compile(
        schema: &str,
        format: DataFormat,
        text: &str,
        imports: &[(String, String)],
        message_type: Option<&str>,
    ) -> Result<Codec, Failure> {
        #[cfg(feature = "fault-injection")]
        held::wait_while_held(schema);
        let values = match (format, message_type) {
            (DataFormat::Protobuf, _) => Values::Protobuf(Protobuf::compile(schema, text, imports, message_type)?),
            (_, Some(_)) => {
                return Err(Failure::internal(format!(
                "schema {schema}: is {format:?}, whose records have no message type: drop topics.<topic>.message_type"
            )))
            }
            (DataFormat::Avro, None) => Values::Avro(Avro::compile(schema, text, imports)?),
            (DataFormat::Json, None) => Values::Json(JsonSchema::compile(schema, text, imports)?),
        };
        Ok(Codec { values, frame: Frame::default() })
    }

    /// This codec writing `format`, naming the schema version `id`.
    pub fn framed(
        self,
        format: WireFormat,
        compression: GlueCompression,
        id: Option<&VersionId>,
    ) -> Result<Codec, Failure> {
        let message = match &self.values {
            Values::Protobuf(protobuf) => Some(protobuf.descriptor()),
            Values::Avro(_) | Values::Json(_) => None,
        };
        let frame = Frame::new(format, compression, id, message).map_err(Failure::internal)?;
        Ok(Codec { frame, ..self })
    }

    #[cfg(test)]
    pub fn message_name(&self) -> &str {
        let Values::Protobuf(protobuf) = &self.values else { panic!("not a protobuf schema") };
        protobuf.descriptor().full_name()
    }

    /// The record's value for `body` (at the path `at` in the request): the schema's format, framed.
    /// A body the schema refuses is 400 with the path of the field (`body.items[1].price: ...`).
    pub fn encode(&self, body: &RawValue, at: &str) -> Result<Vec<u8>, Failure> {
        let value = match &self.values {
            Values::Avro(avro) => avro.encode(body, at)?,
            Values::Json(json) => json.encode(body, at)?,
            Values::Protobuf(protobuf) => protobuf.encode(body, at)?,
        };
        Ok(self.frame.wrap(value))
    }

    /// [`Codec::encode`] with a protobuf schema's established codec alone, not its transcoder: the
    /// oracle the fuzz targets hold the transcoder to.
    #[cfg(feature = "oracle")]
    pub fn encode_established(&self, body: &RawValue, at: &str) -> Result<Vec<u8>, Failure> {
        let value = match &self.values {
            Values::Protobuf(protobuf) => protobuf.established(body, at)?,
            _ => return self.encode(body, at),
        };
        Ok(self.frame.wrap(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_surrogate_the_request_let_through_is_400_in_every_format() {
        let protobuf = r#"syntax = "proto3"; message M { map<string, string> m = 1; string s = 2; }"#;
        let avro = r#"{"type": "record", "name": "M", "fields": [{"name": "m", "type": {"type": "map", "values": "string"}}]}"#;
        for (format, text) in [(DataFormat::Protobuf, protobuf), (DataFormat::Avro, avro), (DataFormat::Json, "{}")] {
            let codec = Codec::compile("t", format, text, &[], None).unwrap();
            for body in [r#"{"m":{"\ud800":"x"}}"#, r#"{"m":{"k":"\udc00"}}"#] {
                let f = codec.encode(&RawValue::from_string(body.into()).unwrap(), "body").unwrap_err();
                assert_eq!(f.status, 400, "{format:?} {body}: {f:?}");
                assert!(f.message.starts_with("body: not valid JSON: "), "{format:?} {body}: {}", f.message);
            }
        }
    }
}

/// A test hook: compiles of a schema held until the test lets them go, to show what else goes on meanwhile.
#[cfg(feature = "fault-injection")]
pub mod held {
    use std::collections::HashSet;
    use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, PoisonError};

    #[derive(Default)]
    struct Compiles {
        held: HashSet<String>,
        waiting: HashSet<String>,
    }

    static COMPILES: LazyLock<Mutex<Compiles>> = LazyLock::new(Mutex::default);
    static CHANGED: Condvar = Condvar::new();

    fn compiles() -> MutexGuard<'static, Compiles> {
        COMPILES.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait(compiles: MutexGuard<'static, Compiles>) -> MutexGuard<'static, Compiles> {
        CHANGED.wait(compiles).unwrap_or_else(PoisonError::into_inner)
    }

    /// Compiles of `schema` wait while this lives.
    pub struct HeldCompile(String);

    pub fn hold_compiles(schema: &str) -> HeldCompile {
        change(|c| c.held.insert(schema.to_owned()));
        HeldCompile(schema.to_owned())
    }

    impl HeldCompile {
        /// Waits until a compile of the schema is held here.
        pub fn wait_compiling(&self) {
            let mut compiles = compiles();
            while !compiles.waiting.contains(&self.0) {
                compiles = wait(compiles);
            }
        }
    }

    impl Drop for HeldCompile {
        fn drop(&mut self) {
            change(|c| c.held.remove(&self.0));
        }
    }

    pub(super) fn wait_while_held(schema: &str) {
        let mut compiles = compiles();
        if !compiles.held.contains(schema) {
            return;
        }
        compiles.waiting.insert(schema.to_owned());
        CHANGED.notify_all();
        while compiles.held.contains(schema) {
            compiles = wait(compiles);
        }
        compiles.waiting.remove(schema);
    }

    fn change(f: impl FnOnce(&mut Compiles) -> bool) {
        f(&mut compiles());
        CHANGED.notify_all();
    }
}
