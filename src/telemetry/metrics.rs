//! The core's metrics: what requests were answered, per topic and status; how long the broker took to
//! acknowledge; what was produced; the schema cache and the registry calls; librdkafka's own figures
//! (src/kafka/statistics.rs); and the counts of the rules that refuse or replay a request. One set per process,
//! whatever the number of backends, encoded by `GET /metrics` (src/telemetry/listener.rs) in Prometheus' text
//! format or OpenMetrics'.
//!
//! A caller chooses the topic (the last segment of the URL path): the first `MAX_TOPICS` topics served
//! (allowed, and with a schema) get a label value of their own, later ones are counted under `_other`, as
//! are the requests to a topic that is not served, so no caller can make the series, and the memory they
//! take, grow without bound, nor use up the labels of the topics to come. A known topic's label costs a
//! read lock and no allocation.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Topics with a label value of their own; later topics are counted under [`OTHER`].
pub const MAX_TOPICS: usize = 1000;
/// The topic label of the topics past [`MAX_TOPICS`].
pub const OTHER: &str = "_other";
/// The topic label of a request answered before its topic was read: a malformed request, or a backend
/// that is misconfigured or still opening.
pub const NO_TOPIC: &str = "_none";

/// From a record acknowledged out of librdkafka's buffer on loopback to one that waited out a slow
/// cluster: 0.5 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A label value shared by every series that carries it.
pub type Label = Arc<String>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    topic: Label,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    topic: Label,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    registry: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClientLabels {
    pub client: Label,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BrokerLabels {
    pub client: Label,
    pub broker: Label,
}

type Seconds = Gauge<f64, AtomicU64>;

pub struct Metrics {
    registry: Registry,
    topics: RwLock<HashMap<Box<str>, Label>>,
    other: Label,
    no_topic: Label,
    requests: Family<RequestLabels, Counter>,
    latency: Histogram,
    records: Family<TopicLabels, Counter>,
    bytes: Family<TopicLabels, Counter>,
    schema_hits: Counter,
    schema_misses: Counter,
    schema_refresh_failures: Counter,
    registry_calls: Family<RegistryLabels, Counter>,
    refusals: Family<TopicLabels, Counter>,
    replays: Family<TopicLabels, Counter>,
    unacknowledged: Family<ResultLabels, Counter>,
    pub queue_messages: Family<ClientLabels, Gauge>,
    pub queue_bytes: Family<ClientLabels, Gauge>,
    pub broker_up: Family<BrokerLabels, Gauge>,
    pub broker_rtt_avg: Family<BrokerLabels, Seconds>,
    pub broker_rtt_p99: Family<BrokerLabels, Seconds>,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("krakend_kafka");
        let m = Metrics {
            topics: RwLock::default(),
            other: Arc::new(OTHER.into()),
            no_topic: Arc::new(NO_TOPIC.into()),
            requests: Family::default(),
            latency: Histogram::new(LATENCY_BUCKETS),
            records: Family::default(),
            bytes: Family::default(),
            schema_hits: Counter::default(),
            schema_misses: Counter::default(),
            schema_refresh_failures: Counter::default(),
            registry_calls: Family::default(),
            refusals: Family::default(),
            replays: Family::default(),
            unacknowledged: Family::default(),
            queue_messages: Family::default(),
            queue_bytes: Family::default(),
            broker_up: Family::default(),
            broker_rtt_avg: Family::default(),
            broker_rtt_p99: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("requests", "Requests answered, by topic and HTTP status", m.requests.clone());
        r.register_with_unit(
            "publish_latency",
            "From a request's arrival in the core to the broker's acknowledgement of its record",
            Unit::Seconds,
            m.latency.clone(),
        );
        r.register("produced_records", "Records the broker acknowledged, by topic", m.records.clone());
        r.register("produced_bytes", "Bytes of the values the broker acknowledged, by topic", m.bytes.clone());
        r.register("schema_cache_hits", "Requests whose topic's schema was in the cache", m.schema_hits.clone());
        r.register("schema_cache_misses", "Requests that waited for the schema registry", m.schema_misses.clone());
        r.register(
            "schema_cache_refresh_failures",
            "Fetches of a cached topic's next schema that failed (the last one was kept)",
            m.schema_refresh_failures.clone(),
        );
        r.register("registry_calls", "Schema registry calls, by registry kind and result", m.registry_calls.clone());
        r.register(
            "backpressure_refusals",
            "Requests refused 429 at once: the backend, or librdkafka's queue, held its limit; by topic",
            m.refusals.clone(),
        );
        r.register(
            "idempotency_replays",
            "Requests not published because they repeat an earlier one's Idempotency-Key, by topic",
            m.replays.clone(),
        );
        r.register(
            "fire_and_forget_deliveries",
            "Outcomes of records answered 202 before the broker's acknowledgement, by topic and result",
            m.unacknowledged.clone(),
        );
        r.register(
            "producer_queue_messages",
            "Records librdkafka holds, not yet acknowledged",
            m.queue_messages.clone(),
        );
        r.register("producer_queue_bytes", "Bytes of the records librdkafka holds", m.queue_bytes.clone());
        r.register("broker_up", "1 while the connection to the broker is up, per client", m.broker_up.clone());
        r.register_with_unit(
            "broker_rtt_avg",
            "Broker round-trip time, average",
            Unit::Seconds,
            m.broker_rtt_avg.clone(),
        );
        r.register_with_unit(
            "broker_rtt_p99",
            "Broker round-trip time, 99th percentile",
            Unit::Seconds,
            m.broker_rtt_p99.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The label `topic` has, or `_other`: a topic takes one of its own only once it is served.
    fn known(&self, topic: &str) -> Label {
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(topics.get(topic).unwrap_or(&self.other))
    }

    /// The label value of `topic`: its own among the first `MAX_TOPICS` topics, `_other` past them.
    pub fn topic(&self, topic: &str) -> Label {
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(label) = topics.get(topic) {
            return Arc::clone(label);
        }
        // Past the bound, an unknown topic takes no write lock.
        if topics.len() >= MAX_TOPICS {
            return Arc::clone(&self.other);
        }
        drop(topics);
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        if topics.len() >= MAX_TOPICS {
            return Arc::clone(&self.other);
        }
        Arc::clone(topics.entry(topic.into()).or_insert_with(|| Arc::new(topic.to_owned())))
    }

    /// The exposition: OpenMetrics' text format, or Prometheus' (0.0.4).
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut text = String::with_capacity(16 * 1024);
        let encoded = match openmetrics {
            true => prometheus_client::encoding::text::encode(&mut text, &self.registry),
            false => prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry),
        };
        // Writing to a String fails only if a label or metric fails to encode, which none of ours can.
        encoded.expect("the metrics encode into a String");
        text
    }
}

/// What one request met on its way, from its arrival in the core to its final outcome: written once,
/// when the outcome comes (src/pipeline/trip.rs).
pub struct Answered<'a> {
    /// `None`: answered before its topic was read.
    pub topic: Option<&'a str>,
    pub status: u16,
    /// From the request's arrival to the broker's acknowledgement, for a request answered 200.
    pub latency: Option<Duration>,
    /// What the schema cache held for its topic, when it was asked.
    pub schema: Option<SchemaLookup>,
    /// Not published: it repeats an earlier request's Idempotency-Key.
    pub replayed: bool,
    /// Refused 429 at once, in whole or for a record of its batch.
    pub refused: bool,
}

