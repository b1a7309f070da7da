//! What a schema registry gives: a schema version's text, or why not ([`FetchError`]), from a
//! [`SchemaSource`] (Glue, a Confluent-API registry, or a fake in the cache's unit tests).

use std::future::Future;

use crate::format::wire::VersionId;

/// A schema version as the registry holds it.
#[derive(Debug, Clone)]
pub struct SchemaText {
    pub definition: String,
    pub data_format: String,
    /// The registry's id of this version, which the framed wire formats name.
    pub id: Option<VersionId>,
    /// The files it imports that the registry holds: the name it imports each by, and its text.
    pub imports: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    /// The registry answered that there is no such schema.
    NotFound(String),
    /// The registry holds the schema, and it is one the gateway does not take: why, naming it.
    Refused(String),
    /// The registry could not be asked, or failed to answer: why, in a few words.
    Unavailable(String),
}

/// Where schemas come from: a registry in production, a fake in the cache's unit tests.
pub trait SchemaSource: Send + Sync + 'static {
    /// The schema `topic`'s records are written with when `topics.T.schema_name` does not name one (the
    /// message type is `topics.T.message_type`): by default the topic's name; an error when the
    /// configuration cannot name one.
    fn default_name(&self, topic: &str, _message_type: Option<&str>) -> Result<String, String> {
        Ok(topic.to_owned())
    }

    /// The schema's `version`: a pinned version number, or `None` for the latest.
    fn fetch(&self, schema: &str, version: Option<i64>) -> impl Future<Output = Result<SchemaText, FetchError>> + Send;
}
