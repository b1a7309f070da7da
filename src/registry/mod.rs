//! Schema registries: where a topic's schema comes from ([`source`]: AWS Glue in [`glue`], a registry
//! with Confluent's REST API in [`confluent`]), how many calls they may take ([`budget`]), and the
//! per-topic cache of compiled schemas in front of them ([`cache`]).

pub mod budget;
pub mod cache;
pub mod confluent;
pub mod glue;
pub mod source;

use confluent::Confluent;
use glue::Glue;
use source::{FetchError, SchemaSource, SchemaText};

use crate::telemetry::metrics;

/// The registry a backend reads.
pub enum Registry {
    Glue(Glue),
    Confluent(Confluent),
}

impl SchemaSource for Registry {
    fn default_name(&self, topic: &str, message_type: Option<&str>) -> Result<String, String> {
        match self {
            Registry::Glue(glue) => glue.default_name(topic, message_type),
            Registry::Confluent(confluent) => confluent.default_name(topic, message_type),
        }
    }

    async fn fetch(&self, schema: &str, version: Option<i64>) -> Result<SchemaText, FetchError> {
        let (kind, fetched) = match self {
            Registry::Glue(glue) => ("glue", glue.fetch(schema, version).await),
            Registry::Confluent(confluent) => ("confluent", confluent.fetch(schema, version).await),
        };
        let result = match &fetched {
            Ok(_) => "ok",
            Err(FetchError::NotFound(_)) => "not_found",
            Err(FetchError::Refused(_)) => "refused",
            Err(FetchError::Unavailable(_)) => "unavailable",
        };
        metrics::registry_call(kind, result);
        fetched
    }
}
