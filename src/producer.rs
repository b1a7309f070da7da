//! The one long-lived Kafka producer: idempotent, acks=all, every librdkafka property passed through.
//! It is created once per configuration and shared by every request; connections, the producer id
//! and topic metadata are set up once instead of per message as in the seed.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_glue::error::DisplayErrorContext;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;

use crate::msk_iam;
use crate::outcome::{Answer, Delivery, Failure};

/// librdkafka's token callback is switched on at compile time, and switching it on replaces its own
/// OIDC flow: so only an MSK IAM producer has it.
pub enum Producer {
    Plain(Arc<ThreadedProducer<Context<false>>>),
    MskIam(Arc<ThreadedProducer<Context<true>>>),
}

/// What an MSK IAM producer signs its tokens with.
pub struct MskIam {
    pub credentials: SharedCredentialsProvider,
    pub region: String,
}

pub struct Context<const MSK_IAM: bool> {
    /// The last client-level error (connection refused, TLS or SASL failure) not followed by a delivery:
    /// librdkafka only says "timed out" to a record whose broker was never reachable, and the caller
    /// deserves the reason.
    last_error: ArcSwapOption<String>,
    msk_iam: Option<MskIam>,
}

impl<const MSK_IAM: bool> Context<MSK_IAM> {
    fn new(msk_iam: Option<MskIam>) -> Self {
        Context { last_error: ArcSwapOption::empty(), msk_iam }
    }
}

impl<const MSK_IAM: bool> ClientContext for Context<MSK_IAM> {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = MSK_IAM;

    fn error(&self, error: KafkaError, reason: &str) {
        // "all brokers are down" follows the error that says why; keep the one with the cause.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) && self.last_error.load().is_some() {
            return;
        }
        self.last_error.store(Some(Arc::new(format!("{error}: {reason}"))));
    }

    /// Runs on librdkafka's thread, ahead of expiry; a failure is reported through `error` and the
    /// records waiting for the connection answer 503 with it.
    fn generate_oauth_token(&self, _: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let iam = self.msk_iam.as_ref().ok_or("OAUTHBEARER tokens are generated only for AWS_MSK_IAM")?;
        let credentials = crate::runtime::runtime()
            .block_on(iam.credentials.provide_credentials())
            .map_err(|e| format!("MSK IAM: no AWS credentials: {}", DisplayErrorContext(&e)))?;
        let (token, lifetime_ms) = msk_iam::token(&credentials, &iam.region, SystemTime::now())?;
        Ok(OAuthToken { token, principal_name: "krakend-kafka".into(), lifetime_ms })
    }
}

/// Each record carries its caller's `Answer`; librdkafka hands it back here, on the producer's polling
/// thread, once the broker acknowledged the record or librdkafka gave up on it.
impl<const MSK_IAM: bool> ProducerContext for Context<MSK_IAM> {
    type DeliveryOpaque = Box<Answer>;

    fn delivery(&self, result: &DeliveryResult<'_>, answer: Box<Answer>) {
        let outcome = match result {
            Ok(m) => {
                if self.last_error.load().is_some() {
                    self.last_error.store(None);
                }
                Ok(Delivery { partition: m.partition(), offset: m.offset() })
            }
            Err((e, m)) => Err(delivery_failure(m.topic(), e, self.last_error.load().as_deref().map(String::as_str))),
        };
        // A panicking receiver must not take the polling thread, and every later answer, with it.
        let _ = catch_unwind(AssertUnwindSafe(|| answer.send(outcome)));
    }
}

impl Producer {
    /// Creates the producer; librdkafka checks every property and names the one it refuses. Starts the
    /// polling thread that answers deliveries: call it with signals blocked.
    pub fn new(properties: &BTreeMap<String, String>, msk_iam: Option<MskIam>) -> Result<Producer, String> {
        let mut config = ClientConfig::new();
        for (key, value) in properties {
            config.set(key, value);
        }
        let error = |e: KafkaError| format!("kafka: {e}");
        Ok(match msk_iam {
            None => Producer::Plain(Arc::new(config.create_with_context(Context::new(None)).map_err(error)?)),
            iam @ Some(_) => Producer::MskIam(Arc::new(config.create_with_context(Context::new(iam)).map_err(error)?)),
        })
    }

