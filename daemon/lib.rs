//! FluxCascade: a data-sync daemon that keeps HubSpot, Jobber, Pipedrive and Salesforce in
//! step and reports what happened through signed webhooks.
//!
//! The daemon (`fluxd`) is this library's [`daemon::run`]; `fluxctl` is a client of the gRPC
//! API generated into [`pb`].

pub mod actors;
pub mod api;
pub mod auth;
pub mod body;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod connectors;
pub mod console;
pub mod crypto;
pub mod daemon;
#[cfg(feature = "sandbox")]
pub mod demo;
pub mod events;
pub mod ids;
pub mod inbound;
pub mod listen;
pub mod mappings;
pub mod metrics;
pub mod orgs;
pub mod pb_time;
pub mod placement;
pub mod providers;
pub mod reload;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod store;
pub mod syncs;
pub mod timestamps;
pub mod transform;
pub mod web;
pub mod webhooks;

/// The gRPC API, generated from `proto/fluxcascade/v1/*.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("fluxcascade.v1");
    /// Encoded descriptors of the API, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("fluxcascade_descriptor");
}
