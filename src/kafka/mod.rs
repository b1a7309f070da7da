//! Kafka: the long-lived producers ([`producer`]), what a caller is told of the cluster's failures
//! ([`cluster`]), MSK IAM
//! tokens ([`msk_iam`]), librdkafka's statistics ([`statistics`]) and what they say of readiness
//! ([`readiness`]).

pub mod cluster;
pub mod msk_iam;
pub mod producer;
pub mod readiness;
pub mod statistics;
