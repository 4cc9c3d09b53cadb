//! API token minting and hashing. Tokens carry 256 random bits, so one SHA-256 is a safe hash.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::records::{ApiTokenRecord, TokenHashRecord};
use crate::crypto::Secret;
use crate::events::now_rfc3339;
use crate::ids::{IdKind, new_id};
use crate::store::{StoreError, Tx};

/// Prefix of every API token, so leaked tokens are recognisable by scanners.
pub const TOKEN_PREFIX: &str = "fxc_";

/// A fresh random token.
pub fn generate() -> Secret {
    let bytes: [u8; 32] = rand::random();
    Secret::new(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Hex SHA-256 of a presented token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Mints a token for `member_id` and stores only its hash; returns the record and the token.
pub fn issue(
    tx: &mut Tx<'_>,
    org_id: &str,
    member_id: &str,
    name: &str,
) -> Result<(ApiTokenRecord, Secret), StoreError> {
    let token = generate();
    let record = ApiTokenRecord {
        id: new_id(IdKind::ApiToken),
        org_id: org_id.to_owned(),
        member_id: member_id.to_owned(),
        name: name.to_owned(),
        hash: hash(token.expose()),
        created_at: now_rfc3339(),
    };
    tx.put(&TokenHashRecord {
        hash: record.hash.clone(),
        token_id: record.id.clone(),
    })?;
    tx.put(&record)?;
    Ok((record, token))
}

/// Removes token `id` and its hash entry.
pub fn revoke(tx: &mut Tx<'_>, id: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
    let removed = tx.remove::<ApiTokenRecord>(id)?;
    if let Some(record) = &removed {
        tx.remove::<TokenHashRecord>(&record.hash)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hash_stably() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(hash(a.expose()), hash(a.expose()));
        assert_eq!(hash(a.expose()).len(), 64);
        assert!(!hash(a.expose()).contains(&a.expose()[4..]));
    }
}
