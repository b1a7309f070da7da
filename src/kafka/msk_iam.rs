//! AWS MSK IAM authentication: the SASL/OAUTHBEARER token AWS's signers (aws-msk-iam-sasl-signer-go,
//! -python, -java) produce, generated in-process so the producer needs no sidecar.
//!
//! The token is the base64url (unpadded) text of a SigV4-presigned URL for
//! `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect` (service `kafka-cluster`,
//! empty-payload hash, valid 900 s), with a `User-Agent` parameter added after signing and the whole
//! query written sorted by name, as Go's `url.Values.Encode` writes it.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use base64::Engine as _;

/// How long a token is valid, as AWS's signers set it.
pub const LIFETIME: Duration = Duration::from_secs(900);

/// Identifies this signer to MSK, as AWS's signers identify themselves.
pub const USER_AGENT: &str = concat!("krakend-kafka/", env!("CARGO_PKG_VERSION"));

/// A token for `region`, signed with `credentials` at `now`, and when it expires (ms since the epoch).
pub fn token(credentials: &Credentials, region: &str, now: SystemTime) -> Result<(String, i64), String> {
    let host = format!("kafka.{region}.amazonaws.com");
    let url = format!("https://{host}/?Action=kafka-cluster%3AConnect");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(LIFETIME);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| format!("MSK IAM: {e}"))?
        .into();
    let request = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| format!("MSK IAM: {e}"))?;
    let (instructions, _) = sign(request, &params).map_err(|e| format!("MSK IAM: signing: {e}"))?.into_parts();
    let (_, signed) = instructions.into_parts();

    let mut query: Vec<(&str, Cow<str>)> = signed;
    query.push(("Action", Cow::Borrowed("kafka-cluster:Connect")));
    query.push(("User-Agent", Cow::Borrowed(USER_AGENT)));
    query.sort_by(|a, b| a.0.cmp(b.0));
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect();
    let presigned = format!("https://{host}/?{}", query.join("&"));

    let signed_at = now.duration_since(UNIX_EPOCH).map_err(|e| format!("MSK IAM: clock before 1970: {e}"))?;
    // SigV4 dates have whole seconds: the token expires LIFETIME after the second it was signed in.
    let expires_ms = (signed_at.as_secs() + LIFETIME.as_secs()) as i64 * 1000;
    Ok((base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned), expires_ms))
}

/// Go's `url.QueryEscape`: unreserved characters stay, space becomes `+`, every other byte `%XX`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> String {
        String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap()).unwrap()
    }

    #[test]
    fn token_is_a_presigned_connect_url_with_all_its_parts() {
        let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "test");
        let at = UNIX_EPOCH + Duration::from_secs(1_763_800_000); // 2025-11-22T08:26:40Z
        let (token, expires_ms) = token(&creds, "eu-central-1", at).unwrap();
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'), "base64url, unpadded");
        let url = decode(&token);
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "https://kafka.eu-central-1.amazonaws.com/");
        let names: Vec<&str> = query.split('&').map(|kv| kv.split_once('=').unwrap().0).collect();
        assert_eq!(
            names,
            [
                "Action",
                "User-Agent",
                "X-Amz-Algorithm",
                "X-Amz-Credential",
                "X-Amz-Date",
                "X-Amz-Expires",
                "X-Amz-Signature",
                "X-Amz-SignedHeaders"
            ]
        );
        for part in [
            "Action=kafka-cluster%3AConnect",
            "User-Agent=krakend-kafka%2F",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20251122%2Feu-central-1%2Fkafka-cluster%2Faws4_request",
            "X-Amz-Date=20251122T082640Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
        ] {
            assert!(query.contains(part), "{part} in {query}");
        }
        let signature = query.split("X-Amz-Signature=").nth(1).unwrap().split('&').next().unwrap();
        assert_eq!(signature.len(), 64);
        assert!(signature.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(expires_ms, (1_763_800_000 + 900) * 1000);
    }

    #[test]
    fn session_token_is_signed_into_the_url() {
        let creds = Credentials::new("ASIAEXAMPLE", "secret", Some("tok+en/with=chars".into()), None, "test");
        let url = decode(&token(&creds, "us-east-1", UNIX_EPOCH + Duration::from_secs(1_700_000_000)).unwrap().0);
        assert!(url.contains("&X-Amz-Security-Token=tok%2Ben%2Fwith%3Dchars&"), "{url}");
        let plain = Credentials::new("ASIAEXAMPLE", "secret", None, None, "test");
        let without = decode(&token(&plain, "us-east-1", UNIX_EPOCH + Duration::from_secs(1_700_000_000)).unwrap().0);
        assert!(!without.contains("Security-Token"));
        assert_ne!(url.split("X-Amz-Signature=").nth(1), without.split("X-Amz-Signature=").nth(1));
    }

    #[test]
    fn escaping_matches_go_query_escape() {
        assert_eq!(escape("a-b_c.d~e f/g:h+i=j*"), "a-b_c.d~e+f%2Fg%3Ah%2Bi%3Dj%2A");
        assert_eq!(escape("é"), "%C3%A9");
    }
}
