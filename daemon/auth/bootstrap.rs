//! First start: create the default organization, its owner and an owner API token, and write
//! the token to `<data-dir>/admin.token` (mode 0600).

use std::path::Path;

use super::Role;
use super::records::{MemberRecord, OrganizationRecord};
use super::tokens;
use crate::crypto::write_private_file;
use crate::events::now_rfc3339;
use crate::ids::{IdKind, new_id};
use crate::store::{Reader, Store, StoreError};

/// File holding the owner token created on first start.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Errors of the first-start bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write {path}: {error}")]
    TokenFile { path: String, error: std::io::Error },
}

/// Creates the first organization and owner token if the store has no organization yet.
/// Returns whether it did. The token file is written before the commit, so a crash in
/// between leaves no organization without a usable token on disk (the next start redoes it).
pub async fn ensure_first_org(store: &Store, data_dir: &Path) -> Result<bool, BootstrapError> {
    if store.read(|rx| rx.count::<OrganizationRecord>())? > 0 {
        return Ok(false);
    }
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    store.write(move |tx| {
        let now = now_rfc3339();
        let org = OrganizationRecord {
            id: new_id(IdKind::Organization),
            name: "default".into(),
            created_at: now.clone(),
        };
        let owner = MemberRecord {
            id: new_id(IdKind::Member),
            org_id: org.id.clone(),
            email: "owner@localhost".into(),
            role: Role::Owner,
            created_at: now,
        };
        tx.put(&org)?;
        tx.put(&owner)?;
        let (_, token) = tokens::issue(tx, &org.id, &owner.id, "admin (created on first start)")?;
        write_private_file(&path, format!("{}\n", token.expose()).as_bytes()).map_err(|error| {
            BootstrapError::TokenFile {
                path: path.display().to_string(),
                error,
            }
        })?;
        tracing::info!(org_id = %org.id, path = %path.display(), "created the first organization and its owner token");
        Ok(true)
    })
    .await
}
