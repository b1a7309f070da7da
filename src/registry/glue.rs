//! The AWS Glue Schema Registry: one `GetSchemaVersion` call per fetch.

use aws_sdk_glue::config::http::HttpResponse;
use aws_sdk_glue::error::{DisplayErrorContext, SdkError};
use aws_sdk_glue::operation::get_schema_version::GetSchemaVersionError;
use aws_sdk_glue::types::{DataFormat, SchemaId, SchemaVersionNumber};

use crate::format::wire::VersionId;
use crate::registry::source::{FetchError, SchemaSource, SchemaText};
use crate::telemetry::log;

pub struct Glue {
    client: aws_sdk_glue::Client,
    registry: String,
}

impl Glue {
    pub fn new(client: aws_sdk_glue::Client, registry: String) -> Self {
        Glue { client, registry }
    }
}

impl SchemaSource for Glue {
    async fn fetch(&self, schema: &str, version: Option<i64>) -> Result<SchemaText, FetchError> {
        let id = SchemaId::builder().registry_name(&self.registry).schema_name(schema).build();
        let number = match version {
            Some(n) => SchemaVersionNumber::builder().version_number(n).build(),
            None => SchemaVersionNumber::builder().latest_version(true).build(),
        };
        let answer = self.client.get_schema_version().schema_id(id).schema_version_number(number).send().await;
        match answer {
            Ok(out) => Ok(SchemaText {
                definition: out.schema_definition().unwrap_or_default().to_owned(),
                data_format: out.data_format().map_or("unknown", DataFormat::as_str).to_owned(),
                id: out
                    .schema_version_id()
                    .and_then(|id| uuid::Uuid::parse_str(id).ok())
                    .map(|id| VersionId::Glue(id.into_bytes())),
                imports: Vec::new(),
            }),
            Err(SdkError::ServiceError(e)) if matches!(e.err(), GetSchemaVersionError::EntityNotFoundException(_)) => {
                // The registry's name is the operator's: the log has it, the caller is told what is missing.
                let missing = match version {
                    Some(n) => format!("no version {n} of schema {schema}"),
                    None => format!("no schema {schema}"),
                };
                // One cause for every name: paths a caller makes up must not write a line each.
                let cause = format!("glue {} not found", self.registry);
                log::once(&cause, format_args!("Glue registry {}: {missing} (asked for by a request)", self.registry));
                Err(FetchError::NotFound(format!("{missing} in the schema registry")))
            }
            Err(e) => {
                let why = why_unavailable(&e);
                let cause = format!("glue {} {why}", self.registry);
                log::once(&cause, format_args!("Glue registry {}: {why}: {}", self.registry, DisplayErrorContext(&e)));
                Err(FetchError::Unavailable(format!("the schema registry is unavailable ({why})")))
            }
        }
    }
}

/// What a caller is told of a failed Glue call: its kind, in a few words. The AWS SDK's own text (request
/// ids, account and role ARNs, response headers) goes to the log.
fn why_unavailable(e: &SdkError<GetSchemaVersionError, HttpResponse>) -> String {
    let credentials = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |e| e.source())
        .any(|e| e.is::<aws_credential_types::provider::error::CredentialsError>());
    match e {
        _ if credentials => "no AWS credentials".into(),
        SdkError::TimeoutError(_) => "it did not answer in time".into(),
        SdkError::DispatchFailure(d) if d.is_timeout() => "it did not answer in time".into(),
        SdkError::ServiceError(s) => match s.err().meta().code() {
            Some("AccessDeniedException") => "access denied".into(),
            Some("ThrottlingException") => "it throttled the request".into(),
            Some(code) => format!("it answered {code}"),
            None => format!("it answered HTTP {}", s.raw().status().as_u16()),
        },
        SdkError::ResponseError(_) => "its answer could not be read".into(),
        _ => "it cannot be reached".into(),
    }
}
