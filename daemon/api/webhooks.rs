//! `WebhookService`: outbound endpoints, deliveries and redelivery.

use std::sync::Arc;

use tonic::{Code, Request, Response, Status};

use super::pages::PageRequest;
use super::status::{invalid, invalid_texts, not_found, with_reason};
use super::{Context, audited, convert};
use crate::actors::SupervisedKind;
use crate::auth::Caller;
use crate::pb::{self, webhook_service_server::WebhookService};
use crate::pb_time;
use crate::store::{OrgKind, Reader};
use crate::webhooks::actor::EndpointMsg;
use crate::webhooks::endpoints::{self, EndpointChange, NewEndpoint, SettingsChange, WebhookError};
use crate::webhooks::records::{DeliveryRecord, DeliveryStatus, EndpointRecord};

pub struct WebhookApi {
    context: Arc<Context>,
}

impl WebhookApi {
    pub fn new(context: Arc<Context>) -> Self {
        WebhookApi { context }
    }
}

impl From<WebhookError> for Status {
    fn from(error: WebhookError) -> Status {
        match error {
            WebhookError::Url(error) => invalid("url", error),
            WebhookError::Events(error) => invalid_texts(&[error.to_string()]),
            WebhookError::Setting { field, problem } => invalid(&field, problem),
            WebhookError::NotFound { kind, id } => not_found(kind, &id),
            WebhookError::Disabled(_) => with_reason(Code::FailedPrecondition, "ENDPOINT_DISABLED", error.to_string()),
            WebhookError::Store(error) => error.into(),
        }
    }
}

fn endpoint_to_pb(endpoint: &EndpointRecord) -> pb::WebhookEndpoint {
    pb::WebhookEndpoint {
        id: endpoint.id.clone(),
        url: endpoint.url.clone(),
        description: endpoint.description.clone(),
        event_types: endpoint.event_types.clone(),
        enabled: endpoint.enabled,
        created_at: pb_time::from_text(&endpoint.created_at),
        updated_at: pb_time::from_text(&endpoint.updated_at),
        retry_schedule_seconds: endpoint.retry_schedule_seconds.clone(),
        failure_threshold: endpoint.failure_threshold,
        consecutive_failures: endpoint.consecutive_failures,
        ordered: endpoint.ordered,
        max_concurrency: endpoint.max_concurrency,
        timeout_seconds: endpoint.timeout_seconds,
        disabled_reason: endpoint.disabled_reason.clone().unwrap_or_default(),
    }
}

fn status_to_pb(status: DeliveryStatus) -> pb::DeliveryStatus {
    match status {
        DeliveryStatus::Pending => pb::DeliveryStatus::Pending,
        DeliveryStatus::Succeeded => pb::DeliveryStatus::Succeeded,
        DeliveryStatus::Failed => pb::DeliveryStatus::Failed,
    }
}

fn delivery_to_pb(delivery: &DeliveryRecord) -> pb::WebhookDelivery {
    let next_attempt_at = delivery
        .next_attempt_at_ms
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(pb_time::from_jiff);
    pb::WebhookDelivery {
        id: delivery.id.clone(),
        endpoint_id: delivery.endpoint_id.clone(),
        event_id: delivery.event_id.clone(),
        event_type: delivery.event_type.clone(),
        status: status_to_pb(delivery.status).into(),
        created_at: pb_time::from_text(&delivery.created_at),
        next_attempt_at,
        attempts: delivery
            .attempts
            .iter()
            .map(|a| pb::DeliveryAttempt {
                number: a.number,
                at: pb_time::from_text(&a.at),
                status_code: a.status_code.map_or(0, u32::from),
                latency_ms: a.latency_ms,
                error: a.error.clone().unwrap_or_default(),
                response_body: a.response_body.clone(),
            })
            .collect(),
    }
}

