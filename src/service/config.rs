//! The service's configuration file: where it listens, and its routes, each a path prefix with the same
//! JSON object as a plugin backend's `krakend-kafka` block. Read as strictly as the plugin reads its own:
//! an unknown key, a route that can never be reached or a backend the core refuses stops the start.

use std::net::SocketAddr;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Loopback unless the file says otherwise: the service authenticates no caller.
const LISTEN: &str = "127.0.0.1:8082";
/// Far above what a gateway in front opens; past it connections wait in the listen queue.
const MAX_CONNECTIONS: usize = 4096;

pub struct ServiceConfig {
    pub listen: SocketAddr,
    pub max_connections: usize,
    pub routes: Vec<Route>,
}

pub struct Route {
    /// What it serves: ending with `/`, each path of one more segment (`/v1/event/` serves
    /// `/v1/event/{topic}`); else that path alone (as a plugin endpoint without `{topic}`). The topic is
    /// the path's last segment, unless the backend fixes it.
    pub prefix: String,
    /// The backend's JSON, as a plugin backend's `krakend-kafka` block holds it.
    pub backend: Box<RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    max_connections: Option<usize>,
    routes: Vec<RawRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    #[serde(rename = "krakend-kafka")]
    backend: Box<RawValue>,
}

impl ServiceConfig {
    /// The configuration in `json`, or what is wrong with it, naming the key.
    pub fn parse(json: &[u8]) -> Result<ServiceConfig, String> {
        let raw: Raw = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(json))
            .map_err(|e| format!("config key {}: {}", e.path(), e.inner()))?;
        let listen = raw.listen.as_deref().unwrap_or(LISTEN);
        let listen = listen.parse().map_err(|_| format!("config key listen: {listen} is no address:port"))?;
        let max_connections = match raw.max_connections {
            Some(0) => return Err("config key max_connections: at least 1".into()),
            n => n.unwrap_or(MAX_CONNECTIONS),
        };
        if raw.routes.is_empty() {
            return Err("config key routes: empty: the service would answer nothing".into());
        }
        let mut routes = Vec::with_capacity(raw.routes.len());
        for (i, route) in raw.routes.into_iter().enumerate() {
            let prefix = route.prefix;
            if !prefix.starts_with('/') || prefix.contains("//") {
                return Err(format!(
                    "config key routes[{i}].prefix: {prefix:?} must start with / and hold no // (as /v1/event/)"
                ));
            }
            if routes.iter().any(|r: &Route| r.prefix == prefix) {
                return Err(format!("config key routes[{i}].prefix: {prefix} is given twice"));
            }
            routes.push(Route { prefix, backend: route.backend });
        }
        // The longest prefix first, so that a request goes to the most specific route.
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(ServiceConfig { listen, max_connections, routes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_defaults() {
        let config = ServiceConfig::parse(
            br#"{"routes":[{"prefix":"/v1/","krakend-kafka":{"a":1}},{"prefix":"/v1/batch/","krakend-kafka":{}},
                {"prefix":"/v1/fixed","krakend-kafka":{}}]}"#,
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:8082".parse().unwrap());
        assert_eq!(config.max_connections, MAX_CONNECTIONS);
        let prefixes: Vec<_> = config.routes.iter().map(|r| r.prefix.as_str()).collect();
        assert_eq!(prefixes, ["/v1/batch/", "/v1/fixed", "/v1/"], "the most specific first");
        assert_eq!(config.routes[2].backend.get(), r#"{"a":1}"#);
    }

    #[test]
    fn mistakes_are_named() {
        for (json, error) in [
            (r#"{"routes":[]}"#, "config key routes: empty"),
            (r#"{"route":[]}"#, "config key route: unknown field"),
            (r#"{"listen":"8082","routes":[]}"#, "config key listen: 8082 is no address:port"),
            (r#"{"max_connections":0,"routes":[]}"#, "config key max_connections: at least 1"),
            (r#"{"routes":[{"prefix":"v1/","krakend-kafka":{}}]}"#, "config key routes[0].prefix: \"v1/\" must start"),
            (
                r#"{"routes":[{"prefix":"/v1//","krakend-kafka":{}}]}"#,
                "config key routes[0].prefix: \"/v1//\" must start",
            ),
            (
                r#"{"routes":[{"prefix":"/a/","krakend-kafka":{}},{"prefix":"/a/","krakend-kafka":{}}]}"#,
                "routes[1].prefix: /a/ is given twice",
            ),
            (r#"{"routes":[{"prefix":"/a/"}]}"#, "config key routes[0]: missing field `krakend-kafka`"),
            (r#"{"routes":[{"prefix":"/a/","krakend-kafka":{},"x":1}]}"#, "config key routes[0].x: unknown field"),
        ] {
            let got = ServiceConfig::parse(json.as_bytes()).err().unwrap_or_else(|| panic!("{json} accepted"));
            assert!(got.contains(error), "{json}: {got}");
        }
    }
}
