//! `MappingService`: mappings, their field catalogs and previews.

use std::sync::Arc;

use tonic::{Code, Request, Response, Status};

use super::Context;
use super::audited;
use super::pages::PageRequest;
use super::status::{invalid, invalid_texts, not_found, with_reason};
use crate::actors::SupervisedKind;
use crate::auth::Caller;
use crate::auth::permissions::Access;
use crate::connections::service::connection_in_org;
use crate::connectors::ListQuery;
use crate::mappings::MappingRecord;
use crate::mappings::actor::MappingMsg;
use crate::mappings::service::{self, MappingError, mapping_in_org};
use crate::mappings::wire::{mapping_to_pb, spec_from_pb};
use crate::pb::{self, mapping_service_server::MappingService};
use crate::store::{OrgKind, Reader};
use crate::syncs::engine::PAGE_SIZE;
use crate::syncs::plan::{Catalogs, Plan};
use crate::syncs::records::Flow;

/// Most records a preview fetches.
const MAX_PREVIEW: u32 = 50;
/// Pages a preview reads looking for records its filter admits.
const PREVIEW_PAGES: usize = 5;

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
            MappingError::Invalid(problems) => invalid_texts(&problems),
            MappingError::NotFound(id) => not_found("mapping", &id),
            MappingError::Catalog { .. } => with_reason(Code::Unavailable, "CATALOG_UNAVAILABLE", message),
            MappingError::Store(error) => error.into(),
        }
    }
}

fn spec_of(spec: Option<&pb::MappingSpec>) -> Result<crate::mappings::MappingSpec, Status> {
    spec_from_pb(spec.ok_or_else(|| invalid("spec", "missing"))?).map_err(|problem| invalid_texts(&[problem]))
}

