//! One publisher per configuration: the producer, the Glue client and the schema cache, shared by every
//! request and every handle opened with the same configuration.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

use crate::config::Config;
use crate::outcome::{Failure, Outcome};
use crate::producer::Producer;
use crate::registry::{Glue, SchemaCache};
use crate::{request, runtime};

pub struct Publisher {
    producer: Producer,
    schemas: SchemaCache<Glue>,
    timeout: Duration,
}

/// Publishers alive in this process, by configuration: KrakenD builds a client per backend, and every
/// backend with the same configuration must share one producer.
static SHARED: Mutex<Vec<(Config, Weak<Publisher>)>> = Mutex::new(Vec::new());

impl Publisher {
    /// Needs no broker or registry to be up: the producer connects in the background.
    fn new(config: Config) -> Result<Publisher, String> {
        let glue = runtime::runtime().block_on(glue_client(&config))?;
        let producer = runtime::with_signals_blocked(|| Producer::new(&config.kafka))?;
        Ok(Publisher {
            producer,
            schemas: SchemaCache::new(
                Glue::new(glue, config.registry_name.clone()),
                config.message_types.clone(),
                config.schema_ttl,
                config.schema_miss_ttl,
            ),
            timeout: config.timeout,
        })
    }

    /// The publisher for `config`: the live one with the same configuration, or a new one, warmed up.
    pub fn shared(config: Config) -> Result<Arc<Publisher>, String> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        shared.retain(|(_, p)| p.strong_count() > 0);
        if let Some(p) = shared
            .iter()
            .find(|(c, _)| *c == config)
            .and_then(|(_, p)| p.upgrade())
        {
            return Ok(p);
        }
        let publisher = Arc::new(Publisher::new(config.clone())?);
        shared.push((config, Arc::downgrade(&publisher)));
        let warming = Arc::downgrade(&publisher);
        let timeout = publisher.timeout;
        runtime::runtime().spawn_blocking(move || {
            if let Some(p) = warming.upgrade() {
                p.producer.warm_up(timeout)
            }
        });
        Ok(publisher)
    }

    /// Validates `request` (the seed's JSON envelope), encodes its body with the topic's schema and
    /// waits until the broker acknowledged the record. Blocks the calling thread; never panics on input.
    pub fn publish(&self, request: &[u8]) -> Outcome {
        let request = request::parse(request)?;
        let codec = match self.schemas.fresh(&request.topic) {
            Some(codec) => codec?,
            // A miss runs on the runtime's own threads: they have the signal mask and the stack for it.
            None => self.on_runtime(self.schemas.get(&request.topic))?,
        };
        let value = codec.encode(request.body)?;
        let send = self.producer.send(
            &request.topic,
            request.key.as_deref(),
            &request.headers,
            &value,
        );
        self.on_runtime(send)
    }

    /// Runs `work` to completion within the request budget.
    fn on_runtime<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let budget = self.timeout;
        runtime::runtime().block_on(async {
            tokio::time::timeout(budget, work)
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::timeout(format!(
                        "no answer within the request timeout of {} ms",
                        budget.as_millis()
                    )))
                })
        })
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Records already accepted get the request budget to reach the broker before the process goes.
        let _ = self.producer.flush(self.timeout);
    }
}

async fn glue_client(config: &Config) -> Result<aws_sdk_glue::Client, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .operation_timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(3)))
            .build(),
    );
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &config.glue_endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return Err(
            "config key region: missing (set it, or the environment variable REGION or AWS_REGION)"
                .into(),
        );
    }
    Ok(aws_sdk_glue::Client::new(&sdk))
}
