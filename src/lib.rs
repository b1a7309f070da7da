//! krakend-kafka publishes HTTP requests to Kafka from inside the KrakenD API gateway: it turns a JSON
//! body into protobuf with the topic's schema from the AWS Glue Schema Registry and sends it through one
//! long-lived, idempotent producer. C callers use [`ffi`]; HTTP callers the service ([`service`], the
//! `krakend-kafka serve` binary); Rust callers use [`Backend`]. Every request, from any front end, enters
//! the pipeline by [`Backend::submit`].

#![allow(non_camel_case_types)] // C names in the C surface, as rustls-ffi does.

// The layers, from the front ends down; a module imports only from the layers below its own.
mod clock;
mod config;
pub mod ffi;
mod format;
mod kafka;
mod outcome;
mod pipeline;
mod rate;
mod registry;
mod runtime;
pub mod service;
mod telemetry;

pub use config::{Config, Rules};
pub use format::codec::{Codec, DataFormat};
pub use kafka::msk_iam;
pub use outcome::{Delivery, Failure, Outcome};
pub use pipeline::backend::{Backend, Input};
pub use pipeline::request::{BodyRead, HttpParts, Record, Records, Request};
pub use pipeline::trip::Caller;

/// Faults the test suite raises through the real parts' own test hooks. Not in a release build.
#[cfg(feature = "fault-injection")]
pub mod fault_injection {
    pub use crate::format::codec::held::{hold_compiles, HeldCompile};
    pub use crate::kafka::producer::raise_fatal_error;
}