#[tonic::async_trait]
impl MappingService for MappingApi {
    async fn create_mapping(
        &self,
        request: Request<pb::CreateMappingRequest>,
    ) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
        let spec = spec_of(request.get_ref().spec.as_ref())?;
        let record = service::create(
            &self.context.mappings,
            &caller.org_id,
            spec,
            !request.get_ref().inactive,
        )
        .await?;
        self.context
            .directory
            .start_child(SupervisedKind::Mappings, &record.org_id, &record.id);
        Ok(audited(mapping_to_pb(&record), &record.id))
    }

    async fn update_mapping(
        &self,
        request: Request<pb::UpdateMappingRequest>,
    ) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
        let spec = spec_of(request.get_ref().spec.as_ref())?;
        let record = service::update(&self.context.mappings, &caller.org_id, &request.get_ref().id, spec).await?;
        self.context
            .directory
            .changed(SupervisedKind::Mappings, &record.id, MappingMsg::Reload);
        Ok(audited(mapping_to_pb(&record), &record.id))
    }

    async fn get_mapping(&self, request: Request<pb::GetMappingRequest>) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
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
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let records = self.context.store.read(|rx| {
            rx.org_records::<MappingRecord>(OrgKind::Mapping, &caller.org_id, page.after.as_deref(), page.fetch())
        })?;
        let (records, next_page_token) = page.finish(records, |m| m.id.clone());
        Ok(Response::new(pb::ListMappingsResponse {
            mappings: records.iter().map(mapping_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn delete_mapping(
        &self,
        request: Request<pb::DeleteMappingRequest>,
    ) -> Result<Response<pb::DeleteMappingResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.into_inner().id;
        self.context.store.read(|rx| mapping_in_org(rx, &caller.org_id, &id))?;
        self.context.directory.stop_child(SupervisedKind::Mappings, &id).await;
        self.context.syncs.stop_mapping(&id).await;
        service::delete(&self.context.mappings, &caller.org_id, &id).await?;
        Ok(audited(pb::DeleteMappingResponse {}, &id))
    }

    async fn activate_mapping(
        &self,
        request: Request<pb::ActivateMappingRequest>,
    ) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
        let record = service::set_active(&self.context.mappings, &caller.org_id, &request.get_ref().id, true).await?;
        self.context
            .directory
            .changed(SupervisedKind::Mappings, &record.id, MappingMsg::Reload);
        Ok(audited(mapping_to_pb(&record), &record.id))
    }

    async fn deactivate_mapping(
        &self,
        request: Request<pb::DeactivateMappingRequest>,
    ) -> Result<Response<pb::Mapping>, Status> {
        let caller = Caller::of(&request)?;
        let record = service::set_active(&self.context.mappings, &caller.org_id, &request.get_ref().id, false).await?;
        self.context
            .directory
            .changed(SupervisedKind::Mappings, &record.id, MappingMsg::Reload);
        Ok(audited(mapping_to_pb(&record), &record.id))
    }

    async fn list_fields(
        &self,
        request: Request<pb::ListFieldsRequest>,
    ) -> Result<Response<pb::ListFieldsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let connection = self
            .context
            .store
            .read(|rx| connection_in_org(rx, &caller.org_id, &body.connection_id))?;
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        crate::mappings::validate::check_object(connection.provider, &body.object, "object")
            .map_err(|problem| invalid_texts(&[problem]))?;
        let catalog = self.context.mappings.catalog(&connection, &body.object).await?;
        let mut fields: Vec<pb::Field> = catalog
            .iter()
            .map(|f| pb::Field {
                name: f.name.clone(),
                label: f.label.clone(),
                r#type: f.kind.clone(),
                required: f.required,
                read_only: f.read_only,
            })
            .collect();
        fields.sort_by(|a, b| a.name.cmp(&b.name));
        let (fields, next_page_token) = page.of_slice(&fields, |f| f.name.clone());
        Ok(Response::new(pb::ListFieldsResponse {
            fields,
            next_page_token,
        }))
    }

    async fn preview_mapping(
        &self,
        request: Request<pb::PreviewMappingRequest>,
    ) -> Result<Response<pb::PreviewMappingResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let spec = match &body.spec {
            // An unsaved mapping: validated as CreateMapping would.
            Some(unsaved) if body.id.is_empty() => {
                // Previewing a saved mapping is operating it; an unsaved one can read any
                // object's fields, which is configuring.
                caller.require(Access::Configure)?;
                let spec = spec_of(Some(unsaved))?;
                service::validate_spec(&self.context.mappings, &caller.org_id, &spec).await?;
                spec
            }
            Some(_) => return Err(invalid("spec", "give either `id` or `spec`, not both")),
            None => {
                self.context
                    .store
                    .read(|rx| mapping_in_org(rx, &caller.org_id, &body.id))?
                    .spec
            }
        };
        let source = self
            .context
            .store
            .read(|rx| connection_in_org(rx, &caller.org_id, &spec.source.connection))?;
        let target = self
            .context
            .store
            .read(|rx| connection_in_org(rx, &caller.org_id, &spec.target.connection))?;
        let mappings = &self.context.mappings;
        let (source_catalog, target_catalog) = mappings.filter_catalogs(&spec, &source, &target).await?;
        let catalogs = Catalogs {
            source: &source_catalog,
            target: &target_catalog,
        };
        let plan =
            Plan::compile(&spec, catalogs).map_err(|e| with_reason(Code::FailedPrecondition, "MAPPING_INVALID", e))?;
        let limit = match body.limit {
            0 => 5,
            n => n.min(MAX_PREVIEW),
        } as usize;
        // The first records the filter admits, over a few pages where the provider's query
        // could not express all of it.
        let connector = mappings.connector(&source);
        let mut admitted = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..PREVIEW_PAGES {
            let query = ListQuery {
                object: &spec.source.object,
                since: None,
                cursor: cursor.as_deref(),
                limit: if plan.filter(Flow::Forward).is_some() {
                    PAGE_SIZE
                } else {
                    limit
                },
                fields: &plan.source_fields,
                filter: plan.filter(Flow::Forward),
            };
            let page = connector
                .list_changed(&query)
                .await
                .map_err(|e| with_reason(Code::Unavailable, "PROVIDER_UNAVAILABLE", e.to_string()))?;
            admitted.extend(
                page.records
                    .into_iter()
                    .filter(|r| plan.admits(Flow::Forward, &r.fields))
                    .take(limit - admitted.len()),
            );
            match page.next {
                Some(next) if admitted.len() < limit => cursor = Some(next),
                _ => break,
            }
        }
        let records = admitted
            .iter()
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
