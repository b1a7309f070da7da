//! What a backend is configured with, as the three steps leave it: the producer's librdkafka
//! properties, the AWS settings, and what stays per backend.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::limits::{AdmissionLimits, IdempotencyLimits};
use super::rules::Rules;
use super::schemas::{RegistryConfig, TopicSchema};
use super::store::IdempotencyStore;

/// librdkafka looks for expired records about once a second, so it reports one up to this long after
/// `message.timeout.ms`.
pub(super) const EXPIRY_SCAN: Duration = Duration::from_secs(1);

/// A backend's configuration: what its producer is built from (shared by every backend whose
/// [`ProducerConfig`] is equal), the AWS settings, and what stays per backend.
#[derive(Clone, PartialEq, Debug)]
pub struct Config {
    pub producer: ProducerConfig,
    pub aws: AwsConfig,
    pub backend: BackendConfig,
    /// Where the process serves its metrics and readiness (`metrics_address`); one address per process.
    pub metrics_address: Option<SocketAddr>,
}

/// librdkafka properties, `bootstrap.servers` included, with this crate's defaults filled in.
#[derive(Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    pub kafka: BTreeMap<String, String>,
    /// `sasl.mechanism: AWS_MSK_IAM` was asked for: SASL/OAUTHBEARER with tokens signed in-process.
    pub msk_iam: bool,
}

/// The AWS settings Glue and MSK IAM share.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AwsConfig {
    /// AWS region of the registry and of MSK; `None` leaves it to the AWS default chain (profile, IMDS).
    pub region: Option<String>,
    /// A role to assume on top of the AWS default credential chain, for Glue and MSK IAM alike.
    pub role_arn: Option<String>,
}

#[derive(Clone, PartialEq, Debug)]
pub struct BackendConfig {
    /// Where the topics' schemas come from.
    pub registry: RegistryConfig,
    /// The budget of each wait of a publish: the schema fetch on a cache miss, then the broker's
    /// acknowledgement.
    pub timeout: Duration,
    /// How long a fetched schema is served before it is fetched again.
    pub schema_ttl: Duration,
    /// How long "no such schema" is remembered, so a misdirected client cannot hammer Glue.
    pub schema_miss_ttl: Duration,
    /// How a topic finds its schema, for topics that say (`topics.T`).
    pub topics: HashMap<String, TopicSchema>,
    /// What the backend's requests may be.
    pub rules: Rules,
    /// How much the backend holds at once before it answers 429.
    pub admission: AdmissionLimits,
    /// How long and how many `Idempotency-Key`s are remembered.
    pub idempotency: IdempotencyLimits,
    /// Where the keys are shared with every replica (`idempotency_store`); `None`: in this process.
    pub idempotency_store: Option<IdempotencyStore>,
    /// Answer 202 once a record is queued, without waiting for the broker.
    pub fire_and_forget: bool,
}

/// Whether a librdkafka property holds a secret that must never be printed.
fn is_secret(key: &str) -> bool {
    ["password", "secret", "sasl.jaas", "key.pem", "oauthbearer.config", "token"].iter().any(|s| key.contains(s))
}

impl ProducerConfig {
    /// How often librdkafka reports its statistics (`statistics.interval.ms`, which the policy sets unless
    /// the config does); `None` when the config turned them off.
    pub fn statistics_interval(&self) -> Option<Duration> {
        let ms = self.kafka.get("statistics.interval.ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(Duration::from_millis(ms)).filter(|d| !d.is_zero())
    }

    /// How long librdkafka may hold a record before it answers it: `message.timeout.ms` (which the policy
    /// always sets) and its expiry scan.
    pub fn drain(&self) -> Duration {
        let ms = self.kafka.get("message.timeout.ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        Duration::from_millis(ms) + EXPIRY_SCAN
    }
}

impl fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kafka: BTreeMap<_, _> =
            self.kafka.iter().map(|(k, v)| (k, if is_secret(k) { "<redacted>" } else { v.as_str() })).collect();
        f.debug_struct("ProducerConfig").field("kafka", &kafka).field("msk_iam", &self.msk_iam).finish()
    }
}
