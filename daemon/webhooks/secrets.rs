//! Endpoint signing secrets: the current one, and after a rotation the previous one for 24 h.

use super::records::EndpointRecord;
use crate::crypto::Secret;
use crate::store::{Reader, StoreError};

/// Secret name of the current signing secret.
pub const CURRENT: &str = "signing";
/// Secret name of the previous signing secret, valid until `previous_secret_expires_at`.
pub const PREVIOUS: &str = "signing_previous";
/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// The secrets that sign deliveries now: current first, then the previous while valid.
pub fn signing_secrets(rx: &impl Reader, endpoint: &EndpointRecord) -> Result<Vec<Secret>, StoreError> {
    let mut secrets: Vec<Secret> = rx.secret(&endpoint.id, CURRENT)?.into_iter().collect();
    let previous_valid = endpoint
        .previous_secret_expires_at
        .as_deref()
        .and_then(|at| at.parse::<jiff::Timestamp>().ok())
        .is_some_and(|expires| expires > jiff::Timestamp::now());
    if previous_valid {
        secrets.extend(rx.secret(&endpoint.id, PREVIOUS)?);
    }
    Ok(secrets)
}
