//! HS256 tokens for the gateway's JWT validation (krakend-jose), and the JWKS holding their key.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub const KEY_ID: &str = "kk-test-key";
pub const SECRET: &[u8] = b"the JWKS's HS256 secret, 32+ bytes long";

/// The JWKS with the one key, SECRET, that `token(.., SECRET)` signs with.
pub fn jwks() -> Value {
    json!({"keys": [{"kty": "oct", "kid": KEY_ID, "alg": "HS256", "use": "sig", "k": URL_SAFE_NO_PAD.encode(SECRET)}]})
}

/// An HS256 JWT with `claims`, signed with `secret` as the key KEY_ID.
pub fn token(claims: &Value, secret: &[u8]) -> String {
    signed(KEY_ID, claims, secret)
}

/// An HS256 JWT with `claims`, signed with `secret` as the key `kid`.
pub fn signed(kid: &str, claims: &Value, secret: &[u8]) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
    let signed =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// A subject's claims with `roles`, expiring `expires_in` seconds from now (past, when negative).
pub fn claims(roles: &[&str], expires_in: i64) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    json!({"sub": "tester", "roles": roles, "iat": now, "exp": now + expires_in})
}
