//! JWT validation through the real gateway: the gateway binary (KK_KRAKEND_BIN) with krakend-jose as
//! KrakenD CE wires it, in front of the real plugin (KK_PLUGIN) publishing to the test services. The test
//! serves the JWKS on loopback itself and starts its own gateway with `tests/e2e/krakend-jwt.json`.
//! `make test` runs it with the services up.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::jwt::{claims, jwks, token, SECRET};
use common::*;
use rdkafka::message::Message;
use serde_json::{json, Value};

const SCHEMA: &str = r#"syntax = "proto3";
package jwt;
message Event { string id = 1; }"#;

/// Serves `{"keys": [the oct key]}` on 127.0.0.1 to any request, for the life of the test process.
fn serve_jwks() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let jwks = jwks().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{jwks}",
                jwks.len()
            );
        }
    });
    url
}

/// The gateway process, killed when the test ends, also when it fails.
struct Gateway {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Starts the gateway with `config` in build/ (where ./plugins/ is) and waits until it serves.
    fn start(config: &Value) -> Gateway {
        let dir = std::env::temp_dir().join(unique("gateway-auth"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("krakend.json");
        std::fs::write(&path, serde_json::to_string_pretty(config).unwrap()).unwrap();
        let log = dir.join("krakend.log");
        let plugin = PathBuf::from(var("KK_PLUGIN"));
        let build = plugin.parent().and_then(Path::parent).expect("KK_PLUGIN is build/plugins/<name>.so");
        let child = Command::new(var("KK_KRAKEND_BIN"))
            .args(["run", "-c", path.to_str().unwrap()])
            .current_dir(build)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::from(std::fs::File::options().append(true).open(&log).unwrap()))
            .spawn()
            .unwrap();
        let mut gateway = Gateway { child, address: format!("127.0.0.1:{}", config["port"]), log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = gateway.child.try_wait().unwrap() {
                panic!("the gateway exited ({status}):\n{}", gateway.log());
            }
            if matches!(gateway.try_request("GET", "/__health", &[], b""), Ok((200, _))) {
                break;
            }
            assert!(Instant::now() < deadline, "the gateway did not serve /__health:\n{}", gateway.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(gateway.log().contains("Total plugins loaded: 1"), "the plugin was not loaded:\n{}", gateway.log());
        gateway
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One HTTP/1.1 exchange: the status and the body.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\ngateway log:\n{}", self.log()))
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<(u16, String)> {
        http_request(&self.address, method, path, headers, body)
    }
}

/// A free port on 127.0.0.1 (free when asked; the gateway binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// tests/e2e/krakend-jwt.json with this test's port, JWKS and services.
fn config(jwks: &str) -> Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(format!("{root}/tests/e2e/krakend-jwt.json")).unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    config["port"] = json!(free_port());
    let endpoint = &mut config["endpoints"][0];
    if let Some(validator) = endpoint.pointer_mut("/extra_config/auth~1validator") {
        validator["jwk_url"] = json!(jwks);
    }
    let plugin = &mut endpoint["backend"][0]["extra_config"]["plugin/http-client"]["krakend-kafka"];
    plugin["bootstrap_servers"] = json!(bootstrap());
    plugin["glue_endpoint"] = json!(var("KK_GLUE_ENDPOINT"));
    config
}

#[test]
#[ignore = "needs the gateway binary, the plugin, Kafka and the Glue emulator: run `make test`"]
fn jwt_validation_guards_the_plugin_endpoint() {
    let topic = topic_with_schema("jwt", 1, SCHEMA);
    let gateway = Gateway::start(&config(&serve_jwks()));
    let path = format!("/v1/secure/{topic}");
    let body = json!({"id": "signed"}).to_string();
    let publish = |headers: &[(&str, &str)]| gateway.request("POST", &path, headers, body.as_bytes());

    let (status, answer) = publish(&[("Message-Key", "k")]);
    assert_eq!(status, 401, "no token: {answer}");
    let forged = format!("Bearer {}", token(&claims(&["publisher"], 600), b"another secret, not the JWKS's key"));
    let (status, answer) = publish(&[("Authorization", &forged)]);
    assert_eq!(status, 401, "bad signature: {answer}");
    let expired = format!("Bearer {}", token(&claims(&["publisher"], -600), SECRET));
    let (status, answer) = publish(&[("Authorization", &expired)]);
    assert_eq!(status, 401, "expired: {answer}");
    // krakend-jose answers a valid token without the endpoint's role 403
    let reader = format!("Bearer {}", token(&claims(&["reader"], 600), SECRET));
    let (status, answer) = publish(&[("Authorization", &reader)]);
    assert_eq!(status, 403, "without the role: {answer}");
    assert_eq!(record_count(&topic), 0, "a refused request published:\n{}", gateway.log());

    let good = format!("Bearer {}", token(&claims(&["reader", "publisher"], 600), SECRET));
    let (status, text) = publish(&[("Authorization", &good), ("Message-Key", "jwt-key")]);
    assert_eq!(status, 200, "{text}\n{}", gateway.log());
    // the plugin answered: the answer names the record on the topic
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["statusCode"], "200", "{answer}");
    let record = record_at(&topic, answer["partition"].as_i64().unwrap() as i32, answer["offset"].as_i64().unwrap());
    assert_eq!(record.key().unwrap(), b"jwt-key");
    assert_eq!(decode(SCHEMA, "jwt.Event", record.payload().unwrap()), json!({"id": "signed"}));
    assert_eq!(record_count(&topic), 1);
}
