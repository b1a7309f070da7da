//! MSK IAM tokens renewed under load, across several token lifetimes and the broker's forced
//! re-authentications (KIP-368): the IAMSHORT listener of `tests/services/services.sh` takes a token for
//! `KK_IAM_SHORT_TOKEN_S` after it was signed and makes each connection re-authenticate every 20 s; its
//! validator writes each verdict to `KK_IAM_SHORT_TRAIL`. The gateways get their credentials from the AWS
//! SDK's default chain, through its container provider (as on ECS or EKS), from a server of the test's
//! that hands out credentials expiring as the listener's tokens do, so each token lives that long.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::gateway::{gateway_config, Gateway};
use common::*;
use serde_json::json;

/// Serves the container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`) on loopback: the key
/// the broker's validator knows with `secret`, a session token numbered by the question, and an expiry
/// `lifetime` ahead. Counts the questions by path, one path per gateway.
struct CredentialServer {
    address: String,
    asked: Arc<Mutex<HashMap<String, usize>>>,
}

impl CredentialServer {
    fn start(lifetime: Duration, secret: &'static str) -> CredentialServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let asked = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let counts = asked.clone();
        // Lives as long as the test's process: its only test uses it throughout.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let n = {
                    let mut counts = counts.lock().unwrap();
                    let n = counts.entry(path).or_default();
                    *n += 1;
                    *n
                };
                let body = json!({
                    "AccessKeyId": "testing", "SecretAccessKey": secret, "Token": format!("session-{n}"),
                    "Expiration": iso8601(SystemTime::now() + lifetime),
                })
                .to_string();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(format!("{head}{body}").as_bytes());
            }
        });
        CredentialServer { address, asked }
    }

    fn uri(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn asked(&self, path: &str) -> usize {
        self.asked.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

/// `2026-12-07T17:01:02Z`, the form the container endpoint gives its expiry in.
fn iso8601(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The validator's verdicts written since `from` (a length of the trail file).
fn trail_since(from: u64) -> Vec<String> {
    let text = std::fs::read(var("KK_IAM_SHORT_TRAIL")).unwrap_or_default();
    String::from_utf8_lossy(&text[from as usize..]).lines().map(str::to_owned).collect()
}

fn trail_len() -> u64 {
    std::fs::metadata(var("KK_IAM_SHORT_TRAIL")).map(|m| m.len()).unwrap_or(0)
}

/// A gateway loading the plugin, its MSK IAM producer on the listener at `$listener`, whose AWS chain finds
/// only the container endpoint at `credentials`.
fn gateway(listener: &str, credentials: &str) -> Gateway {
    let mut backend = config_value(REGISTRY, json!({"timeout_ms": 5000}));
    backend["bootstrap_servers"] = json!(var(listener));
    backend["kafka"] = json!({"sasl.mechanism": "AWS_MSK_IAM", "ssl.ca.location": var("KK_TEST_CA")});
    let config = gateway_config("10s", &[("/v1/event/{topic}", backend)]);
    let env = [
        ("AWS_ACCESS_KEY_ID", None),
        ("AWS_SECRET_ACCESS_KEY", None),
        ("AWS_SESSION_TOKEN", None),
        ("AWS_PROFILE", None),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", Some(credentials)),
    ];
    let mut gateway = Gateway::spawn_with_env(&var("KK_KRAKEND_RIG_BIN"), config, Some(&var("KK_PLUGIN")), &env);
    gateway.wait_serving();
    assert!(gateway.log().contains("Total plugins loaded: 1"), "{}", gateway.log());
    gateway
}

fn body(text: &str) -> String {
    json!({ "some_message": text }).to_string()
}

#[test]
#[ignore = "needs the rig's gateway, Kafka's IAMSHORT listener and the Glue emulator: run `make test`"]
fn msk_iam_producers_publish_across_token_lifetimes_and_reauthentications_busy_or_idle() {
    let token = Duration::from_secs(var("KK_IAM_SHORT_TOKEN_S").parse().unwrap());
    let credentials = CredentialServer::start(token, "testing");
    let trail_from = trail_len();
    let topic = topic_with_schema("iam-renewal", 3, SEED_SCHEMA);
    let started = Instant::now();
    let busy = gateway("KK_IAM_SHORT_BOOTSTRAP", &credentials.uri("/busy"));
    let idle = gateway("KK_IAM_SHORT_BOOTSTRAP", &credentials.uri("/idle"));
    let path = format!("/v1/event/{topic}");
    let (status, answer) = idle.send(&topic, &[("Message-Key", "idle-0")], &body("idle-0"));
    assert_eq!(status, 200, "{answer}");

    // Two callers, a request each every 200 ms, for two token lifetimes and a margin; meanwhile the idle
    // gateway's token expires, and is renewed, with nothing to send.
    let until = started + 2 * token + Duration::from_secs(10);
    let sent: Vec<(String, u16, String)> = std::thread::scope(|s| {
        let callers: Vec<_> = (0..2)
            .map(|caller| {
                let (address, path) = (&busy.address, &path);
                s.spawn(move || {
                    let mut connection = Connection::open(address).unwrap();
                    let mut answers = Vec::new();
                    let mut next = Instant::now();
                    while Instant::now() < until {
                        let key = format!("busy-{caller}-{}", answers.len());
                        let (status, text) =
                            connection.post(path, &[("Message-Key", &key)], body(&key).as_bytes()).unwrap();
                        answers.push((key, status, text));
                        next += Duration::from_millis(200);
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                    answers
                })
            })
            .collect();
        callers.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    let idle_for = started.elapsed();
    let mut keys: Vec<String> = sent.iter().map(|(key, _, _)| key.clone()).collect();
    for n in 1..=3 {
        let key = format!("idle-{n}");
        let (status, answer) = idle.send(&topic, &[("Message-Key", &key)], &body(&key));
        assert_eq!(status, 200, "the idle gateway after {idle_for:?}: {answer}");
        keys.push(key);
    }
    keys.push("idle-0".into());

    let failed: Vec<_> = sent.iter().filter(|(_, status, _)| *status != 200).collect();
    let trail = trail_since(trail_from);
    let accepted: Vec<&str> = trail.iter().filter_map(|l| l.strip_prefix("accepted ")).collect();
    let tokens: BTreeSet<&str> = accepted.iter().filter_map(|l| l.split(' ').next()).collect();
    let refused: Vec<&String> = trail.iter().filter(|l| !l.starts_with("accepted ")).collect();
    println!(
        "{} requests over {:?} ({} token lifetimes), {} not 200; {} authentications accepted, {} distinct tokens, \
         {} refused; the chain asked {} times by the busy gateway, {} by the idle one, idle for {idle_for:?}",
        sent.len(),
        idle_for,
        idle_for.as_secs() / token.as_secs(),
        failed.len(),
        accepted.len(),
        tokens.len(),
        refused.len(),
        credentials.asked("/busy"),
        credentials.asked("/idle"),
    );
    assert!(failed.is_empty(), "{} of {} requests failed, the first: {:?}", failed.len(), sent.len(), failed[0]);
    assert!(refused.is_empty(), "the broker refused tokens: {refused:?}");
    // Each of the two gateways' connections re-authenticates every 20 s: far more than one per token.
    assert!(accepted.len() as u64 >= 2 * idle_for.as_secs() / 20, "authentications: {trail:?}");
    assert!(tokens.len() >= 3, "tokens: {tokens:?}");
    for path in ["/busy", "/idle"] {
        assert!(credentials.asked(path) >= 3, "{path} asked the chain {} times", credentials.asked(path));
    }
    for gateway in [&busy, &idle] {
        let log = gateway.log();
        assert!(!log.contains("Kafka cluster:"), "no connection or authentication error: {log}");
    }

    // Each request answered 200 is stored exactly once.
    let mut stored: HashMap<String, usize> = HashMap::new();
    for record in all_records(&topic) {
        let key = String::from_utf8(rdkafka::message::Message::key(&record).unwrap().to_vec()).unwrap();
        *stored.entry(key).or_default() += 1;
    }
    let wrong: Vec<_> = keys.iter().filter(|k| stored.get(*k) != Some(&1)).collect();
    assert!(wrong.is_empty() && stored.len() == keys.len(), "not stored exactly once: {wrong:?}");
}

/// Credentials the broker does not accept (another secret for its key): the token is refused, and the
/// answer says so, naming what to check for MSK IAM, not a username and password it has none of.
#[test]
#[ignore = "needs the rig's gateway, Kafka's IAM listener and the Glue emulator: run `make test`"]
fn a_token_the_broker_refuses_is_503_naming_the_aws_credentials() {
    let credentials = CredentialServer::start(Duration::from_secs(900), "not-the-secret");
    let topic = topic_with_schema("iam-refused", 1, SEED_SCHEMA);
    let gateway = gateway("KK_IAM_BOOTSTRAP", &credentials.uri("/refused"));
    let (status, answer) = gateway.send(&topic, &[("Message-Key", "refused")], &body("refused"));
    assert_eq!(status, 503, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("not stored") && message.contains("refused the OAUTHBEARER token"), "{message}");
    assert!(message.contains("AWS credentials") && !message.contains("sasl.password"), "{message}");
    assert!(!message.contains("not-the-secret") && !gateway.log().contains("not-the-secret"), "{message}");
    assert_eq!(record_count(&topic), 0);
}
