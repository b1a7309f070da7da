//! The one long-lived Kafka producer: idempotent, acks=all, every librdkafka property passed through.
//! It is created once per configuration and shared by every request; connections, the producer id
//! and topic metadata are set up once instead of per message as in the seed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption, Guard};
use aws_credential_types::provider::SharedCredentialsProvider;
use rdkafka::bindings::{rd_kafka_message_status, rd_kafka_msg_status_t};
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::ClientConfig;

use crate::config::{AwsConfig, ProducerConfig};
use crate::kafka::cluster;
use crate::kafka::credentials::FreshCredentials;
use crate::kafka::msk_iam;
use crate::kafka::readiness::{self, ProducerState};
use crate::kafka::statistics::ClientStats;
use crate::outcome::{Answer, Delivery, Failure};
use crate::telemetry::log::{self, log};
use crate::telemetry::metrics;

/// The Kafka producer of every backend whose producer settings are equal. Dropping the last handle
/// waits for the records still in flight.
pub struct Producer {
    /// Replaced by a fresh client when librdkafka raises a fatal error: an idempotent producer whose
    /// sequence can no longer be trusted (out of sequence, fenced) fails every record and takes no more.
    client: ArcSwap<Client>,
    /// What a fresh client is made of.
    config: ClientConfig,
    msk_iam: Option<MskIam>,
    /// Held while a failed client is replaced, so that it is replaced once.
    replacing: Mutex<()>,
    /// By then librdkafka has answered every record it holds (`message.timeout.ms` and its expiry scan).
    drain: Duration,
    /// How often librdkafka reports its statistics; `None`: never.
    statistics: Option<Duration>,
}

/// librdkafka's token callback is switched on at compile time, and switching it on replaces its own
/// OIDC flow: so only an MSK IAM producer has it.
enum Client {
    Plain(ThreadedProducer<Context<false>>),
    MskIam(ThreadedProducer<Context<true>>),
}

/// `$body` with `$p` bound to the client's producer, whichever of the two contexts it was built with.
macro_rules! with_producer {
    ($client:expr, |$p:ident| $body:expr) => {
        match $client as &Client {
            Client::Plain($p) => $body,
            Client::MskIam($p) => $body,
        }
    };
}

/// How often a producer looks for a client with a fatal error to replace when no request does.
const HEAL_EVERY: Duration = Duration::from_secs(10);

/// What makes two backends' producers interchangeable.
pub type Key = (ProducerConfig, Option<AwsConfig>);

/// Producers alive in this process: KrakenD builds a client per backend, and backends that talk to the
/// same cluster the same way must share one producer (one set of connections, one producer id).
static SHARED: Mutex<Vec<(Key, Weak<Producer>)>> = Mutex::new(Vec::new());

/// What an MSK IAM producer signs its tokens with; its clients, the replacements too, share the credentials.
#[derive(Clone)]
pub struct MskIam {
    credentials: Arc<FreshCredentials>,
    region: String,
}

impl MskIam {
    pub fn new(chain: SharedCredentialsProvider, region: String) -> Self {
        MskIam { credentials: FreshCredentials::new(chain), region }
    }
}

pub struct Context<const MSK_IAM: bool> {
    /// The short cause of the last client-level error (connection refused, TLS or SASL failure) not
    /// followed by a delivery: librdkafka only says "timed out" to a record whose broker was never
    /// reachable, and the caller deserves the reason.
    last_error: ArcSwapOption<String>,
    msk_iam: Option<MskIam>,
    /// The client's figures from librdkafka's statistics, for the metrics and readiness.
    stats: ClientStats,
}

impl<const MSK_IAM: bool> Context<MSK_IAM> {
    fn new(msk_iam: Option<MskIam>) -> Self {
        Context { last_error: ArcSwapOption::empty(), msk_iam, stats: ClientStats::default() }
    }
}

impl<const MSK_IAM: bool> ClientContext for Context<MSK_IAM> {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = MSK_IAM;

