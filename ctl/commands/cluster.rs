//! `fluxctl cluster nodes`: the fluxd nodes sharing one PostgreSQL store.

use fluxcascade::pb::{self, system_service_client::SystemServiceClient};

use crate::client::{ClientError, Target};
use crate::output::{self, Format};
use crate::views;

#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// The nodes seen in the last hour: id, address, state (live, stopped, lost), leases
    /// held, last heartbeat. Needs the operator token (admin.token).
    Nodes,
}

const COLUMNS: &[&str] = &["nodeId", "grpcAddress", "state", "leases", "lastHeartbeat", "answering"];

pub async fn run(command: ClusterCommand, target: &Target, format: Format) -> Result<(), ClientError> {
    let ClusterCommand::Nodes = command;
    let mut client = SystemServiceClient::new(target.connect().await?);
    let answer = client
        .list_cluster_nodes(pb::ListClusterNodesRequest {})
        .await?
        .into_inner();
    if !answer.clustered {
        eprintln!("this fluxd keeps its own store (no --store postgres://…): it is the only node");
    }
    let rows = answer
        .nodes
        .iter()
        .map(|node| views::cluster_node(node, &answer.node_id))
        .collect();
    output::print(format, &serde_json::Value::Array(rows), COLUMNS);
    Ok(())
}
