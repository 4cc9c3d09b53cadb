//! The console's calls: the API's own services in process, as the signed-in member, so
//! every page and form is authorized, validated and audited exactly as the same call over
//! gRPC would be.

use std::net::SocketAddr;

use tonic::Code;
use tonic::transport::server::TcpConnectInfo;
use tonic_types::StatusExt;

use crate::api::InProcess;
use crate::crypto::Secret;
use crate::pb;

/// The in-process API, calling as one API token.
pub struct Api {
    service: InProcess,
    token: Secret,
    /// The browser's address, which the audit log records.
    peer: Option<SocketAddr>,
}

macro_rules! client {
    ($name:ident, $client:ty) => {
        pub fn $name(&self) -> $client {
            <$client>::new(self.service.clone())
        }
    };
}

impl Api {
    pub fn new(service: InProcess, token: Secret, peer: Option<SocketAddr>) -> Api {
        Api { service, token, peer }
    }

    /// `message` as a call with this token.
    pub fn call<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = format!("Bearer {}", self.token.expose()).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request.extensions_mut().insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: self.peer,
        });
        request
    }

    client!(
        organizations,
        pb::organization_service_client::OrganizationServiceClient<InProcess>
    );
    client!(
        connections,
        pb::connection_service_client::ConnectionServiceClient<InProcess>
    );
    client!(mappings, pb::mapping_service_client::MappingServiceClient<InProcess>);
    client!(syncs, pb::sync_service_client::SyncServiceClient<InProcess>);
    client!(webhooks, pb::webhook_service_client::WebhookServiceClient<InProcess>);
}

/// Why a call failed, as the console shows it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The session's token no longer works (revoked, expired): sign in again.
    #[error("your session ended; sign in again")]
    SignedOut,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    /// Bad input: `(field, problem)` per violation.
    #[error("{}", violations_text(.0))]
    Invalid(Vec<(String, String)>),
    /// The call cannot be made in the current state; `reason` is the API's stable reason.
    #[error("{message}")]
    Precondition { reason: String, message: String },
    /// Anything else: the API's message.
    #[error("{0}")]
    Other(String),
}

fn violations_text(violations: &[(String, String)]) -> String {
    violations
        .iter()
        .map(|(field, problem)| format!("{field}: {problem}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Failure {
        let message = status.message().to_owned();
        match status.code() {
            Code::Unauthenticated => Failure::SignedOut,
            Code::NotFound => Failure::NotFound(message),
            Code::PermissionDenied => Failure::Forbidden(message),
            Code::InvalidArgument => {
                let violations: Vec<(String, String)> = status
                    .get_details_bad_request()
                    .map(|bad| {
                        bad.field_violations
                            .into_iter()
                            .map(|violation| (violation.field, violation.description))
                            .collect()
                    })
                    .unwrap_or_default();
                if violations.is_empty() {
                    Failure::Invalid(vec![("request".to_owned(), message)])
                } else {
                    Failure::Invalid(violations)
                }
            }
            Code::FailedPrecondition => Failure::Precondition {
                reason: status
                    .get_details_error_info()
                    .map(|info| info.reason)
                    .unwrap_or_default(),
                message,
            },
            _ => Failure::Other(message),
        }
    }
}