    fn error(&self, error: KafkaError, reason: &str) {
        contained("error", (), || {
            // "all brokers are down" follows the error that says why; keep the one with the cause.
            let code = error.rdkafka_error_code();
            if code == Some(RDKafkaErrorCode::AllBrokersDown) && self.last_error.load().is_some() {
                return;
            }
            let cause = cluster::cause(code, reason);
            log::once(cause, format_args!("Kafka cluster: {cause}: {error}: {reason}"));
            self.last_error.store(Some(Arc::new(cause.to_owned())));
        })
    }

    /// librdkafka's own lines, which rdkafka would hand to the `log` crate that no gateway sets up. Its
    /// errors are left out: librdkafka reports each of them to `error` too, which logs a cause once a minute.
    fn log(&self, level: RDKafkaLogLevel, facility: &str, line: &str) {
        if level as i32 > RDKafkaLogLevel::Error as i32 {
            contained("log", (), || log::librdkafka(level as i32, facility, line))
        }
    }

    /// Only the figures used are read from the JSON: rdkafka's own `stats` would decode all of it, every
    /// partition of every topic included.
    fn stats_raw(&self, statistics: &[u8]) {
        contained("statistics", (), || self.stats.report(statistics))
    }

    /// Runs on librdkafka's thread, ahead of expiry, and only signs: the credentials are asked of the AWS
    /// chain on the runtime. A failure is reported through `error`, the records waiting for the
    /// connection answer 503 with it, and librdkafka asks again.
    fn generate_oauth_token(&self, _: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        contained("OAUTHBEARER token", Err("MSK IAM: the token could not be made".into()), || {
            let iam = self.msk_iam.as_ref().ok_or("OAUTHBEARER tokens are generated only for AWS_MSK_IAM")?;
            let now = SystemTime::now();
            let credentials = iam.credentials.current(now)?;
            let (token, lifetime_ms) = msk_iam::token(&credentials, &iam.region, now)?;
            // A token is worth no more than the credentials it was signed with: librdkafka renews it at 80%
            // of the lifetime it is told, so it is told the shorter of the two.
            let lifetime_ms = match credentials.expiry().and_then(|e| e.duration_since(UNIX_EPOCH).ok()) {
                Some(expiry) => lifetime_ms.min(expiry.as_millis() as i64),
                None => lifetime_ms,
            };
            Ok(OAuthToken { token, principal_name: "krakend-kafka".into(), lifetime_ms })
        })
    }
}

/// Each record carries its caller's `Answer`; librdkafka hands it back here, on the producer's polling
/// thread, once the broker acknowledged the record or librdkafka gave up on it.
impl<const MSK_IAM: bool> ProducerContext for Context<MSK_IAM> {
    type DeliveryOpaque = Box<Answer>;

    fn delivery(&self, result: &DeliveryResult<'_>, answer: Box<Answer>) {
        let verdict = || match result {
            Ok(m) => {
                if self.last_error.load().is_some() {
                    self.last_error.store(None);
                }
                metrics::produced(m.topic(), m.payload_len());
                Ok(Delivery::Stored { partition: m.partition(), offset: m.offset() })
            }
            Err((e, m)) => {
                // SAFETY: `m` is the message librdkafka hands this callback, alive for its length.
                let persisted = unsafe { rd_kafka_message_status(m.ptr()) };
                let stored = persisted != rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
                Err(delivery_failure(m.topic(), e, stored, self.last_error.load().as_deref().map(String::as_str)))
            }
        };
        // The record's fate is unknown when its verdict could not be read: it may be stored.
        let unread = || Err(Failure::timeout("may still be stored: its verdict from Kafka could not be read"));
        let outcome = contained("delivery", None, || Some(verdict())).unwrap_or_else(unread);
        // A panicking receiver must not take the polling thread, and every later answer, with it.
        contained("delivery", (), || answer.send(outcome))
    }
}

/// Runs a callback librdkafka makes from C, where a panic cannot unwind (the gateway would abort): one
/// that panics is logged and gives `otherwise`.
fn contained<T>(callback: &str, otherwise: T, run: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| {
        log::once(&format!("{callback} callback"), format_args!("librdkafka's {callback} callback panicked (a bug)"));
        otherwise
    })
}

