//! `ConnectionService`: OAuth connections to provider accounts.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Code, Request, Response, Status};

use super::Context;
use super::audited;
use super::convert::{provider_from_pb, provider_to_pb};
use super::pages::PageRequest;
use super::status::{invalid, not_found, with_reason};
use crate::actors::SupervisedKind;
use crate::auth::Caller;
use crate::connections::records::ConnectionRecord;
use crate::connections::service::{self, ConnectionError};
use crate::connections::{ConnectionStatus, actor, authorize};
use crate::crypto::Secret;
use crate::inbound::registration::{self, RegistrationError};
use crate::pb::{self, connection_service_server::ConnectionService};
use crate::pb_time;
use crate::providers::oauth::OAuthError;
use crate::store::{OrgKind, Reader};

/// Default and longest wait for an authorization to complete.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(1800);

pub struct ConnectionApi {
    context: Arc<Context>,
}

impl ConnectionApi {
    pub fn new(context: Arc<Context>) -> Self {
        ConnectionApi { context }
    }
}

impl From<ConnectionError> for Status {
    fn from(error: ConnectionError) -> Status {
        let message = error.to_string();
        match error {
            ConnectionError::NotConfigured(_) => {
                with_reason(Code::FailedPrecondition, "PROVIDER_NOT_CONFIGURED", message)
            }
            ConnectionError::AuthorizationFailed(_) => {
                with_reason(Code::FailedPrecondition, "AUTHORIZATION_FAILED", message)
            }
            ConnectionError::Unusable { .. } => with_reason(Code::FailedPrecondition, "CONNECTION_UNUSABLE", message),
            ConnectionError::NotFound(id) => not_found("connection", &id),
            ConnectionError::UnknownAuthorization => not_found("authorization", "state"),
            ConnectionError::Invalid { field, problem } => invalid(field, problem),
            ConnectionError::OAuth(OAuthError::Revoked { .. }) => {
                with_reason(Code::FailedPrecondition, "GRANT_REVOKED", message)
            }
            ConnectionError::OAuth(OAuthError::Transient { .. }) | ConnectionError::Identity(_) => {
                with_reason(Code::Unavailable, "PROVIDER_UNAVAILABLE", message)
            }
            ConnectionError::ActorUnavailable => with_reason(Code::Unavailable, "ACTOR_UNAVAILABLE", message),
            ConnectionError::OAuth(_) => with_reason(Code::FailedPrecondition, "OAUTH_REFUSED", message),
            ConnectionError::Timeout(_) => with_reason(Code::DeadlineExceeded, "AUTHORIZATION_TIMEOUT", message),
            ConnectionError::Store(error) => error.into(),
        }
    }
}

fn status_to_pb(status: ConnectionStatus) -> pb::ConnectionStatus {
    match status {
        ConnectionStatus::Active => pb::ConnectionStatus::Active,
        ConnectionStatus::Expired => pb::ConnectionStatus::Expired,
        ConnectionStatus::Error => pb::ConnectionStatus::Error,
    }
}

fn connection_to_pb(record: &ConnectionRecord) -> pb::Connection {
    pb::Connection {
        id: record.id.clone(),
        provider: provider_to_pb(record.provider).into(),
        status: status_to_pb(record.status).into(),
        account_name: record.account_name.clone(),
        created_at: pb_time::from_text(&record.created_at),
        updated_at: pb_time::from_text(&record.updated_at),
        token_expires_at: pb_time::from_optional_text(record.token_expires_at.as_deref()),
        last_refreshed_at: pb_time::from_optional_text(record.last_refreshed_at.as_deref()),
        last_error: record.last_error.clone().unwrap_or_default(),
    }
}

fn non_empty(value: String) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

