//! The MSK IAM token compared byte for byte with the one AWS's own Go SigV4 signer gives for the same
//! credentials, region and time (`tests/msk-iam-signer`, built by `make test` into KK_AWS_SIGNER_BIN).

use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use krakend_kafka::msk_iam;

fn aws_signer(key: &str, secret: &str, session: &str, region: &str, at: u64) -> (String, i64) {
    let bin = std::env::var("KK_AWS_SIGNER_BIN").expect("KK_AWS_SIGNER_BIN is not set: run `make test`");
    let out =
        Command::new(bin).args([key, secret, session, region, &at.to_string(), msk_iam::USER_AGENT]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (token, expiry) = text.trim().split_once(' ').unwrap();
    (token.to_string(), expiry.parse().unwrap())
}

#[test]
#[ignore = "needs the AWS Go signer built by `make test`"]
fn token_equals_aws_go_signer_with_and_without_session_token() {
    let cases = [
        ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", "eu-central-1", 1_763_800_000),
        ("ASIAEXAMPLE", "se/cr+et=", "FwoGZXIvYXdzE+/=token with space", "us-east-1", 1_700_000_001),
        ("AKIA1", "s", "", "ap-southeast-2", 4_102_444_799),
    ];
    for (key, secret, session, region, at) in cases {
        let creds = Credentials::new(key, secret, (!session.is_empty()).then(|| session.to_string()), None, "test");
        let ours = msk_iam::token(&creds, region, UNIX_EPOCH + Duration::from_secs(at)).unwrap();
        assert_eq!(ours, aws_signer(key, secret, session, region, at), "{key} {region} {at}");
    }
}