impl Producer {
    /// The live producer for `key`, or the one `build` makes. `build` runs without the process-wide lock
    /// (librdkafka starts threads, AWS settings may be resolved); when another caller made one for the
    /// same key meanwhile, that one is used and ours is dropped.
    pub fn shared(key: Key, build: impl FnOnce() -> Result<Producer, String>) -> Result<Arc<Producer>, String> {
        let live = |shared: &mut Vec<(Key, Weak<Producer>)>| {
            shared.retain(|(_, p)| p.strong_count() > 0);
            shared.iter().find(|(k, _)| *k == key).and_then(|(_, p)| p.upgrade())
        };
        if let Some(p) = live(&mut SHARED.lock().unwrap_or_else(PoisonError::into_inner)) {
            return Ok(p);
        }
        let built = Arc::new(build()?);
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = live(&mut shared) {
            drop(shared);
            return Ok(p);
        }
        shared.push((key, Arc::downgrade(&built)));
        drop(shared);
        built.warm_up();
        built.heal();
        Ok(built)
    }

    /// Creates the producer; librdkafka checks every property and names the one it refuses. Starts the
    /// polling thread that answers deliveries: call it with signals blocked.
    pub fn new(properties: &ProducerConfig, msk_iam: Option<MskIam>) -> Result<Producer, String> {
        let mut config: ClientConfig = properties.kafka.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // librdkafka's warnings always; its debug lines when `debug` names what to trace.
        config.set_log_level(match properties.kafka.contains_key("debug") {
            true => RDKafkaLogLevel::Debug,
            false => RDKafkaLogLevel::Warning,
        });
        let client = Client::new(&config, msk_iam.clone())?;
        Ok(Producer {
            client: ArcSwap::from_pointee(client),
            config,
            msk_iam,
            replacing: Mutex::new(()),
            drain: properties.drain(),
            statistics: properties.statistics_interval(),
        })
    }

    /// The client to send with: the current one, or a fresh one if librdkafka raised a fatal error on it.
    /// The failed client answers the records it holds (503, or 504 for those it may have sent) as it
    /// goes; records it acknowledged stay acknowledged.
    fn client(&self) -> Guard<Arc<Client>> {
        // A guard, not a reference count: every send reads this, from every thread.
        let client = self.client.load();
        let Some(fatal) = client.fatal_error() else { return client };
        let client = Guard::into_inner(client);
        let _one = self.replacing.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.client.load();
        if !Arc::ptr_eq(&current, &client) {
            return current; // replaced meanwhile
        }
        match crate::runtime::with_signals_blocked(|| Client::new(&self.config, self.msk_iam.clone())) {
            Ok(fresh) => {
                log(format!("the Kafka producer hit a fatal error ({fatal}): replaced by a fresh one"));
                self.client.store(Arc::new(fresh));
                // Dropping a client waits for its polling thread: not on a caller's thread.
                crate::runtime::with_signals_blocked(|| std::thread::spawn(move || drop(client)));
                self.client.load()
            }
            Err(e) => {
                log(format!("the Kafka producer hit a fatal error ({fatal}) and cannot be replaced: {e}"));
                current
            }
        }
    }

    /// A client with a fatal error is replaced by the next request; a replica that readiness took out of
    /// its Service gets none, so it is also replaced here, looked at every `HEAL_EVERY` for as long as the
    /// producer lives.
    fn heal(self: &Arc<Self>) {
        let producer = Arc::downgrade(self);
        crate::runtime::with_signals_blocked(|| {
            crate::runtime::runtime().spawn(async move {
                loop {
                    tokio::time::sleep(HEAL_EVERY).await;
                    let Some(producer) = producer.upgrade() else { return };
                    // Making a client starts threads, and dropping the last handle flushes: off the worker.
                    drop(tokio::task::spawn_blocking(move || {
                        if producer.client.load().fatal_error().is_some() {
                            drop(producer.client());
                        }
                    }));
                }
            })
        });
    }

    /// What readiness needs to know of this producer, read as it is: a probe never replaces a client (whoever
    /// reaches the port would make librdkafka clients); one with a fatal error is reported until a request or
    /// `heal` replaces it.
    fn state(&self) -> ProducerState {
        let client = self.client.load();
        let last = with_producer!(&**client, |p| p.context().stats.health());
        ProducerState { fatal: client.fatal_error().is_some(), interval: self.statistics, last }
    }

