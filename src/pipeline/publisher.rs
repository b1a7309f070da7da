//! A backend's publisher: its schema cache and rules, over the producer it shares with every backend
//! whose Kafka settings are equal. Every request, whatever form it came in, is published by `submit`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::config::Rules;
use crate::config::{AwsConfig, Config, RegistryConfig};
use crate::format::codec::Codec;
use crate::kafka::producer::{self, MskIam, Producer};
use crate::outcome::{Answer, Delivery, Failure, Outcome};
use crate::pipeline::admission::{Admission, Permit};
use crate::pipeline::batch::{self, Verdicts};
use crate::pipeline::deadline::Deadlines;
use crate::pipeline::idempotency::{self, Begun, Claim, Idempotency, Ticket};
use crate::pipeline::request::{At, Record, Records, Request};
use crate::pipeline::trip::{Caller, Trip};
use crate::registry::budget;
use crate::registry::cache::SchemaCache;
use crate::registry::confluent::Confluent;
use crate::registry::glue::Glue;
use crate::registry::Registry;
use crate::runtime;
use crate::telemetry::listener;
use crate::telemetry::log::{self, log};
use crate::telemetry::metrics::{self, SchemaLookup};

pub struct Publisher {
    producer: Arc<Producer>,
    deadlines: Arc<Deadlines>,
    schemas: Arc<SchemaCache<Registry>>,
    timeout: Duration,
    rules: Rules,
    admission: Arc<Admission>,
    idempotency: Idempotency,
    fire_and_forget: bool,
    /// Whether a caller's wait shorter than the budget was logged.
    short_wait_logged: AtomicBool,
}

/// What a request holds until librdkafka's verdict on its record (or the failure before it was sent):
/// its share of the backend's limits, and its idempotency key.
struct Hold {
    permit: Permit,
    ticket: Option<Ticket>,
}

/// The longest a backend's first opening, on the gateway's start, waits for the AWS default chain, which
/// may ask an instance metadata service that does not answer: the backend then answers 503 and keeps
/// trying in the background, where the chain has the SDK's own timeouts (a slow STS or metadata service
/// still opens it).
pub const AWS_CHAIN_WAIT: Duration = Duration::from_secs(3);

/// Why a publisher could not be opened.
#[derive(Debug)]
pub enum Unopened {
    /// The configuration cannot work (librdkafka refuses a property).
    Refused(String),
    /// What the configuration leaves to the AWS default chain (region, credentials) is not there yet.
    NotYet(String),
}

impl Publisher {
    /// Needs no broker or registry to be up: the producer connects in the background. Every thread it
    /// starts (librdkafka's, tokio's blocking pool) starts with signals blocked. `chain_wait` bounds the
    /// wait for the AWS default chain; `None`: the SDK's own timeouts.
    pub fn open(config: Config, chain_wait: Option<Duration>) -> Result<Publisher, Unopened> {
        let Config { producer, aws: aws_settings, backend, metrics_address } = config;
        if let Some(address) = metrics_address {
            listener::serve(address, producer::ready);
        }
        runtime::with_signals_blocked(|| {
            // Glue and MSK IAM need the AWS settings; a backend with neither needs no AWS at all.
            let glue = matches!(backend.registry, RegistryConfig::Glue { .. });
            let aws = match glue || producer.msk_iam {
                true => Some(
                    runtime::runtime()
                        .block_on(async {
                            let chain = aws_config(&aws_settings, backend.timeout);
                            let Some(wait) = chain_wait else { return Ok(chain.await) };
                            tokio::time::timeout(wait, chain).await
                        })
                        .map_err(|_| {
                            Unopened::NotYet(format!(
                                "the AWS default chain gave no region within {} s (is the instance metadata service \
                                 slow? set region)",
                                chain_wait.unwrap_or_default().as_secs()
                            ))
                        })?
                        .map_err(Unopened::NotYet)?,
                ),
                false => None,
            };
            let registry = match (backend.registry, &aws) {
                (RegistryConfig::Glue { name, endpoint }, Some(aws)) => {
                    let mut glue = aws_sdk_glue::config::Builder::from(aws);
                    if let Some(endpoint) = endpoint {
                        glue = glue.endpoint_url(endpoint);
                    }
                    Registry::Glue(Glue::new(aws_sdk_glue::Client::from_conf(glue.build()), name))
                }
                (RegistryConfig::Glue { .. }, None) => unreachable!("the AWS settings are loaded for Glue"),
                // As for Glue's client: a second behind the caller's own timer (see aws_config).
                (RegistryConfig::Confluent(c), _) => Registry::Confluent(
                    Confluent::new(&c, backend.timeout + Duration::from_secs(1), budget::process())
                        .map_err(Unopened::Refused)?,
                ),
            };
            let msk_iam =
                match (producer.msk_iam, aws.as_ref().and_then(|a| Some((a.credentials_provider()?, a.region()?)))) {
                    (false, _) => None,
                    (true, Some((credentials, region))) => Some(MskIam::new(credentials, region.to_string())),
                    (true, None) => {
                        return Err(Unopened::NotYet("AWS_MSK_IAM: no AWS credential chain or region".into()))
                    }
                };
            // The AWS settings sign an MSK IAM producer's tokens, so they are part of what it is.
            let key = (producer.clone(), msk_iam.is_some().then_some(aws_settings));
            let producer = Producer::shared(key, || Producer::new(&producer, msk_iam)).map_err(Unopened::Refused)?;
            let schemas = Arc::new(SchemaCache::new(
                registry,
                backend.topics,
                backend.schema_ttl,
                backend.schema_miss_ttl,
                budget::process(),
            ));
            let deadlines = Deadlines::new(backend.timeout);
            // A claimed key's mark outlives the longest a request may take: a schema fetch, then librdkafka's
            // delivery budget.
            let idempotency = Idempotency::new(
                backend.idempotency,
                backend.idempotency_store.as_ref(),
                backend.timeout,
                backend.timeout + producer.drain(),
                backend.admission.retry_after_s,
            )
            .map_err(Unopened::Refused)?;
            Ok(Publisher {
                producer,
                deadlines,
                schemas,
                timeout: backend.timeout,
                rules: backend.rules,
                admission: Admission::new(backend.admission),
                idempotency,
                fire_and_forget: backend.fire_and_forget,
                short_wait_logged: AtomicBool::new(false),
            })
        })
    }

