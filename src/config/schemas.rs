//! Where each topic's schema comes from and how its records are framed: the registry a backend reads
//! (`registry_name` or `confluent_registry`) and `topics.T`.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RegistryConfig {
    /// An AWS Glue Schema Registry: its name, and an endpoint override (also honoured:
    /// `AWS_ENDPOINT_URL_GLUE`, `AWS_ENDPOINT_URL`).
    Glue { name: String, endpoint: Option<String> },
    /// A registry with Confluent Schema Registry's REST API.
    Confluent(ConfluentRegistry),
}

/// `confluent_registry`: a registry with Confluent Schema Registry's REST API (Confluent's, Karapace,
/// Apicurio's compatible API, Redpanda's).
#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConfluentRegistry {
    /// Its base URL, `http://` or `https://`.
    pub url: String,
    /// HTTP basic authentication (Confluent Cloud: the API key and secret).
    pub username: Option<String>,
    pub password: Option<String>,
    /// A bearer token, instead of basic authentication.
    pub bearer_token: Option<String>,
    /// A PEM file of the CA certificates to trust for an `https://` URL, instead of the system's.
    pub ca_location: Option<String>,
    /// How a topic's subject is named when `topics.T.schema_name` does not name it.
    #[serde(default)]
    pub subject_name_strategy: SubjectNameStrategy,
}

impl fmt::Debug for ConfluentRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ConfluentRegistry")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("bearer_token", &hidden(&self.bearer_token))
            .field("ca_location", &self.ca_location)
            .field("subject_name_strategy", &self.subject_name_strategy)
            .finish()
    }
}

/// Confluent's subject name strategies, named after their Java classes.
#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // Confluent's names
pub enum SubjectNameStrategy {
    /// `<topic>-value`
    #[default]
    TopicName,
    /// the message type's full name (`topics.T.message_type`)
    RecordName,
    /// `<topic>-<message type's full name>`
    TopicRecordName,
}

/// How a topic finds its schema and frames its records (`topics.T`); by default the schema named after
/// the topic, its latest version, the schema's first top-level message, as plain protobuf.
#[derive(Deserialize, Clone, Default, PartialEq, Eq, Debug)]
#[serde(deny_unknown_fields)]
pub struct TopicSchema {
    /// The schema (Glue) or subject (Confluent) in the registry, when it is not the one the topic's name
    /// gives (several topics may share one).
    pub schema_name: Option<String>,
    /// A version number to pin (fetched once, never again), or "latest".
    #[serde(default, deserialize_with = "version")]
    pub schema_version: Option<i64>,
    /// Full name of the message type to encode.
    pub message_type: Option<String>,
    /// What is written before the protobuf bytes.
    #[serde(default)]
    pub wire_format: WireFormat,
    /// With the `glue` wire format: whether the bytes after its header are compressed.
    pub glue_compression: Option<GlueCompression>,
}

/// A record's value: the protobuf bytes alone, or framed as a schema registry's deserializers expect.
#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum WireFormat {
    /// The message's bytes, as the seed wrote them.
    #[default]
    Plain,
    /// AWS Glue Schema Registry's serializer's format.
    Glue,
    /// Confluent's serializer's format.
    Confluent,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum GlueCompression {
    #[default]
    None,
    Zlib,
}

/// `schema_version`: a number from 1, or "latest" (the same as leaving it out).
pub(super) fn version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) if s == "latest" => Ok(None),
        Value::Number(n) if n.as_i64().is_some_and(|n| n >= 1) => Ok(n.as_i64()),
        v => Err(serde::de::Error::custom(format!("a version number from 1 or \"latest\", not {v}"))),
    }
}