fn settings_change(settings: Option<pb::WebhookSettings>) -> SettingsChange {
    let Some(settings) = settings else {
        return SettingsChange::default();
    };
    SettingsChange {
        retry_schedule_seconds: settings.retry_schedule.map(|schedule| schedule.seconds),
        failure_threshold: settings.failure_threshold,
        ordered: settings.ordered,
        max_concurrency: settings.max_concurrency,
        timeout_seconds: settings.timeout_seconds,
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Result<Response<pb::CreateWebhookEndpointResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let body = request.into_inner();
        let new = NewEndpoint {
            url: body.url,
            description: body.description,
            event_types: body.event_types,
            settings: settings_change(body.settings),
        };
        let (endpoint, secret) = endpoints::create(
            &self.context.store,
            self.context.webhook_policy.get(),
            &caller.org_id,
            new,
        )
        .await?;
        self.context
            .directory
            .start_child(SupervisedKind::WebhookEndpoints, &endpoint.org_id, &endpoint.id);
        Ok(audited(
            pb::CreateWebhookEndpointResponse {
                endpoint: Some(endpoint_to_pb(&endpoint)),
                secret: secret.expose().to_owned(),
            },
            &endpoint.id,
        ))
    }

    async fn update_webhook_endpoint(
        &self,
        request: Request<pb::UpdateWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        let caller = Caller::of(&request)?.clone();
        let body = request.into_inner();
        let change = EndpointChange {
            url: body.url,
            description: body.description,
            event_types: body.event_types.map(|types| types.event_types),
            settings: settings_change(body.settings),
        };
        let endpoint = endpoints::update(
            &self.context.store,
            self.context.webhook_policy.get(),
            &caller.org_id,
            &body.id,
            change,
        )
        .await?;
        self.context
            .directory
            .changed(SupervisedKind::WebhookEndpoints, &endpoint.id, EndpointMsg::Reload);
        Ok(audited(endpoint_to_pb(&endpoint), &endpoint.id))
    }

    async fn get_webhook_endpoint(
        &self,
        request: Request<pb::GetWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        let caller = Caller::of(&request)?;
        let id = &request.get_ref().id;
        let endpoint = self
            .context
            .store
            .read(|rx| endpoints::endpoint_in_org(rx, &caller.org_id, id))?;
        Ok(Response::new(endpoint_to_pb(&endpoint)))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<pb::ListWebhookEndpointsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let records = self.context.store.read(|rx| {
            rx.org_records::<EndpointRecord>(
                OrgKind::WebhookEndpoint,
                &caller.org_id,
                page.after.as_deref(),
                page.fetch(),
            )
        })?;
        let (records, next_page_token) = page.finish(records, |e| e.id.clone());
        Ok(Response::new(pb::ListWebhookEndpointsResponse {
            endpoints: records.iter().map(endpoint_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Result<Response<pb::DeleteWebhookEndpointResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.into_inner().id;
        self.context
            .store
            .read(|rx| endpoints::endpoint_in_org(rx, &caller.org_id, &id))?;
        self.context
            .directory
            .stop_child(SupervisedKind::WebhookEndpoints, &id)
            .await;
        endpoints::delete(&self.context.store, &caller.org_id, &id).await?;
        Ok(audited(pb::DeleteWebhookEndpointResponse {}, &id))
    }

    async fn enable_webhook_endpoint(
        &self,
        request: Request<pb::EnableWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        let caller = Caller::of(&request)?;
        let endpoint = endpoints::set_enabled(&self.context.store, &caller.org_id, &request.get_ref().id, true).await?;
        self.context
            .directory
            .changed(SupervisedKind::WebhookEndpoints, &endpoint.id, EndpointMsg::Reload);
        Ok(audited(endpoint_to_pb(&endpoint), &endpoint.id))
    }

    async fn disable_webhook_endpoint(
        &self,
        request: Request<pb::DisableWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        let caller = Caller::of(&request)?;
        let endpoint =
            endpoints::set_enabled(&self.context.store, &caller.org_id, &request.get_ref().id, false).await?;
        self.context
            .directory
            .changed(SupervisedKind::WebhookEndpoints, &endpoint.id, EndpointMsg::Reload);
        Ok(audited(endpoint_to_pb(&endpoint), &endpoint.id))
    }

    async fn reveal_webhook_secret(
        &self,
        request: Request<pb::RevealWebhookSecretRequest>,
    ) -> Result<Response<pb::RevealWebhookSecretResponse>, Status> {
        let caller = Caller::of(&request)?;
        let secret = endpoints::reveal_secret(&self.context.store, &caller.org_id, &request.get_ref().id)?;
        Ok(audited(
            pb::RevealWebhookSecretResponse {
                secret: secret.expose().to_owned(),
            },
            &request.get_ref().id,
        ))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let caller = Caller::of(&request)?;
        let id = &request.get_ref().id;
        let (secret, expires) = endpoints::rotate_secret(&self.context.store, &caller.org_id, id).await?;
        self.context
            .directory
            .changed(SupervisedKind::WebhookEndpoints, id, EndpointMsg::Reload);
        Ok(audited(
            pb::RotateWebhookSecretResponse {
                secret: secret.expose().to_owned(),
                previous_secret_expires_at: pb_time::from_text(&expires),
            },
            id,
        ))
    }

    async fn test_webhook_endpoint(
        &self,
        request: Request<pb::TestWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookDelivery>, Status> {
        let caller = Caller::of(&request)?;
        let delivery = endpoints::send_test(&self.context.store, &caller.org_id, &request.get_ref().id).await?;
        Ok(audited(delivery_to_pb(&delivery), &delivery.id))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let status = match pb::DeliveryStatus::try_from(body.status) {
            Ok(pb::DeliveryStatus::Unspecified) => None,
            Ok(pb::DeliveryStatus::Pending) => Some(DeliveryStatus::Pending),
            Ok(pb::DeliveryStatus::Succeeded) => Some(DeliveryStatus::Succeeded),
            Ok(pb::DeliveryStatus::Failed) => Some(DeliveryStatus::Failed),
            Err(_) => return Err(invalid("status", format!("unknown delivery status {}", body.status))),
        };
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        let deliveries = endpoints::list_deliveries(
            &self.context.store,
            &caller.org_id,
            &body.endpoint_id,
            status,
            page.after.as_deref(),
            page.fetch(),
        )?;
        let (deliveries, next_page_token) = page.finish(deliveries, |d| d.id.clone());
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            deliveries: deliveries.iter().map(delivery_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_webhook_delivery(
        &self,
        request: Request<pb::GetWebhookDeliveryRequest>,
    ) -> Result<Response<pb::WebhookDelivery>, Status> {
        let caller = Caller::of(&request)?;
        let delivery = endpoints::get_delivery(&self.context.store, &caller.org_id, &request.get_ref().id)?;
        Ok(Response::new(delivery_to_pb(&delivery)))
    }

    async fn redeliver_webhook(
        &self,
        request: Request<pb::RedeliverWebhookRequest>,
    ) -> Result<Response<pb::WebhookDelivery>, Status> {
        let caller = Caller::of(&request)?;
        let delivery =
            endpoints::redeliver(&self.context.store, &caller.org_id, &request.get_ref().delivery_id).await?;
        Ok(audited(delivery_to_pb(&delivery), &delivery.id))
    }

    async fn recover_webhook_deliveries(
        &self,
        request: Request<pb::RecoverWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::RecoverWebhookDeliveriesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        // Another organization's endpoint is not found, whatever else the request says.
        self.context
            .store
            .read(|rx| endpoints::endpoint_in_org(rx, &caller.org_id, &body.endpoint_id))?;
        let since = body.since.as_ref().ok_or_else(|| invalid("since", "missing"))?;
        let since = convert::time_from_pb("since", since)?;
        let requeued = endpoints::recover(&self.context.store, &caller.org_id, &body.endpoint_id, since).await?;
        Ok(audited(
            pb::RecoverWebhookDeliveriesResponse { requeued },
            &body.endpoint_id,
        ))
    }
}
