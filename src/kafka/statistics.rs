//! librdkafka's statistics (`statistics.interval.ms`): every interval, each client reports its queue and
//! its brokers on its polling thread. They become gauges (src/telemetry/metrics.rs), and what readiness
//! (src/kafka/readiness.rs) needs: when the last report came and how many broker connections were up in it.
//! Only the figures used are read from librdkafka's JSON, which with many topics is large.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde::Deserialize;

use crate::telemetry::log;
use crate::telemetry::metrics::{metrics, BrokerLabels, ClientLabels, Label};

#[derive(Deserialize)]
struct Report {
    /// The client's name, `client.id#producer-N`.
    name: String,
    /// Records held (queued or in flight), and their bytes.
    msg_cnt: i64,
    msg_size: i64,
    #[serde(default)]
    brokers: HashMap<String, BrokerReport>,
}

#[derive(Deserialize)]
struct BrokerReport {
    /// `configured` (bootstrap), `learned` (from metadata), or `internal` (librdkafka's own, no connection).
    source: String,
    /// `UP` while connected; `INIT`, `CONNECT`, `DOWN`, `AUTH...` otherwise.
    state: String,
    rtt: Option<Window>,
}

/// A window of samples, in microseconds.
#[derive(Deserialize)]
struct Window {
    avg: i64,
    p99: i64,
    cnt: i64,
}

/// What a client's last report said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    pub at: Instant,
    /// Broker connections up.
    pub brokers_up: usize,
}

/// One client's figures.
#[derive(Default)]
pub struct ClientStats {
    last: Mutex<Option<Last>>,
}

struct Last {
    health: Health,
    client: Label,
    /// The brokers whose series this client set.
    brokers: Vec<Label>,
}

impl ClientStats {
    /// Reads one report of librdkafka's (its JSON) into the gauges and the client's health.
    pub fn report(&self, json: &[u8]) {
        let report: Report = match serde_json::from_slice(json) {
            Ok(report) => report,
            Err(e) => {
                log::once("statistics", format_args!("librdkafka's statistics could not be read: {e}"));
                return;
            }
        };
        let m = metrics();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = last.take();
        let client = match &previous {
            Some(p) if *p.client == report.name => Arc::clone(&p.client),
            _ => Arc::new(report.name),
        };
        let labels = ClientLabels { client: Arc::clone(&client) };
        m.queue_messages.get_or_create(&labels).set(report.msg_cnt);
        m.queue_bytes.get_or_create(&labels).set(report.msg_size);
        let (mut brokers, mut up) = (Vec::with_capacity(report.brokers.len()), 0);
        for (name, broker) in report.brokers.iter().filter(|(_, b)| b.source != "internal") {
            let known = previous.as_ref().and_then(|p| p.brokers.iter().find(|b| b.as_str() == name));
            let label = known.map_or_else(|| Arc::new(name.clone()), Arc::clone);
            let labels = BrokerLabels { client: Arc::clone(&client), broker: Arc::clone(&label) };
            let is_up = broker.state == "UP";
            up += usize::from(is_up);
            m.broker_up.get_or_create(&labels).set(i64::from(is_up));
            // A window without samples (no request went to the broker in it) says nothing of its time.
            if let Some(rtt) = broker.rtt.as_ref().filter(|w| w.cnt > 0) {
                m.broker_rtt_avg.get_or_create(&labels).set(rtt.avg as f64 / 1e6);
                m.broker_rtt_p99.get_or_create(&labels).set(rtt.p99 as f64 / 1e6);
            }
            brokers.push(label);
        }
        // A broker gone from the cluster, or a client renamed, leaves no series behind.
        if let Some(p) = previous {
            let renamed = p.client != client;
            let gone: Vec<Label> = p.brokers.into_iter().filter(|b| renamed || !brokers.contains(b)).collect();
            forget(&p.client, &gone, renamed);
        }
        *last = Some(Last { health: Health { at: Instant::now(), brokers_up: up }, client, brokers });
    }

    /// The client's name and what its last report said; `None` before its first report.
    pub fn health(&self) -> Option<(Label, Health)> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref().map(|l| (Arc::clone(&l.client), l.health))
    }
}

/// A client that goes (a producer closed, or replaced after a fatal error) leaves no series behind.
impl Drop for ClientStats {
    fn drop(&mut self) {
        if let Some(last) = self.last.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            forget(&last.client, &last.brokers, true);
        }
    }
}