    /// Logs, once, a caller's `wait` shorter than the longest a request may take (a topic's first schema
    /// fetch, then the broker's acknowledgement, each up to `timeout_ms`). The gateway's endpoint timeout
    /// is not in the plugin's config, so the first request that carries it tells.
    pub fn check_wait(&self, wait: Duration) {
        let budget = 2 * self.timeout;
        if wait < budget && !self.short_wait_logged.swap(true, Ordering::Relaxed) {
            log(format!(
                "the gateway waits {} ms for this backend's requests, less than this backend's budget of {} ms \
                 (timeout_ms for a topic's schema, then timeout_ms for Kafka's acknowledgement): a slow request's \
                 caller gets the gateway's own error instead of the plugin's answer; raise the endpoint's timeout \
                 above {} ms",
                wait.as_millis(),
                budget.as_millis(),
                budget.as_millis()
            ));
        }
    }

    /// Waits until every request this publisher took has its outcome, up to the longest one may take (a
    /// schema fetch, then librdkafka's delivery budget).
    pub fn close(&self) {
        let longest = self.timeout + self.producer.drain();
        if !self.admission.wait_idle(longest) {
            log(format!(
                "closed with records still waiting for Kafka after {} ms: their outcomes are logged if they come",
                longest.as_millis()
            ));
        }
    }

    /// What this backend's requests may be.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Publishes `request` and gives `caller` the outcome, without waiting: on the calling thread when the
    /// topic's schema is at hand (encoding takes microseconds; the broker's acknowledgement arrives on the
    /// producer's thread), else once the schema is fetched on the runtime. Each stage's verdict goes to
    /// `trip`, which ends with the outcome. Keeps what it needs of the request and of `self`.
    pub fn submit(self: &Arc<Self>, request: Request<'_>, mut trip: Trip, caller: Caller) {
        trip.topic(&request.topic);
        if self.rules.allowed.as_ref().is_some_and(|allowed| !allowed.allows(&request.topic)) {
            // before the registry is asked: a caller cannot make the gateway look up names at will
            let served = format!("topic {}: not served by this endpoint (allowed_topics)", request.topic);
            return trip.around(caller).send(Err(Failure::not_found(served)));
        }
        let Some(key) = &request.idempotency_key else { return self.admit(request, trip, caller, None) };
        match self.idempotency.begin(&request.topic, key, idempotency::fingerprint(&request)) {
            Claim::Now(begun) => self.begun(begun, request, trip, caller),
            Claim::Later(claim) => {
                let (publisher, request) = (Arc::clone(self), request.into_owned());
                runtime::runtime().spawn(async move {
                    match claim.await {
                        // The first of its key may be a 4 MiB batch to encode: off the runtime's one worker.
                        Begun::First(ticket) => drop(tokio::task::spawn_blocking(move || {
                            publisher.admit(request, trip, caller, Some(ticket))
                        })),
                        begun => publisher.begun(begun, request, trip, caller),
                    }
                });
            }
        }
    }

