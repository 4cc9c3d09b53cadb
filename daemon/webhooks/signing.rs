//! Webhook signatures.
//!
//! One secret, `whsec_<base64 key>`, signs every delivery two ways; the HMAC key is the
//! base64-decoded part after `whsec_` in both:
//!
//! - **Standard Webhooks** (`webhook-id`, `webhook-timestamp`, `webhook-signature`):
//!   `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, so existing verifier libraries work.
//! - **`X-FluxCascade-Signature`**: `t=<timestamp>,v1=<hex HMAC-SHA256(key, "{timestamp}.{body}")>`.
//!
//! The timestamp is the attempt's Unix time in seconds; receivers should reject messages
//! whose timestamp is more than 5 minutes from their clock, and dedupe on the event id.
//! During a secret rotation each header carries one signature per valid secret (space
//! separated for Standard Webhooks, repeated `v1=` for ours); any one matching is enough.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::crypto::Secret;

/// Prefix of every endpoint secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Errors of secret handling.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SigningError {
    #[error("webhook secret must be `whsec_` followed by base64")]
    MalformedSecret,
}

/// A fresh endpoint secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> Secret {
    let bytes: [u8; 32] = rand::random();
    Secret::new(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// The HMAC key inside a `whsec_…` secret.
fn key_bytes(secret: &Secret) -> Result<Vec<u8>, SigningError> {
    let encoded = secret
        .expose()
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SigningError::MalformedSecret)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| SigningError::MalformedSecret)
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// The signature headers of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureHeaders {
    /// `webhook-signature`.
    pub standard: String,
    /// `X-FluxCascade-Signature`.
    pub fluxcascade: String,
}

/// Signs `body` of message `msg_id` at `timestamp` with every secret in `secrets`.
pub fn sign(secrets: &[Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> Result<SignatureHeaders, SigningError> {
    let ts = timestamp.to_string();
    let mut standard = Vec::with_capacity(secrets.len());
    let mut ours = vec![format!("t={ts}")];
    for secret in secrets {
        let key = key_bytes(secret)?;
        let sw = hmac(&key, &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body]);
        standard.push(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(sw)));
        let fc = hmac(&key, &[ts.as_bytes(), b".", body]);
        ours.push(format!("v1={}", hex::encode(fc)));
    }
    Ok(SignatureHeaders {
        standard: standard.join(" "),
        fluxcascade: ours.join(","),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_reference_vector() {
        let secret = Secret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let headers = sign(&[secret], "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body).unwrap();
        assert_eq!(headers.standard, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn fluxcascade_header_is_hex_hmac_over_timestamp_and_body() {
        let secret = Secret::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        let headers = sign(std::slice::from_ref(&secret), "evt_1", 1700000000, b"{}").unwrap();
        let key = key_bytes(&secret).unwrap();
        let expected = hex::encode(hmac(&key, &[b"1700000000.{}"]));
        assert_eq!(headers.fluxcascade, format!("t=1700000000,v1={expected}"));
    }

    #[test]
    fn rotation_signs_with_both_secrets() {
        let (old, new) = (generate_secret(), generate_secret());
        let both = sign(&[new.clone(), old.clone()], "evt_1", 1, b"x").unwrap();
        let only_old = sign(&[old], "evt_1", 1, b"x").unwrap();
        assert_eq!(both.standard.split(' ').count(), 2);
        assert!(both.standard.ends_with(&only_old.standard));
        assert_eq!(both.fluxcascade.matches("v1=").count(), 2);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(
            sign(&[Secret::new("nope")], "m", 1, b"").unwrap_err(),
            SigningError::MalformedSecret
        );
        assert!(generate_secret().expose().starts_with(SECRET_PREFIX));
    }
}