    /// Connects and fetches cluster metadata in the background, so the first request does not pay for
    /// it. Call it with signals blocked: it may start a thread of tokio's blocking pool.
    pub fn warm_up(&self, timeout: Duration) {
        // An unreachable cluster is reported by the requests that need it, with their own status.
        match self {
            Producer::Plain(p) => {
                let p = Arc::clone(p);
                crate::runtime::runtime().spawn_blocking(move || p.client().fetch_metadata(None, timeout).map(drop))
            }
            Producer::MskIam(p) => {
                let p = Arc::clone(p);
                crate::runtime::runtime().spawn_blocking(move || p.client().fetch_metadata(None, timeout).map(drop))
            }
        };
    }

    /// Queues one record (librdkafka copies it) and returns at once; `answer` gets the outcome when the
    /// broker acknowledged the record, or when librdkafka gave up on it after `message.timeout.ms`.
    pub fn send(&self, topic: &str, key: Option<&str>, headers: &[(String, String)], value: &[u8], answer: Answer) {
        let mut record = BaseRecord::<str, [u8], Box<Answer>>::with_opaque_to(topic, Box::new(answer)).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if !headers.is_empty() {
            let owned = headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |h, (k, v)| {
                h.insert(Header { key: k, value: Some(v.as_bytes()) })
            });
            record = record.headers(owned);
        }
        let refused = match self {
            Producer::Plain(p) => p.send(record).err(),
            Producer::MskIam(p) => p.send(record).err(),
        };
        if let Some((e, record)) = refused {
            record.delivery_opaque.send(Err(delivery_failure(topic, &e, None)));
        }
    }

    /// Waits up to `timeout` for every queued record to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        match self {
            Producer::Plain(p) => p.flush(timeout),
            Producer::MskIam(p) => p.flush(timeout),
        }
        .map_err(|e| format!("kafka: flush: {e}"))
    }
}

/// Why a record was not acknowledged, as the status a caller should see. `cluster` is a connection
/// error not yet followed by a delivery: a record that timed out for that reason was never deliverable (503).
fn delivery_failure(topic: &str, error: &KafkaError, cluster: Option<&str>) -> Failure {
    let code = match error {
        KafkaError::MessageProduction(code) => Some(*code),
        _ => error.rdkafka_error_code(),
    };
    match code {
        Some(RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition) => {
            Failure::not_found(format!("topic {topic} does not exist on the Kafka cluster"))
        }
        Some(RDKafkaErrorCode::MessageTimedOut) if cluster.is_some() => Failure::unavailable(format!(
            "topic {topic}: the Kafka cluster cannot be reached: {}",
            cluster.unwrap_or_default()
        )),
        Some(RDKafkaErrorCode::MessageTimedOut) => {
            Failure::timeout(format!("topic {topic}: the broker did not acknowledge the record in time ({error})"))
        }
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => {
            Failure::new(413, format!("topic {topic}: the record is larger than the broker accepts ({error})"))
        }
        _ => Failure::unavailable(format!("topic {topic}: delivery failed: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};

    #[derive(Debug)]
    struct NoCredentials;
    impl ProvideCredentials for NoCredentials {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(CredentialsError::not_loaded("no profile, no environment")))
        }
    }

    fn context(credentials: impl ProvideCredentials + 'static) -> Context<true> {
        let credentials = SharedCredentialsProvider::new(credentials);
        Context::new(Some(MskIam { credentials, region: "eu-west-1".into() }))
    }

    #[test]
    fn token_callback_names_the_missing_credentials() {
        let err = context(NoCredentials).generate_oauth_token(None).err().expect("no token").to_string();
        assert!(err.starts_with("MSK IAM: no AWS credentials") && err.contains("no profile, no environment"), "{err}");
    }

    #[test]
    fn token_callback_signs_for_the_region_with_a_lifetime_of_15_minutes() {
        let creds = aws_credential_types::Credentials::new("AKID", "secret", None, None, "test");
        let before = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        let token = context(creds).generate_oauth_token(None).unwrap();
        let url = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &token.token).unwrap();
        assert!(String::from_utf8(url).unwrap().starts_with("https://kafka.eu-west-1.amazonaws.com/?Action="));
        let lifetime = token.lifetime_ms - before;
        assert!((899_000..=900_000).contains(&lifetime), "{lifetime}");
    }
}
