//! `SystemService`: status and version.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Context;
use crate::auth::{Action, Caller};
use crate::pb::{self, system_service_server::SystemService};
use crate::store::{OrgKind, Reader, SCHEMA_VERSION};

/// Version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Version of the gRPC API package.
pub const API_VERSION: &str = "fluxcascade.v1";

pub struct SystemApi {
    context: Arc<Context>,
}

impl SystemApi {
    pub fn new(context: Arc<Context>) -> Self {
        SystemApi { context }
    }
}

#[tonic::async_trait]
impl SystemService for SystemApi {
    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let org = caller.org_id.as_str();
        let (connections_stored, mappings_stored, endpoints_stored) = self.context.store.read(|rx| {
            Ok::<_, Status>((
                rx.org_count(OrgKind::Connection, org)?,
                rx.org_count(OrgKind::Mapping, org)?,
                rx.org_count(OrgKind::WebhookEndpoint, org)?,
            ))
        })?;
        let (connections, mappings, webhook_endpoints) = self.context.live.snapshot();
        Ok(Response::new(pb::GetStatusResponse {
            version: VERSION.into(),
            uptime_seconds: self.context.started.elapsed().as_secs(),
            started_at: crate::pb_time::from_text(&self.context.started_at),
            connections: connections_stored,
            mappings: mappings_stored,
            webhook_endpoints: endpoints_stored,
            live_actors: Some(pb::ActorCounts {
                connections,
                mappings,
                webhook_endpoints,
                total: connections + mappings + webhook_endpoints,
            }),
            organization_id: caller.org_id.clone(),
            schema_version: SCHEMA_VERSION,
        }))
    }

    async fn get_version(
        &self,
        request: Request<pb::GetVersionRequest>,
    ) -> Result<Response<pb::GetVersionResponse>, Status> {
        Caller::of(&request)?.require(Action::Read)?;
        Ok(Response::new(pb::GetVersionResponse {
            version: VERSION.into(),
            api_version: API_VERSION.into(),
        }))
    }
}
