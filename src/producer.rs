//! The one long-lived Kafka producer: idempotent, acks=all, every librdkafka property passed through.
//! It is created once per configuration and shared by every request; connections, the producer id
//! and topic metadata are set up once instead of per message as in the seed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::ClientConfig;

use crate::outcome::{Delivery, Failure};

pub struct Producer {
    inner: FutureProducer<Context>,
    last_error: Arc<ArcSwapOption<String>>,
}

/// Remembers the last client-level error (connection refused, TLS or SASL failure): librdkafka only
/// says "timed out" to a record whose broker was never reachable, and the caller deserves the reason.
pub struct Context {
    last_error: Arc<ArcSwapOption<String>>,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        // "all brokers are down" follows the error that says why; keep the one with the cause.
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) && self.last_error.load().is_some() {
            return;
        }
        self.last_error.store(Some(Arc::new(format!("{error}: {reason}"))));
    }
}

impl Producer {
    /// Creates the producer; librdkafka checks every property and names the one it refuses.
    pub fn new(properties: &BTreeMap<String, String>) -> Result<Producer, String> {
        let mut config = ClientConfig::new();
        for (key, value) in properties {
            config.set(key, value);
        }
        let last_error = Arc::default();
        let context = Context { last_error: Arc::clone(&last_error) };
        let inner = config.create_with_context(context).map_err(|e| format!("kafka: {e}"))?;
        Ok(Producer { inner, last_error })
    }

    /// Connects and fetches cluster metadata in the background, so the first request does not pay for
    /// it. Holds only librdkafka's handle, so dropping the producer is not delayed by a slow cluster.
    /// Call it with signals blocked: it may start a thread of tokio's blocking pool.
    pub fn warm_up(&self, timeout: Duration) {
        let inner = self.inner.clone();
        crate::runtime::runtime().spawn_blocking(move || {
            // An unreachable cluster is reported by the requests that need it, with their own status.
            let _ = inner.client().fetch_metadata(None, timeout);
        });
    }

    /// Sends one record and resolves when the broker acknowledged it, or librdkafka gave up on it
    /// (after `message.timeout.ms`, which defaults to the request budget).
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&str>,
        headers: &[(String, String)],
        value: &[u8],
    ) -> Result<Delivery, Failure> {
        let mut record = FutureRecord::<str, [u8]>::to(topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if !headers.is_empty() {
            let owned = headers.iter().fold(OwnedHeaders::new_with_capacity(headers.len()), |h, (k, v)| {
                h.insert(Header { key: k, value: Some(v.as_bytes()) })
            });
            record = record.headers(owned);
        }
        let queued = self.inner.send_result(record).map_err(|(e, _)| delivery_failure(topic, &e, None))?;
        match queued.await {
            Ok(Ok(d)) => {
                if self.last_error.load().is_some() {
                    self.last_error.store(None);
                }
                Ok(Delivery { partition: d.partition, offset: d.offset })
            }
            Ok(Err((e, _))) => {
                // An error not followed by a successful delivery is why this record got nowhere.
                let cluster = self.last_error.load();
                Err(delivery_failure(topic, &e, cluster.as_deref().map(String::as_str)))
            }
            Err(_canceled) => {
                Err(Failure::unavailable(format!("topic {topic}: the producer shut down before delivery")))
            }
        }
    }

    /// Waits up to `timeout` for every queued record to be acknowledged.
    pub fn flush(&self, timeout: Duration) -> Result<(), String> {
        self.inner.flush(timeout).map_err(|e| format!("kafka: flush: {e}"))
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
