//! krakend-kafka publishes HTTP requests to Kafka from inside the KrakenD API gateway: it turns a JSON
//! body into protobuf with the topic's schema from the AWS Glue Schema Registry and sends it through one
//! long-lived, idempotent producer. C callers use [`ffi`]; Rust callers use [`Publisher`]. Every request,
//! from either, is a [`Request`] published by [`Publisher::submit`].

#![allow(non_camel_case_types)] // C names in the C surface, as rustls-ffi does.

mod admission;
mod allow;
mod answers;
mod backend;
mod batch;
mod cluster;
mod codec;
mod config;
mod confluent;
mod deadline;
mod encoding;
pub mod ffi;
mod idempotency;
mod listener;
mod log;
mod metrics;
pub mod msk_iam;
mod outcome;
mod producer;
mod publisher;
mod readiness;
mod registry;
mod request;
mod runtime;
mod statistics;
mod strict;
mod wire;

pub use codec::Codec;
pub use config::Config;
pub use outcome::{Delivery, Failure, Outcome};
pub use publisher::Publisher;
pub use request::{BodyRead, HttpParts, Record, Records, Request, Rules};

/// Faults the test suite raises through the real parts' own test hooks. Not in a release build.
#[cfg(feature = "fault-injection")]
pub mod fault_injection {
    pub use crate::producer::raise_fatal_error;
}