/// Counts a request by what it met.
pub fn answered(request: &Answered<'_>) {
    let m = metrics();
    let topic = match request.topic {
        Some(topic) => m.known(topic),
        None => Arc::clone(&m.no_topic),
    };
    match request.schema {
        Some(SchemaLookup::Hit) => m.schema_hits.inc(),
        Some(SchemaLookup::Miss) => m.schema_misses.inc(),
        None => 0,
    };
    if let Some(latency) = request.latency {
        m.latency.observe(latency.as_secs_f64());
    }
    if request.replayed {
        m.replays.get_or_create(&TopicLabels { topic: Arc::clone(&topic) }).inc();
    }
    if request.refused {
        m.refusals.get_or_create(&TopicLabels { topic: Arc::clone(&topic) }).inc();
    }
    m.requests.get_or_create(&RequestLabels { topic, status: request.status }).inc();
}

/// Gives `topic`, which is served (allowed, with a schema), a label of its own while there are labels left.
pub fn served(topic: &str) {
    metrics().topic(topic);
}

/// Counts a record of `topic` with a value of `bytes` that the broker acknowledged.
pub fn produced(topic: &str, bytes: usize) {
    let m = metrics();
    let labels = TopicLabels { topic: m.topic(topic) };
    m.records.get_or_create(&labels).inc();
    m.bytes.get_or_create(&labels).inc_by(bytes as u64);
}

/// What a request found in the schema cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaLookup {
    /// The topic's schema was at hand (fresh, or due for a refresh in the background).
    Hit,
    /// The request waited for the registry.
    Miss,
}