    /// Connects and fetches cluster metadata in the background, so the first request does not pay for
    /// it. It may start a thread of tokio's blocking pool, so signals are blocked around it.
    fn warm_up(self: &Arc<Self>) {
        let producer = Arc::clone(self);
        // An unreachable cluster is reported by the requests that need it, with their own status.
        crate::runtime::with_signals_blocked(|| {
            crate::runtime::runtime().spawn_blocking(move || {
                let budget = producer.drain;
                with_producer!(&*producer.client.load(), |p| drop(p.client().fetch_metadata(None, budget)))
            })
        });
    }

    /// Queues one record (librdkafka copies it) and returns at once; `answer` gets the outcome when the
    /// broker acknowledged the record, or when librdkafka gave up on it after `message.timeout.ms`. When
    /// librdkafka refuses the record at once (its queue is full: 429), nothing was sent and the failure
    /// comes back with `answer`.
    pub fn send(
        &self,
        topic: &str,
        key: Option<&str>,
        headers: &[(String, String)],
        value: &[u8],
        answer: Answer,
    ) -> Result<(), (Failure, Answer)> {
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
        match with_producer!(&**self.client(), |p| p.send(record).err()) {
            None => Ok(()),
            Some((e, record)) => Err((delivery_failure(topic, &e, false, None), *record.delivery_opaque)),
        }
    }
}

impl Producer {
    /// How long librdkafka may hold a record before it answers it.
    pub fn drain(&self) -> Duration {
        self.drain
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Records already accepted get their delivery budget to reach the broker before the process goes.
        let flush = || with_producer!(&*self.client.load(), |p| drop(p.flush(self.drain)));
        // The last handle may go on a runtime worker (an async publish held it): hand that worker's other
        // tasks to another thread while this one waits.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(flush)
            }
            _ => flush(),
        }
    }
}

impl Client {
    fn new(config: &ClientConfig, msk_iam: Option<MskIam>) -> Result<Client, String> {
        Ok(match msk_iam {
            None => Client::Plain(config.create_with_context(Context::new(None)).map_err(error)?),
            iam @ Some(_) => Client::MskIam(config.create_with_context(Context::new(iam)).map_err(error)?),
        })
    }

    /// The fatal error librdkafka raised on this client, if any (an atomic read).
    fn fatal_error(&self) -> Option<String> {
        with_producer!(self, |p| p.client().fatal_error()).map(|(code, reason)| format!("{code:?}: {reason}"))
    }
}

/// Whether every live producer of the process can publish now (`GET /ready`).
pub fn ready() -> Result<(), String> {
    let producers: Vec<Arc<Producer>> =
        SHARED.lock().unwrap_or_else(PoisonError::into_inner).iter().filter_map(|(_, p)| p.upgrade()).collect();
    let states: Vec<ProducerState> = producers.iter().map(|p| p.state()).collect();
    readiness::decide(&states, Instant::now())
}

/// A property librdkafka refuses, named without its value: the value may be a secret under a key nobody
/// can recognise as one (a typo such as `sasl.pasword`, or a Java client's `sasl.jaas.config`), and this
/// text is logged and served in the backend's 500.
fn error(e: KafkaError) -> String {
    match e {
        KafkaError::ClientConfig(_, description, key, value) => {
            let description = if value.is_empty() { description } else { description.replace(&value, "<hidden>") };
            format!("config key kafka.{key}: {description}")
        }
        e => format!("kafka: {e}"),
    }
}

/// Raises librdkafka's own fatal error on every live producer, through the call librdkafka provides for
/// this (the conditions that raise it for real, such as an out-of-sequence idempotent producer, cannot
/// be made on demand).
#[cfg(feature = "fault-injection")]
pub fn raise_fatal_error(reason: &str) {
    let reason = std::ffi::CString::new(reason).unwrap();
    let producers: Vec<Arc<Producer>> =
        SHARED.lock().unwrap_or_else(PoisonError::into_inner).iter().filter_map(|(_, p)| p.upgrade()).collect();
    for producer in producers {
        let native = with_producer!(&*producer.client.load(), |p| p.client().native_ptr());
        let code = rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
        // SAFETY: a live client's handle, and a NUL-terminated reason that outlives the call.
        unsafe { rdkafka::bindings::rd_kafka_test_fatal_error(native, code, reason.as_ptr()) };
    }
}

