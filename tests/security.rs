//! Broker security through the real broker's secured listeners (`tests/services/services.sh` gives the
//! test broker SASL_SSL with SCRAM-SHA-512 and SSL listeners, with a throwaway CA) and MSK IAM failures.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Publishes as the plugin does: where the record is, or the status and message of the refusal.
fn publish(config: &Value, topic: &str) -> Result<(i32, i64), (u16, String)> {
    let backend = Backend::open(&config.to_string());
    let (status, answer) = backend.publish(&format!("/v1/event/{topic}"), "", "", r#"{"some_message":"secure"}"#);
    match status {
        200 => Ok(position(&answer)),
        _ => Err((status, answer["message"].as_str().unwrap().to_owned())),
    }
}

fn base(topic_prefix: &str, kafka: Value) -> (String, Value) {
    let topic = topic_with_schema(topic_prefix, 1, SEED_SCHEMA);
    let mut config = config_value(REGISTRY, json!({"timeout_ms": 3000}));
    config["kafka"] = kafka;
    (topic, config)
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn msk_iam_without_credentials_is_503_naming_the_cause_in_time() {
    // A role to assume through an STS that cannot be reached: no credentials, so no token.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    std::env::set_var("AWS_ENDPOINT_URL_STS", format!("http://{closed}"));
    let (topic, mut config) =
        base("iam-nocreds", json!({"sasl.mechanism": "AWS_MSK_IAM", "security.protocol": "SASL_PLAINTEXT"}));
    config["aws_role_arn"] = json!("arn:aws:iam::123456789012:role/krakend-kafka");
    let started = Instant::now();
    let f = publish(&config, &topic).unwrap_err();
    // Glue and the token share the credential chain; whichever needs it first names the failure.
    assert_eq!(f.0, 503, "{f:?}");
    assert!(f.1.contains("no AWS credentials"), "{f:?}");
    assert!(f.1.len() < 160 && !f.1.contains("dispatch"), "short, without the AWS SDK's chain: {f:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(record_count(&topic), 0);
}

fn sasl_ssl(mechanism: &str, user: &str, password: &str, ca: &str) -> Value {
    json!({"security.protocol": "SASL_SSL", "sasl.mechanism": mechanism, "sasl.username": user,
           "sasl.password": password, "ssl.ca.location": var(ca)})
}

fn on(mut config: Value, bootstrap: &str) -> Value {
    config["bootstrap_servers"] = json!(var(bootstrap));
    config
}

/// Publishes through a secured listener and reads the record back through the plain one.
fn publishes(prefix: &str, kafka: Value, bootstrap: &str) {
    let (topic, config) = base(prefix, kafka);
    let d = publish(&on(config, bootstrap), &topic).unwrap();
    let record = record_at(&topic, d.0, d.1);
    assert_eq!(rdkafka::message::Message::payload(&record).unwrap(), b"\x0a\x06secure");
}

/// A broken secured config answers a 5xx naming the cause within the timeout and publishes nothing.
fn refused(prefix: &str, kafka: Value, bootstrap: &str, cause: &str) -> (String, Value) {
    let (topic, config) = base(prefix, kafka);
    let config = on(config, bootstrap);
    let started = Instant::now();
    let f = publish(&config, &topic).unwrap_err();
    assert_eq!(f.0, 503, "{f:?}");
    assert!(f.1.contains(cause), "{f:?} should name {cause:?}");
    assert!(!f.1.contains("scram-secret") && !f.1.contains("wrong-secret"), "{f:?}");
    assert!(!f.1.contains("127.0.0.1"), "no broker address: {f:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(record_count(&topic), 0);
    (topic, config)
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn scram_sha_512_over_tls_publishes() {
    publishes("scram", sasl_ssl("SCRAM-SHA-512", "krakend", "scram-secret", "KK_TEST_CA"), "KK_SASL_SSL_BOOTSTRAP");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn plain_over_tls_publishes() {
    publishes("plain", sasl_ssl("PLAIN", "krakend-plain", "plain-secret", "KK_TEST_CA"), "KK_SASL_SSL_BOOTSTRAP");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn tls_only_publishes() {
    publishes("tls", json!({"security.protocol": "SSL", "ssl.ca.location": var("KK_TEST_CA")}), "KK_SSL_BOOTSTRAP");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn wrong_password_is_refused_and_the_fixed_config_recovers() {
    let kafka = sasl_ssl("SCRAM-SHA-512", "krakend", "wrong-secret", "KK_TEST_CA");
    let (topic, mut config) =
        refused("badpass", kafka, "KK_SASL_SSL_BOOTSTRAP", "check sasl.username and sasl.password");
    config["kafka"]["sasl.password"] = json!("scram-secret");
    publish(&config, &topic).unwrap();
    assert_eq!(record_count(&topic), 1);
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn untrusted_ca_is_refused() {
    let kafka = sasl_ssl("SCRAM-SHA-512", "krakend", "scram-secret", "KK_OTHER_CA");
    refused("badca", kafka, "KK_SASL_SSL_BOOTSTRAP", "certificate is not trusted (check ssl.ca.location)");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn mechanism_the_broker_does_not_offer_is_refused() {
    let kafka = sasl_ssl("SCRAM-SHA-256", "krakend", "scram-secret", "KK_TEST_CA");
    refused("badmech", kafka, "KK_SASL_SSL_BOOTSTRAP", "does not offer the configured sasl.mechanism");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn mutual_tls_publishes_with_a_client_certificate_and_is_refused_without() {
    let mut kafka = json!({"security.protocol": "SSL", "ssl.ca.location": var("KK_TEST_CA"),
        "ssl.certificate.location": var("KK_CLIENT_CERT"), "ssl.key.location": var("KK_CLIENT_KEY")});
    publishes("mtls", kafka.clone(), "KK_MTLS_BOOTSTRAP");
    kafka.as_object_mut().unwrap().retain(|k, _| !k.starts_with("ssl.certificate") && !k.starts_with("ssl.key"));
    refused("mtls-nocert", kafka, "KK_MTLS_BOOTSTRAP", "refused the client certificate");
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn msk_iam_publishes_through_a_listener_that_checks_the_signature() {
    // The default chain finds the test's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, which the broker's
    // MskIamValidator knows; it recomputes the SigV4 signature of every token.
    let kafka = json!({"sasl.mechanism": "AWS_MSK_IAM", "ssl.ca.location": var("KK_TEST_CA")});
    publishes("iam", kafka, "KK_IAM_BOOTSTRAP");
}

/// A producer of the test's own that presents tokens signed with `secret` for the test's access key.
struct SignedWith(&'static str);

impl rdkafka::client::ClientContext for SignedWith {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;
    fn generate_oauth_token(&self, _: Option<&str>) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        let creds = aws_credential_types::Credentials::new(var("AWS_ACCESS_KEY_ID"), self.0, None, None, "test");
        let (token, lifetime_ms) = krakend_kafka::msk_iam::token(&creds, "eu-central-1", std::time::SystemTime::now())?;
        Ok(rdkafka::client::OAuthToken { token, principal_name: "test".into(), lifetime_ms })
    }
}

fn send_signed_with(secret: &'static str, topic: &str) -> Result<(), String> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer<SignedWith> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", var("KK_IAM_BOOTSTRAP"))
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", "OAUTHBEARER")
        .set("ssl.ca.location", var("KK_TEST_CA"))
        .set("message.timeout.ms", "3000")
        .create_with_context(SignedWith(secret))
        .unwrap();
    let record = FutureRecord::<str, str>::to(topic).payload("x");
    block_on(producer.send(record, Duration::from_secs(3))).map(drop).map_err(|(e, _)| e.to_string())
}

#[test]
#[ignore = "needs Kafka and the Glue emulator: run `make test`"]
fn msk_iam_token_signed_with_the_wrong_secret_is_refused() {
    let topic = unique("iam-wrong-secret");
    create_topic(&topic, 1);
    send_signed_with("testing", &topic).expect("the right secret is accepted");
    let err = send_signed_with("not-the-secret", &topic).unwrap_err();
    assert!(err.contains("timed out") || err.contains("Authentication"), "{err}");
    assert_eq!(record_count(&topic), 1, "only the correctly signed record");
}
