//! A schema the registry holds and the gateway cannot use, in any data format: the registry owner's to
//! fix. The answer says what is wrong in a few words; why, which quotes the schema (not the caller's to
//! read), goes to the log, once.

use std::fmt::Display;

use crate::outcome::Failure;
use crate::telemetry::log;

/// 500 for schema `schema`, which `what` ("does not compile"), for the reason `why`.
pub fn unusable(schema: &str, what: &str, why: impl Display) -> Failure {
    log::once(&format!("schema {schema} does not compile"), format_args!("schema {schema}: does not compile: {why}"));
    Failure::internal(format!("schema {schema}: {what} (the gateway's log says why); fix it in the registry"))
}