/// Why a record was not acknowledged, as the status a caller should see: 503 only when it is certainly not
/// stored, 504 when it may be (`maybe_stored`: librdkafka sent it, or more, and got no answer it could
/// trust). `cluster_cause` is the short cause of a connection error not yet followed by a delivery: the
/// reason a record that timed out without being sent could not be.
fn delivery_failure(topic: &str, error: &KafkaError, maybe_stored: bool, cluster_cause: Option<&str>) -> Failure {
    let code = match error {
        KafkaError::MessageProduction(code) => Some(*code),
        _ => error.rdkafka_error_code(),
    };
    let said = match code {
        Some(code) => code.to_string(),
        None => error.to_string(),
    };
    match code {
        _ if maybe_stored => Failure::timeout(format!(
            "topic {topic}: the record was sent but not acknowledged ({said}); it may be stored: check before you retry"
        )),
        Some(RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition) => {
            Failure::not_found(format!("topic {topic} does not exist on the Kafka cluster"))
        }
        Some(RDKafkaErrorCode::MessageTimedOut) => match cluster_cause {
            Some(cause) => {
                Failure::unavailable(format!("topic {topic}: not stored: the Kafka cluster is unavailable: {cause}"))
            }
            None => {
                Failure::unavailable(format!("topic {topic}: not stored: the broker did not take the record in time"))
            }
        },
        // 429 without a Retry-After: the backend that sent it names when to retry.
        Some(RDKafkaErrorCode::QueueFull) => Failure::new(
            429,
            format!(
                "topic {topic}: not stored: the producer's queue is full (queue.buffering.max.messages, \
                 queue.buffering.max.kbytes)"
            ),
        ),
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => Failure::new(
            413,
            format!("topic {topic}: the record is larger than the broker accepts (message.max.bytes)"),
        ),
        _ => Failure::unavailable(format!("topic {topic}: not stored: {said}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::ProvideCredentials;

    fn context(credentials: impl ProvideCredentials + 'static) -> Context<true> {
        Context::new(Some(MskIam::new(SharedCredentialsProvider::new(credentials), "eu-west-1".into())))
    }

    #[test]
    fn only_a_record_that_cannot_be_stored_is_503() {
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        let f = delivery_failure("t", &timed_out, true, Some("connection refused"));
        assert_eq!(f.status, 504, "{f:?}");
        assert!(f.message.contains("it may be stored"), "{f:?}");
        let f = delivery_failure("t", &timed_out, false, Some("connection refused"));
        assert_eq!(
            (f.status, f.message.as_str()),
            (503, "topic t: not stored: the Kafka cluster is unavailable: connection refused")
        );
        let f = delivery_failure("t", &timed_out, false, None);
        assert_eq!(
            (f.status, f.message.as_str()),
            (503, "topic t: not stored: the broker did not take the record in time")
        );
        let unknown = KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopicOrPartition);
        assert_eq!(delivery_failure("t", &unknown, false, None).status, 404);
        let large = KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(delivery_failure("t", &large, false, None).status, 413);
    }

    #[test]
    fn a_refused_property_is_named_without_its_value() {
        for (key, value) in [
            ("sasl.pasword", "hunter2-typo"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"hunter2-jaas\";",
            ),
            ("security.protocol", "hunter2-protocol"),
            ("ssl.truststore.password", "hunter2-truststore"),
        ] {
            let mut config = ClientConfig::new();
            config.set("bootstrap.servers", "127.0.0.1:1").set(key, value);
            let refused = Client::new(&config, None).err().expect("refused");
            assert!(refused.starts_with(&format!("config key kafka.{key}: ")), "{refused}");
            assert!(!refused.contains("hunter2"), "{refused}");
        }
    }

    #[test]
    fn a_token_lives_no_longer_than_its_credentials() {
        let expiry = SystemTime::now() + Duration::from_secs(300);
        let creds = aws_credential_types::Credentials::new("AKID", "secret", None, Some(expiry), "test");
        let token = context(creds).generate_oauth_token(None).unwrap();
        assert_eq!(token.lifetime_ms, expiry.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64);
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
