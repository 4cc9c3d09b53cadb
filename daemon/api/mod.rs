//! The gRPC control plane: one thin tonic adapter per service, plus health and reflection.

mod connections;
pub(crate) mod convert;
mod events;
mod layer;
mod mappings;
mod organizations;
mod pages;
pub(crate) mod status;
mod syncs;
mod system;
pub mod tls;
mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::actors::{Directory, LiveCounts};
use crate::auth::AuthLayer;
use crate::config::Config;
use crate::config::OrganizationCreators;
use crate::connections::ConnectionRuntime;
use crate::listen::LimitedListener;
use crate::mappings::service::MappingRuntime;
use crate::metrics::Metrics;
use crate::pb;
use crate::store::Store;
use crate::syncs::SyncRuntime;
use crate::webhooks::ssrf::SharedPolicy;

/// The longest a request may take to be answered (WaitConnection waits at most 10 minutes).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Concurrent calls on one connection.
const MAX_STREAMS_PER_CONNECTION: usize = 256;

/// Everything the service adapters share.
pub struct Context {
    pub store: Store,
    pub config: Config,
    pub live: LiveCounts,
    pub directory: Directory,
    pub webhook_policy: SharedPolicy,
    pub connections: Arc<ConnectionRuntime>,
    pub mappings: Arc<MappingRuntime>,
    pub syncs: Arc<SyncRuntime>,
    /// `<public url>` of the HTTP listener, without a trailing slash: webhook URLs start
    /// with it.
    pub public_url: String,
    pub started: Instant,
    pub started_at: String,
    /// This node's id among a cluster's nodes.
    pub node_id: String,
}

/// `message` as the answer of a call on resource `id`, which the audit log records.
pub(crate) fn audited<T>(message: T, id: &str) -> tonic::Response<T> {
    let mut response = tonic::Response::new(message);
    response
        .extensions_mut()
        .insert(crate::auth::AuditedResource(id.to_owned()));
    response
}

/// Errors of the gRPC server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC TLS: {0}")]
    Tls(#[from] tonic::transport::Error),
    #[error("reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(tonic::transport::Error),
}

use pb::{
    connection_service_server::ConnectionServiceServer, event_service_server::EventServiceServer,
    mapping_service_server::MappingServiceServer, organization_service_server::OrganizationServiceServer,
    sync_service_server::SyncServiceServer, system_service_server::SystemServiceServer,
    webhook_service_server::WebhookServiceServer,
};

/// The API's services, as one router.
fn api_routes(context: &Arc<Context>) -> tonic::service::Routes {
    tonic::service::Routes::new(SystemServiceServer::new(system::SystemApi::new(context.clone())))
        .add_service(OrganizationServiceServer::new(organizations::OrganizationApi::new(
            context.clone(),
        )))
        .add_service(ConnectionServiceServer::new(connections::ConnectionApi::new(
            context.clone(),
        )))
        .add_service(MappingServiceServer::new(mappings::MappingApi::new(context.clone())))
        .add_service(SyncServiceServer::new(syncs::SyncApi::new(context.clone())))
        .add_service(WebhookServiceServer::new(webhooks::WebhookApi::new(context.clone())))
        .add_service(EventServiceServer::new(events::EventApi::new(context.clone())))
}

fn auth_layer(context: &Context) -> AuthLayer {
    AuthLayer::new(
        context.store.clone(),
        context.config.organizations.create == OrganizationCreators::Anyone,
    )
}

/// The API served inside the process, for the web console: every call goes through the same
/// authorization, permission matrix, audit log, metrics and handlers as a call over the gRPC
/// listener, only without the network.
pub type InProcess = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    std::convert::Infallible,
>;

/// The longest an in-process call may take to answer (a stream: to start answering), as the
/// gRPC listener bounds its calls; a call over it answers `DEADLINE_EXCEEDED`.
const IN_PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The in-process API on `context`.
pub fn in_process(context: &Arc<Context>, metrics: Metrics) -> InProcess {
    type Request = http::Request<tonic::body::Body>;
    let service = tower::ServiceBuilder::new()
        .layer(layer::RpcMetricsLayer::new(metrics))
        .layer(auth_layer(context))
        .service(api_routes(context));
    let service = tower::ServiceExt::<Request>::map_future(service, |answer| async move {
        match tokio::time::timeout(IN_PROCESS_TIMEOUT, answer).await {
            Ok(answered) => answered,
            Err(_) => Ok(tonic::Status::deadline_exceeded("the call took too long to answer").into_http()),
        }
    });
    tower::util::BoxCloneSyncService::new(service)
}

/// Serves every service on `listener` until `shutdown` resolves; in-flight RPCs finish first.
pub async fn serve(
    listener: TcpListener,
    context: Arc<Context>,
    metrics: Metrics,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    // Every service answers health checks by name (and "" for the whole server).
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<SystemServiceServer<system::SystemApi>>()
        .await;
    health_reporter
        .set_serving::<OrganizationServiceServer<organizations::OrganizationApi>>()
        .await;
    health_reporter
        .set_serving::<ConnectionServiceServer<connections::ConnectionApi>>()
        .await;
    health_reporter
        .set_serving::<MappingServiceServer<mappings::MappingApi>>()
        .await;
    health_reporter.set_serving::<SyncServiceServer<syncs::SyncApi>>().await;
    health_reporter
        .set_serving::<WebhookServiceServer<webhooks::WebhookApi>>()
        .await;
    health_reporter
        .set_serving::<EventServiceServer<events::EventApi>>()
        .await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let auth = auth_layer(&context);
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        // A request gets this long to be answered (streams: to start answering).
        .timeout(REQUEST_TIMEOUT)
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION)
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION as u32))
        // Dead peers are noticed and their connections closed.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(layer::RpcMetricsLayer::new(metrics))
        .layer(auth)
        .add_routes(api_routes(&context))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(LimitedListener::new(listener, "gRPC").into_stream(), shutdown)
        .await
        .map_err(ServeError::Transport)?;
    Ok(())
}