/// Removes the series of `client`'s `brokers`, and with `whole` those of the client itself.
fn forget(client: &Label, brokers: &[Label], whole: bool) {
    let m = metrics();
    for broker in brokers {
        let labels = BrokerLabels { client: Arc::clone(client), broker: Arc::clone(broker) };
        m.broker_up.remove(&labels);
        m.broker_rtt_avg.remove(&labels);
        m.broker_rtt_p99.remove(&labels);
    }
    if whole {
        let labels = ClientLabels { client: Arc::clone(client) };
        m.queue_messages.remove(&labels);
        m.queue_bytes.remove(&labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as librdkafka 2.x writes it, cut down (the fields not read are ignored).
    fn report(name: &str, state: &str, learned: bool) -> String {
        let learned = match learned {
            true => {
                r#","127.0.0.1:9092/1": {"name": "127.0.0.1:9092/1", "nodeid": 1, "source": "learned",
                   "state": "UP", "stateage": 5000, "outbuf_cnt": 0,
                   "rtt": {"min": 180, "max": 2400, "avg": 450, "sum": 9000, "stddev": 10, "p50": 400, "p75": 500,
                           "p90": 600, "p95": 700, "p99": 2100, "p99_99": 2400, "outofrange": 0, "hdrsize": 11376,
                           "cnt": 20}}"#
            }
            false => "",
        };
        format!(
            r#"{{"name": "{name}", "client_id": "krakend-kafka", "type": "producer", "ts": 1, "time": 1,
               "age": 5000, "replyq": 0, "msg_cnt": 3, "msg_size": 120, "msg_max": 100000, "msg_size_max": 1073741824,
               "brokers": {{
                 ":0/internal": {{"name": ":0/internal", "nodeid": -1, "source": "internal", "state": "UP",
                                "rtt": {{"avg": 0, "p99": 0, "cnt": 0}}}},
                 "127.0.0.1:9092/bootstrap": {{"name": "127.0.0.1:9092/bootstrap", "nodeid": -1,
                   "source": "configured", "state": "{state}", "rtt": {{"avg": 0, "p99": 0, "cnt": 0}}}}
                 {learned}
               }},
               "topics": {{"orders": {{"partitions": {{"0": {{"msgq_cnt": 0}}}}}}}}}}"#
        )
    }

    fn broker(client: &str, broker: &str) -> BrokerLabels {
        BrokerLabels { client: Arc::new(client.into()), broker: Arc::new(broker.into()) }
    }

    #[test]
    fn a_report_becomes_gauges_and_health() {
        let (client, stats) = ("unit#producer-1", ClientStats::default());
        assert_eq!(stats.health(), None, "no report yet");
        stats.report(report(client, "DOWN", true).as_bytes());
        let (name, health) = stats.health().unwrap();
        assert_eq!((name.as_str(), health.brokers_up), (client, 1), "the internal broker is no connection");
        let m = metrics();
        let labels = ClientLabels { client: Arc::new(client.into()) };
        assert_eq!(
            (m.queue_messages.get_or_create(&labels).get(), m.queue_bytes.get_or_create(&labels).get()),
            (3, 120)
        );
        let learned = broker(client, "127.0.0.1:9092/1");
        assert_eq!(m.broker_up.get_or_create(&learned).get(), 1);
        assert_eq!(m.broker_rtt_avg.get_or_create(&learned).get(), 0.000450);
        assert_eq!(m.broker_rtt_p99.get_or_create(&learned).get(), 0.0021);
        let bootstrap = broker(client, "127.0.0.1:9092/bootstrap");
        assert_eq!(m.broker_up.get_or_create(&bootstrap).get(), 0);
        assert!(m.broker_rtt_avg.get(&bootstrap).is_none(), "a window without samples sets no time");
        assert!(m.broker_up.get(&broker(client, ":0/internal")).is_none());
    }

    #[test]
    fn brokers_and_clients_that_go_leave_no_series() {
        let (client, stats) = ("unit#producer-2", ClientStats::default());
        stats.report(report(client, "UP", true).as_bytes());
        let m = metrics();
        assert!(m.broker_up.get(&broker(client, "127.0.0.1:9092/1")).is_some());
        stats.report(report(client, "UP", false).as_bytes());
        assert!(m.broker_up.get(&broker(client, "127.0.0.1:9092/1")).is_none(), "gone from the cluster");
        assert_eq!(stats.health().unwrap().1.brokers_up, 1, "the bootstrap connection is up");
        drop(stats);
        assert!(m.broker_up.get(&broker(client, "127.0.0.1:9092/bootstrap")).is_none());
        assert!(m.queue_messages.get(&ClientLabels { client: Arc::new(client.into()) }).is_none());
    }

    #[test]
    fn a_report_that_cannot_be_read_changes_nothing() {
        let stats = ClientStats::default();
        stats.report(br#"{"name": "unit#producer-3", "msg_cnt": "many"}"#);
        assert_eq!(stats.health(), None);
    }
}
