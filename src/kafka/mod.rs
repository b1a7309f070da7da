//! Kafka: the long-lived producers ([`producer`]), what a caller is told of the cluster's failures
//! ([`cluster`]), MSK IAM
//! tokens ([`msk_iam`]) and the credentials they are signed with ([`credentials`]), librdkafka's statistics ([`statistics`]) and what they say of readiness
//! ([`readiness`]).

pub mod cluster;
pub mod credentials;
pub mod msk_iam;
pub mod producer;
pub mod readiness;
pub mod statistics;
