//! One publisher per configuration: the producer, the Glue client and the schema cache, shared by every
//! request and every handle opened with the same configuration.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::codec::Codec;
use crate::config::Config;
use crate::outcome::{Answer, Failure, Outcome};
use crate::producer::{MskIam, Producer};
use crate::registry::{Glue, SchemaCache};
use crate::request::{self, Request};
use crate::runtime;

pub struct Publisher {
    producer: Producer,
    schemas: SchemaCache<Glue>,
    timeout: Duration,
}

/// Publishers alive in this process, by configuration: KrakenD builds a client per backend, and every
/// backend with the same configuration must share one producer.
static SHARED: Mutex<Vec<(Config, Weak<Publisher>)>> = Mutex::new(Vec::new());

impl Publisher {
    /// Needs no broker or registry to be up: the producer connects in the background. Every thread it
    /// starts (librdkafka's, tokio's blocking pool) starts with signals blocked.
    fn new(config: Config) -> Result<Publisher, String> {
        runtime::with_signals_blocked(|| {
            let aws = runtime::runtime().block_on(aws_config(&config))?;
            let mut glue = aws_sdk_glue::config::Builder::from(&aws);
            if let Some(endpoint) = &config.glue_endpoint {
                glue = glue.endpoint_url(endpoint);
            }
            let glue = aws_sdk_glue::Client::from_conf(glue.build());
            let msk_iam = match (config.msk_iam, aws.credentials_provider(), aws.region()) {
                (false, _, _) => None,
                (true, Some(credentials), Some(region)) => Some(MskIam { credentials, region: region.to_string() }),
                (true, _, _) => return Err("AWS_MSK_IAM: no AWS credential chain or region".into()),
            };
            let producer = Producer::new(&config.kafka, msk_iam)?;
            producer.warm_up(config.timeout);
            let schemas = SchemaCache::new(
                Glue::new(glue, config.registry_name.clone()),
                config.message_types.clone(),
                config.schema_ttl,
                config.schema_miss_ttl,
            );
            Ok(Publisher { producer, schemas, timeout: config.timeout })
        })
    }

    /// The publisher for `config`: the live one with the same configuration, or a new one, warmed up.
    pub fn shared(config: Config) -> Result<Arc<Publisher>, String> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        shared.retain(|(_, p)| p.strong_count() > 0);
        if let Some(p) = shared.iter().find(|(c, _)| *c == config).and_then(|(_, p)| p.upgrade()) {
            return Ok(p);
        }
        let publisher = Arc::new(Publisher::new(config.clone())?);
        shared.push((config, Arc::downgrade(&publisher)));
        Ok(publisher)
    }

    /// Validates `request` (the seed's JSON envelope), encodes its body with the topic's schema and
    /// waits until the broker acknowledged the record. Blocks the calling thread. Never panics on input.
    pub fn publish(self: &Arc<Self>, request: &[u8]) -> Outcome {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        match request::parse(request) {
            Ok(request) => self.submit(request, Answer::new(move |outcome| drop(tx.send(outcome)))),
            Err(f) => return Err(f),
        }
        rx.recv().unwrap_or_else(|_| Err(Failure::internal("publish: answered by no one")))
    }

    /// Publishes `request` and gives `answer` the outcome, without waiting: on the calling thread when the
    /// topic's schema is cached (encoding takes microseconds; the broker's acknowledgement arrives on the
    /// producer's thread), else once the schema is fetched on the runtime. Keeps what it needs of the
    /// request and of `self`.
    pub fn submit(self: &Arc<Self>, request: Request<'_>, answer: Answer) {
        match self.schemas.fresh(&request.topic) {
            Some(Ok(codec)) => self.send(&codec, &request, answer),
            Some(Err(f)) => answer.send(Err(f)),
            None => {
                let (publisher, request) = (Arc::clone(self), request.into_owned());
                runtime::runtime().spawn(async move {
                    match within(publisher.timeout, publisher.schemas.get(&request.topic)).await {
                        Ok(codec) => publisher.send(&codec, &request, answer),
                        Err(f) => answer.send(Err(f)),
                    }
                });
            }
        }
    }

    fn send(&self, codec: &Codec, request: &Request<'_>, answer: Answer) {
        match codec.encode(&request.body) {
            Ok(value) => self.producer.send(&request.topic, request.key.as_deref(), &request.headers, &value, answer),
            Err(f) => answer.send(Err(f)),
        }
    }
}

/// `work`'s answer, or 504 after `budget`.
async fn within<T>(
    budget: Duration,
    work: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::time::timeout(budget, work)
        .await
        .unwrap_or_else(|_| Err(Failure::timeout(format!("no answer within {} ms", budget.as_millis()))))
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Records already accepted get the request budget to reach the broker before the process goes.
        let flush = || drop(self.producer.flush(self.timeout));
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

/// The AWS settings Glue and MSK IAM share: the default chain (environment, profile, web identity,
/// ECS/EC2 metadata), optionally assuming a role on top of it. Endpoint overrides stay per service.
async fn aws_config(config: &Config) -> Result<aws_config::SdkConfig, String> {
    let timeouts = TimeoutConfig::builder()
        .operation_timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(3)))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    let mut sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err("config key region: missing (set it, or the environment variable REGION or AWS_REGION)".into());
    }
    if let Some(role) = &config.aws_role_arn {
        let assumed = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("krakend-kafka")
            .configure(&sdk)
            .build()
            .await;
        sdk = sdk.into_builder().credentials_provider(SharedCredentialsProvider::new(assumed)).build();
    }
    Ok(sdk)
}
