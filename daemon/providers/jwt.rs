//! Just enough JWT to read a token's `exp` claim (Jobber puts the access token's expiry
//! there) and, for the sandbox, to mint HS256 tokens like Jobber's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The `exp` claim (Unix seconds) of a JWT, read without verifying the signature: the token
/// came straight from the provider's token endpoint over TLS, as in Jobber's own app template.
pub fn expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64()
}

/// An HS256 JWT with `claims`, signed with `key`.
pub fn sign_hs256(claims: &serde_json::Value, key: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    // Invariant: HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_read_from_a_signed_token() {
        let token = sign_hs256(&serde_json::json!({"sub": "1", "exp": 1_700_000_000}), b"key");
        assert_eq!(expiry(&token), Some(1_700_000_000));
        assert_eq!(expiry("not.a-jwt"), None);
        assert_eq!(expiry(""), None);
    }
}