    /// A request with an idempotency key, as its key found it. A repeat is answered before it is admitted:
    /// a retry of a stored record is never refused 429.
    fn begun(self: &Arc<Self>, begun: Begun<'_>, request: Request<'_>, trip: Trip, caller: Caller) {
        match begun {
            Begun::First(ticket) => self.admit(request, trip, caller, Some(ticket)),
            Begun::Stored(outcome) => trip.replayed().around(caller).send(outcome),
            // It waits for the first's outcome no longer than a record of its own would.
            Begun::InFlight(waiting) => {
                let batch = matches!(request.records, Records::Batch(_));
                waiting.join(self.deadlines.guard(&request.topic, batch, trip.replayed().around(caller)))
            }
            Begun::Refused(f) => trip.around(caller).send(Err(f)),
        }
    }

    /// Takes the request's share of the backend's limits, then its schema, and sends it.
    fn admit(self: &Arc<Self>, request: Request<'_>, mut trip: Trip, caller: Caller, ticket: Option<Ticket>) {
        let (records, bytes) = request.size();
        let hold = match self.admission.admit(&request.topic, records, bytes) {
            Ok(permit) => Hold { permit, ticket },
            Err(f) => {
                if let Some(ticket) = ticket {
                    ticket.settle(&Err(f.clone()));
                }
                return trip.around(caller).send(Err(f));
            }
        };
        let usable = self.schemas.usable(&request.topic);
        match usable {
            Some(Ok(codec)) => {
                trip.schema(SchemaLookup::Hit, true);
                self.send(&codec, &request, trip.around(caller), hold)
            }
            Some(Err(f)) => {
                trip.schema(SchemaLookup::Hit, false);
                hold.around(trip.around(caller)).send(Err(f))
            }
            None => {
                let (publisher, request) = (Arc::clone(self), request.into_owned());
                runtime::runtime().spawn(async move {
                    let budget = publisher.timeout;
                    let codec = tokio::time::timeout(budget, publisher.schemas.get(&request.topic)).await;
                    trip.schema(SchemaLookup::Miss, matches!(codec, Ok(Ok(_))));
                    let answer = trip.around(caller);
                    match codec {
                        // A cold topic's request may be a 4 MiB batch: encoded off the runtime's one worker.
                        Ok(Ok(codec)) => {
                            drop(tokio::task::spawn_blocking(move || publisher.send(&codec, &request, answer, hold)))
                        }
                        Ok(Err(f)) => hold.around(answer).send(Err(f)),
                        // Nothing was sent: the record is certainly not stored.
                        Err(_) => hold.around(answer).send(Err(Failure::unavailable(format!(
                            "topic {}: not stored: the schema registry did not answer within {} ms",
                            request.topic,
                            budget.as_millis()
                        )))),
                    }
                });
            }
        }
    }

    fn send(&self, codec: &Codec, request: &Request<'_>, answer: Answer, hold: Hold) {
        let record = match &request.records {
            Records::One(record) => record,
            Records::Batch(records) => return self.send_batch(codec, &request.topic, records, answer, hold),
        };
        let value = match codec.encode(&record.body, &At::Request.value()) {
            Ok(value) => value,
            Err(f) => return hold.around(answer).send(Err(f)),
        };
        let topic = &request.topic;
        // The caller is answered 202 once librdkafka took the record; its verdict is only counted and logged.
        // The flag is set before the send, so that a verdict on another thread cannot come before it.
        let (verdict, queued) = match self.fire_and_forget {
            false => (self.deadlines.guard(topic, false, answer), None),
            true => {
                let answered_202 = Arc::new(AtomicBool::new(true));
                (Answer::new(unwaited(topic, Arc::clone(&answered_202))), Some((answer, answered_202)))
            }
        };
        match self.producer.send(topic, record.key.as_deref(), &record.headers, &value, hold.around(verdict)) {
            Ok(()) => {
                if let Some((answer, _)) = queued {
                    answer.send(Ok(Delivery::Queued))
                }
            }
            Err((f, verdict)) => {
                let f = self.refused_at_once(f);
                if let Some((answer, answered_202)) = queued {
                    // refused at once: its caller is told, and it is no fire-and-forget record's verdict
                    answered_202.store(false, Ordering::Relaxed);
                    answer.send(Err(f.clone()))
                }
                verdict.send(Err(f));
            }
        }
    }

