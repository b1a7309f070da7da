//! The transport-neutral pipeline: one request in, its typed answer out. A front end (the C ABI today)
//! hands over a [`request::Request`] built from its transport's parts; [`publisher::Publisher`] takes it
//! down the stages (allow-list, idempotency, admission, schema, encode, produce, deadline) and every
//! front end answers from the same [`crate::outcome::Outcome`], so all share every rule.

pub mod admission;
pub mod answers;
pub mod backend;
pub mod batch;
pub mod deadline;
pub mod http;
pub mod idempotency;
pub mod publisher;
pub mod request;
