//! The metrics the core serves on `metrics_address`, scraped and read by the Prometheus project's own
//! parser (tests/services/prometheus_parse.py).

use serde_json::{json, Value};

/// An address on loopback nobody listens on yet, for a gateway's `metrics_address`.
pub fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A scrape, as the Prometheus client's parser reads it.
pub struct Scrape(Vec<Value>);

impl Scrape {
    /// Scrapes `address` as a Prometheus server does (OpenMetrics) or as curl does (Prometheus' text).
    pub fn take(address: &str, openmetrics: bool) -> Scrape {
        let accept = match openmetrics {
            true => "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            false => "*/*",
        };
        let (status, text) = super::http_request(address, "GET", "/metrics", &[("Accept", accept)], b"").unwrap();
        assert_eq!(status, 200, "{text}");
        let format = if openmetrics { "openmetrics" } else { "text" };
        Scrape(serde_json::from_str(&super::services("prometheus-parse", &[format], &text)).unwrap())
    }

    /// The value of the sample `name` whose labels are exactly `labels`; 0 when there is none.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let found = self.0.iter().find(|s| s["name"] == name && s["labels"].as_object() == Some(&wanted));
        found.map_or(0.0, |s| s["value"].as_f64().unwrap())
    }

    /// The samples named `name`, with their labels.
    pub fn samples(&self, name: &str) -> Vec<(serde_json::Map<String, Value>, f64)> {
        let of = |s: &Value| (s["labels"].as_object().unwrap().clone(), s["value"].as_f64().unwrap());
        self.0.iter().filter(|s| s["name"] == name).map(of).collect()
    }

    pub fn family_type(&self, family: &str) -> Option<&str> {
        self.0.iter().find(|s| s["family"] == family).and_then(|s| s["type"].as_str())
    }
}