    /// Sends a batch's records in order once every one is encoded; none when one is invalid. The caller
    /// is answered once every record has librdkafka's verdict, or at the backend's deadline (504: some may
    /// be stored; a retry with the same idempotency key gets each record's outcome).
    fn send_batch(
        &self,
        codec: &Codec,
        topic: &str,
        records: &[Result<Record<'_>, Failure>],
        answer: Answer,
        hold: Hold,
    ) {
        let encoded: Vec<Result<Vec<u8>, Failure>> = records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                let record = record.as_ref().map_err(Failure::clone)?;
                codec.encode(&record.body, &At::Batch(i).value())
            })
            .collect();
        if encoded.iter().any(Result::is_err) {
            let checked = encoded.into_iter().map(|e| e.map(drop)).collect();
            return hold.around(answer).send(batch::refused(checked));
        }
        let verdicts = Verdicts::new(records.len(), hold.around(self.deadlines.guard(topic, true, answer)));
        let mut refusal = None;
        for (i, (record, value)) in records.iter().flatten().zip(encoded.iter().flatten()).enumerate() {
            let verdict = verdicts.answer(i);
            // After a record librdkafka refused, none is sent: a later record of the same key stored
            // before it would break the batch's order per key.
            if let Some(f) = &refusal {
                verdict.send(Err(Failure::clone(f)));
                continue;
            }
            if let Err((f, verdict)) = self.producer.send(topic, record.key.as_deref(), &record.headers, value, verdict)
            {
                let f = self.refused_at_once(f);
                refusal = Some(Failure {
                    message: format!("not sent: an earlier record of the batch was refused: {}", f.message),
                    ..f.clone()
                });
                verdict.send(Err(f));
            }
        }
    }

    /// A failure librdkafka gave at once, before the record was queued: its queue is full (429), which
    /// the backend's limits answer alike.
    fn refused_at_once(&self, mut f: Failure) -> Failure {
        if f.status == 429 {
            f.retry_after_s = self.admission.retry_after_s();
        }
        f
    }
}

/// A fire-and-forget record's verdict, which no caller waits for: counted, and a failure logged (once a
/// minute per topic and status: an outage fails every record). Nothing, when the record was refused at
/// once (`answered_202` false): its caller got the failure instead of the 202.
fn unwaited(topic: &str, answered_202: Arc<AtomicBool>) -> impl FnOnce(Outcome) + Send + Sync + 'static {
    let topic = topic.to_owned();
    move |outcome| {
        if !answered_202.load(Ordering::Relaxed) {
            return;
        }
        metrics::unacknowledged(&topic, outcome.is_ok());
        if let Err(f) = &outcome {
            log::once(
                &format!("fire-and-forget {topic} {}", f.status),
                format_args!("topic {topic}: a fire_and_forget record failed ({}): {}", f.status, f.message),
            );
        }
    }
}

impl Hold {
    /// `answer`, which first gives the record's outcome to the idempotency key, releases the request's
    /// share of the limits, answers, and only then ends the request (what closing waits for).
    fn around(self, answer: Answer) -> Answer {
        let Hold { mut permit, ticket } = self;
        Answer::new(move |outcome| {
            if let Some(ticket) = ticket {
                ticket.settle(&outcome);
            }
            permit.release_share();
            answer.send(outcome);
            drop(permit);
        })
    }
}

/// The AWS settings Glue and MSK IAM share: the default chain (environment, profile, web identity,
/// ECS/EC2 metadata), optionally assuming a role on top of it. Endpoint overrides stay per service.
async fn aws_config(settings: &AwsConfig, timeout: Duration) -> Result<aws_config::SdkConfig, String> {
    // A caller's wait for a schema is bounded by `submit`'s own timer; the AWS client's stays a second
    // behind it, so that one timer, not whichever of two equal ones fires first, answers a caller (and a
    // background refresh, which has no caller, still ends).
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(timeout + Duration::from_secs(1))
        .connect_timeout(timeout.min(Duration::from_secs(3)))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let mut sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err("config key region: missing (set it, or the environment variable REGION or AWS_REGION)".into());
    }
    if let Some(role) = &settings.role_arn {
        let assumed = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("krakend-kafka")
            .configure(&sdk)
            .build()
            .await;
        sdk = sdk.into_builder().credentials_provider(SharedCredentialsProvider::new(assumed)).build();
    }
    Ok(sdk)
}
