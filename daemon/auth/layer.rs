//! Authorization of every control-plane call, in one place: a tower layer that resolves the
//! bearer token to a [`Caller`], checks the method's row of the permission matrix
//! ([`super::permissions`]), and writes the audit entry of each mutating call before its
//! answer leaves. Health and reflection pass untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use super::Role;
use super::permissions::{Access, Rule, rule_of};
use super::records::{ApiTokenRecord, MemberRecord, TokenHashRecord};
use super::tokens;
use crate::orgs::audit::{self, Entry};
use crate::store::{Reader, Store, StoreError};

/// The package whose methods need authorization.
const API_PREFIX: &str = "/fluxcascade.v1.";

/// Who is calling: attached to each authorized request's extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub org_id: String,
    pub member_id: String,
    pub token_id: String,
    pub role: Role,
    /// The person behind the member (see [`MemberRecord::principal`]).
    pub principal: String,
    /// Whether the token is the operator token.
    pub operator: bool,
}

impl Caller {
    /// The caller of an authorized request.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))
    }

    /// Fails with `PERMISSION_DENIED` unless the caller's role may make calls needing
    /// `access`: for checks that depend on the target (an owner's token, the owner role).
    pub fn require(&self, access: Access) -> Result<(), Status> {
        if self.role.may(access) {
            Ok(())
        } else {
            Err(denied(self.role, access))
        }
    }
}

fn denied(role: Role, access: Access) -> Status {
    let needed = match access {
        Access::Own => "the owner role",
        Access::Configure | Access::RevealSecrets | Access::ManageMembers => "the admin or owner role",
        _ => "another role",
    };
    crate::api::status::with_reason(
        tonic::Code::PermissionDenied,
        "PERMISSION_DENIED",
        format!("role {} may not do this: it needs {needed}", role.as_str()),
    )
}

/// A resource a handler names for the audit log, put in its response's extensions.
#[derive(Debug, Clone)]
pub struct AuditedResource(pub String);

/// Wraps the gRPC router with [`Authorize`].
#[derive(Clone)]
pub struct AuthLayer {
    store: Store,
    /// Whether any member may create organizations (else only the operator token).
    anyone_creates_organizations: bool,
}

impl AuthLayer {
    pub fn new(store: Store, anyone_creates_organizations: bool) -> Self {
        AuthLayer {
            store,
            anyone_creates_organizations,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authorize<S> {
    inner: S,
    layer: AuthLayer,
}

impl AuthLayer {
    fn authenticate(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        let hash = tokens::hash(token);
        self.store.read(|rx| {
            let Some(entry) = rx.get::<TokenHashRecord>(&hash)? else {
                return Ok(None);
            };
            let Some(record) = rx.get::<ApiTokenRecord>(&entry.token_id)? else {
                return Ok(None);
            };
            if record.expired(self.store.clock().now_ms()) {
                return Ok(None);
            }
            let Some(member) = rx.get::<MemberRecord>(&record.member_id)? else {
                return Ok(None);
            };
            Ok(Some(Caller {
                org_id: record.org_id,
                principal: member.principal().to_owned(),
                member_id: member.id,
                token_id: record.id,
                role: member.role,
                operator: record.operator,
            }))
        })
    }

    /// The caller of `headers`, allowed by `rule`; `None` for a public method.
    fn authorize(&self, headers: &http::HeaderMap, rule: Rule) -> Result<Option<Caller>, Status> {
        if rule.access == Access::Public {
            return Ok(None);
        }
        let header = headers
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
        if !caller.role.may(rule.access) {
            return Err(denied(caller.role, rule.access));
        }
        if rule.access == Access::CreateOrganization && !self.anyone_creates_organizations && !caller.operator {
            return Err(crate::api::status::with_reason(
                tonic::Code::PermissionDenied,
                "PERMISSION_DENIED",
                "only the operator token (admin.token) may create organizations on this daemon ([organizations] create)",
            ));
        }
        if rule.access == Access::Operator && !caller.operator {
            return Err(crate::api::status::with_reason(
                tonic::Code::PermissionDenied,
                "PERMISSION_DENIED",
                "only the operator token (admin.token) may see the daemon's cluster",
            ));
        }
        Ok(Some(caller))
    }
}

impl<S, B> Service<http::Request<B>> for Authorize<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        // The service that was made ready is the one to call; a fresh clone waits its turn.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !path.starts_with(API_PREFIX) {
            return Box::pin(inner.call(request));
        }
        let Some(rule) = rule_of(&path) else {
            let status = Status::unimplemented(format!("no method {path}"));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let caller = match self.layer.authorize(request.headers(), rule) {
            Ok(caller) => caller,
            Err(status) => return Box::pin(std::future::ready(Ok(status.into_http()))),
        };
        let extensions = request.extensions();
        let peer = extensions
            .get::<TcpConnectInfo>()
            .or_else(|| {
                extensions
                    .get::<TlsConnectInfo<TcpConnectInfo>>()
                    .map(|tls| tls.get_ref())
            })
            .and_then(|info| info.remote_addr())
            .map(|addr| addr.to_string())
            .unwrap_or_default();
        if let Some(caller) = &caller {
            request.extensions_mut().insert(caller.clone());
        }
        let store = self.layer.store.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            if rule.mutates {
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0);
                let resource = response.extensions().get::<AuditedResource>().map(|r| r.0.clone());
                // A public call (accepting an invitation) is audited by its handler, which
                // knows the organization.
                if let Some(caller) = caller
                    && code == 0
                {
                    let entry = Entry {
                        org_id: caller.org_id,
                        member_id: caller.member_id,
                        token_id: caller.token_id,
                        method: path,
                        resource_id: resource.unwrap_or_default(),
                        peer,
                        code,
                    };
                    if let Err(error) = store.write(move |tx| audit::append(tx, entry)).await {
                        tracing::error!(%error, "audit entry not stored");
                    }
                }
            }
            Ok(response)
        })
    }
}