/// Counts a refresh of a cached topic's schema that failed: its last schema is kept.
pub fn schema_refresh_failed() {
    metrics().schema_refresh_failures.inc();
}

/// Counts a call to a registry of kind `registry` (`glue`, `confluent`) that ended with `result` (`ok`,
/// `not_found`, `refused`, `unavailable`).
pub fn registry_call(registry: &'static str, result: &'static str) {
    metrics().registry_calls.get_or_create(&RegistryLabels { registry, result }).inc();
}

/// Counts the delivery outcome of a record of `topic` answered 202 before the broker's acknowledgement
/// (fire_and_forget).
pub fn unacknowledged(topic: &str, ok: bool) {
    let m = metrics();
    let result = if ok { "ok" } else { "failed" };
    m.unacknowledged.get_or_create(&ResultLabels { topic: m.topic(topic), result }).inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the series `name{labels}` in the exposition, if it is there.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn the_topic_label_is_bounded() {
        let m = Metrics::new();
        let first = m.topic("orders");
        assert!(Arc::ptr_eq(&first, &m.topic("orders")), "a known topic's label is shared, not made again");
        for i in 1..MAX_TOPICS {
            assert_eq!(m.topic(&format!("t{i}")).as_str(), format!("t{i}"));
        }
        assert_eq!(m.topic("one-too-many").as_str(), OTHER);
        assert_eq!(m.topic("orders").as_str(), "orders", "topics seen before keep theirs");
        assert_eq!(m.topics.read().unwrap().len(), MAX_TOPICS);
    }

    fn request(topic: &str, status: u16) -> Answered<'_> {
        served(topic);
        Answered { topic: Some(topic), status, latency: None, schema: None, replayed: false, refused: false }
    }

    #[test]
    fn a_topic_takes_a_label_only_once_it_is_served() {
        let m = Metrics::new();
        assert_eq!(m.known("orders").as_str(), OTHER);
        assert!(m.topics.read().unwrap().is_empty(), "looking takes none");
        m.topic("orders");
        assert_eq!(m.known("orders").as_str(), "orders");
    }

    #[test]
    fn requests_count_their_status_and_acknowledged_ones_their_latency() {
        let topic = "metrics-unit-requests";
        let series = |status| format!("krakend_kafka_requests_total{{topic=\"{topic}\",status=\"{status}\"}}");
        let before = metrics().encode(false);
        let latency = value(&before, "krakend_kafka_publish_latency_seconds_count").unwrap_or(0.0);
        answered(&Answered { latency: Some(Duration::from_millis(3)), ..request(topic, 200) });
        answered(&request(topic, 400));
        answered(&request(topic, 400));
        answered(&Answered { topic: None, ..request(topic, 413) });
        produced(topic, 7);
        let after = metrics().encode(false);
        assert_eq!(value(&after, &series(200)), Some(1.0), "{after}");
        assert_eq!(value(&after, &series(400)), Some(2.0));
        assert!(value(&after, "krakend_kafka_requests_total{topic=\"_none\",status=\"413\"}") >= Some(1.0));
        let latency_after = value(&after, "krakend_kafka_publish_latency_seconds_count").unwrap();
        assert!(latency_after >= latency + 1.0, "{latency} -> {latency_after}");
        let produced = |name| value(&after, &format!("krakend_kafka_produced_{name}_total{{topic=\"{topic}\"}}"));
        assert_eq!((produced("records"), produced("bytes")), (Some(1.0), Some(7.0)));
    }

    #[test]
    fn the_counters_for_the_rest_of_the_api_are_in_the_exposition() {
        let topic = "metrics-unit-rest";
        answered(&Answered { refused: true, ..request(topic, 429) });
        answered(&Answered { replayed: true, ..request(topic, 200) });
        unacknowledged(topic, true);
        unacknowledged(topic, false);
        unacknowledged(topic, false);
        let text = metrics().encode(true);
        for (series, n) in [
            (format!("krakend_kafka_backpressure_refusals_total{{topic=\"{topic}\"}}"), 1.0),
            (format!("krakend_kafka_idempotency_replays_total{{topic=\"{topic}\"}}"), 1.0),
            (format!("krakend_kafka_fire_and_forget_deliveries_total{{topic=\"{topic}\",result=\"ok\"}}"), 1.0),
            (format!("krakend_kafka_fire_and_forget_deliveries_total{{topic=\"{topic}\",result=\"failed\"}}"), 2.0),
        ] {
            assert_eq!(value(&text, &series), Some(n), "{series}: {text}");
        }
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    }
}
