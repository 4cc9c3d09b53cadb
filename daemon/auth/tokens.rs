//! API token minting, hashing and revocation. Tokens carry 256 random bits, so one SHA-256 is
//! a safe hash. A token minted with another is its child: revoking a token revokes its
//! descendants, so nothing a revoked credential made outlives it.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::records::{ApiTokenRecord, TokenHashRecord};
use crate::crypto::Secret;
use crate::events::now_rfc3339;
use crate::ids::{IdKind, new_id};
use crate::store::{IndexTable, OrgKind, Reader, StoreError, Tx};

/// Prefix of every API token, so leaked tokens are recognisable by scanners.
pub const TOKEN_PREFIX: &str = "fxc_";
/// API tokens an organization may have.
pub const MAX_TOKENS: usize = 10_000;

/// A fresh random secret with `prefix`.
pub fn generate_with(prefix: &str) -> Secret {
    let bytes: [u8; 32] = rand::random();
    Secret::new(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// A fresh random API token.
pub fn generate() -> Secret {
    generate_with(TOKEN_PREFIX)
}

/// Hex SHA-256 of a presented token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a new token is.
pub struct NewToken<'a> {
    pub org_id: &'a str,
    pub member_id: &'a str,
    pub name: &'a str,
    /// The token that mints this one, if any.
    pub parent: Option<&'a str>,
    pub operator: bool,
    /// Unix ms after which the token is refused; `None` for a token that never expires.
    pub expires_at_ms: Option<i64>,
}

/// Every API token of `org_id` (at most [`MAX_TOKENS`]).
pub fn of_org(rx: &impl Reader, org_id: &str) -> Result<Vec<ApiTokenRecord>, StoreError> {
    rx.org_records(OrgKind::ApiToken, org_id, None, MAX_TOKENS + 1)
}

/// Mints a token and stores only its hash; returns the record and the token.
pub fn issue(tx: &mut Tx<'_>, new: NewToken<'_>) -> Result<(ApiTokenRecord, Secret), StoreError> {
    let token = generate();
    let record = ApiTokenRecord {
        id: new_id(IdKind::ApiToken),
        org_id: new.org_id.to_owned(),
        member_id: new.member_id.to_owned(),
        name: new.name.to_owned(),
        hash: hash(token.expose()),
        created_at: now_rfc3339(),
        parent_token_id: new.parent.map(str::to_owned),
        operator: new.operator,
        expires_at_ms: new.expires_at_ms,
    };
    if let Some(at) = record.expires_at_ms {
        tx.index_insert(IndexTable::TokenExpiry, &expiry_key(at, &record.id))?;
    }
    tx.put(&TokenHashRecord {
        hash: record.hash.clone(),
        token_id: record.id.clone(),
    })?;
    tx.put(&record)?;
    tx.index_org(OrgKind::ApiToken, new.org_id, &record.id)?;
    Ok((record, token))
}

fn expiry_key(at_ms: i64, id: &str) -> String {
    format!("{at_ms:020}/{id}")
}

/// Removes `record`, its hash entry and its expiry entry.
fn remove(tx: &mut Tx<'_>, record: &ApiTokenRecord) -> Result<(), StoreError> {
    tx.remove::<ApiTokenRecord>(&record.id)?;
    tx.remove::<TokenHashRecord>(&record.hash)?;
    tx.unindex_org(OrgKind::ApiToken, &record.org_id, &record.id)?;
    if let Some(at) = record.expires_at_ms {
        tx.index_remove(IndexTable::TokenExpiry, &expiry_key(at, &record.id))?;
    }
    Ok(())
}

/// Removes token `id`, its hash entry and every token minted with it (recursively).
pub fn revoke(tx: &mut Tx<'_>, id: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
    let Some(record) = tx.get::<ApiTokenRecord>(id)? else {
        return Ok(None);
    };
    remove(tx, &record)?;
    let mut orphans: Vec<String> = vec![record.id.clone()];
    while let Some(parent) = orphans.pop() {
        for child in of_org(tx, &record.org_id)?
            .into_iter()
            .filter(|t| t.parent_token_id.as_deref() == Some(parent.as_str()))
        {
            remove(tx, &child)?;
            orphans.push(child.id);
        }
    }
    Ok(Some(record))
}

/// Revokes up to `limit` tokens that expired before `now_ms` (with what they minted); returns
/// how many expiry entries it went through.
pub fn revoke_expired(tx: &mut Tx<'_>, now_ms: i64, limit: usize) -> Result<usize, StoreError> {
    let end = format!("{now_ms:020}");
    let keys = tx.index_keys(IndexTable::TokenExpiry, "", limit)?;
    let mut seen = 0;
    for key in keys.into_iter().take_while(|key| key.as_str() < end.as_str()) {
        // A token already revoked with its parent left no entry; one left over is dropped.
        tx.index_remove(IndexTable::TokenExpiry, &key)?;
        if let Some((_, id)) = key.split_once('/') {
            revoke(tx, id)?;
        }
        seen += 1;
    }
    Ok(seen)
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

    fn new_token<'a>(name: &'a str, parent: Option<&'a str>, expires_at_ms: Option<i64>) -> NewToken<'a> {
        NewToken {
            org_id: "org_1",
            member_id: "mem_1",
            name,
            parent,
            operator: false,
            expires_at_ms,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn expired_tokens_are_removed_with_what_they_minted_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), crate::crypto::MasterKey::generate()).unwrap();
        let now = store.clock().now_ms();
        let ids = store
            .write(move |tx| {
                let (lasting, _) = issue(tx, new_token("lasting", None, None))?;
                let (expired, _) = issue(tx, new_token("session", Some(&lasting.id), Some(now - 1)))?;
                let (child, _) = issue(tx, new_token("child", Some(&expired.id), None))?;
                let (later, _) = issue(tx, new_token("later", Some(&lasting.id), Some(now + 60_000)))?;
                assert!(expired.expired(now) && !later.expired(now) && !lasting.expired(now));
                Ok::<_, StoreError>([lasting.id, expired.id, child.id, later.id])
            })
            .await
            .unwrap();
        let removed = store.write(move |tx| revoke_expired(tx, now, 100)).await.unwrap();
        assert_eq!(removed, 1);
        let left: Vec<String> = store
            .read(|rx| of_org(rx, "org_1"))
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.contains(&ids[0]) && left.contains(&ids[3]), "{left:?}");
        assert_eq!(store.write(move |tx| revoke_expired(tx, now, 100)).await.unwrap(), 0);
    }
}
