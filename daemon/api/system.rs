//! `SystemService`: status and version.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::Context;
use crate::actors::SupervisedKind;
use crate::auth::Caller;
use crate::cluster::leases;
use crate::orgs::lifecycle::all_ids;
use crate::pb::{self, system_service_server::SystemService};
use crate::store::{OrgKind, SCHEMA_VERSION};

/// How far back `ListClusterNodes` looks for nodes that stopped or were lost.
const NODES_SEEN_WITHIN: Duration = Duration::from_secs(3600);

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
        let org = caller.org_id.as_str();
        // Counts of this organization only: what it stores, and how many of those run.
        let (connection_ids, mapping_ids, endpoint_ids) = self.context.store.read(|rx| {
            Ok::<_, Status>((
                all_ids(rx, OrgKind::Connection, org)?,
                all_ids(rx, OrgKind::Mapping, org)?,
                all_ids(rx, OrgKind::WebhookEndpoint, org)?,
            ))
        })?;
        let directory = &self.context.directory;
        let connections = directory.running(SupervisedKind::Connections, &connection_ids);
        let mappings = directory.running(SupervisedKind::Mappings, &mapping_ids);
        let webhook_endpoints = directory.running(SupervisedKind::WebhookEndpoints, &endpoint_ids);
        let (connections_stored, mappings_stored, endpoints_stored) = (
            connection_ids.len() as u64,
            mapping_ids.len() as u64,
            endpoint_ids.len() as u64,
        );
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
            store_error: self.context.store.failure().unwrap_or_default(),
        }))
    }

    async fn list_cluster_nodes(
        &self,
        request: Request<pb::ListClusterNodesRequest>,
    ) -> Result<Response<pb::ListClusterNodesResponse>, Status> {
        Caller::of(&request)?;
        let store = self.context.store.clone();
        let ttl = Duration::from_secs(u64::from(self.context.config.cluster.lease_seconds));
        let nodes = tokio::task::spawn_blocking(move || match store.postgres() {
            None => Ok(None),
            Some(db) => leases::nodes(&mut *db.connection()?, ttl, NODES_SEEN_WITHIN).map(Some),
        })
        .await
        .map_err(|_| Status::internal("listing the nodes failed"))?
        .map_err(|error| {
            tracing::error!(%error, "cannot list the cluster's nodes");
            Status::unavailable("cannot read the cluster's nodes from the store")
        })?;
        Ok(Response::new(pb::ListClusterNodesResponse {
            clustered: nodes.is_some(),
            node_id: self.context.node_id.clone(),
            nodes: nodes
                .unwrap_or_default()
                .into_iter()
                .map(|node| pb::ClusterNode {
                    node_id: node.node_id,
                    grpc_address: node.grpc_address,
                    http_address: node.http_address,
                    state: node.state,
                    leases: u64::try_from(node.leases).unwrap_or(0),
                    started_at: crate::pb_time::from_text(&node.started_at),
                    last_heartbeat: crate::pb_time::from_text(&node.heartbeat_at),
                })
                .collect(),
        }))
    }

    async fn get_version(
        &self,
        request: Request<pb::GetVersionRequest>,
    ) -> Result<Response<pb::GetVersionResponse>, Status> {
        Caller::of(&request)?;
        Ok(Response::new(pb::GetVersionResponse {
            version: VERSION.into(),
            api_version: API_VERSION.into(),
        }))
    }
}
