//! A front end of a test's own (the rig's gateway loading the real plugin, or `krakend-kafka serve` with
//! the same backends as routes), the bounded load the fault suite sends through it, and the broker's
//! crash and restart by the services' script.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{unique, var};

/// The front end a test case goes through; the same pipeline is behind each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// The rig's KrakenD loading the plugin.
    Plugin,
    /// `krakend-kafka serve`, a route per endpoint of the gateway config.
    Service,
}

impl Front {
    /// Starts this front end with the endpoints of `config` (a [`gateway_config`]) and waits until it
    /// serves.
    pub fn start(self, config: Value) -> Gateway {
        match self {
            Front::Plugin => Gateway::start(config),
            Front::Service => {
                let mut service = Gateway::spawn_service(&config);
                service.wait_serving();
                service
            }
        }
    }

    /// Starts this front end with the endpoints of `config`, without waiting for it.
    pub fn spawn(self, config: Value) -> Gateway {
        match self {
            Front::Plugin => Gateway::spawn(&var("KK_KRAKEND_RIG_BIN"), config, Some(&var("KK_PLUGIN"))),
            Front::Service => Gateway::spawn_service(&config),
        }
    }
}

/// Declares a test case run once through each front end, as `name::plugin` and `name::service`:
/// `each_front! { #[ignore = "..."] fn name(front) { ... front.start(config) ... } }`.
#[macro_export]
macro_rules! each_front {
    ($(#[$attr:meta])* fn $name:ident($front:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn case($front: $crate::common::gateway::Front) $body
            $(#[$attr])* #[test] fn plugin() { case($crate::common::gateway::Front::Plugin) }
            $(#[$attr])* #[test] fn service() { case($crate::common::gateway::Front::Service) }
        }
    };
}

pub struct Gateway {
    child: Child,
    /// host:port of its HTTP listener
    pub address: String,
    /// host:port of its Go profiles (the plugin's gateway only)
    profiles: Option<String>,
    log: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A gateway config with one endpoint per entry of `endpoints` (its path, the plugin's block), all with
/// the endpoint timeout `timeout`.
pub fn gateway_config(timeout: &str, endpoints: &[(&str, Value)]) -> Value {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(path, plugin)| {
            json!({
                "endpoint": path, "method": "POST", "timeout": timeout, "output_encoding": "no-op",
                "input_headers": ["Message-Key", "Message-Headers", "Content-Type", "Traceparent", "Tracestate", "Idempotency-Key"],
                "backend": [{
                    "host": ["http://krakend-kafka-plugin-not-loaded.invalid"], "url_pattern": "/{topic}",
                    "method": "POST", "encoding": "no-op",
                    "extra_config": {"plugin/http-client": {"name": "krakend-kafka", "krakend-kafka": plugin}}
                }]
            })
        })
        .collect();
    json!({
        "version": 3, "listen_ip": "127.0.0.1", "timeout": timeout,
        "plugin": {"pattern": "krakend-kafka.so", "folder": ""},
        "endpoints": endpoints,
    })
}

impl Gateway {
    /// Starts the rig's gateway with `config` (its port and plugin folder set here) and waits until it
    /// serves with the plugin loaded.
    pub fn start(config: Value) -> Gateway {
        let mut gateway = Gateway::spawn(&var("KK_KRAKEND_RIG_BIN"), config, Some(&var("KK_PLUGIN")));
        gateway.wait_serving();
        assert!(gateway.log().contains("Total plugins loaded: 1"), "{}", gateway.log());
        gateway
    }

    /// Starts `binary run` with `config`, its port set here and `plugin` (if any) alone in its plugin
    /// folder, without waiting for it.
    pub fn spawn(binary: &str, config: Value, plugin: Option<&str>) -> Gateway {
        Gateway::spawn_with_env(binary, config, plugin, &[])
    }

    /// `spawn`, with the test's environment changed for this process alone: each variable set to its
    /// value, or removed where it has none.
    pub fn spawn_with_env(
        binary: &str,
        mut config: Value,
        plugin: Option<&str>,
        env: &[(&str, Option<&str>)],
    ) -> Gateway {
        let dir = std::env::temp_dir().join(unique("gateway"));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        config["port"] = json!(port);
        if let Some(plugin) = plugin {
            let folder = PathBuf::from(plugin).parent().unwrap().display().to_string();
            config["plugin"]["folder"] = json!(format!("{folder}/"));
        }
        std::fs::write(dir.join("krakend.json"), config.to_string()).unwrap();
        let log = dir.join("krakend.log");
        let profiles = format!("127.0.0.1:{}", free_port());
        // One open file for both streams: two would each write at their own offset, over each other.
        let output = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(binary);
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let child = command
            .args(["run", "-c"])
            .arg(dir.join("krakend.json"))
            .env("KK_RIG_PPROF", &profiles)
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        Gateway { child, address: format!("127.0.0.1:{port}"), profiles: Some(profiles), log }
    }

    /// Starts `krakend-kafka serve` with a route per endpoint of `config` (the path up to `{topic}`, the
    /// plugin's block), without waiting for it.
    fn spawn_service(config: &Value) -> Gateway {
        let routes: Vec<Value> = config["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|endpoint| {
                let path = endpoint["endpoint"].as_str().unwrap();
                let prefix = path.split_once('{').map_or(path, |(prefix, _)| prefix);
                let plugin = &endpoint["backend"][0]["extra_config"]["plugin/http-client"]["krakend-kafka"];
                json!({"prefix": prefix, "krakend-kafka": plugin})
            })
            .collect();
        Gateway::spawn_serve(json!({"routes": routes}))
    }

    /// Starts `krakend-kafka serve` with the service config `config` (its listen address set here) and
    /// waits until it serves.
    pub fn service(config: Value) -> Gateway {
        let mut service = Gateway::spawn_serve(config);
        service.wait_serving();
        service
    }

    fn spawn_serve(mut config: Value) -> Gateway {
        let dir = std::env::temp_dir().join(unique("service"));
        std::fs::create_dir_all(&dir).unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        config["listen"] = json!(address);
        let file = dir.join("service.json");
        std::fs::write(&file, config.to_string()).unwrap();
        let log = dir.join("service.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_krakend-kafka"))
            .args(["serve", "-c"])
            .arg(&file)
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        Gateway { child, address, profiles: None, log }
    }

    /// Waits until the gateway answers `/__health`; fails the test if it exits first.
    pub fn wait_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = super::http_request(&self.address, "GET", "/__health", &[], b"") {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the gateway exited ({status}): {}", self.log());
            }
            assert!(Instant::now() < deadline, "the gateway did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One request to the plugin's endpoint for `topic`: its status and the plugin's JSON answer (the
    /// plugin answered, not the gateway: its statusCode is the HTTP status).
    pub fn send(&self, topic: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        let (answer, json) = self.answer(topic, headers, body);
        (answer.status, json)
    }

    /// `send`, with the answer's HTTP headers.
    pub fn answer(&self, topic: &str, headers: &[(&str, &str)], body: &str) -> (super::HttpAnswer, Value) {
        let path = format!("/v1/event/{topic}");
        let answer = super::http_answer(&self.address, "POST", &path, headers, body.as_bytes()).unwrap();
        let json: Value = serde_json::from_str(&answer.body)
            .unwrap_or_else(|_| panic!("{}: not the plugin's JSON: {}", answer.status, answer.body));
        assert_eq!(json["statusCode"], answer.status.to_string(), "{json}");
        (answer, json)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill takes no pointers.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// How many goroutines the gateway runs, from its Go profile.
    pub fn goroutines(&self) -> usize {
        let profiles = self.profiles.as_deref().expect("the plugin's gateway has Go profiles");
        let (status, text) = super::http_request(profiles, "GET", "/debug/pprof/goroutine?debug=1", &[], b"").unwrap();
        assert_eq!(status, 200, "{text}");
        // "goroutine profile: total 17"
        text.lines().next().and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse().ok()).expect("a goroutine count")
    }

    /// How many files (connections among them) the process holds open.
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).unwrap().count()
    }

    /// The gateway's resident memory, in kB.
    pub fn rss_kb(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one request of a load got: the status and the response body, or the error that ended it
/// before an answer (the connection refused or reset).
#[derive(Debug)]
pub struct Sent {
    pub id: usize,
    pub answer: Result<(u16, String), std::io::ErrorKind>,
    pub started: Instant,
    pub answered: Instant,
}

/// How many requests of a load have their answer, for a test to act at a point of the load.
#[derive(Default)]
pub struct Progress {
    answered: Mutex<usize>,
    changed: Condvar,
}

impl Progress {
    fn tick(&self) {
        *self.answered.lock().unwrap() += 1;
        self.changed.notify_all();
    }

    /// How many requests have their answer so far.
    pub fn answered(&self) -> usize {
        *self.answered.lock().unwrap()
    }

    /// Waits until `n` requests have their answer.
    pub fn wait_for(&self, n: usize) {
        let answered = self.answered.lock().unwrap();
        drop(self.changed.wait_while(answered, |a| *a < n).unwrap());
    }
}

/// How the clients of a load connect.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// A connection per request, as many callers would.
    PerRequest,
    /// One connection per client, kept alive: for loads too long for a connection per request.
    KeptAlive,
}

/// Sends requests 0..total from `clients` concurrent clients connecting as `connections` says:
/// `request(id)` gives its path, headers and body. Returns every request's outcome, by id.
pub fn load(
    address: &str,
    connections: Connections,
    clients: usize,
    total: usize,
    request: impl Fn(usize) -> (String, Vec<(String, String)>, String) + Sync,
    progress: &Progress,
) -> Vec<Sent> {
    let next = AtomicUsize::new(0);
    let mut sent: Vec<Sent> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut kept =
                        (connections == Connections::KeptAlive).then(|| super::Connection::open(address).unwrap());
                    let mut mine = Vec::new();
                    loop {
                        let id = next.fetch_add(1, Ordering::SeqCst);
                        if id >= total {
                            return mine;
                        }
                        let (path, headers, body) = request(id);
                        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (&**k, &**v)).collect();
                        let started = Instant::now();
                        let answer = match &mut kept {
                            Some(connection) => connection.post(&path, &headers, body.as_bytes()),
                            None => super::http_request(address, "POST", &path, &headers, body.as_bytes()),
                        };
                        mine.push(Sent { id, answer: answer.map_err(|e| e.kind()), started, answered: Instant::now() });
                        progress.tick();
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    sent.sort_by_key(|s| s.id);
    sent
}

/// The statuses of a load, counted ("error" for a request that got none).
pub fn tally(sent: &[Sent]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for s in sent {
        let status = s.answer.as_ref().map(|(status, _)| status.to_string()).unwrap_or_else(|_| "error".into());
        *counts.entry(status).or_default() += 1;
    }
    counts
}

fn services(command: &str) {
    let status = Command::new(super::SERVICES).args([command, "test"]).status().unwrap();
    assert!(status.success(), "services.sh {command} test: {status}");
}

/// SIGKILLs the test broker and returns once it is gone; its data stays.
pub fn crash_broker() {
    services("crash")
}

/// Starts the test broker again on its data and returns once it serves.
pub fn resume_broker() {
    services("resume")
}
