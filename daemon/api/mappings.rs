//! `MappingService`: mappings, their field catalogs and previews.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Context;
use crate::actors::{SupervisedKind, start_child, stop_child};
use crate::auth::{Action, Caller};
use crate::connections::service::connection_in_org;
use crate::connectors::ListQuery;
use crate::mappings::MappingRecord;
use crate::mappings::actor::reload;
use crate::mappings::service::{self, MappingError, mapping_in_org};
use crate::mappings::wire::{mapping_to_pb, spec_from_pb};
use crate::pb::{self, mapping_service_server::MappingService};
use crate::store::Reader;
use crate::syncs::links::purge_mapping;
use crate::syncs::plan::Plan;
use crate::syncs::records::Flow;
use crate::syncs::runner::jobs_of_mapping;

/// Most records a preview fetches.
const MAX_PREVIEW: u32 = 50;

pub struct MappingApi {
    context: Arc<Context>,
}

impl MappingApi {
    pub fn new(context: Arc<Context>) -> Self {
        MappingApi { context }
    }
}

impl From<MappingError> for Status {
    fn from(error: MappingError) -> Status {
        let message = error.to_string();
        match error {
            MappingError::Invalid(_) => Status::invalid_argument(message),
            MappingError::NotFound(_) => Status::not_found(message),
            MappingError::Catalog { .. } => Status::unavailable(message),
            MappingError::Store(error) => error.into(),
        }
    }
}

fn spec_of(spec: Option<&pb::MappingSpec>) -> Result<crate::mappings::MappingSpec, Status> {
    spec_from_pb(spec.ok_or_else(|| Status::invalid_argument("spec: missing"))?).map_err(Status::invalid_argument)
}

impl MappingApi {
    /// Cancels the mapping's queued or running job and waits (up to 10 s) for it to stop, so
    /// nothing it writes afterwards outlives the mapping.
    async fn stop_jobs(&self, org_id: &str, mapping_id: &str) -> Result<(), Status> {
        for _ in 0..100 {
            let active = self
                .context
                .store
                .read(|rx| jobs_of_mapping(rx, mapping_id))?
                .into_iter()
                .find(|j| !j.status.is_finished());
            let Some(job) = active else { return Ok(()) };
            self.context.syncs.cancel(org_id, &job.id)?;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(Status::unavailable("the mapping's sync did not stop; try again"))
    }
}

#[tonic::async_trait]
impl MappingService for MappingApi {
    async fn create_mapping(
        &self,
        request: Request<pb::CreateMappingRequest>,
    ) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Configure)?;
        let spec = spec_of(request.get_ref().spec.as_ref())?;
        let record = service::create(
            &self.context.mappings,
            &caller.org_id,
            spec,
            !request.get_ref().inactive,
        )
        .await?;
        start_child(SupervisedKind::Mappings, &record.id);
        Ok(Response::new(mapping_to_pb(&record)))
    }

    async fn update_mapping(
        &self,
        request: Request<pb::UpdateMappingRequest>,
    ) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Configure)?;
        let spec = spec_of(request.get_ref().spec.as_ref())?;
        let record = service::update(&self.context.mappings, &caller.org_id, &request.get_ref().id, spec).await?;
        reload(&record.id);
        Ok(Response::new(mapping_to_pb(&record)))
    }

    async fn get_mapping(&self, request: Request<pb::GetMappingRequest>) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let record = self
            .context
            .store
            .read(|rx| mapping_in_org(rx, &caller.org_id, &request.get_ref().id))?;
        Ok(Response::new(mapping_to_pb(&record)))
    }

    async fn list_mappings(
        &self,
        request: Request<pb::ListMappingsRequest>,
    ) -> Result<Response<pb::ListMappingsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let records = self
            .context
            .store
            .read(|rx| rx.list::<MappingRecord>().map_err(Status::from))?;
        let mappings = records
            .iter()
            .filter(|m| m.org_id == caller.org_id)
            .map(mapping_to_pb)
            .collect();
        Ok(Response::new(pb::ListMappingsResponse { mappings }))
    }

    async fn delete_mapping(
        &self,
        request: Request<pb::DeleteMappingRequest>,
    ) -> Result<Response<pb::DeleteMappingResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        caller.require(Action::Configure)?;
        let id = request.into_inner().id;
        self.context.store.read(|rx| mapping_in_org(rx, &caller.org_id, &id))?;
        stop_child(SupervisedKind::Mappings, &id).await;
        self.stop_jobs(&caller.org_id, &id).await?;
        service::delete(&self.context.mappings, &caller.org_id, &id)?;
        purge_mapping(&self.context.store, &id)?;
        Ok(Response::new(pb::DeleteMappingResponse {}))
    }

    async fn activate_mapping(
        &self,
        request: Request<pb::ActivateMappingRequest>,
    ) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Configure)?;
        let record = service::set_active(&self.context.mappings, &caller.org_id, &request.get_ref().id, true)?;
        reload(&record.id);
        Ok(Response::new(mapping_to_pb(&record)))
    }

    async fn deactivate_mapping(
        &self,
        request: Request<pb::DeactivateMappingRequest>,
    ) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Configure)?;
        let record = service::set_active(&self.context.mappings, &caller.org_id, &request.get_ref().id, false)?;
        reload(&record.id);
        Ok(Response::new(mapping_to_pb(&record)))
    }

    async fn list_fields(
        &self,
        request: Request<pb::ListFieldsRequest>,
    ) -> Result<Response<pb::ListFieldsResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Read)?;
        let body = request.get_ref();
        let connection = self
            .context
            .store
            .read(|rx| connection_in_org(rx, &caller.org_id, &body.connection_id))?;
        crate::mappings::validate::check_object(connection.provider, &body.object, "object")
            .map_err(Status::invalid_argument)?;
        let fields = self.context.mappings.catalog(&connection, &body.object).await?;
        let fields = fields
            .iter()
            .map(|f| pb::Field {
                name: f.name.clone(),
                label: f.label.clone(),
                r#type: f.kind.clone(),
                required: f.required,
                read_only: f.read_only,
            })
            .collect();
        Ok(Response::new(pb::ListFieldsResponse { fields }))
    }

    async fn preview_mapping(
        &self,
        request: Request<pb::PreviewMappingRequest>,
    ) -> Result<Response<pb::PreviewMappingResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Action::Operate)?;
        let body = request.get_ref();
        let record = self
            .context
            .store
            .read(|rx| mapping_in_org(rx, &caller.org_id, &body.id))?;
        let source = self
            .context
            .store
            .read(|rx| connection_in_org(rx, &caller.org_id, &record.spec.source.connection))?;
        let plan = Plan::compile(&record.spec).map_err(Status::failed_precondition)?;
        let limit = match body.limit {
            0 => 5,
            n => n.min(MAX_PREVIEW),
        };
        let query = ListQuery {
            object: &record.spec.source.object,
            since: None,
            cursor: None,
            limit: limit as usize,
            fields: &plan.source_fields,
        };
        let page = self
            .context
            .mappings
            .connector(&source)
            .list_changed(&query)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let records = page
            .records
            .iter()
            .take(limit as usize)
            .map(|r| {
                let (values, errors) = plan.map_all(Flow::Forward, &r.fields);
                pb::PreviewRecord {
                    source_id: r.id.clone(),
                    values: values.into_iter().collect(),
                    errors,
                }
            })
            .collect();
        Ok(Response::new(pb::PreviewMappingResponse { records }))
    }
}
