//! Services whose capabilities arrive with later work: every RPC answers `UNIMPLEMENTED`,
//! after authentication, so clients can already discover and call them.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::pb::{self, mapping_service_server::MappingService, sync_service_server::SyncService};

/// Adapter for the not-yet-built services.
pub struct PendingApi;

fn pending<T>(what: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!("{what} is not implemented yet")))
}

macro_rules! pending_service {
    ($service:ident { $([type $assoc:ident = $assoc_ty:ty;])? $($name:ident($req:ty) -> $resp:ty;)* }) => {
        #[tonic::async_trait]
        impl $service for PendingApi {
            $(type $assoc = $assoc_ty;)?
            $(
                async fn $name(&self, _request: Request<$req>) -> Result<Response<$resp>, Status> {
                    pending(stringify!($name))
                }
            )*
        }
    };
}

pending_service!(MappingService {
    create_mapping(pb::CreateMappingRequest) -> pb::Mapping;
    update_mapping(pb::UpdateMappingRequest) -> pb::Mapping;
    get_mapping(pb::GetMappingRequest) -> pb::Mapping;
    list_mappings(pb::ListMappingsRequest) -> pb::ListMappingsResponse;
    delete_mapping(pb::DeleteMappingRequest) -> pb::DeleteMappingResponse;
    activate_mapping(pb::ActivateMappingRequest) -> pb::Mapping;
    deactivate_mapping(pb::DeactivateMappingRequest) -> pb::Mapping;
    list_fields(pb::ListFieldsRequest) -> pb::ListFieldsResponse;
    preview_mapping(pb::PreviewMappingRequest) -> pb::PreviewMappingResponse;
});

pending_service!(SyncService {
    [type WatchSyncStream = Pin<Box<dyn Stream<Item = Result<pb::SyncJob, Status>> + Send + 'static>>;]
    run_sync(pb::RunSyncRequest) -> pb::SyncJob;
    get_sync(pb::GetSyncRequest) -> pb::SyncJob;
    list_syncs(pb::ListSyncsRequest) -> pb::ListSyncsResponse;
    cancel_sync(pb::CancelSyncRequest) -> pb::SyncJob;
    watch_sync(pb::WatchSyncRequest) -> Self::WatchSyncStream;
    list_sync_errors(pb::ListSyncErrorsRequest) -> pb::ListSyncErrorsResponse;
});
