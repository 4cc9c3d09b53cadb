//! Bearer-token authentication for every control-plane RPC.

use tonic::{Request, Status};

use super::Role;
use super::records::{ApiTokenRecord, MemberRecord, TokenHashRecord};
use super::tokens;
use crate::store::{Reader, Store, StoreError};

/// Who is calling: attached to each authenticated request's extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub org_id: String,
    pub member_id: String,
    pub token_id: String,
    pub role: Role,
}

impl Caller {
    /// The caller of an authenticated request.
    pub fn of<T>(request: &Request<T>) -> Result<&Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Status::unauthenticated("no caller on request"))
    }

    /// Fails with `PERMISSION_DENIED` unless the caller's role allows `action`.
    pub fn require(&self, action: super::Action) -> Result<(), Status> {
        if self.role.allows(action) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "role {} may not {:?}",
                self.role.as_str(),
                action
            )))
        }
    }
}

/// Tonic interceptor that resolves `authorization: Bearer <token>` to a [`Caller`].
#[derive(Clone)]
pub struct AuthInterceptor {
    store: Store,
}

impl AuthInterceptor {
    pub fn new(store: Store) -> Self {
        AuthInterceptor { store }
    }

    fn authenticate(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        let hash = tokens::hash(token);
        self.store.read(|rx| {
            let Some(entry) = rx.get::<TokenHashRecord>(&hash)? else {
                return Ok(None);
            };
            let Some(record) = rx.get::<ApiTokenRecord>(&entry.token_id)? else {
                return Ok(None);
            };
            let Some(member) = rx.get::<MemberRecord>(&record.member_id)? else {
                return Ok(None);
            };
            Ok(Some(Caller {
                org_id: record.org_id,
                member_id: member.id,
                token_id: record.id,
                role: member.role,
            }))
        })
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
        let caller = self.authenticate(token).map_err(|error| {
            tracing::error!(%error, "token lookup failed");
            Status::internal("token lookup failed")
        })?;
        let caller = caller.ok_or_else(|| Status::unauthenticated("invalid or revoked API token"))?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}
