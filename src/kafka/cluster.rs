//! Why the Kafka cluster cannot take records, in the words a caller is given: librdkafka's own text names
//! broker addresses and, for MSK IAM, carries the AWS SDK's error chain, so it goes to the log and the
//! answer names only the kind of failure and what to check.

use rdkafka::error::RDKafkaErrorCode;

/// The short cause of a client-level error from librdkafka (`code` and its text, addresses included).
pub fn cause(code: Option<RDKafkaErrorCode>, text: &str) -> &'static str {
    let has = |words: &str| text.contains(words);
    match code {
        Some(RDKafkaErrorCode::Authentication) if has("no AWS credentials") => {
            "authentication failed: the gateway has no AWS credentials for MSK IAM"
        }
        Some(RDKafkaErrorCode::Authentication) if has("OAUTHBEARER token") => {
            "authentication failed: no MSK IAM token could be made"
        }
        Some(RDKafkaErrorCode::Authentication) if has("Unsupported SASL mechanism") || has("mechanism handshake") => {
            "authentication failed: the broker does not offer the configured sasl.mechanism"
        }
        // An OAUTHBEARER refusal is the broker's RFC 7628 error object; MSK IAM's tokens, like any OAUTHBEARER
        // token, carry no username or password to check.
        Some(RDKafkaErrorCode::Authentication) if has(r#"{"status":"#) => {
            "authentication failed: the broker refused the OAUTHBEARER token (for MSK IAM: check the AWS credentials \
             and their kafka-cluster:Connect permission)"
        }
        Some(RDKafkaErrorCode::Authentication) => "authentication failed: check sasl.username and sasl.password",
        // The broker's TLS alert may come during the handshake or at the first read after it.
        _ if has("certificate verify failed") => "TLS failed: the broker's certificate is not trusted (check ssl.ca.location)",
        _ if has("alert bad certificate") || has("alert certificate required") => {
            "TLS failed: the broker refused the client certificate (check ssl.certificate.location and ssl.key.location)"
        }
        Some(RDKafkaErrorCode::SSL) => "TLS handshake failed",
        Some(RDKafkaErrorCode::Resolve) => "a broker's host name cannot be resolved",
        _ if has("Connection refused") => "connection refused",
        _ if has("timed out") || has("Timed out") => "connection timed out",
        Some(RDKafkaErrorCode::AllBrokersDown) => "no broker can be reached",
        _ => "connection failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode::*;

    /// librdkafka's texts as the test broker's listeners produce them (tests/security.rs, tests/publish.rs).
    #[test]
    fn each_failure_is_named_without_addresses_or_the_aws_chain() {
        for (code, text, short) in [
            (Authentication, "sasl_ssl://127.0.0.1:39093/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512", "check sasl.username"),
            (Authentication, "sasl_ssl://127.0.0.1:39093/bootstrap: SASL SCRAM-SHA-256 mechanism handshake failed: Broker: Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-512", "configured sasl.mechanism"),
            (Authentication, "Failed to acquire SASL OAUTHBEARER token: MSK IAM: no AWS credentials: dispatch failure: io error: error trying to connect: tcp connect error: Connection refused (os error 111)", "no AWS credentials for MSK IAM"),
            (Authentication, "Failed to acquire SASL OAUTHBEARER token: clock before 1970", "no MSK IAM token"),
            (Authentication, "sasl_ssl://127.0.0.1:19097/bootstrap: SASL authentication error: {\"status\":\"invalid_token\"} (after 302ms in state AUTH_REQ)", "refused the OAUTHBEARER token"),
            (SSL, "ssl://127.0.0.1:39094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified", "ssl.ca.location"),
            (BrokerTransportFailure, "ssl://127.0.0.1:19096/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate: SSL alert number 42 (after 3ms in state APIVERSION_QUERY)", "client certificate"),
            (Resolve, "nowhere.invalid:9092/bootstrap: Failed to resolve 'nowhere.invalid:9092': Name or service not known", "host name"),
            (BrokerTransportFailure, "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)", "connection refused"),
            (AllBrokersDown, "1/1 brokers are down", "no broker"),
        ] {
            let said = cause(Some(code), text);
            assert!(said.contains(short), "{text} -> {said}");
            assert!(!said.contains("127.0.0.1") && !said.contains("dispatch"), "{said}");
        }
    }
}
