//! First start: create the default organization, its owner and an owner API token (the
//! operator token), and write the token to `<data-dir>/admin.token` (mode 0600).

use std::path::Path;

use super::records::{ApiTokenRecord, OrganizationRecord, TokenHashRecord};
use super::tokens;
use crate::crypto::write_private_file;
use crate::orgs::lifecycle::{self, Founder, OrgError};
use crate::store::{Reader, Store, StoreError};

/// File holding the owner token created on first start.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Errors of the first-start bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Org(#[from] OrgError),
    #[error("cannot write {path}: {error}")]
    TokenFile { path: String, error: std::io::Error },
}

/// Creates the first organization and its owner's operator token if the store has no
/// organization yet; returns whether it did. The token file is written before the commit, so
/// a crash in between leaves no organization without a usable token on disk (the next start
/// redoes it). On a store from before operator tokens, the token in `admin.token` becomes the
/// operator token.
pub async fn ensure_first_org(store: &Store, data_dir: &Path) -> Result<bool, BootstrapError> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    if store.read(|rx| rx.count::<OrganizationRecord>())? > 0 {
        adopt_operator_token(store, &path).await?;
        return Ok(false);
    }
    store
        .write(move |tx| {
            // Another node on the same database may have bootstrapped meanwhile.
            if tx.count::<OrganizationRecord>()? > 0 {
                return Ok(false);
            }
            let founder = Founder {
                email: "owner@localhost",
                principal: None,
                parent_token: None,
                operator: true,
            };
            let created = lifecycle::create(tx, "default", founder)?;
            write_private_file(&path, format!("{}\n", created.secret.expose()).as_bytes()).map_err(|error| {
                BootstrapError::TokenFile {
                    path: path.display().to_string(),
                    error,
                }
            })?;
            tracing::info!(org_id = %created.org.id, path = %path.display(), "created the first organization and its owner token");
            Ok(true)
        })
        .await
}

/// Marks the token in `path` as the operator token when no token is one yet.
async fn adopt_operator_token(store: &Store, path: &Path) -> Result<(), BootstrapError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let hash = tokens::hash(text.trim());
    store
        .write(move |tx| {
            if tx.list::<ApiTokenRecord>()?.iter().any(|t| t.operator) {
                return Ok(());
            }
            let Some(entry) = tx.get::<TokenHashRecord>(&hash)? else {
                return Ok(());
            };
            if let Some(mut token) = tx.get::<ApiTokenRecord>(&entry.token_id)? {
                token.operator = true;
                tx.put(&token)?;
            }
            Ok(())
        })
        .await
}