impl ConnectionApi {
    /// An imported connection's API base URL gets the bearer token on every call: it must pass
    /// the outbound address policy (no loopback, private or metadata addresses, https) unless
    /// this is a sandbox daemon, whose providers are local.
    async fn guard_api_base(&self, base: &str) -> Result<(), Status> {
        if base.len() > 2048 {
            return Err(invalid("api_base_url", "longer than 2048 characters"));
        }
        let url = url::Url::parse(base).map_err(|e| invalid("api_base_url", e))?;
        if self.context.config.sandbox {
            return Ok(());
        }
        let policy = self.context.webhook_policy.get();
        policy.check_url(base).map_err(|e| invalid("api_base_url", e))?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            let resolved = tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| invalid("api_base_url", format!("host {host} does not resolve")))?;
            for addr in resolved {
                policy.check_ip(addr.ip()).map_err(|e| invalid("api_base_url", e))?;
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl ConnectionService for ConnectionApi {
    async fn create_connection(
        &self,
        request: Request<pb::CreateConnectionRequest>,
    ) -> Result<Response<pb::CreateConnectionResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let provider = provider_from_pb(body.provider)?;
        let started = authorize::begin(
            &self.context.connections,
            &caller.org_id,
            provider,
            body.scopes.clone(),
            body.return_to_console,
        )
        .await?;
        Ok(Response::new(pb::CreateConnectionResponse {
            authorize_url: started.authorize_url,
            state: started.state,
            expires_at: pb_time::from_text(&started.expires_at),
        }))
    }

    async fn wait_connection(
        &self,
        request: Request<pb::WaitConnectionRequest>,
    ) -> Result<Response<pb::Connection>, Status> {
        let caller = Caller::of(&request)?.clone();
        let body = request.into_inner();
        let timeout = match body.timeout_seconds {
            0 => DEFAULT_WAIT,
            seconds => Duration::from_secs(u64::from(seconds)).min(MAX_WAIT),
        };
        let record = authorize::wait(&self.context.connections, &caller.org_id, &body.state, timeout).await?;
        Ok(Response::new(connection_to_pb(&record)))
    }

    async fn import_connection(
        &self,
        request: Request<pb::ImportConnectionRequest>,
    ) -> Result<Response<pb::Connection>, Status> {
        let caller = Caller::of(&request)?.clone();
        let body = request.into_inner();
        let provider = provider_from_pb(body.provider)?;
        let refresh = non_empty(body.refresh_token).map(Secret::new);
        let access = non_empty(body.access_token).map(Secret::new);
        if refresh.is_none() && access.is_none() {
            return Err(invalid("refresh_token", "give a refresh token or an access token"));
        }
        let base = non_empty(body.api_base_url);
        if let Some(base) = &base {
            self.guard_api_base(base).await?;
        }
        let record = service::import(
            &self.context.connections,
            &caller.org_id,
            provider,
            refresh,
            access,
            base,
        )
        .await?;
        self.context
            .directory
            .start_child(SupervisedKind::Connections, &record.org_id, &record.id);
        Ok(audited(connection_to_pb(&record), &record.id))
    }

    async fn list_connections(
        &self,
        request: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<pb::ListConnectionsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let records = self.context.store.read(|rx| {
            rx.org_records::<ConnectionRecord>(OrgKind::Connection, &caller.org_id, page.after.as_deref(), page.fetch())
        })?;
        let (records, next_page_token) = page.finish(records, |c| c.id.clone());
        Ok(Response::new(pb::ListConnectionsResponse {
            connections: records.iter().map(connection_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_connection(
        &self,
        request: Request<pb::GetConnectionRequest>,
    ) -> Result<Response<pb::Connection>, Status> {
        let caller = Caller::of(&request)?;
        let id = &request.get_ref().id;
        let record = self
            .context
            .store
            .read(|rx| service::connection_in_org(rx, &caller.org_id, id))?;
        Ok(Response::new(connection_to_pb(&record)))
    }

    async fn delete_connection(
        &self,
        request: Request<pb::DeleteConnectionRequest>,
    ) -> Result<Response<pb::DeleteConnectionResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.into_inner().id;
        let runtime = &self.context.connections;
        let record = self
            .context
            .store
            .read(|rx| service::connection_in_org(rx, &caller.org_id, &id))?;
        let connector = self.context.mappings.connector(&record);
        match registration::unsubscribe(&self.context.store, &self.context.public_url, &record, &connector).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(connection_id = %record.id, removed, "provider webhooks removed"),
            Err(error) => {
                tracing::warn!(connection_id = %record.id, %error, "could not remove the provider's webhooks")
            }
        }
        self.context
            .directory
            .stop_child(SupervisedKind::Connections, &id)
            .await;
        let (record, access, refresh) = service::remove(runtime, &caller.org_id, &id).await?;
        let grant_revoked = match (runtime.oauth(record.provider), access) {
            (Ok(oauth), Some(access)) => match oauth.revoke(refresh.as_ref(), &access).await {
                Ok(revoked) => revoked,
                Err(error) => {
                    tracing::warn!(connection_id = %record.id, %error, "could not revoke the grant at the provider");
                    false
                }
            },
            _ => false,
        };
        tracing::info!(connection_id = %record.id, grant_revoked, "connection deleted");
        Ok(audited(pb::DeleteConnectionResponse { grant_revoked }, &record.id))
    }

    async fn get_connection_webhooks(
        &self,
        request: Request<pb::GetConnectionWebhooksRequest>,
    ) -> Result<Response<pb::ConnectionWebhooks>, Status> {
        let caller = Caller::of(&request)?.clone();
        let body = request.into_inner();
        let record = self
            .context
            .store
            .read(|rx| service::connection_in_org(rx, &caller.org_id, &body.id))?;
        let connector = self.context.mappings.connector(&record);
        let registration = registration::register(
            &self.context.store,
            &self.context.public_url,
            &record,
            &connector,
            body.subscribe,
        )
        .await
        .map_err(|error| match error {
            RegistrationError::NotSubscribable { .. } => {
                with_reason(Code::FailedPrecondition, "NOT_SUBSCRIBABLE", error.to_string())
            }
            RegistrationError::Connector(error) => {
                with_reason(Code::Unavailable, "PROVIDER_UNAVAILABLE", error.to_string())
            }
            RegistrationError::Store(error) => error.into(),
        })?;
        let (basic_auth_user, basic_auth_password) = registration
            .basic_auth
            .map(|(user, password)| (user, password.expose().to_owned()))
            .unwrap_or_default();
        Ok(audited(
            pb::ConnectionWebhooks {
                connection_id: record.id.clone(),
                provider: provider_to_pb(record.provider).into(),
                url: registration.url,
                app_url: registration.app_url.unwrap_or_default(),
                instructions: registration.instructions,
                basic_auth_user,
                basic_auth_password,
                subscriptions: registration
                    .subscriptions
                    .into_iter()
                    .map(|s| pb::WebhookSubscription {
                        id: s.id,
                        event: s.event,
                    })
                    .collect(),
            },
            &record.id,
        ))
    }

    async fn refresh_connection(
        &self,
        request: Request<pb::RefreshConnectionRequest>,
    ) -> Result<Response<pb::Connection>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.into_inner().id;
        self.context
            .store
            .read(|rx| service::connection_in_org(rx, &caller.org_id, &id))?;
        match actor::refresh_now(&self.context.directory, &id).await? {
            Ok(record) => Ok(audited(connection_to_pb(&record), &record.id)),
            Err(reason) => Err(with_reason(
                Code::FailedPrecondition,
                "REFRESH_FAILED",
                format!("refresh failed: {reason}"),
            )),
        }
    }
}
