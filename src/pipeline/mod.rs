//! The transport-neutral pipeline: one request in, its typed answer out. A front end (the C ABI today)
//! hands [`backend::Backend::submit`] its transport's parts and a [`trip::Caller`]; the request is read
//! ([`request`], [`http`], [`batch`]) and [`publisher::Publisher`] takes it down the stages (allow-list,
//! idempotency, admission, schema, encode, produce, deadline), each returning its verdict. The
//! [`trip::Trip`] writes the request's metrics once, from its final outcome, and every front end answers
//! from the same [`crate::outcome::Outcome`], so all share every rule.

pub mod admission;
pub mod answers;
pub mod backend;
pub mod batch;
pub mod deadline;
pub mod http;
pub mod idempotency;
pub mod publisher;
pub mod request;
pub mod trip;
